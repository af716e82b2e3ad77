import Foundation
import NimbusCore
import NimbusStore

/// Floating IPs: an IPv4 address of an external network, held by a port Neutron owns there
/// (`network:floatingip`), and when associated NATed to a fixed address of a project port
/// through the router that joins that port's subnet to the external network.
extension NetworkService {
    static let floatingIPAttributes: Set<String> = [
        "floating_network_id", "floating_ip_address", "subnet_id", "port_id", "fixed_ip_address", "description", "tags", "project_id", "tenant_id",
        "qos_policy_id",
    ]
    static let floatingIPOwner = "network:floatingip"

    func floatingIPs(where clause: String = "", _ binds: [SQLValue] = [], _ x: any SQLExecutor) async throws -> [Rendered] {
        let rows = try await x.query("""
            SELECT f.*, p.name AS port_name, p.network_id AS port_network_id, p.mac_address AS port_mac, p.admin_state_up AS port_up,
                p.status AS port_status, p.device_id AS port_device_id, p.device_owner AS port_device_owner
            FROM network_floatingip f LEFT JOIN network_port p ON p.id = f.port_id \(clause)
            """, binds)
        let tags = try await tags(rows.map { $0.string("id") }, x)
        let qos = try await qosBindings(.floatingip, rows.map { $0.string("id") }, x)
        return rows.map { row in
            let id = row.string("id"), project = row.string("project_id")
            let port = row.optionalString("port_id")
            let json: [String: JSON] = [
                "qos_policy_id": .optional(qos[id]),
                "id": .string(id), "project_id": .string(project), "tenant_id": .string(project), "description": .string(row.string("description")),
                "floating_network_id": .string(row.string("floating_network_id")), "floating_ip_address": .string(row.string("floating_ip_address")),
                "port_id": .optional(port), "fixed_ip_address": .optional(row.optionalString("fixed_ip_address")),
                "router_id": .optional(row.optionalString("router_id")), "status": .string(row.string("status")),
                "port_details": port == nil ? .null : [
                    "name": .string(row.string("port_name")), "network_id": .string(row.string("port_network_id")),
                    "mac_address": .string(row.string("port_mac")), "admin_state_up": .bool(row.bool("port_up")),
                    "status": .string(row.string("port_status")), "device_id": .string(row.string("port_device_id")),
                    "device_owner": .string(row.string("port_device_owner")),
                ],
                "tags": .array((tags[id] ?? []).map { .string($0) }), "revision_number": .int(row.int("revision_number")),
                "created_at": Self.time(row, "created_at"), "updated_at": Self.time(row, "updated_at"),
            ]
            return Rendered(json: json, target: ["project_id": project, "tenant_id": project])
        }
    }

    public func listFloatingIPs(caller: AuthContext) async throws -> [[String: JSON]] {
        try await floatingIPs(where: "ORDER BY f.created_at, f.id", [], db).compactMap { visible("floatingip", $0.json, target: $0.target, caller: caller) }
    }

    public func floatingIP(_ id: String, caller: AuthContext) async throws -> [String: JSON] {
        try await shown("floatingip", id, caller: caller)
    }

    /// Checks a floating IP create; the insert counts the quota, takes an address of the
    /// external network (the one asked for, or the lowest free IPv4 one) and associates it
    /// when a port is given.
    func floatingIPInsert(_ input: JSONInput, caller: AuthContext) throws -> Insert {
        try Self.allowOnly(input, Self.floatingIPAttributes)
        let project = try Self.owner(input, caller)
        let target = ["project_id": project, "tenant_id": project]
        try authorize("create_floatingip", caller, target: target, attributes: input)
        let networkID = try input.requiredString("floating_network_id")
        let address = try Self.ipv4(input, "floating_ip_address")
        let subnetID = try input.string("subnet_id")
        let portID = try input.string("port_id")
        let fixedIP = try Self.ipv4(input, "fixed_ip_address")
        if fixedIP != nil && portID == nil { throw Self.fixedIPWithoutPort }
        let description = try input.optionalString("description") ?? ""
        let tags = try input.stringArray("tags") ?? []
        try Self.validateTags(tags)
        let id = Identifiers.uuid()
        return { x in
            guard let network = try await x.first("SELECT external FROM network_network WHERE id = ?", .text(networkID)) else {
                throw Self.notFound("network", networkID)
            }
            guard network.bool("external") else {
                throw Self.badRequest("Bad floatingip request: Network \(networkID) is not a valid external network.", code: "BadRequest")
            }
            try await self.enforceQuota("floatingip", project: project, x)
            let asked = address != nil || subnetID != nil ? [FixedIPRequest(subnetID: subnetID, address: address)] : nil
            let port = try await self.insertServicePort(project: "", network: networkID, device: id, owner: Self.floatingIPOwner,
                                                        fixedIPs: asked, versions: [4], x)
            guard let allocated = try await x.first("SELECT ip_address FROM network_ip_allocation WHERE port_id = ?", .text(port))?.string("ip_address"),
                  IPAddress(allocated)?.version == 4 else {
                throw Self.badRequest("Unable to find any IP address on external network \(networkID).", code: "ExternalIpAddressExhausted")
            }
            let now = Self.now()
            try await x.execute("""
                INSERT INTO network_floatingip (id, project_id, description, floating_network_id, floating_port_id, floating_ip_address,
                    port_id, fixed_ip_address, router_id, status, revision_number, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, NULL, 'DOWN', 0, ?, ?)
                """, [.text(id), .text(project), .text(description), .text(networkID), .text(port), .text(allocated), now, now])
            if let portID { try await self.associate(id, port: portID, fixedIP: fixedIP, caller: caller, x) }
            try await self.setTags(id, tags, x)
            try await self.bindQoSPolicy(.floatingip, id, input.fields["qos_policy_id"], caller: caller, x)
            return id
        }
    }

    /// `port_id` associates (or with `null` disassociates); `fixed_ip_address` picks which of
    /// the port's addresses; `description` is just that.
    public func updateFloatingIP(_ id: String, _ body: JSON, caller: AuthContext) async throws -> [String: JSON] {
        let input = try JSONInput(body: body, key: "floatingip")
        try Self.allowOnly(input, ["port_id", "fixed_ip_address", "description", "qos_policy_id"])
        let fixedIP = try Self.ipv4(input, "fixed_ip_address")
        let before = try await write { x in
            let floating = try await self.forWrite("floatingip", id, "update_floatingip", caller: caller, input: input, x)
            try await self.changeFloatingIP(id, floating, input: input, fixedIP: fixedIP, caller: caller, x)
            return floating.json
        }
        let after = try await stored("floatingip", id, db).json
        await notifier.floatingIPsChanged([before, after])
        return try await floatingIP(id, caller: caller)
    }

    func changeFloatingIP(_ id: String, _ floating: Rendered, input: JSONInput, fixedIP: IPAddress?, caller: AuthContext, _ x: any SQLExecutor) async throws {
        if let description = try input.optionalString("description") {
            try await x.execute("UPDATE network_floatingip SET description = ? WHERE id = ?", .text(description), .text(id))
        }
        try await bindQoSPolicy(.floatingip, id, input.fields["qos_policy_id"], caller: caller, x)
        let port = input.has("port_id") ? try input.string("port_id") : floating.json["port_id"]?.stringValue
        if input.has("port_id") || fixedIP != nil {
            guard let port else {
                if fixedIP != nil { throw Self.fixedIPWithoutPort }
                try await disassociate(where: "id", id, x)
                return
            }
            try await associate(id, port: port, fixedIP: fixedIP, caller: caller, x)
        }
        try await touch("network_floatingip", id, x)
    }

    /// Deletes the floating IP and the port that held its address.
    public func deleteFloatingIP(_ id: String, caller: AuthContext) async throws {
        let deleted = try await write { x in
            let floating = try await self.forWrite("floatingip", id, "delete_floatingip", caller: caller, x)
            try await self.removeFloatingIPs(where: "id = ?", .text(id), x)
            return floating.json
        }
        await notifier.floatingIPsChanged([deleted])
    }

    /// The floating addresses NATed to `port`, by fixed address: what Nova's `addresses` adds.
    public func floatingAddresses(port: String) async throws -> [String: String] {
        var out: [String: String] = [:]
        for row in try await db.query("SELECT fixed_ip_address, floating_ip_address FROM network_floatingip WHERE port_id = ?", .text(port)) {
            if let fixed = row.optionalString("fixed_ip_address") { out[fixed] = row.string("floating_ip_address") }
        }
        return out
    }

    /// Deletes the floating IPs `condition` picks, with their tags and their external ports.
    func removeFloatingIPs(where condition: String, _ value: SQLValue, _ x: any SQLExecutor) async throws {
        for row in try await x.query("SELECT id, floating_port_id FROM network_floatingip WHERE \(condition)", value) {
            try await x.execute("DELETE FROM network_tag WHERE resource_id = ?", .text(row.string("id")))
            try await x.execute("DELETE FROM network_floatingip WHERE id = ?", .text(row.string("id")))
            try await removePort(row.string("floating_port_id"), x)
        }
    }

    static let fixedIPWithoutPort = badRequest("Bad floatingip request: fixed_ip_address cannot be specified without a port_id.", code: "BadRequest")

    static func ipv4(_ input: JSONInput, _ key: String) throws -> IPAddress? {
        guard let text = try input.string(key) else { return nil }
        guard let address = IPAddress(text), address.version == 4 else {
            throw badRequest("Invalid input for \(key). Reason: '\(text)' is not a valid IPv4 address.", code: "InvalidInput")
        }
        return address
    }

    /// NATs floating IP `id` to `port`'s IPv4 address (`fixedIP`, which the port must have, or
    /// its only one) through a router with a gateway on the floating IP's network and an
    /// interface on that address's subnet. The port must be the floating IP's project's.
    func associate(_ id: String, port portID: String, fixedIP: IPAddress?, caller: AuthContext, _ x: any SQLExecutor) async throws {
        guard let floating = try await floatingIPs(where: "WHERE f.id = ?", [.text(id)], x).first else { throw Self.notFound("floatingip", id) }
        let network = floating.json["floating_network_id"]?.stringValue ?? "", address = floating.json["floating_ip_address"]?.stringValue ?? ""
        guard let port = try await ports(where: "WHERE p.id = ?", [.text(portID)], x).first,
              visible("port", port.json, target: port.target, caller: caller) != nil,
              caller.isAdmin || port.target["project_id"] == floating.target["project_id"] else { throw Self.notFound("port", portID) }
        if let owner = port.json["device_owner"]?.stringValue, owner.hasPrefix("network:") {
            throw Self.badRequest("Bad floatingip request: Port \(portID) has owner \(owner) and cannot have a floating IP.", code: "BadRequest")
        }
        let addresses = (port.json["fixed_ips"]?.arrayValue ?? []).compactMap { entry -> (subnet: String, ip: IPAddress)? in
            guard let ip = entry["ip_address"]?.stringValue.flatMap(IPAddress.init), ip.version == 4 else { return nil }
            return (entry["subnet_id"]?.stringValue ?? "", ip)
        }
        let chosen: (subnet: String, ip: IPAddress)
        if let fixedIP {
            guard let match = addresses.first(where: { $0.ip == fixedIP }) else {
                throw Self.badRequest("Bad floatingip request: Port \(portID) does not have fixed ip \(fixedIP).", code: "BadRequest")
            }
            chosen = match
        } else if addresses.count == 1 {
            chosen = addresses[0]
        } else if addresses.isEmpty {
            throw Self.badRequest("Bad floatingip request: Port \(portID) does not have any IPv4 address.", code: "BadRequest")
        } else {
            throw Self.badRequest("Bad floatingip request: Port \(portID) has multiple fixed IPv4 addresses. Must provide a specific IPv4 address when assigning a floating IP.",
                                  code: "BadRequest")
        }
        try await refuseAssociationWithPortForwardings(id, x)
        guard let router = try await router(joining: chosen.subnet, to: network, x) else {
            throw APIError(.notFound, "External network \(network) is not reachable from subnet \(chosen.subnet).  Therefore, cannot associate Port \(portID) with a Floating IP.",
                           code: "ExternalGatewayForFloatingIPNotFound")
        }
        if let other = try await x.first("""
            SELECT id FROM network_floatingip WHERE port_id = ? AND fixed_ip_address = ? AND floating_network_id = ? AND id <> ?
            """, .text(portID), .text(chosen.ip.description), .text(network), .text(id)) {
            throw Self.conflict("Cannot associate floating IP \(address) (\(id)) with port \(portID) using fixed IP \(chosen.ip), as that fixed IP already has a floating IP on external network \(network): \(other.string("id")).",
                                code: "FloatingIPPortAlreadyAssociated")
        }
        // The L3 agent's part (the NAT rules) follows the row; status says it is in place.
        try await x.execute("UPDATE network_floatingip SET port_id = ?, fixed_ip_address = ?, router_id = ?, status = 'ACTIVE' WHERE id = ?",
                            .text(portID), .text(chosen.ip.description), .text(router), .text(id))
    }

    /// The router (the oldest, when several) with an interface on `subnet` and its gateway on
    /// the external `network`: the one that NATs that subnet's addresses to floating ones.
    func router(joining subnet: String, to network: String, _ x: any SQLExecutor) async throws -> String? {
        try await x.first("""
            SELECT r.id FROM network_router r JOIN network_port p ON p.device_id = r.id AND p.device_owner = ?
                JOIN network_ip_allocation a ON a.port_id = p.id
            WHERE r.gateway_network_id = ? AND a.subnet_id = ? ORDER BY r.created_at, r.id
            """, .text(Self.interfaceOwner), .text(network), .text(subnet))?.string("id")
    }

    /// Unhooks the floating IPs whose `column` (`id`, `port_id`) is `value` from their port,
    /// moving their revision as any change does.
    func disassociate(where column: String, _ value: String, _ x: any SQLExecutor) async throws {
        try await x.execute("""
            UPDATE network_floatingip SET port_id = NULL, fixed_ip_address = NULL, router_id = NULL, status = 'DOWN',
                revision_number = revision_number + 1, updated_at = ? WHERE \(column) = ?
            """, Self.now(), .text(value))
    }

    /// Router and floating IP ports go with their router or floating IP, not through the port
    /// API (409 L3PortInUse), for as long as that router or floating IP exists.
    func refuseL3PortDeletion(_ port: [String: JSON], _ x: any SQLExecutor) async throws {
        let owner = port["device_owner"]?.stringValue ?? "", device = port["device_id"]?.stringValue ?? ""
        let table: String
        switch owner {
        case Self.gatewayOwner, Self.interfaceOwner: table = "network_router"
        case Self.floatingIPOwner: table = "network_floatingip"
        default: return
        }
        if try await x.first("SELECT 1 FROM \(table) WHERE id = ?", .text(device)) != nil {
            throw Self.conflict("Port \(port["id"]?.stringValue ?? "") has owner \(owner) and therefore cannot be deleted directly via the port API.", code: "L3PortInUse")
        }
    }
}
