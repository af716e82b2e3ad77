import Foundation
import NimbusCore
import NimbusStore

extension NetworkService {
    static let subnetPoolAttributes: Set<String> = [
        "name", "description", "prefixes", "default_prefixlen", "min_prefixlen", "max_prefixlen", "shared", "is_default", "tags",
        "project_id", "tenant_id", "address_scope_id", "default_quota",
    ]

    func subnetPools(where clause: String = "", _ binds: [SQLValue] = [], _ x: any SQLExecutor) async throws -> [Rendered] {
        let rows = try await x.query("SELECT * FROM network_subnetpool \(clause)", binds)
        let tags = try await tags(rows.map { $0.string("id") }, x)
        return rows.map { row in
            var json = Self.standard(row, tags: tags[row.string("id")] ?? [])
            json["ip_version"] = .int(row.int("ip_version"))
            json["prefixes"] = Self.decode(row, "prefixes")
            for key in ["default_prefixlen", "min_prefixlen", "max_prefixlen"] { json[key] = .int(row.int(key)) }
            json["shared"] = .bool(row.bool("shared"))
            json["is_default"] = .bool(row.bool("is_default"))
            json["default_quota"] = .null
            json["address_scope_id"] = .optional(row.optionalString("address_scope_id"))
            return Rendered(json: json, target: ["project_id": row.string("project_id"), "tenant_id": row.string("project_id"),
                                                 "shared": Self.flag(row.bool("shared")), "external": "False"])
        }
    }

    public func listSubnetPools(caller: AuthContext) async throws -> [[String: JSON]] {
        try await subnetPools(where: "ORDER BY created_at, id", [], db).compactMap { visible("subnetpool", $0.json, target: $0.target, caller: caller) }
    }

    public func subnetPool(_ id: String, caller: AuthContext) async throws -> [String: JSON] {
        try await shown("subnetpool", id, caller: caller)
    }

    /// Checks a subnet pool create; the insert counts its quota and keeps one default pool per IP version.
    func subnetPoolInsert(_ input: JSONInput, caller: AuthContext) throws -> Insert {
        try Self.allowOnly(input, Self.subnetPoolAttributes)
        let project = try Self.owner(input, caller)
        try authorize("create_subnetpool", caller, target: ["project_id": project, "tenant_id": project], attributes: input)
        let prefixes = try Self.poolPrefixes(input)
        guard let version = prefixes.first?.version else {
            throw Self.badRequest("Invalid input for prefixes. Reason: at least one prefix is required.", code: "InvalidInput")
        }
        let bits = Int64(version == 4 ? 32 : 128)
        let minimum = try input.int("min_prefixlen", in: 0...bits) ?? Int64(prefixes.map(\.prefixLength).min() ?? 0)
        let maximum = try input.int("max_prefixlen", in: 0...bits) ?? bits
        let defaultLength = try input.int("default_prefixlen", in: 0...bits) ?? minimum
        guard minimum <= defaultLength, defaultLength <= maximum else {
            throw Self.badRequest("Illegal prefix bounds: default_prefixlen=\(defaultLength), min_prefixlen=\(minimum), max_prefixlen=\(maximum).", code: "IllegalSubnetPoolPrefixBounds")
        }
        let isDefault = try input.bool("is_default") ?? false
        let tags = try input.stringArray("tags") ?? []
        try Self.validateTags(tags)
        let scope = try input.optionalString("address_scope_id")
        let id = Identifiers.uuid(), now = Self.now()
        return { x in
            if let scope { try await self.checkPoolScope(scope, poolID: id, version: version, prefixes: prefixes, caller: caller, x) }
            try await self.enforceQuota("subnetpool", project: project, x)
            if isDefault, try await x.first("SELECT 1 FROM network_subnetpool WHERE is_default = 1 AND ip_version = ?", .integer(Int64(version))) != nil {
                throw Self.badRequest("Invalid input for operation: A default subnetpool for this IP family has already been set.", code: "InvalidInput")
            }
            try await x.execute("""
                INSERT INTO network_subnetpool (id, project_id, name, description, ip_version, prefixes, default_prefixlen, min_prefixlen,
                    max_prefixlen, shared, is_default, address_scope_id, revision_number, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
                """, [.text(id), .text(project), .text(try input.optionalString("name") ?? ""), .text(try input.optionalString("description") ?? ""),
                      .integer(Int64(version)), Self.encode(.array(prefixes.map { .string($0.description) })), .integer(defaultLength),
                      .integer(minimum), .integer(maximum), .bool(try input.bool("shared") ?? false), .bool(isDefault),
                      scope.map { .text($0) } ?? .null, now, now])
            try await self.setTags(id, tags, x)
            return id
        }
    }

    public func updateSubnetPool(_ id: String, _ body: JSON, caller: AuthContext) async throws -> [String: JSON] {
        let input = try JSONInput(body: body, key: "subnetpool")
        try Self.allowOnly(input, ["name", "description", "prefixes", "default_prefixlen", "min_prefixlen", "max_prefixlen", "is_default", "default_quota", "address_scope_id"])
        try await write { x in
            let pool = try await self.forWrite("subnetpool", id, "update_subnetpool", caller: caller, input: input, x)
            var sets: [(String, SQLValue)] = []
            if let name = try input.optionalString("name") { sets.append(("name", .text(name))) }
            if let description = try input.optionalString("description") { sets.append(("description", .text(description))) }
            if let isDefault = try input.bool("is_default") { sets.append(("is_default", .bool(isDefault))) }
            // Each bound within the pool's IP version (an IPv4 pool's up to 32), and the three
            // still ordered, as on create: a /64 asked of an IPv4 pool made a network with
            // negative host bits when a subnet was carved, which trapped.
            let bits: Int64 = pool.json["ip_version"]?.intValue == 4 ? 32 : 128
            var bounds: [String: Int64] = [:]
            for key in ["default_prefixlen", "min_prefixlen", "max_prefixlen"] {
                bounds[key] = pool.json[key]?.intValue ?? 0
                if let value = try input.int(key, in: 0...bits) {
                    bounds[key] = value
                    sets.append((key, .integer(value)))
                }
            }
            let (defaultLength, minimum, maximum) = (bounds["default_prefixlen"] ?? 0, bounds["min_prefixlen"] ?? 0, bounds["max_prefixlen"] ?? 0)
            guard minimum <= defaultLength, defaultLength <= maximum else {
                throw Self.badRequest("Illegal prefix bounds: default_prefixlen=\(defaultLength), min_prefixlen=\(minimum), max_prefixlen=\(maximum).", code: "IllegalSubnetPoolPrefixBounds")
            }
            if input.has("prefixes") {
                // Prefixes may only grow: every old one must stay covered.
                let new = try Self.poolPrefixes(input)
                let old = (pool.json["prefixes"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap { IPNetwork($0) } }
                for prefix in old where !new.contains(where: { $0.contains(prefix) }) {
                    throw Self.badRequest("Illegal update to prefixes: \(prefix) must remain in the pool.", code: "IllegalSubnetPoolPrefixUpdate")
                }
                sets.append(("prefixes", Self.encode(.array(new.map { .string($0.description) }))))
            }
            if input.has("address_scope_id") || input.has("prefixes"),
               let scope = input.has("address_scope_id") ? try input.optionalString("address_scope_id") : pool.json["address_scope_id"]?.stringValue {
                let prefixes = try input.has("prefixes") ? Self.poolPrefixes(input)
                    : (pool.json["prefixes"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap { IPNetwork($0) } }
                try await self.checkPoolScope(scope, poolID: id, version: Int(pool.json["ip_version"]?.intValue ?? 4), prefixes: prefixes, caller: caller, x)
            }
            if input.has("address_scope_id") { sets.append(("address_scope_id", try input.optionalString("address_scope_id").map { .text($0) } ?? .null)) }
            guard !sets.isEmpty else { return }
            try await x.execute("UPDATE network_subnetpool SET \(sets.map { "\($0.0) = ?" }.joined(separator: ", ")) WHERE id = ?", sets.map(\.1) + [.text(id)])
            try await self.touch("network_subnetpool", id, x)
        }
        return try await subnetPool(id, caller: caller)
    }

    public func deleteSubnetPool(_ id: String, caller: AuthContext) async throws {
        try await write { x in
            _ = try await self.forWrite("subnetpool", id, "delete_subnetpool", caller: caller, x)
            if try await x.first("SELECT 1 FROM network_subnet WHERE subnetpool_id = ?", .text(id)) != nil {
                throw Self.conflict("Unable to complete operation on subnet pool \(id). Subnets are allocated from it.", code: "SubnetPoolInUse")
            }
            try await x.execute("DELETE FROM network_tag WHERE resource_id = ?", .text(id))
            try await x.execute("DELETE FROM network_subnetpool WHERE id = ?", .text(id))
        }
    }

    static func poolPrefixes(_ input: JSONInput) throws -> [IPNetwork] {
        let prefixes = try (input.stringArray("prefixes") ?? []).map { text in
            guard let prefix = IPNetwork(text) else { throw badRequest("Invalid input for prefixes. Reason: '\(text)' is not a valid IP subnet.", code: "InvalidInput") }
            return prefix
        }
        if Set(prefixes.map(\.version)).count > 1 { throw badRequest("Illegal subnetpool: prefixes must all be of one IP version.", code: "InvalidInput") }
        return prefixes.sorted { $0.first < $1.first }
    }

    /// A prefix for a new subnet from a pool: `cidr` when it lies in the pool and is free, else
    /// the lowest free block of `prefixLength` (the pool's default). The pool's row is locked
    /// first, so concurrent carvings from one pool take turns and never overlap.
    func allocatePrefix(_ poolID: String, cidr: IPNetwork?, prefixLength: Int64?, caller: AuthContext, _ x: any SQLExecutor) async throws -> IPNetwork {
        guard let pool = try await subnetPools(where: "WHERE id = ?\(x.dialect.forUpdate)", [.text(poolID)], x).first,
              visible("subnetpool", pool.json, target: pool.target, caller: caller) != nil else { throw Self.notFound("subnetpool", poolID) }
        let prefixes = (pool.json["prefixes"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap { IPNetwork($0) } }
        let minimum = pool.json["min_prefixlen"]?.intValue ?? 0, maximum = pool.json["max_prefixlen"]?.intValue ?? 128
        let length = Int64(cidr?.prefixLength ?? Int(prefixLength ?? pool.json["default_prefixlen"]?.intValue ?? 0))
        guard (minimum...maximum).contains(length) else {
            throw Self.badRequest("Unable to allocate subnet with prefix length \(length), minimum allowed prefix is \(minimum), maximum is \(maximum).", code: "IllegalSubnetPoolPrefixBounds")
        }
        let taken = try await x.query("SELECT cidr FROM network_subnet WHERE subnetpool_id = ?", .text(poolID)).compactMap { IPNetwork($0.string("cidr")) }
        if let cidr {
            guard prefixes.contains(where: { $0.contains(cidr) }), !taken.contains(where: { $0.overlaps(cidr) }) else {
                throw Self.conflict("Unable to allocate subnet \(cidr) from subnet pool \(poolID): it is outside the pool or in use.", code: "SubnetAllocationError")
            }
            return cidr
        }
        // A length past the prefix's address size (a pool whose bounds predate their check
        // on update) has no block to carve: `IPNetwork` would get negative host bits.
        for prefix in prefixes where Int64(prefix.prefixLength) <= length && length <= Int64(prefix.address.bits) {
            var candidate = IPNetwork(address: prefix.first, prefixLength: Int(length))
            while prefix.contains(candidate) {
                guard let clash = taken.first(where: { $0.overlaps(candidate) }) else { return candidate }
                // Jump past the clashing subnet, to the next block boundary.
                let next = max(candidate.last.value, clash.last.value)
                guard next < prefix.last.value else { break }
                candidate = IPNetwork(address: IPAddress(version: prefix.version, value: next + 1), prefixLength: Int(length))
                if candidate.first.value <= next { candidate = IPNetwork(address: candidate.first.advanced(by: candidate.size), prefixLength: Int(length)) }
            }
        }
        throw Self.conflict("Insufficient prefix space to allocate subnet size /\(length).", code: "SubnetAllocationError")
    }
}
