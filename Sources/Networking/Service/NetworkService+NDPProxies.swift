import Foundation
import NimbusCore
import NimbusStore

/// NDP proxies (`l3-ndp-proxy`, `router-extend-ndp-proxy`): a router whose `enable_ndp_proxy`
/// is on answers, on its first gateway, neighbour solicitations for an IPv6 address of a port
/// behind it, so the outside can reach that address without a route to its subnet. Checked
/// as Neutron checks them: the router's gateway network must have an IPv6 subnet and an IPv6
/// address scope, the port an IPv6 address on a subnet of the router's, in the same scope.
extension NetworkService {
    static func ndpProxyNotFound(_ id: String) -> APIError {
        APIError(.notFound, "NDP proxy \(id) could not be found.", code: "NDPProxyNotFound")
    }

    static func gatewayNotValid(_ router: String, _ reason: String) -> APIError {
        conflict("Can not enable ndp proxy no router \(router), \(reason).", code: "RouterGatewayNotValid")
    }

    func ndpProxies(where clause: String, _ binds: [SQLValue], _ x: any SQLExecutor) async throws -> [Rendered] {
        try await x.query("SELECT * FROM network_ndp_proxy \(clause)", binds).map { row in
            var json = Self.standard(row, tags: [])
            json["tags"] = nil
            json["router_id"] = .string(row.string("router_id"))
            json["port_id"] = .string(row.string("port_id"))
            json["ip_address"] = .string(row.string("ip_address"))
            let project = row.string("project_id")
            return Rendered(json: json, target: ["project_id": project, "tenant_id": project])
        }
    }

    public func listNDPProxies(caller: AuthContext) async throws -> [[String: JSON]] {
        try await ndpProxies(where: "ORDER BY created_at, id", [], db).compactMap { visible("ndp_proxy", $0.json, target: $0.target, caller: caller) }
    }

    func storedNDPProxy(_ id: String, caller: AuthContext, _ x: any SQLExecutor) async throws -> Rendered {
        guard let found = try await ndpProxies(where: "WHERE id = ?", [.text(id)], x).first,
              visible("ndp_proxy", found.json, target: found.target, caller: caller) != nil else { throw Self.ndpProxyNotFound(id) }
        return found
    }

    public func ndpProxy(_ id: String, caller: AuthContext) async throws -> [String: JSON] {
        let found = try await storedNDPProxy(id, caller: caller, db)
        return visible("ndp_proxy", found.json, target: found.target, caller: caller) ?? [:]
    }

    public func createNDPProxy(_ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try Self.allowOnly(input, ["name", "description", "router_id", "port_id", "ip_address", "project_id", "tenant_id"])
        let project = try Self.owner(input, caller)
        try authorize("create_ndp_proxy", caller, target: ["project_id": project, "tenant_id": project])
        guard let routerID = try input.string("router_id"), let portID = try input.string("port_id") else {
            throw Self.badRequest("Failed to parse request. Required attributes 'router_id' and 'port_id' must be specified", code: "BadRequest")
        }
        let asked: IPAddress?
        if let text = try input.string("ip_address") {
            guard let address = IPAddress(text) else {
                throw Self.badRequest("Invalid input for ip_address. Reason: '\(text)' is not a valid IP address.", code: "InvalidInput")
            }
            asked = address
        } else {
            asked = nil
        }
        let name = try input.optionalString("name") ?? "", description = try input.optionalString("description") ?? ""
        let id = Identifiers.uuid()
        try await write { x in
            let router = try await self.stored("router", routerID, x)
            guard self.visible("router", router.json, target: router.target, caller: caller) != nil else { throw Self.notFound("router", routerID) }
            let port = try await self.stored("port", portID, x)
            guard self.visible("port", port.json, target: port.target, caller: caller) != nil else { throw Self.notFound("port", portID) }
            let network = port.json["network_id"]?.stringValue ?? ""
            let unreachable = Self.conflict("The port \(portID) cannot reach the router \(routerID) by IPv6 subnet.", code: "PortUnreachableRouter")
            // The router's own ports on the port's network, and their IPv6 subnets.
            let routerSubnets = Set(try await x.query("""
                SELECT a.subnet_id, a.ip_address FROM network_port p JOIN network_ip_allocation a ON a.port_id = p.id
                WHERE p.device_id = ? AND p.network_id = ?
                """, .text(routerID), .text(network)).filter { IPAddress($0.string("ip_address"))?.version == 6 }.map { $0.string("subnet_id") })
            guard try await x.first("SELECT 1 FROM network_port WHERE device_id = ? AND network_id = ?", .text(routerID), .text(network)) != nil else {
                throw unreachable
            }
            guard router.json["enable_ndp_proxy"]?.boolValue == true else {
                throw Self.conflict("The enable_ndp_proxy parameter of router \(routerID) must be set as True while create ndp proxy entry on it.",
                                    code: "RouterNDPProxyNotEnable")
            }
            let portV6 = (port.json["fixed_ips"]?.arrayValue ?? []).compactMap { entry -> (subnet: String, address: IPAddress)? in
                guard let address = entry["ip_address"]?.stringValue.flatMap(IPAddress.init), address.version == 6,
                      let subnet = entry["subnet_id"]?.stringValue else { return nil }
                return (subnet, address)
            }
            guard !portV6.isEmpty else {
                throw Self.badRequest("Bad ndp_proxy request: Requested port \(portID) must allocate one IPv6 address at least.", code: "BadRequest")
            }
            let address: IPAddress
            if let asked {
                guard let own = portV6.first(where: { $0.address == asked }) else {
                    throw Self.badRequest("The address \(asked) is invalid, reason: This address not belong to the port \(portID).", code: "InvalidAddress")
                }
                guard routerSubnets.contains(own.subnet) else {
                    throw Self.badRequest("The address \(asked) is invalid, reason: This address cannot reach the router \(routerID).", code: "InvalidAddress")
                }
                address = asked
            } else {
                guard let reachable = portV6.first(where: { routerSubnets.contains($0.subnet) }) else { throw unreachable }
                address = reachable.address
            }
            // Routed without translation, the inside and the outside must share an address scope.
            let external = router.json["external_gateway_info"]?["network_id"]?.stringValue ?? ""
            let scopes = try await self.networkAddressScopes([external, network], x)
            let outside = scopes[external]?[6], inside = scopes[network]?[6]
            if outside != inside {
                throw Self.conflict("The IPv6 address scope \(outside ?? "None") of external network conflict with internal network's IPv6 address scope \(inside ?? "None").",
                                    code: "AddressScopeConflict")
            }
            let now = Self.now()
            try await x.execute("""
                INSERT INTO network_ndp_proxy (id, project_id, name, description, router_id, port_id, ip_address, revision_number, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
                """, .text(id), .text(project), .text(name), .text(description), .text(routerID), .text(portID), .text(address.description), now, now)
        }
        return try await ndpProxy(id, caller: caller)
    }

    public func updateNDPProxy(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try Self.allowOnly(input, ["name", "description"])
        try await write { x in
            let found = try await self.storedNDPProxy(id, caller: caller, x)
            try self.authorize("update_ndp_proxy", caller, target: found.target)
            if let name = try input.optionalString("name") { try await x.execute("UPDATE network_ndp_proxy SET name = ? WHERE id = ?", .text(name), .text(id)) }
            if let description = try input.optionalString("description") {
                try await x.execute("UPDATE network_ndp_proxy SET description = ? WHERE id = ?", .text(description), .text(id))
            }
            try await self.touch("network_ndp_proxy", id, x)
        }
        return try await ndpProxy(id, caller: caller)
    }

    public func deleteNDPProxy(_ id: String, caller: AuthContext) async throws {
        try await write { x in
            let found = try await self.storedNDPProxy(id, caller: caller, x)
            try self.authorize("delete_ndp_proxy", caller, target: found.target)
            try await x.execute("DELETE FROM network_ndp_proxy WHERE id = ?", .text(id))
        }
    }

    // MARK: The router's switch

    /// Whether the router's first gateway can carry NDP proxies: its port has an IPv6 address
    /// and its network an IPv6 subnet and an IPv6 address scope.
    func gatewaySupportsNDPProxy(_ router: String, _ x: any SQLExecutor) async throws -> Bool {
        guard let row = try await x.first("SELECT gateway_port_id, gateway_network_id FROM network_router WHERE id = ?", .text(router)),
              let port = row.optionalString("gateway_port_id"), let network = row.optionalString("gateway_network_id") else { return false }
        let addresses = try await x.query("SELECT ip_address FROM network_ip_allocation WHERE port_id = ?", .text(port))
        guard addresses.contains(where: { IPAddress($0.string("ip_address"))?.version == 6 }) else { return false }
        return try await networkAddressScopes([network], x)[network]?[6] != nil
    }

    /// Sets the router's `enable_ndp_proxy` after its gateway changed: on only with a gateway
    /// that can carry it (409 `RouterGatewayNotValid` when asked otherwise). Not asked, it
    /// stays as it was while the gateway can still carry it, and is off otherwise (Neutron's
    /// `enable_ndp_proxy_by_default` is false).
    func setNDPProxyState(_ router: String, _ asked: Bool?, _ x: any SQLExecutor) async throws {
        let supported = try await gatewaySupportsNDPProxy(router, x)
        if asked == true && !supported {
            throw Self.gatewayNotValid(router, "The router has no external gateway or the external gateway port has no IPv6 address or IPv6 address scope")
        }
        if let asked {
            try await x.execute("UPDATE network_router SET enable_ndp_proxy = ? WHERE id = ?", .bool(asked), .text(router))
        } else if !supported {
            try await x.execute("UPDATE network_router SET enable_ndp_proxy = 0 WHERE id = ?", .text(router))
        }
    }
}
