import Foundation
import NimbusCore
import NimbusStore

/// A range of segmentation ids networks take theirs from (Neutron's network segment range
/// plugin). The default ranges are ML2's configured ones; admins add ranges shared with every
/// project or private to one.
struct SegmentRange: Sendable {
    var id: String
    var name = ""
    var description = ""
    var isDefault = false
    var shared = true
    var projectID: String?
    var networkType: String
    /// `''` for tunnel types, as in `network_segment_allocation`.
    var physicalNetwork: String
    var minimum: Int64
    var maximum: Int64
    var revision: Int64 = 0
    var createdAt: Double
    var updatedAt: Double

    var ids: ClosedRange<Int64> { minimum...maximum }
}

/// `/v2.0/network_segment_ranges` and how ML2 allocates from the ranges.
///
/// A tenant network takes the lowest free id of its project's private ranges, then of the
/// shared ranges (default ones first) outside every other project's private range. A provider
/// network that names no id takes the lowest free id of any range of its type. What keeps two
/// networks off one id is still `network_segment_allocation`'s primary key.
extension NetworkService {
    static let segmentRangeTypes = ["vlan", "vxlan", "gre", "geneve"]
    static let segmentRangeAttributes: Set<String> = ["name", "description", "shared", "project_id", "tenant_id", "network_type",
                                                      "physical_network", "minimum", "maximum", "tags"]
    static let segmentRangeUpdatableAttributes: Set<String> = ["name", "description", "minimum", "maximum"]

    // MARK: Ranges

    /// The default ranges: one per configured range of each range type in `type_drivers`.
    /// Their ids are derived from what they are, so they stay the same across restarts while
    /// the configuration does.
    func defaultSegmentRanges() -> [SegmentRange] {
        var ranges: [SegmentRange] = []
        for type in settings.ml2.typeDrivers where Self.segmentRangeTypes.contains(type.rawValue) {
            for pool in settings.ml2.pools(type) {
                for ids in pool.ranges {
                    ranges.append(SegmentRange(id: Self.derivedID("\(type.rawValue)|\(pool.physicalNetwork)|\(ids.lowerBound)|\(ids.upperBound)"),
                                               isDefault: true, networkType: type.rawValue, physicalNetwork: pool.physicalNetwork,
                                               minimum: ids.lowerBound, maximum: ids.upperBound, createdAt: startedAt, updatedAt: startedAt))
                }
            }
        }
        return ranges
    }

    /// A UUID-shaped id that is a function of `text` (two 64-bit FNV-1a hashes).
    static func derivedID(_ text: String) -> String {
        func fnv(_ seed: UInt64) -> UInt64 {
            var hash = seed
            for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100000001b3 }
            return hash
        }
        let hex = String(format: "%016llx%016llx", fnv(0xcbf29ce484222325), fnv(0x84222325cbf29ce4))
        let digits = Array(hex)
        return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(digits[$0]) }.joined(separator: "-")
    }

    /// Orders this transaction against range writes on PostgreSQL (SQLite's single writer
    /// already does). Allocating takes the shared mode, which allocations do not contend
    /// for; a range write the exclusive one, so its overlap and in-use checks and the
    /// allocations that read the ranges see each other's commits instead of racing.
    func lockSegmentRanges(exclusive: Bool, _ x: any SQLExecutor) async throws {
        guard x.dialect == .postgres else { return }
        try await x.execute("LOCK TABLE network_segment_range IN \(exclusive ? "SHARE ROW EXCLUSIVE" : "SHARE") MODE")
    }

    /// Every range: the default ones, then the stored ones oldest first.
    func segmentRanges(_ x: any SQLExecutor) async throws -> [SegmentRange] {
        let stored = try await x.query("SELECT * FROM network_segment_range ORDER BY created_at, id").map { row in
            SegmentRange(id: row.string("id"), name: row.string("name"), description: row.string("description"), shared: row.bool("shared"),
                         projectID: row.optionalString("project_id"), networkType: row.string("network_type"),
                         physicalNetwork: row.string("physical_network"), minimum: row.int("minimum"), maximum: row.int("maximum"),
                         revision: row.int("revision_number"), createdAt: row.double("created_at"), updatedAt: row.double("updated_at"))
        }
        return defaultSegmentRanges() + stored
    }

    func segmentRange(_ id: String, _ x: any SQLExecutor) async throws -> SegmentRange {
        guard let range = try await segmentRanges(x).first(where: { $0.id == id }) else {
            throw APIError(.notFound, "Network Segment Range \(id) could not be found.", code: "NetworkSegmentRangeNotFound")
        }
        return range
    }

    /// The allocated ids of a type on a physical network, with the project of the network holding each.
    func allocatedSegments(_ type: String, physicalNetwork: String, _ x: any SQLExecutor) async throws -> [Int64: String] {
        var used: [Int64: String] = [:]
        for row in try await x.query("""
            SELECT a.segmentation_id, n.project_id FROM network_segment_allocation a JOIN network_network n ON n.id = a.network_id
            WHERE a.network_type = ? AND a.physical_network = ?
            """, .text(type), .text(physicalNetwork)) {
            used[row.int("segmentation_id")] = row.string("project_id")
        }
        return used
    }

    /// The lowest id of `ids` neither in `used` nor in one of `fences`.
    static func lowestFree(_ ids: ClosedRange<Int64>, used: [Int64: String], fences: [ClosedRange<Int64>]) -> Int64? {
        var candidate = ids.lowerBound
        // Each step passes a used id or a whole fence, so this ends.
        while candidate <= ids.upperBound {
            if used[candidate] != nil {
                candidate += 1
            } else if let fence = fences.first(where: { $0.contains(candidate) }) {
                candidate = fence.upperBound + 1
            } else {
                return candidate
            }
        }
        return nil
    }

    /// A tenant network's segment of `type` for `project`: its own ranges first, then the
    /// shared ones, skipping other projects' private ranges.
    func freeTenantSegment(_ type: NetworkType, project: String, _ x: any SQLExecutor) async throws -> SegmentSpec? {
        try await lockSegmentRanges(exclusive: false, x)
        let ranges = try await segmentRanges(x).filter { $0.networkType == type.rawValue }
        let own = ranges.filter { !$0.shared && $0.projectID == project }
        let others = ranges.filter { !$0.shared && $0.projectID != project }
        var used: [String: [Int64: String]] = [:]
        for (pool, fenced) in [(own, [SegmentRange]()), (ranges.filter(\.shared), others)] {
            for range in pool {
                if used[range.physicalNetwork] == nil {
                    used[range.physicalNetwork] = try await allocatedSegments(type.rawValue, physicalNetwork: range.physicalNetwork, x)
                }
                let fences = fenced.filter { $0.physicalNetwork == range.physicalNetwork }.map(\.ids)
                if let id = Self.lowestFree(range.ids, used: used[range.physicalNetwork] ?? [:], fences: fences) {
                    return SegmentSpec(type: type, physicalNetwork: type == .vlan ? range.physicalNetwork : nil, segmentationID: id)
                }
            }
        }
        return nil
    }

    /// The lowest id of any range of `type` (on `physicalNetwork`, or any) not yet allocated:
    /// a provider segment that named none.
    func freeSegment(_ type: NetworkType, physicalNetwork: String?, _ x: any SQLExecutor) async throws -> SegmentSpec? {
        try await lockSegmentRanges(exclusive: false, x)
        for range in try await segmentRanges(x) where range.networkType == type.rawValue && (physicalNetwork == nil || range.physicalNetwork == physicalNetwork) {
            let used = try await allocatedSegments(type.rawValue, physicalNetwork: range.physicalNetwork, x)
            if let id = Self.lowestFree(range.ids, used: used, fences: []) {
                return SegmentSpec(type: type, physicalNetwork: type == .vlan ? range.physicalNetwork : nil, segmentationID: id)
            }
        }
        return nil
    }

    // MARK: JSON

    func segmentRangeJSON(_ ranges: [SegmentRange], _ x: any SQLExecutor) async throws -> [[String: JSON]] {
        let tags = try await tags(ranges.filter { !$0.isDefault }.map(\.id), x)
        var allocated: [String: [Int64: String]] = [:]
        var out: [[String: JSON]] = []
        for range in ranges {
            let key = range.networkType + "|" + range.physicalNetwork
            if allocated[key] == nil { allocated[key] = try await allocatedSegments(range.networkType, physicalNetwork: range.physicalNetwork, x) }
            let used = (allocated[key] ?? [:]).filter { range.ids.contains($0.key) }
            out.append([
                "id": .string(range.id), "name": .string(range.name), "description": .string(range.description),
                "default": .bool(range.isDefault), "shared": .bool(range.shared),
                "project_id": .optional(range.projectID), "tenant_id": .optional(range.projectID),
                "network_type": .string(range.networkType),
                "physical_network": range.networkType == "vlan" ? .string(range.physicalNetwork) : .null,
                "minimum": .int(range.minimum), "maximum": .int(range.maximum),
                "available": .array(range.ids.filter { used[$0] == nil }.map { .int($0) }),
                "used": .object(Dictionary(uniqueKeysWithValues: used.map { (String($0.key), JSON.string($0.value)) })),
                "tags": .array((tags[range.id] ?? []).map { .string($0) }),
                "revision_number": .int(range.revision),
                "created_at": .string(Timestamps.iso8601(Date(timeIntervalSince1970: range.createdAt))),
                "updated_at": .string(Timestamps.iso8601(Date(timeIntervalSince1970: range.updatedAt))),
            ])
        }
        return out
    }

    // MARK: API

    public func listSegmentRanges(caller: AuthContext) async throws -> [[String: JSON]] {
        try authorize("get_network_segment_range", caller)
        return try await segmentRangeJSON(try await segmentRanges(db), db)
    }

    public func segmentRange(_ id: String, caller: AuthContext) async throws -> [String: JSON] {
        try authorize("get_network_segment_range", caller)
        return try await segmentRangeJSON([try await segmentRange(id, db)], db)[0]
    }

    /// A range of a type the type drivers have; a private one (`shared: false`) belongs to
    /// the project named, or the caller's. 409 when it overlaps another non-default range of
    /// its type and physical network (default ranges may be carved from).
    public func createSegmentRange(_ body: JSON, caller: AuthContext) async throws -> [String: JSON] {
        let input = try JSONInput(body: body, key: "network_segment_range")
        try Self.allowOnly(input, Self.segmentRangeAttributes)
        try authorize("create_network_segment_range", caller)
        for required in ["network_type", "minimum", "maximum"] where !input.has(required) {
            throw Self.badRequest("Failed to parse request. Required attribute '\(required)' not specified")
        }
        let typeName = try input.string("network_type") ?? ""
        guard Self.segmentRangeTypes.contains(typeName), let type = NetworkType(rawValue: typeName), settings.ml2.typeDrivers.contains(type) else {
            throw Self.badRequest("Network type \(typeName) does not support network segment ranges.", code: "NetworkSegmentRangeNetTypeNotSupported")
        }
        let physicalNetwork = type == .vlan ? try input.optionalString("physical_network") ?? "" : ""
        if type == .vlan && physicalNetwork.isEmpty {
            throw Self.badRequest("Bad network_segment_range request: Network type vlan requires 'physical_network' to be specified while creating new range.",
                                  code: "BadRequest")
        }
        let minimum = try Self.rangeBound(input, "minimum"), maximum = try Self.rangeBound(input, "maximum")
        try Self.checkRangeBounds(type, minimum, maximum)
        let shared = try input.bool("shared") ?? true
        let project: String? = shared ? nil : try Self.owner(input, caller)
        let tags = try input.stringArray("tags") ?? []
        try Self.validateTags(tags)
        let name = try input.optionalString("name") ?? "", description = try input.optionalString("description") ?? ""
        let id = Identifiers.uuid()
        try await write { x in
            try await self.lockSegmentRanges(exclusive: true, x)
            let candidate = SegmentRange(id: id, networkType: type.rawValue, physicalNetwork: physicalNetwork, minimum: minimum, maximum: maximum,
                                         createdAt: 0, updatedAt: 0)
            try await self.refuseOverlap(candidate, x)
            let now = Self.now()
            try await x.execute("""
                INSERT INTO network_segment_range (id, name, description, shared, project_id, network_type, physical_network, minimum, maximum,
                    revision_number, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
                """, .text(id), .text(name), .text(description), .bool(shared), .optional(project), .text(type.rawValue), .text(physicalNetwork),
                                .integer(minimum), .integer(maximum), now, now)
            try await self.setTags(id, tags, x)
        }
        return try await segmentRangeJSON([try await segmentRange(id, db)], db)[0]
    }

    /// Renames a range or moves its bounds; the default ranges are the configuration's (400),
    /// and new bounds must keep every allocated id the range holds (409).
    public func updateSegmentRange(_ id: String, _ body: JSON, caller: AuthContext) async throws -> [String: JSON] {
        let input = try JSONInput(body: body, key: "network_segment_range")
        try Self.allowOnly(input, Self.segmentRangeAttributes)
        try authorize("update_network_segment_range", caller)
        try Self.refuseReadOnly(input, updatable: Self.segmentRangeUpdatableAttributes)
        let minimum = input.has("minimum") ? try Self.rangeBound(input, "minimum") : nil
        let maximum = input.has("maximum") ? try Self.rangeBound(input, "maximum") : nil
        try await write { x in
            var range = try await self.writableSegmentRange(id, x)
            let held = try await self.allocatedSegments(range.networkType, physicalNetwork: range.physicalNetwork, x).keys.filter(range.ids.contains)
            range.minimum = minimum ?? range.minimum
            range.maximum = maximum ?? range.maximum
            if let lowest = held.min(), let highest = held.max(), range.minimum > lowest || range.maximum < highest {
                throw Self.rangeReferenced(id)
            }
            try Self.checkRangeBounds(NetworkType(rawValue: range.networkType) ?? .vlan, range.minimum, range.maximum)
            try await self.refuseOverlap(range, x)
            var sets: [(String, SQLValue)] = [("minimum", .integer(range.minimum)), ("maximum", .integer(range.maximum))]
            if let name = try input.optionalString("name") { sets.append(("name", .text(name))) }
            if let description = try input.optionalString("description") { sets.append(("description", .text(description))) }
            try await x.execute("UPDATE network_segment_range SET \(sets.map { "\($0.0) = ?" }.joined(separator: ", ")) WHERE id = ?",
                                sets.map(\.1) + [.text(id)])
            try await self.touch("network_segment_range", id, x)
        }
        return try await segmentRange(id, caller: caller)
    }

    /// Deletes a range no network holds an id of (409 otherwise); the default ranges stay (400).
    public func deleteSegmentRange(_ id: String, caller: AuthContext) async throws {
        try authorize("delete_network_segment_range", caller)
        try await write { x in
            let range = try await self.writableSegmentRange(id, x)
            let used = try await self.allocatedSegments(range.networkType, physicalNetwork: range.physicalNetwork, x)
            if used.keys.contains(where: range.ids.contains) { throw Self.rangeReferenced(id) }
            try await x.execute("DELETE FROM network_tag WHERE resource_id = ?", .text(id))
            try await x.execute("DELETE FROM network_segment_range WHERE id = ?", .text(id))
        }
    }

    /// Replaces a range's tags with `change(current)`; a default range's cannot change.
    public func changeSegmentRangeTags(_ id: String, caller: AuthContext,
                                       _ change: @escaping @Sendable ([String]) throws -> [String]) async throws -> [String: JSON] {
        try authorize("update_network_segment_range", caller)
        try await write { x in
            _ = try await self.writableSegmentRange(id, x)
            try await self.setTags(id, try change(try await self.tags([id], x)[id] ?? []), x)
            try await self.touch("network_segment_range", id, x)
        }
        return try await segmentRange(id, caller: caller)
    }

    /// A stored range, with the ranges locked for the rest of the transaction; 400 for a default one.
    func writableSegmentRange(_ id: String, _ x: any SQLExecutor) async throws -> SegmentRange {
        try await lockSegmentRanges(exclusive: true, x)
        let range = try await segmentRange(id, x)
        if range.isDefault {
            throw Self.badRequest("Network Segment Range \(id) is a default segment range which could not be updated or deleted.",
                                  code: "NetworkSegmentRangeDefaultReadOnly")
        }
        return range
    }

    static func rangeReferenced(_ id: String) -> APIError {
        conflict("Network Segment Range \(id) is referenced by one or more tenant networks.", code: "NetworkSegmentRangeReferencedByProject")
    }

    /// 409 when `range` shares an id with another non-default range of its type and physical network.
    func refuseOverlap(_ range: SegmentRange, _ x: any SQLExecutor) async throws {
        let overlapping = try await x.query("""
            SELECT id FROM network_segment_range WHERE network_type = ? AND physical_network = ? AND id <> ? AND minimum <= ? AND maximum >= ?
            ORDER BY created_at, id
            """, .text(range.networkType), .text(range.physicalNetwork), .text(range.id), .integer(range.maximum), .integer(range.minimum))
        guard overlapping.isEmpty else {
            throw Self.conflict("Network segment range overlaps with range(s) with id \(overlapping.map { $0.string("id") }.joined(separator: ", "))",
                                code: "NetworkSegmentRangeOverlaps")
        }
    }

    /// A bound as Neutron's `convert_to_int` takes it (an integer or its decimal text), not negative.
    static func rangeBound(_ input: JSONInput, _ key: String) throws -> Int64 {
        let value: Int64?
        if case .string(let text)? = input.fields[key] { value = Int64(text) } else { value = try? input.int(key) }
        guard let value else { throw badRequest("Invalid input for \(key). Reason: '\(input.fields[key]?.serialized() ?? "")' is not an integer.", code: "InvalidInput") }
        guard value >= 0 else { throw badRequest("Invalid input for \(key). Reason: '\(value)' should be non-negative.", code: "InvalidInput") }
        return value
    }

    /// The bounds ids of the type can take, lowest first (Neutron's `verify_vlan_range` and `verify_tunnel_range`).
    static func checkRangeBounds(_ type: NetworkType, _ minimum: Int64, _ maximum: Int64) throws {
        let limits = type.idLimits ?? 0...0
        if type == .vlan {
            func invalid(_ error: String) -> APIError {
                badRequest("Invalid network VLAN range: '(\(minimum), \(maximum))' - '\(error)'.", code: "NetworkVlanRangeError")
            }
            for tag in [minimum, maximum] where !limits.contains(tag) { throw invalid("\(tag) is not a valid VLAN tag") }
            if maximum < minimum { throw invalid("End of VLAN range is less than start of VLAN range") }
        } else {
            func invalid(_ error: String) -> APIError {
                badRequest("Invalid network tunnel range: '(\(minimum), \(maximum))' - \(error).", code: "NetworkTunnelRangeError")
            }
            for id in [minimum, maximum] where !limits.contains(id) { throw invalid("\(id) is not a valid \(type.rawValue) identifier") }
            if maximum < minimum { throw invalid("End of tunnel range is less than start of tunnel range") }
        }
    }
}
