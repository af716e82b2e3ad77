import Foundation
import NimbusCore
import NimbusStore

/// Floating IP port forwardings (`floating-ip-port-forwarding`): traffic to one protocol and
/// port of a floating IP goes to a port and address of a project port, through the router
/// that joins that address's subnet to the floating IP's network. A floating IP is either
/// NATed whole to one port (`port_id`) or forwards ports, never both.
extension NetworkService {
    static let portForwardingAttributes: Set<String> = ["internal_port_id", "internal_ip_address", "internal_port", "external_port", "protocol", "description"]
    static let portForwardingProtocols = ["tcp", "udp"]

    static func portForwardingNotFound(_ id: String) -> APIError {
        APIError(.notFound, "Port Forwarding \(id) could not be found.", code: "PortForwardingNotFound")
    }

    static func portForwarding(_ row: Row) -> [String: JSON] {
        ["id": .string(row.string("id")), "internal_port_id": .string(row.string("internal_port_id")),
         "internal_ip_address": .string(row.string("internal_ip_address")), "internal_port": .int(row.int("internal_port")),
         "external_port": .int(row.int("external_port")), "protocol": .string(row.string("protocol")),
         "description": .string(row.string("description"))]
    }

    /// The floating IP as the caller sees it, after checking they may do `action` on its forwardings.
    func portForwardingParent(_ floatingIP: String, _ action: String, caller: AuthContext, _ x: any SQLExecutor) async throws -> Rendered {
        guard let floating = try await floatingIPs(where: "WHERE f.id = ?", [.text(floatingIP)], x).first,
              visible("floatingip", floating.json, target: floating.target, caller: caller) != nil else {
            throw Self.notFound("floatingip", floatingIP)
        }
        try authorize(action, caller, target: floating.target)
        return floating
    }

    public func portForwardings(floatingIP: String, caller: AuthContext) async throws -> [[String: JSON]] {
        _ = try await portForwardingParent(floatingIP, "get_floatingip_port_forwarding", caller: caller, db)
        return try await db.query("SELECT * FROM network_port_forwarding WHERE floatingip_id = ? ORDER BY created_at, id", .text(floatingIP))
            .map(Self.portForwarding)
    }

    public func portForwarding(_ id: String, floatingIP: String, caller: AuthContext) async throws -> [String: JSON] {
        _ = try await portForwardingParent(floatingIP, "get_floatingip_port_forwarding", caller: caller, db)
        guard let row = try await db.first("SELECT * FROM network_port_forwarding WHERE id = ? AND floatingip_id = ?", .text(id), .text(floatingIP)) else {
            throw Self.portForwardingNotFound(id)
        }
        return Self.portForwarding(row)
    }

    public func createPortForwarding(floatingIP: String, _ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try Self.allowOnly(input, Self.portForwardingAttributes)
        let internalPortID = try input.requiredString("internal_port_id")
        let internalPort = try input.int("internal_port", in: 1...65535)
        let externalPort = try input.int("external_port", in: 1...65535)
        guard let internalPort, let externalPort else {
            throw Self.badRequest("Failed to parse request. Required attribute '\(internalPort == nil ? "internal_port" : "external_port")' not specified",
                                  code: "InvalidInput")
        }
        let proto = try Self.portForwardingProtocol(input) ?? "tcp"
        let address = try Self.ipv4(input, "internal_ip_address")
        let description = try input.optionalString("description") ?? ""
        let id = Identifiers.uuid()
        let before = try await write { x in
            let floating = try await self.portForwardingParent(floatingIP, "create_floatingip_port_forwarding", caller: caller, x)
            try await self.lock("network_floatingip", floatingIP, x)
            if let fixedPort = floating.json["port_id"]?.stringValue {
                throw Self.conflict("""
                    Cannot associate floating IP \(floating.json["floating_ip_address"]?.stringValue ?? "") (\(floatingIP)) with port \(internalPortID) \
                    using fixed IP \(address?.description ?? ""), as that floating IP is already associated with port \(fixedPort).
                    """, code: "FloatingIPPortAlreadyAssociated")
            }
            let (chosen, router) = try await self.portForwardingTarget(floating, port: internalPortID, address: address, caller: caller, x)
            try await self.requireFreeForwarding(floatingIP, proto: proto, external: externalPort, port: internalPortID, address: chosen,
                                                 internal: internalPort, except: nil, x)
            try await x.execute("""
                INSERT INTO network_port_forwarding (id, floatingip_id, internal_port_id, internal_ip_address, internal_port, external_port,
                    protocol, description, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [.text(id), .text(floatingIP), .text(internalPortID), .text(chosen), .integer(internalPort), .integer(externalPort),
                      .text(proto), .text(description), Self.now()])
            // The floating IP now reaches the outside through that router, as for a whole-address NAT.
            try await x.execute("UPDATE network_floatingip SET router_id = ?, status = 'ACTIVE' WHERE id = ?", .text(router), .text(floatingIP))
            try await self.touch("network_floatingip", floatingIP, x)
            return floating.json
        }
        await notifier.floatingIPsChanged([before, try await stored("floatingip", floatingIP, db).json])
        return try await portForwarding(id, floatingIP: floatingIP, caller: caller)
    }

    public func updatePortForwarding(_ id: String, floatingIP: String, _ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try Self.allowOnly(input, Self.portForwardingAttributes)
        let internalPort = try input.int("internal_port", in: 1...65535)
        let externalPort = try input.int("external_port", in: 1...65535)
        let proto = try Self.portForwardingProtocol(input)
        let address = try Self.ipv4(input, "internal_ip_address")
        let description = try input.optionalString("description")
        let askedPort = try input.string("internal_port_id")
        let before = try await write { x in
            let floating = try await self.portForwardingParent(floatingIP, "update_floatingip_port_forwarding", caller: caller, x)
            guard let row = try await x.first("SELECT * FROM network_port_forwarding WHERE id = ? AND floatingip_id = ?", .text(id), .text(floatingIP)) else {
                throw Self.portForwardingNotFound(id)
            }
            let port = askedPort ?? row.string("internal_port_id")
            var chosen = row.string("internal_ip_address")
            if askedPort != nil || address != nil {
                let (ip, router) = try await self.portForwardingTarget(floating, port: port, address: address, caller: caller, x)
                if let current = floating.json["router_id"]?.stringValue, current != router {
                    throw Self.badRequest("The Floating IP \(floatingIP) had been set on router \(current), the internal Neutron port \(port) can not reach it",
                                          code: "BadRequest")
                }
                chosen = ip
            }
            let values = (proto: proto ?? row.string("protocol"), external: externalPort ?? row.int("external_port"),
                          internal: internalPort ?? row.int("internal_port"))
            try await self.requireFreeForwarding(floatingIP, proto: values.proto, external: values.external, port: port, address: chosen,
                                                 internal: values.internal, except: id, x)
            try await x.execute("""
                UPDATE network_port_forwarding SET internal_port_id = ?, internal_ip_address = ?, internal_port = ?, external_port = ?,
                    protocol = ?, description = ? WHERE id = ?
                """, [.text(port), .text(chosen), .integer(values.internal), .integer(values.external), .text(values.proto),
                      .text(description ?? row.string("description")), .text(id)])
            try await self.touch("network_floatingip", floatingIP, x)
            return floating.json
        }
        await notifier.floatingIPsChanged([before, try await stored("floatingip", floatingIP, db).json])
        return try await portForwarding(id, floatingIP: floatingIP, caller: caller)
    }

    /// Deletes a forwarding; the floating IP's last one going leaves it on no router, as Neutron.
    public func deletePortForwarding(_ id: String, floatingIP: String, caller: AuthContext) async throws {
        let before = try await write { x in
            let floating = try await self.portForwardingParent(floatingIP, "delete_floatingip_port_forwarding", caller: caller, x)
            guard try await x.execute("DELETE FROM network_port_forwarding WHERE id = ? AND floatingip_id = ?", .text(id), .text(floatingIP)) > 0 else {
                throw Self.portForwardingNotFound(id)
            }
            if try await x.first("SELECT 1 FROM network_port_forwarding WHERE floatingip_id = ?", .text(floatingIP)) == nil,
               floating.json["port_id"]?.stringValue == nil {
                try await x.execute("UPDATE network_floatingip SET router_id = NULL, status = 'DOWN' WHERE id = ?", .text(floatingIP))
            }
            try await self.touch("network_floatingip", floatingIP, x)
            return floating.json
        }
        await notifier.floatingIPsChanged([before, try await stored("floatingip", floatingIP, db).json])
    }

    static func portForwardingProtocol(_ input: JSONInput) throws -> String? {
        guard let proto = try input.string("protocol") else { return nil }
        guard portForwardingProtocols.contains(proto) else {
            throw badRequest("Invalid input for protocol. Reason: '\(proto)' is not in \(portForwardingProtocols).", code: "InvalidInput")
        }
        return proto
    }

    /// The internal address (the one asked for, which the port must have, or its first IPv4
    /// one) and the router joining its subnet to the floating IP's network; 400s as Neutron's.
    func portForwardingTarget(_ floating: Rendered, port portID: String, address: IPAddress?, caller: AuthContext,
                              _ x: any SQLExecutor) async throws -> (String, String) {
        let port = try await visiblePort(portID, caller: caller, x)
        let addresses = (port.json["fixed_ips"]?.arrayValue ?? []).compactMap { entry -> (subnet: String, ip: IPAddress)? in
            guard let ip = entry["ip_address"]?.stringValue.flatMap(IPAddress.init), ip.version == 4 else { return nil }
            return (entry["subnet_id"]?.stringValue ?? "", ip)
        }
        guard let first = addresses.first else {
            throw Self.badRequest("Requested internal port \(portID) must allocate an IPv4 address at least.", code: "BadRequest")
        }
        var chosen = first
        if let address {
            guard let match = addresses.first(where: { $0.ip == address }) else {
                throw Self.badRequest("Requested internal IP address \(address) is not suitable for internal neutron port \(portID), as its fixed_ips are \(addresses.map { $0.ip.description }).",
                                      code: "BadRequest")
            }
            chosen = match
        }
        let network = floating.json["floating_network_id"]?.stringValue ?? ""
        guard let router = try await router(joining: chosen.subnet, to: network, x) else {
            throw Self.badRequest("External network \(network) is not reachable from subnet \(chosen.subnet). Cannot set Port forwarding for port \(portID) with Floating IP \(floating.json["id"]?.stringValue ?? "")",
                                  code: "BadRequest")
        }
        if let current = floating.json["router_id"]?.stringValue, current != router {
            throw Self.badRequest("The Floating IP \(floating.json["id"]?.stringValue ?? "") had been set on router \(current), the internal Neutron port \(portID) can not reach it",
                                  code: "BadRequest")
        }
        return (chosen.ip.description, router)
    }

    /// Neutron's keys: an external port and protocol once per floating IP, an internal
    /// address, port and protocol once. A duplicate is Neutron's 400, naming what clashed.
    func requireFreeForwarding(_ floatingIP: String, proto: String, external: Int64, port: String, address: String, internal internalPort: Int64,
                               except id: String?, _ x: any SQLExecutor) async throws {
        if try await x.first("SELECT 1 FROM network_port_forwarding WHERE floatingip_id = ? AND protocol = ? AND external_port = ? AND id <> ?",
                             .text(floatingIP), .text(proto), .integer(external), .text(id ?? "")) != nil {
            throw Self.badRequest("A duplicate port forwarding entry with same attributes already exists, conflicting values are {'floatingip_id': '\(floatingIP)', 'external_port': \(external)}",
                                  code: "BadRequest")
        }
        if try await x.first("""
            SELECT 1 FROM network_port_forwarding WHERE internal_port_id = ? AND internal_ip_address = ? AND protocol = ? AND internal_port = ? AND id <> ?
            """, .text(port), .text(address), .text(proto), .integer(internalPort), .text(id ?? "")) != nil {
            throw Self.badRequest("A duplicate port forwarding entry with same attributes already exists, conflicting values are {'internal_port_id': '\(port)', 'internal_ip_address': '\(address)', 'internal_port': \(internalPort)}",
                                  code: "BadRequest")
        }
    }

    /// A floating IP that forwards ports cannot also be NATed whole to a port (409, as Neutron).
    func refuseAssociationWithPortForwardings(_ floatingIP: String, _ x: any SQLExecutor) async throws {
        if try await x.first("SELECT 1 FROM network_port_forwarding WHERE floatingip_id = ?", .text(floatingIP)) != nil {
            throw Self.conflict("Floating IP \(floatingIP) in use by Port Forwarding resources.", code: "FipInUseByPortForwarding")
        }
    }
}
