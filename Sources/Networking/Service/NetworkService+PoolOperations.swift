import Foundation
import NimbusCore
import NimbusStore

extension NetworkService {
    // MARK: Floating IP pools

    /// `/v2.0/floatingip_pools`: each IPv4 subnet of an external network the caller can see,
    /// where their floating IPs come from.
    public func floatingIPPools(caller: AuthContext) async throws -> [[String: JSON]] {
        try authorize("get_floatingip_pool", caller)
        return try await subnets(where: "WHERE n.external = 1 AND s.ip_version = 4 ORDER BY s.created_at, s.id", [], db).compactMap { subnet in
            guard visible("subnet", subnet.json, target: subnet.target, caller: caller) != nil else { return nil }
            return ["subnet_id": subnet.json["id"] ?? .null, "subnet_name": subnet.json["name"] ?? "", "network_id": subnet.json["network_id"] ?? .null,
                    "cidr": subnet.json["cidr"] ?? .null, "project_id": subnet.json["project_id"] ?? .null, "tenant_id": subnet.json["project_id"] ?? .null]
        }
    }

    // MARK: Subnet pool prefix operations

    /// `add_prefixes`: the pool's prefixes and these, merged; the pool's rules (one IP
    /// version, its address scope's distinct prefixes) apply as on update.
    public func addSubnetPoolPrefixes(_ id: String, _ body: JSON, caller: AuthContext) async throws -> [String: JSON] {
        let added = try Self.poolPrefixes(JSONInput(body.objectValue ?? [:], path: ""))
        return try await changePoolPrefixes(id, caller: caller) { current in
            Self.merged(current + added)
        }
    }

    /// `remove_prefixes`: the pool without these; a prefix a subnet was carved from stays (409).
    public func removeSubnetPoolPrefixes(_ id: String, _ body: JSON, caller: AuthContext) async throws -> [String: JSON] {
        let removed = try Self.poolPrefixes(JSONInput(body.objectValue ?? [:], path: ""))
        return try await changePoolPrefixes(id, caller: caller) { current in current.filter { !removed.contains($0) } }
    }

    func changePoolPrefixes(_ id: String, caller: AuthContext, _ change: @escaping @Sendable ([IPNetwork]) throws -> [IPNetwork]) async throws -> [String: JSON] {
        try await write { x in
            let pool = try await self.forWrite("subnetpool", id, "update_subnetpool", caller: caller, x)
            let current = (pool.json["prefixes"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap { IPNetwork($0) } }
            let version = Int(pool.json["ip_version"]?.intValue ?? 4)
            let new = try change(current)
            if let wrong = new.first(where: { $0.version != version }) {
                throw Self.badRequest("Illegal subnetpool: prefix \(wrong) is not of the pool's IP version \(version).", code: "InvalidInput")
            }
            guard !new.isEmpty else { throw Self.badRequest("Invalid input for prefixes. Reason: at least one prefix is required.", code: "InvalidInput") }
            for row in try await x.query("SELECT cidr FROM network_subnet WHERE subnetpool_id = ?", .text(id)) {
                guard let cidr = IPNetwork(row.string("cidr")), !new.contains(where: { $0.contains(cidr) }) else { continue }
                throw Self.conflict("Unable to complete operation on subnet pool \(id): subnet \(cidr) is allocated from a prefix being removed.",
                                    code: "SubnetPoolInUse")
            }
            if let scope = pool.json["address_scope_id"]?.stringValue {
                try await self.checkPoolScope(scope, poolID: id, version: version, prefixes: new, caller: caller, x)
            }
            try await x.execute("UPDATE network_subnetpool SET prefixes = ? WHERE id = ?",
                                Self.encode(.array(new.sorted { $0.first < $1.first }.map { .string($0.description) })), .text(id))
            try await self.touch("network_subnetpool", id, x)
        }
        return ["prefixes": try await subnetPool(id, caller: caller)["prefixes"] ?? []]
    }

    /// Prefixes with those another one contains dropped.
    static func merged(_ prefixes: [IPNetwork]) -> [IPNetwork] {
        let unique = Array(Set(prefixes))
        return unique.filter { prefix in !unique.contains { $0 != prefix && $0.contains(prefix) } }.sorted { $0.first < $1.first }
    }
}
