import Foundation
import NimbusCore
import NimbusStore

/// `/v2.0/segments`: a network's layer-2 segments, as Neutron's segments plugin over ML2 keeps
/// them. A network may have several (`segment_index` orders them). Ports bind to the first,
/// which is also the one the dataplane wires on every host (`boundSegment`): Nimbus's Linux
/// bridge agent carries every segment type it is asked for, so ML2's "first segment the
/// agent can carry" is always the first. The others are stored and allocated, for clients and
/// for the day a host maps only some physical networks.
extension NetworkService {
    static let segmentAttributes: Set<String> = ["network_id", "network_type", "physical_network", "segmentation_id", "name", "description",
                                                 "project_id", "tenant_id"]
    static let segmentUpdatableAttributes: Set<String> = ["name", "description"]

    // MARK: Network attributes

    /// `provider:*` from a network's only segment; with several, the `segments` list
    /// (multi-provider) and no `provider:*`, as ML2 shows them; with none, `provider:*` null.
    static func renderProvider(_ json: inout [String: JSON], _ segments: [Row]) {
        if segments.count > 1 {
            json["segments"] = .array(segments.map { row in
                .object(["provider:network_type": .string(row.string("network_type")),
                         "provider:physical_network": .optional(row.optionalString("physical_network")),
                         "provider:segmentation_id": row.optionalInt("segmentation_id").map { .int($0) } ?? .null])
            })
            return
        }
        json["provider:network_type"] = .optional(segments.first?.optionalString("network_type"))
        json["provider:physical_network"] = .optional(segments.first?.optionalString("physical_network"))
        json["provider:segmentation_id"] = segments.first?.optionalInt("segmentation_id").map { .int($0) } ?? .null
    }

    /// The segments a multi-provider network create lists (`segments`: objects of
    /// `provider:*`), each checked as a provider segment; nil when it lists none.
    func multiProviderSpecs(_ input: JSONInput) throws -> [SegmentSpec]? {
        guard let items = try input.array("segments"), !items.isEmpty else { return nil }
        if Self.providerAttributes.contains(where: input.has) {
            throw Self.badRequest("Invalid input for operation: Segments and provider values cannot both be set.", code: "InvalidInput")
        }
        let specs = try items.map { item -> SegmentSpec in
            guard case .object(let fields) = item else {
                throw Self.badRequest("Invalid input for segments. Reason: '\(item.serialized())' is not a dictionary.", code: "InvalidInput")
            }
            let segment = JSONInput(fields, path: "segments")
            try Self.allowOnly(segment, Set(Self.providerAttributes))
            return try segmentSpec(segment, prefix: "provider:")
        }
        // Two entries claiming one id (or one flat physical network) could never both be had.
        let claims = specs.filter { $0.segmentationID != nil || $0.type == .flat }
            .map { "\($0.type.rawValue)/\($0.type == .vlan || $0.type == .flat ? $0.physicalNetwork ?? "" : "")/\($0.segmentationID ?? 0)" }
        if Set(claims).count != claims.count {
            throw Self.badRequest("Duplicate segment entry in request.", code: "SegmentsContainDuplicateEntry")
        }
        return specs
    }

    /// The network's segments in binding order.
    func segmentSpecs(network: String, _ x: any SQLExecutor) async throws -> [SegmentSpec] {
        try await x.query("SELECT * FROM network_segment WHERE network_id = ? ORDER BY segment_index, created_at, id", .text(network)).map { row in
            SegmentSpec(type: NetworkType(rawValue: row.string("network_type")) ?? .local, physicalNetwork: row.optionalString("physical_network"),
                        segmentationID: row.optionalInt("segmentation_id"))
        }
    }

    /// The segment the network's ports bind to and the dataplane wires: its first; nil when
    /// it has none (its ports cannot bind).
    func boundSegment(network: String, _ x: any SQLExecutor) async throws -> SegmentSpec? {
        try await segmentSpecs(network: network, x).first
    }

    /// The largest MTU every segment of the network can carry (ML2's `_get_network_mtu`).
    func maximumMTU(network: String, _ x: any SQLExecutor) async throws -> Int64 {
        let mtus = try await segmentSpecs(network: network, x).map { Int64(settings.ml2.mtu($0.type)) }
        return mtus.min() ?? Int64(settings.ml2.pathMTU)
    }

    // MARK: API

    public func listSegments(caller: AuthContext) async throws -> [[String: JSON]] {
        try authorize("get_segment", caller)
        return try await db.query("SELECT * FROM network_segment ORDER BY created_at, id").map(Self.segmentJSON)
    }

    public func segment(_ id: String, caller: AuthContext) async throws -> [String: JSON] {
        try authorize("get_segment", caller)
        return Self.segmentJSON(try await segmentRow(id, db))
    }

    func segmentRow(_ id: String, _ x: any SQLExecutor) async throws -> Row {
        guard let row = try await x.first("SELECT * FROM network_segment WHERE id = ?", .text(id)) else { throw Self.notFound("segment", id) }
        return row
    }

    /// Adds a segment to a network. Its id is claimed as a provider network's is (409 when
    /// taken, any free id of the type's ranges when none is named); the network keeps its MTU,
    /// which the new segment's type must carry (400 otherwise, as ML2 checks).
    public func createSegment(_ body: JSON, caller: AuthContext) async throws -> [String: JSON] {
        let input = try JSONInput(body: body, key: "segment")
        try Self.allowOnly(input, Self.segmentAttributes)
        try authorize("create_segment", caller)
        guard let network = try input.string("network_id") else {
            throw Self.badRequest("Failed to parse request. Required attribute 'network_id' not specified")
        }
        guard input.has("network_type") else { throw Self.badRequest("Failed to parse request. Required attribute 'network_type' not specified") }
        let spec = try segmentSpec(input, prefix: "")
        let name = try input.optionalString("name"), description = try input.optionalString("description") ?? ""
        let id = try await write { x in
            guard let row = try await x.first("SELECT mtu FROM network_network WHERE id = ?\(x.dialect.forUpdate)", .text(network)) else {
                throw Self.notFound("network", network)
            }
            let segment = try await self.allocateSegment(spec, project: "", x)
            let maxMTU = Int64(self.settings.ml2.mtu(segment.type))
            if row.int("mtu") > maxMTU {
                throw Self.badRequest("Invalid input for operation: Requested MTU is too big, maximum is \(maxMTU).", code: "InvalidInput")
            }
            let id = try await self.insertSegment(segment, network: network, name: name, description: description, x)
            try await self.touch("network_network", network, x)
            return id
        }
        return Self.segmentJSON(try await segmentRow(id, db))
    }

    public func updateSegment(_ id: String, _ body: JSON, caller: AuthContext) async throws -> [String: JSON] {
        let input = try JSONInput(body: body, key: "segment")
        try Self.allowOnly(input, Self.segmentAttributes)
        try authorize("update_segment", caller)
        try Self.refuseReadOnly(input, updatable: Self.segmentUpdatableAttributes)
        try await write { x in
            _ = try await self.segmentRow(id, x)
            var sets: [(String, SQLValue)] = []
            if input.has("name") { sets.append(("name", .optional(try input.optionalString("name")))) }
            if let description = try input.optionalString("description") { sets.append(("description", .text(description))) }
            guard !sets.isEmpty else { return }
            try await x.execute("UPDATE network_segment SET \(sets.map { "\($0.0) = ?" }.joined(separator: ", ")) WHERE id = ?", sets.map(\.1) + [.text(id)])
            try await self.touch("network_segment", id, x)
        }
        return Self.segmentJSON(try await segmentRow(id, db))
    }

    /// Deletes a segment and frees its id. The segment the network's ports are bound to stays
    /// while the network has ports (409 `SegmentInUse`): the dataplane wires it on their hosts.
    /// Subnets are never on a segment in Nimbus (`segment_id` is always null), so none holds one.
    public func deleteSegment(_ id: String, caller: AuthContext) async throws {
        try authorize("delete_segment", caller)
        try await write { x in
            let row = try await self.segmentRow(id, x)
            let network = row.string("network_id")
            _ = try await x.query("SELECT id FROM network_network WHERE id = ?\(x.dialect.forUpdate)", .text(network))
            let first = try await x.first("SELECT id FROM network_segment WHERE network_id = ? ORDER BY segment_index, created_at, id", .text(network))
            if first?.string("id") == id,
               let ports = try await x.first("SELECT COUNT(*) AS n FROM network_port WHERE network_id = ?", .text(network))?.int("n"), ports > 0 {
                throw Self.conflict("Segment '\(id)' cannot be deleted: The segment is still bound with \(ports) port(s).", code: "SegmentInUse")
            }
            if let type = NetworkType(rawValue: row.string("network_type")), type != .local {
                try await x.execute("""
                    DELETE FROM network_segment_allocation WHERE network_type = ? AND physical_network = ? AND segmentation_id = ? AND network_id = ?
                    """, .text(type.rawValue), .text(row.optionalString("physical_network") ?? ""), .integer(row.optionalInt("segmentation_id") ?? 0),
                    .text(network))
            }
            try await x.execute("DELETE FROM network_segment WHERE id = ?", .text(id))
            try await self.touch("network_network", network, x)
        }
    }

    static func segmentJSON(_ row: Row) -> [String: JSON] {
        ["id": .string(row.string("id")), "network_id": .string(row.string("network_id")), "name": .optional(row.optionalString("name")),
         "description": .string(row.string("description")), "network_type": .string(row.string("network_type")),
         "physical_network": .optional(row.optionalString("physical_network")),
         "segmentation_id": row.optionalInt("segmentation_id").map { .int($0) } ?? .null,
         "created_at": time(row, "created_at"), "updated_at": time(row, "updated_at"),
         "revision_number": .int(row.int("revision_number"))]
    }
}
