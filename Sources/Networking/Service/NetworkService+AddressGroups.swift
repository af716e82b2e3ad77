import Foundation
import HostAPI
import NimbusCore
import NimbusStore

/// Address groups (`/v2.0/address-groups`): a project's named sets of CIDRs, changed whole or
/// address by address (`add_addresses`, `remove_addresses`). Addresses are kept as Neutron
/// keeps them: a bare address as its /32 or /128, host bits cleared, each once. A security
/// group rule may take a group as its remote side; the dataplane then matches its CIDRs.
extension NetworkService {
    static func addressGroupNotFound(_ id: String) -> APIError {
        APIError(.notFound, "Address group \(id) could not be found.", code: "AddressGroupNotFound")
    }

    func addressGroups(where clause: String = "", _ binds: [SQLValue] = [], _ x: any SQLExecutor) async throws -> [Rendered] {
        try await x.query("SELECT * FROM network_address_group \(clause)", binds).map { row in
            var json = Self.standard(row, tags: [])
            json["tags"] = nil
            json["addresses"] = Self.decode(row, "addresses")
            return Rendered(json: json, target: ["project_id": row.string("project_id"), "tenant_id": row.string("project_id")])
        }
    }

    func visibleAddressGroup(_ id: String, caller: AuthContext, _ x: any SQLExecutor) async throws -> Rendered {
        guard let group = try await addressGroups(where: "WHERE id = ?\(x.dialect.forUpdate)", [.text(id)], x).first,
              visible("address_group", group.json, target: group.target, caller: caller) != nil else {
            throw Self.addressGroupNotFound(id)
        }
        return group
    }

    static func addresses(_ input: JSONInput) throws -> [String] {
        try (input.stringArray("addresses") ?? []).map { text in
            guard let network = IPNetwork(text) else {
                throw badRequest("Invalid input for addresses. Reason: '\(text)' is not a valid IP subnet.", code: "InvalidInput")
            }
            return network.description
        }
    }

    static func storedAddresses(_ addresses: [String]) -> SQLValue { encode(.array(Set(addresses).sorted().map { .string($0) })) }

    public func listAddressGroups(caller: AuthContext) async throws -> [[String: JSON]] {
        try await addressGroups(where: "ORDER BY created_at, id", [], db).compactMap { visible("address_group", $0.json, target: $0.target, caller: caller) }
    }

    public func addressGroup(_ id: String, caller: AuthContext) async throws -> [String: JSON] {
        try await visibleAddressGroup(id, caller: caller, db).json
    }

    public func createAddressGroup(_ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try Self.allowOnly(input, ["name", "description", "addresses", "project_id", "tenant_id"])
        let project = try Self.owner(input, caller)
        try authorize("create_address_group", caller, target: ["project_id": project, "tenant_id": project])
        let addresses = try Self.addresses(input)
        let id = Identifiers.uuid(), now = Self.now()
        try await db.execute("""
            INSERT INTO network_address_group (id, project_id, name, description, addresses, revision_number, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, 0, ?, ?)
            """, .text(id), .text(project), .text(try input.optionalString("name") ?? ""), .text(try input.optionalString("description") ?? ""),
            Self.storedAddresses(addresses), now, now)
        return try await addressGroup(id, caller: caller)
    }

    public func updateAddressGroup(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try Self.allowOnly(input, ["name", "description"])
        try await write { x in
            let group = try await self.visibleAddressGroup(id, caller: caller, x)
            try self.authorize("update_address_group", caller, target: group.target)
            if let name = try input.optionalString("name") { try await x.execute("UPDATE network_address_group SET name = ? WHERE id = ?", .text(name), .text(id)) }
            if let description = try input.optionalString("description") {
                try await x.execute("UPDATE network_address_group SET description = ? WHERE id = ?", .text(description), .text(id))
            }
            try await self.touch("network_address_group", id, x)
        }
        return try await addressGroup(id, caller: caller)
    }

    public func deleteAddressGroup(_ id: String, caller: AuthContext) async throws {
        try await write { x in
            let group = try await self.visibleAddressGroup(id, caller: caller, x)
            try self.authorize("delete_address_group", caller, target: group.target)
            if try await x.first("SELECT 1 FROM network_security_group_rule WHERE remote_address_group_id = ?", .text(id)) != nil {
                throw Self.conflict("Address group \(id) is in use on one or more security group rules.", code: "AddressGroupInUse")
            }
            try await x.execute("DELETE FROM network_address_group WHERE id = ?", .text(id))
        }
    }

    /// `add_addresses` (400 `AddressesAlreadyExist` for one the group holds) or
    /// `remove_addresses` (404 `AddressesNotFound` for one it does not).
    public func changeAddressGroupAddresses(_ id: String, adding: Bool, _ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        let asked = try Self.addresses(input)
        try await write { x in
            let group = try await self.visibleAddressGroup(id, caller: caller, x)
            try self.authorize("update_address_group", caller, target: group.target)
            let current = (group.json["addresses"]?.arrayValue ?? []).compactMap(\.stringValue)
            let new: [String]
            if adding {
                let present = asked.filter(current.contains)
                guard present.isEmpty else {
                    throw Self.badRequest("Addresses \(present) already exist in the address group \(id).", code: "AddressesAlreadyExist")
                }
                new = current + asked
            } else {
                let missing = asked.filter { !current.contains($0) }
                guard missing.isEmpty else {
                    throw APIError(.notFound, "Addresses \(missing) not found in the address group \(id).", code: "AddressesNotFound")
                }
                new = current.filter { !asked.contains($0) }
            }
            try await x.execute("UPDATE network_address_group SET addresses = ? WHERE id = ?", Self.storedAddresses(new), .text(id))
            try await self.touch("network_address_group", id, x)
        }
        return try await addressGroup(id, caller: caller)
    }
}

extension NetworkService {
    /// Each address group's CIDRs.
    func addressGroupCIDRs(_ ids: Set<String>) async throws -> [String: [String]] {
        guard !ids.isEmpty else { return [:] }
        let sorted = ids.sorted()
        var out: [String: [String]] = [:]
        for row in try await db.query("SELECT id, addresses FROM network_address_group WHERE id IN (\(sorted.map { _ in "?" }.joined(separator: ", ")))",
                                      sorted.map { .text($0) }) {
            out[row.string("id")] = (Self.decode(row, "addresses").arrayValue ?? []).compactMap(\.stringValue)
        }
        return out
    }

    /// A rule whose remote side is an address group, as the dataplane matches it: one rule per
    /// CIDR of the rule's family (ids `<rule>-<n>`), none when the group holds none. Other
    /// rules (`cidrs` nil) pass through.
    static func expandingAddressGroup(_ rule: HostNetworkState.Rule, _ cidrs: [String]?) -> [HostNetworkState.Rule] {
        guard let cidrs else { return [rule] }
        let version = rule.ethertype == "IPv6" ? 6 : 4
        return cidrs.filter { IPNetwork($0)?.version == version }.enumerated().map { index, cidr in
            var one = rule
            one.id = "\(rule.id)-\(index)"
            one.remoteIPPrefix = cidr
            return one
        }
    }
}
