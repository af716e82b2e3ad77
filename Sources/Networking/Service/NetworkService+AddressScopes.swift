import Foundation
import NimbusCore
import NimbusStore

/// Address scopes (`/v2.0/address-scopes`): a set of subnet pools whose prefixes never overlap,
/// so addresses from them are unique across the scope. A network shows the scopes of its
/// subnets' pools as `ipv4_address_scope`/`ipv6_address_scope`.
extension NetworkService {
    static func addressScopeNotFound(_ id: String) -> APIError {
        APIError(.notFound, "Address scope \(id) could not be found.", code: "AddressScopeNotFound")
    }

    func addressScopes(where clause: String = "", _ binds: [SQLValue] = [], _ x: any SQLExecutor) async throws -> [Rendered] {
        try await x.query("SELECT * FROM network_address_scope \(clause)", binds).map { row in
            Rendered(json: ["id": .string(row.string("id")), "name": .string(row.string("name")),
                            "project_id": .string(row.string("project_id")), "tenant_id": .string(row.string("project_id")),
                            "ip_version": .int(row.int("ip_version")), "shared": .bool(row.bool("shared"))],
                     target: ["project_id": row.string("project_id"), "tenant_id": row.string("project_id"),
                              "shared": Self.flag(row.bool("shared")), "external": "False"])
        }
    }

    /// The scope as the caller may see it; 404 otherwise.
    func visibleAddressScope(_ id: String, caller: AuthContext, _ x: any SQLExecutor) async throws -> Rendered {
        guard let scope = try await addressScopes(where: "WHERE id = ?\(x.dialect.forUpdate)", [.text(id)], x).first,
              visible("address_scope", scope.json, target: scope.target, caller: caller) != nil else {
            throw Self.addressScopeNotFound(id)
        }
        return scope
    }

    public func listAddressScopes(caller: AuthContext) async throws -> [[String: JSON]] {
        try await addressScopes(where: "ORDER BY name, id", [], db).compactMap { visible("address_scope", $0.json, target: $0.target, caller: caller) }
    }

    public func addressScope(_ id: String, caller: AuthContext) async throws -> [String: JSON] {
        try await visibleAddressScope(id, caller: caller, db).json
    }

    public func createAddressScope(_ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try Self.allowOnly(input, ["name", "ip_version", "shared", "project_id", "tenant_id"])
        let project = try Self.owner(input, caller)
        try authorize("create_address_scope", caller, target: ["project_id": project, "tenant_id": project], attributes: input)
        let version: Int64
        switch input.fields["ip_version"] {
        case .int(let v)? where v == 4 || v == 6: version = v
        case .string(let text)? where text == "4" || text == "6": version = Int64(text) ?? 4
        case let other?: throw Self.badRequest("Invalid input for ip_version. Reason: \(other.serialized()) is not in [4, 6].", code: "InvalidInput")
        case nil: throw Self.badRequest("Failed to parse request. Required attribute 'ip_version' not specified", code: "HTTPBadRequest")
        }
        let id = Identifiers.uuid()
        try await db.execute("INSERT INTO network_address_scope (id, project_id, name, ip_version, shared) VALUES (?, ?, ?, ?, ?)",
                             .text(id), .text(project), .text(try input.optionalString("name") ?? ""), .integer(version),
                             .bool(try input.bool("shared") ?? false))
        return try await addressScope(id, caller: caller)
    }

    public func updateAddressScope(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try Self.allowOnly(input, ["name", "shared"])
        try await write { x in
            let scope = try await self.visibleAddressScope(id, caller: caller, x)
            try self.authorize("update_address_scope", caller, target: scope.target, attributes: input)
            if let name = try input.optionalString("name") {
                try await x.execute("UPDATE network_address_scope SET name = ? WHERE id = ?", .text(name), .text(id))
            }
            if let shared = try input.bool("shared") {
                if !shared && scope.json["shared"] == true {
                    throw Self.badRequest("Unable to update address scope \(id) : Shared address scope can't be unshared.", code: "AddressScopeUpdateError")
                }
                try await x.execute("UPDATE network_address_scope SET shared = ? WHERE id = ?", .bool(shared), .text(id))
            }
        }
        return try await addressScope(id, caller: caller)
    }

    public func deleteAddressScope(_ id: String, caller: AuthContext) async throws {
        try await write { x in
            let scope = try await self.visibleAddressScope(id, caller: caller, x)
            try self.authorize("delete_address_scope", caller, target: scope.target)
            if try await x.first("SELECT 1 FROM network_subnetpool WHERE address_scope_id = ?", .text(id)) != nil {
                throw Self.conflict("Unable to complete operation on address scope \(id). There are one or more subnet pools in use on the address scope.",
                                    code: "AddressScopeInUse")
            }
            try await x.execute("DELETE FROM network_address_scope WHERE id = ?", .text(id))
        }
    }

    /// Checks that a pool (`poolID`, of `version`, holding `prefixes`) may join scope `scopeID`:
    /// the caller sees the scope, its IP version is the pool's, and no other pool in it holds
    /// an overlapping prefix. Locks the scope's row, so two pools cannot join at once.
    func checkPoolScope(_ scopeID: String, poolID: String, version: Int, prefixes: [IPNetwork], caller: AuthContext, _ x: any SQLExecutor) async throws {
        let scope = try await visibleAddressScope(scopeID, caller: caller, x)
        guard scope.json["ip_version"]?.intValue == Int64(version) else {
            throw Self.badRequest("Illegal subnetpool association: subnetpool \(poolID) cannot associate with address scope \(scopeID) "
                                  + "because subnetpool ip_version is not \(scope.json["ip_version"]?.intValue ?? 0).",
                                  code: "IllegalSubnetPoolIpVersionAssociationToAddressScope")
        }
        let others = try await x.query("SELECT prefixes FROM network_subnetpool WHERE address_scope_id = ? AND id <> ?", .text(scopeID), .text(poolID))
            .flatMap { (Self.decode($0, "prefixes").arrayValue ?? []).compactMap { $0.stringValue.flatMap { IPNetwork($0) } } }
        if prefixes.contains(where: { prefix in others.contains { $0.overlaps(prefix) } }) {
            throw Self.conflict("Failed to associate address scope: subnetpools within an address scope must have unique prefixes.",
                                code: "AddressScopePrefixConflict")
        }
    }

    /// Each network's address scopes by IP version, through its subnets' pools.
    func networkAddressScopes(_ networkIDs: [String], _ x: any SQLExecutor) async throws -> [String: [Int64: String]] {
        guard !networkIDs.isEmpty else { return [:] }
        var scopes: [String: [Int64: String]] = [:]
        for chunk in stride(from: 0, to: networkIDs.count, by: 500).map({ Array(networkIDs[$0..<min($0 + 500, networkIDs.count)]) }) {
            let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
            for row in try await x.query("""
                SELECT s.network_id, s.ip_version, p.address_scope_id FROM network_subnet s JOIN network_subnetpool p ON p.id = s.subnetpool_id
                WHERE p.address_scope_id IS NOT NULL AND s.network_id IN (\(marks))
                """, chunk.map { .text($0) }) {
                scopes[row.string("network_id"), default: [:]][row.int("ip_version")] = row.string("address_scope_id")
            }
        }
        return scopes
    }
}
