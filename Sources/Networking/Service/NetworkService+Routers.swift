import Foundation
import NimbusCore
import NimbusStore

/// What a request asks of a router's `external_gateway_info`.
enum GatewayChange: Sendable {
    /// The attribute was not in the request.
    case keep
    /// `null` or `{}`: no gateway.
    case clear
    case set(network: String, enableSNAT: Bool?, fixedIPs: [FixedIPRequest]?)
}

/// A static route of a router (`routes`): traffic for `destination` goes to `nexthop`.
struct RouterRoute: Hashable, Sendable {
    var destination: IPNetwork
    var nexthop: IPAddress
    var json: JSON { ["destination": .string(destination.description), "nexthop": .string(nexthop.description)] }
}

/// Routers (Neutron's L3 service plugin): an external gateway with SNAT on or off, interfaces
/// on project subnets, static routes. The gateway and each interface are ports the router
/// owns (`network:router_gateway`, `network:router_interface`, `device_id` the router's id),
/// so their addresses come from IPAM like any port's and show in `port list --router`.
extension NetworkService {
    static let routerAttributes: Set<String> = [
        "name", "description", "admin_state_up", "external_gateway_info", "routes", "distributed", "ha", "tags", "project_id", "tenant_id",
        "enable_ndp_proxy",
    ]
    static let gatewayOwner = "network:router_gateway"
    static let interfaceOwner = "network:router_interface"
    /// Neutron's `max_routes`.
    static let maxRoutes = 30

    func routers(where clause: String = "", _ binds: [SQLValue] = [], _ x: any SQLExecutor) async throws -> [Rendered] {
        let rows = try await x.query("SELECT * FROM network_router \(clause)", binds)
        let tags = try await tags(rows.map { $0.string("id") }, x)
        let qos = try await qosBindings(.router, rows.map { $0.string("id") }, x)
        let filter = clause.isEmpty ? "" : "AND p.device_id IN (SELECT id FROM network_router \(clause))"
        // Each router's gateway ports in the order they were made, with their addresses.
        var gatewayPorts: [String: [(id: String, network: String)]] = [:]
        var gatewayIPs: [String: [JSON]] = [:]
        for row in try await x.query("""
            SELECT p.id, p.device_id, p.network_id, a.subnet_id, a.ip_address FROM network_port p LEFT JOIN network_ip_allocation a ON a.port_id = p.id
            WHERE p.device_owner = '\(Self.gatewayOwner)' \(filter) ORDER BY p.created_at, p.id
            """, binds) {
            let port = row.string("id"), router = row.string("device_id")
            if gatewayPorts[router]?.contains(where: { $0.id == port }) != true { gatewayPorts[router, default: []].append((port, row.string("network_id"))) }
            if let subnet = row.optionalString("subnet_id") {
                gatewayIPs[port, default: []].append(["subnet_id": .string(subnet), "ip_address": .string(row.string("ip_address"))])
            }
        }
        return rows.map { row in
            let id = row.string("id"), project = row.string("project_id")
            var json = Self.standard(row, tags: tags[id] ?? [])
            json["status"] = "ACTIVE"
            json["admin_state_up"] = .bool(row.bool("admin_state_up"))
            let primary = row.optionalString("gateway_port_id")
            json["external_gateway_info"] = row.optionalString("gateway_network_id").map { network in
                ["network_id": .string(network), "enable_snat": .bool(row.bool("enable_snat")),
                 "external_fixed_ips": .array(primary.flatMap { gatewayIPs[$0] } ?? []), "qos_policy_id": .optional(qos[id])]
            } ?? .null
            // Neutron's `external_gateways`: the first gateway first, then the others as made.
            let ports = gatewayPorts[id] ?? []
            json["external_gateways"] = .array((ports.filter { $0.id == primary } + ports.filter { $0.id != primary }).map { port in
                ["network_id": .string(port.network), "external_fixed_ips": .array(gatewayIPs[port.id] ?? [])]
            })
            // Without a gateway there is nothing to proxy for, whatever was asked.
            json["enable_ndp_proxy"] = .bool(primary != nil && row.bool("enable_ndp_proxy"))
            json["routes"] = Self.decode(row, "routes")
            json["distributed"] = .bool(row.bool("distributed"))
            json["ha"] = .bool(row.bool("ha"))
            return Rendered(json: json, target: ["project_id": project, "tenant_id": project])
        }
    }

    public func listRouters(caller: AuthContext) async throws -> [[String: JSON]] {
        try await routers(where: "ORDER BY created_at, id", [], db).compactMap { visible("router", $0.json, target: $0.target, caller: caller) }
    }

    public func router(_ id: String, caller: AuthContext) async throws -> [String: JSON] {
        try await shown("router", id, caller: caller)
    }

    /// Checks a router create; the insert counts the router quota and makes the gateway port.
    func routerInsert(_ input: JSONInput, caller: AuthContext) throws -> Insert {
        try Self.allowOnly(input, Self.routerAttributes)
        let project = try Self.owner(input, caller)
        let target = ["project_id": project, "tenant_id": project]
        try authorize("create_router", caller, target: target, attributes: input)
        let gateway = try Self.gatewayChange(input)
        try authorizeGateway("create_router", gateway, caller, target: target)
        let routes = try Self.routes(input) ?? []
        let tags = try input.stringArray("tags") ?? []
        try Self.validateTags(tags)
        let id = Identifiers.uuid()
        return { x in
            try await self.enforceQuota("router", project: project, x)
            let now = Self.now()
            try await x.execute("""
                INSERT INTO network_router (id, project_id, name, description, admin_state_up, gateway_network_id, enable_snat, routes,
                    distributed, ha, revision_number, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, NULL, 1, '[]', ?, ?, 0, ?, ?)
                """, [.text(id), .text(project), .text(try input.optionalString("name") ?? ""), .text(try input.optionalString("description") ?? ""),
                      .bool(try input.bool("admin_state_up") ?? true), .bool(try input.bool("distributed") ?? false),
                      .bool(try input.bool("ha") ?? false), now, now])
            try await self.changeGateway(id, gateway, x)
            try await self.setNDPProxyState(id, try input.bool("enable_ndp_proxy"), x)
            try await self.bindRouterGatewayQoSPolicy(id, input, caller: caller, x)
            if !routes.isEmpty { try await self.setRoutes(id, routes, x) }
            try await self.setTags(id, tags, x)
            return id
        }
    }

    public func updateRouter(_ id: String, _ body: JSON, caller: AuthContext) async throws -> [String: JSON] {
        let input = try JSONInput(body: body, key: "router")
        try Self.allowOnly(input, Self.routerAttributes.subtracting(["project_id", "tenant_id", "tags"]))
        let gateway = try Self.gatewayChange(input)
        let routes = try Self.routes(input)
        try await write { x in
            let router = try await self.forWrite("router", id, "update_router", caller: caller, input: input, x)
            try self.authorizeGateway("update_router", gateway, caller, target: router.target)
            var sets: [(String, SQLValue)] = []
            if let name = try input.optionalString("name") { sets.append(("name", .text(name))) }
            if let description = try input.optionalString("description") { sets.append(("description", .text(description))) }
            if let up = try input.bool("admin_state_up") { sets.append(("admin_state_up", .bool(up))) }
            if let distributed = try input.bool("distributed") { sets.append(("distributed", .bool(distributed))) }
            if let ha = try input.bool("ha") { sets.append(("ha", .bool(ha))) }
            if !sets.isEmpty {
                try await x.execute("UPDATE network_router SET \(sets.map { "\($0.0) = ?" }.joined(separator: ", ")) WHERE id = ?", sets.map(\.1) + [.text(id)])
            }
            // The gateway first, as new routes may go through it; a changed gateway has the
            // routes checked again, so none is left with a next hop the router cannot reach.
            try await self.changeGateway(id, gateway, x)
            try await self.setNDPProxyState(id, try input.bool("enable_ndp_proxy"), x)
            try await self.bindRouterGatewayQoSPolicy(id, input, caller: caller, x)
            let gatewayChanged = if case .keep = gateway { false } else { true }
            if let routes {
                try await self.setRoutes(id, routes, x)
            } else if gatewayChanged {
                try await self.setRoutes(id, try await self.currentRoutes(id, x), x)
            }
            try await self.touch("network_router", id, x)
        }
        return try await router(id, caller: caller)
    }

    /// Deletes a router without interfaces (409 RouterInUse otherwise), with its gateway port.
    public func deleteRouter(_ id: String, caller: AuthContext) async throws {
        try await write { x in
            _ = try await self.forWrite("router", id, "delete_router", caller: caller, x)
            if try await x.first("SELECT 1 FROM network_port WHERE device_id = ? AND device_owner = ?", .text(id), .text(Self.interfaceOwner)) != nil {
                throw Self.conflict("Router \(id) still has ports", code: "RouterInUse")
            }
            try await self.removeRouter(id, x)
        }
    }

    /// Deletes the router with its gateway ports and tags; its interfaces must be gone.
    func removeRouter(_ id: String, _ x: any SQLExecutor) async throws {
        try await removeAllGateways(id, x)
        try await x.execute("DELETE FROM network_tag WHERE resource_id = ?", .text(id))
        try await x.execute("DELETE FROM network_router WHERE id = ?", .text(id))
    }

    // MARK: External gateway

    static func gatewayChange(_ input: JSONInput) throws -> GatewayChange {
        guard let value = input.fields["external_gateway_info"] else { return .keep }
        guard let info = try input.object("external_gateway_info"), !info.fields.isEmpty else { return .clear }
        try allowOnly(info, ["network_id", "enable_snat", "external_fixed_ips", "qos_policy_id"])
        guard let network = try info.string("network_id") else {
            throw badRequest("Invalid input for external_gateway_info. Reason: '\(value.serialized())' has no network_id.", code: "InvalidInput")
        }
        return .set(network: network, enableSNAT: try info.bool("enable_snat"), fixedIPs: try info.array("external_fixed_ips").map(fixedIPRequests))
    }

    /// SNAT and the gateway's own addresses are the operator's to choose (admin by default).
    func authorizeGateway(_ action: String, _ change: GatewayChange, _ caller: AuthContext, target: [String: String]) throws {
        guard case let .set(_, snat, fixedIPs) = change else { return }
        if snat != nil { try authorize("\(action):external_gateway_info:enable_snat", caller, target: target) }
        if fixedIPs != nil { try authorize("\(action):external_gateway_info:external_fixed_ips", caller, target: target) }
    }

    /// Gives the router the first gateway `change` asks for. On the network it already has,
    /// only SNAT and the addresses change; a new network replaces the gateway port. Floating
    /// IPs or NDP proxies that reach the outside through this gateway keep it from going or
    /// moving (409). With the first gateway gone, the router's next gateway port (multihoming)
    /// becomes the first.
    func changeGateway(_ id: String, _ change: GatewayChange, _ x: any SQLExecutor) async throws {
        if case .keep = change { return }
        guard let row = try await x.first("SELECT gateway_network_id, gateway_port_id FROM network_router WHERE id = ?", .text(id)) else {
            throw Self.notFound("router", id)
        }
        let current = row.optionalString("gateway_network_id")
        let gatewayPort = row.optionalString("gateway_port_id")
        if case let .set(network, snat, fixedIPs) = change, network == current, let gatewayPort {
            if let snat { try await x.execute("UPDATE network_router SET enable_snat = ? WHERE id = ?", .bool(snat), .text(id)) }
            if let fixedIPs {
                try await x.execute("DELETE FROM network_ip_allocation WHERE port_id = ?", .text(gatewayPort))
                let mac = try await x.first("SELECT mac_address FROM network_port WHERE id = ?", .text(gatewayPort))?.string("mac_address") ?? ""
                try await allocateAddresses(fixedIPs, port: gatewayPort, network: network, mac: mac, x)
                try await requireAddresses(gatewayPort, network: network, x)
            }
            return
        }
        if let current {
            if try await x.first("SELECT 1 FROM network_floatingip WHERE router_id = ?", .text(id)) != nil {
                throw Self.conflict("Gateway cannot be updated for router \(id), since a gateway to external network \(current) is required by one or more floating IPs.",
                                    code: "RouterExternalGatewayInUseByFloatingIp")
            }
            if try await x.first("SELECT 1 FROM network_ndp_proxy WHERE router_id = ?", .text(id)) != nil {
                throw Self.conflict("Unable to unset external gateway of router \(id), There are one or more ndp proxies still in use on the router.",
                                    code: "RouterGatewayInUseByNDPProxy")
            }
            // The gateway's NDP proxy switch goes with it, as Neutron deletes its state.
            try await x.execute("UPDATE network_router SET gateway_network_id = NULL, gateway_port_id = NULL, enable_snat = 1, enable_ndp_proxy = 0 WHERE id = ?",
                                .text(id))
            if let gatewayPort { try await removePort(gatewayPort, x) }
        }
        guard case let .set(network, snat, fixedIPs) = change else {
            try await promoteGatewayPort(id, x)
            return
        }
        guard let external = try await x.first("SELECT external FROM network_network WHERE id = ?", .text(network)) else {
            throw Self.notFound("network", network)
        }
        guard external.bool("external") else {
            throw Self.badRequest("Bad router request: Network \(network) is not an external network.", code: "BadRequest")
        }
        // Gateway ports belong to no project, as in Neutron: they are the external network's.
        let port = try await insertServicePort(project: "", network: network, device: id, owner: Self.gatewayOwner, fixedIPs: fixedIPs, x)
        try await requireAddresses(port, network: network, x)
        try await x.execute("UPDATE network_router SET gateway_network_id = ?, gateway_port_id = ?, enable_snat = ? WHERE id = ?",
                            .text(network), .text(port), .bool(snat ?? true), .text(id))
    }

    /// A gateway needs an address on its external network: 400 when the network has no subnet.
    func requireAddresses(_ port: String, network: String, _ x: any SQLExecutor) async throws {
        if try await x.first("SELECT 1 FROM network_ip_allocation WHERE port_id = ?", .text(port)) == nil {
            throw Self.badRequest("Unable to find any IP address on external network \(network).", code: "ExternalIpAddressExhausted")
        }
    }

    // MARK: Interfaces

    /// `PUT /routers/{id}/add_router_interface` with a `subnet_id` (a new port at the subnet's
    /// gateway address) or a `port_id` (an unused port of the router's project, taken over).
    public func addRouterInterface(_ id: String, _ body: JSON, caller: AuthContext) async throws -> JSON {
        let input = JSONInput(body.objectValue ?? [:], path: "")
        let (subnetID, portID) = try Self.interfaceRequest(input)
        let port = try await write { x in try await self.attachInterface(id, subnet: subnetID, port: portID, caller: caller, x) }
        return try await interfaceInfo(router: id, port: port, subnet: subnetID)
    }

    /// Adds the interface inside the caller's transaction; returns the interface's port.
    func attachInterface(_ id: String, subnet subnetID: String?, port portID: String?, caller: AuthContext, _ x: any SQLExecutor) async throws -> String {
        let router = try await forWrite("router", id, "add_router_interface", caller: caller, x)
        let project = router.target["project_id"] ?? ""
        let interfaces = try await interfaceSubnets(id, x)
        let port: String
        if let portID {
            let found = try await stored("port", portID, x)
            guard visible("port", found.json, target: found.target, caller: caller) != nil,
                  caller.isAdmin || found.target["project_id"] == project else { throw Self.notFound("port", portID) }
            if let device = found.json["device_id"]?.stringValue, !device.isEmpty {
                throw Self.conflict("Unable to complete operation on port \(portID) for network \(found.json["network_id"]?.stringValue ?? ""). Port already has an attached device \(device).",
                                    code: "PortInUse")
            }
            let subnets = (found.json["fixed_ips"]?.arrayValue ?? []).compactMap { $0["subnet_id"]?.stringValue }
            guard !subnets.isEmpty else { throw Self.badRequest("Bad router request: Router port must have at least one fixed IP.", code: "BadRequest") }
            for subnet in subnets { try await checkInterfaceSubnet(subnet, router: id, existing: interfaces, caller: caller, x) }
            try await x.execute("UPDATE network_port SET device_id = ?, device_owner = ?, status = 'ACTIVE' WHERE id = ?",
                                .text(id), .text(Self.interfaceOwner), .text(portID))
            try await touch("network_port", portID, x)
            port = portID
        } else {
            let subnet = try await checkInterfaceSubnet(subnetID ?? "", router: id, existing: interfaces, caller: caller, x)
            guard let gateway = subnet["gateway_ip"]?.stringValue.flatMap(IPAddress.init) else {
                throw Self.badRequest("Bad router request: Subnet for router interface must have a gateway IP.", code: "BadRequest")
            }
            port = try await insertServicePort(project: project, network: subnet["network_id"]?.stringValue ?? "", device: id, owner: Self.interfaceOwner,
                                               fixedIPs: [FixedIPRequest(subnetID: subnetID, address: gateway)], x)
        }
        try await touch("network_router", id, x)
        return port
    }

    /// `PUT /routers/{id}/remove_router_interface`: by `port_id` the router's interface port
    /// goes; by `subnet_id` the interface's address on that subnet (its port when it has no
    /// other). Floating IPs or routes that need the subnet keep it (409).
    public func removeRouterInterface(_ id: String, _ body: JSON, caller: AuthContext) async throws -> JSON {
        let input = JSONInput(body.objectValue ?? [:], path: "")
        let (subnetID, portID) = try Self.interfaceRequest(input)
        return try await write { x -> JSON in
            let router = try await self.forWrite("router", id, "remove_router_interface", caller: caller, x)
            let ports = try await self.ports(where: "WHERE p.device_id = ? AND p.device_owner = ?", [.text(id), .text(Self.interfaceOwner)], x)
            let port: Rendered
            var subnets: [String]
            if let portID {
                guard let found = ports.first(where: { $0.json["id"]?.stringValue == portID }) else {
                    throw APIError(.notFound, "Router \(id) does not have an interface with id \(portID)", code: "RouterInterfaceNotFound")
                }
                port = found
                subnets = (found.json["fixed_ips"]?.arrayValue ?? []).compactMap { $0["subnet_id"]?.stringValue }
                if let subnetID, !subnets.contains(subnetID) {
                    throw Self.conflict("Subnet \(subnetID) does not match port \(portID)'s subnets.", code: "SubnetMismatchForPort")
                }
            } else {
                let subnetID = subnetID ?? ""
                guard let found = ports.first(where: { ($0.json["fixed_ips"]?.arrayValue ?? []).contains { $0["subnet_id"]?.stringValue == subnetID } }) else {
                    throw APIError(.notFound, "Router \(id) has no interface on subnet \(subnetID)", code: "RouterInterfaceNotFoundForSubnet")
                }
                port = found
                subnets = [subnetID]
            }
            for subnet in subnets { try await self.checkInterfaceUnused(router: router, subnet: subnet, x) }
            let portID = port.json["id"]?.stringValue ?? ""
            let remaining = (port.json["fixed_ips"]?.arrayValue ?? []).filter { !subnets.contains($0["subnet_id"]?.stringValue ?? "") }
            if remaining.isEmpty {
                try await self.removePort(portID, x)
            } else {
                for subnet in subnets {
                    try await x.execute("DELETE FROM network_ip_allocation WHERE port_id = ? AND subnet_id = ?", .text(portID), .text(subnet))
                }
                try await self.touch("network_port", portID, x)
            }
            try await self.touch("network_router", id, x)
            return Self.interfaceJSON(router: id, project: router.target["project_id"] ?? "", port: portID, network: port.json["network_id"],
                                      subnets: subnets, subnet: nil)
        }
    }

    static func interfaceRequest(_ input: JSONInput) throws -> (subnet: String?, port: String?) {
        let subnet = try input.string("subnet_id"), port = try input.string("port_id")
        if subnet == nil && port == nil { throw badRequest("Bad router request: Either subnet_id or port_id must be specified.", code: "BadRequest") }
        if subnet != nil && port != nil { throw badRequest("Bad router request: Cannot specify both subnet-id and port-id.", code: "BadRequest") }
        return (subnet, port)
    }

    /// The subnets the router's interfaces are on, with their CIDRs.
    func interfaceSubnets(_ router: String, _ x: any SQLExecutor) async throws -> [(id: String, cidr: IPNetwork)] {
        try await x.query("""
            SELECT s.id, s.cidr FROM network_port p JOIN network_ip_allocation a ON a.port_id = p.id JOIN network_subnet s ON s.id = a.subnet_id
            WHERE p.device_id = ? AND p.device_owner = ?
            """, .text(router), .text(Self.interfaceOwner)).compactMap { row in IPNetwork(row.string("cidr")).map { (row.string("id"), $0) } }
    }

    /// A subnet an interface may go on: one the caller sees, not yet on the router, not
    /// overlapping the router's other subnets (a router cannot route two copies of one range).
    @discardableResult
    func checkInterfaceSubnet(_ subnetID: String, router: String, existing: [(id: String, cidr: IPNetwork)], caller: AuthContext,
                              _ x: any SQLExecutor) async throws -> [String: JSON] {
        let subnet = try await stored("subnet", subnetID, x)
        guard visible("subnet", subnet.json, target: subnet.target, caller: caller) != nil,
              let cidr = subnet.json["cidr"]?.stringValue.flatMap({ IPNetwork($0) }) else { throw Self.notFound("subnet", subnetID) }
        if existing.contains(where: { $0.id == subnetID }) {
            throw Self.badRequest("Bad router request: Router already has a port on subnet \(subnetID).", code: "BadRequest")
        }
        if let clash = existing.first(where: { $0.cidr.overlaps(cidr) }) {
            throw Self.badRequest("Bad router request: Cidr \(cidr) of subnet \(subnetID) overlaps with cidr \(clash.cidr) of subnet \(clash.id).", code: "BadRequest")
        }
        return subnet.json
    }

    /// Refuses to take an interface off a subnet that floating IPs or static routes still use.
    func checkInterfaceUnused(router: Rendered, subnet: String, _ x: any SQLExecutor) async throws {
        let id = router.json["id"]?.stringValue ?? ""
        if try await x.first("""
            SELECT 1 FROM network_floatingip f JOIN network_ip_allocation a ON a.port_id = f.port_id AND a.ip_address = f.fixed_ip_address
            WHERE f.router_id = ? AND a.subnet_id = ?
            """, .text(id), .text(subnet)) != nil {
            throw Self.conflict("Router interface for subnet \(subnet) on router \(id) cannot be deleted, as it is required by one or more floating IPs.",
                                code: "RouterInterfaceInUseByFloatingIP")
        }
        if try await x.first("""
            SELECT 1 FROM network_ndp_proxy n JOIN network_ip_allocation a ON a.port_id = n.port_id AND a.ip_address = n.ip_address
            WHERE n.router_id = ? AND a.subnet_id = ?
            """, .text(id), .text(subnet)) != nil {
            throw Self.conflict("Unable to remove subnet \(subnet) from router \(id), There are one or more ndp proxies still in use on the subnet.",
                                code: "RouterInterfaceInUseByNDPProxy")
        }
        guard let cidr = try await x.first("SELECT cidr FROM network_subnet WHERE id = ?", .text(subnet)).flatMap({ IPNetwork($0.string("cidr")) }) else { return }
        if try await currentRoutes(id, x).contains(where: { cidr.contains($0.nexthop) }) {
            throw Self.conflict("Router interface for subnet \(subnet) on router \(id) cannot be deleted, as it is required by one or more routes.",
                                code: "RouterInterfaceInUseByRoute")
        }
    }

    /// What add and remove interface answer: the router, the port, its network and subnets.
    func interfaceInfo(router: String, port: String, subnet: String?) async throws -> JSON {
        let found = try await stored("port", port, db)
        let subnets = (found.json["fixed_ips"]?.arrayValue ?? []).compactMap { $0["subnet_id"]?.stringValue }
        let project = try await stored("router", router, db).target["project_id"] ?? ""
        return Self.interfaceJSON(router: router, project: project, port: port, network: found.json["network_id"], subnets: subnets, subnet: subnet)
    }

    /// The body of `add_router_interface` and `remove_router_interface`; `subnet_id` is the
    /// one asked for, else the port's first.
    static func interfaceJSON(router: String, project: String, port: String, network: JSON?, subnets: [String], subnet: String?) -> JSON {
        ["id": .string(router), "tenant_id": .string(project), "project_id": .string(project), "port_id": .string(port),
         "subnet_id": (subnet ?? subnets.first).map { .string($0) } ?? .null, "subnet_ids": .array(subnets.map { .string($0) }),
         "network_id": network ?? .null]
    }

    // MARK: Static routes

    /// `routes` as asked: each a destination CIDR and a next hop of the same IP version, no duplicates.
    static func routes(_ input: JSONInput) throws -> [RouterRoute]? {
        guard let entries = try input.array("routes") else { return input.has("routes") ? [] : nil }
        var out: [RouterRoute] = []
        for entry in entries {
            guard let destination = entry["destination"]?.stringValue.flatMap({ IPNetwork($0) }),
                  let nexthop = entry["nexthop"]?.stringValue.flatMap(IPAddress.init), destination.version == nexthop.version else {
                throw badRequest("Invalid input for routes. Reason: '\(entry.serialized())' is not a valid route.", code: "InvalidInput")
            }
            let route = RouterRoute(destination: destination, nexthop: nexthop)
            if out.contains(route) { throw badRequest("Invalid input for routes. Reason: Duplicate route '\(entry.serialized())'.", code: "InvalidInput") }
            out.append(route)
        }
        return out
    }

    func currentRoutes(_ router: String, _ x: any SQLExecutor) async throws -> [RouterRoute] {
        guard let row = try await x.first("SELECT routes FROM network_router WHERE id = ?", .text(router)) else { return [] }
        return try Self.routes(JSONInput(["routes": Self.decode(row, "routes")], path: "router")) ?? []
    }

    /// Replaces the router's routes after checking each next hop is on a subnet the router is
    /// attached to (an interface or its gateway) and is not one of the router's own addresses.
    func setRoutes(_ router: String, _ routes: [RouterRoute], _ x: any SQLExecutor) async throws {
        if routes.count > Self.maxRoutes {
            throw Self.badRequest("Unable to complete operation for \(router). The number of routes exceeds the maximum \(Self.maxRoutes).", code: "RoutesExhausted")
        }
        let attached = try await x.query("""
            SELECT s.cidr, a.ip_address FROM network_port p JOIN network_ip_allocation a ON a.port_id = p.id JOIN network_subnet s ON s.id = a.subnet_id
            WHERE p.device_id = ? AND p.device_owner IN (?, ?)
            """, .text(router), .text(Self.interfaceOwner), .text(Self.gatewayOwner))
        let cidrs = attached.compactMap { IPNetwork($0.string("cidr")) }
        let own = Set(attached.map { $0.string("ip_address") })
        for route in routes {
            let text = route.json.serialized()
            if own.contains(route.nexthop.description) {
                throw Self.badRequest("Invalid format for routes: \(text), the nexthop is used by router", code: "InvalidRoutes")
            }
            if !cidrs.contains(where: { $0.contains(route.nexthop) }) {
                throw Self.badRequest("Invalid format for routes: \(text), the nexthop is not connected with router", code: "InvalidRoutes")
            }
        }
        try await x.execute("UPDATE network_router SET routes = ? WHERE id = ?", Self.encode(.array(routes.map(\.json))), .text(router))
    }

    /// `PUT /routers/{id}/add_extraroutes` and `remove_extraroutes` (extraroute-atomic): the
    /// routes are added to or taken from the current ones in one transaction, so concurrent
    /// callers do not overwrite each other's routes as a read-modify-write of `routes` would.
    public func changeExtraRoutes(_ id: String, adding: Bool, _ body: JSON, caller: AuthContext) async throws -> [String: JSON] {
        let input = try JSONInput(body: body, key: "router")
        try Self.allowOnly(input, ["routes"])
        let asked = try Self.routes(input) ?? []
        try await write { x in
            _ = try await self.forWrite("router", id, adding ? "add_extraroutes" : "remove_extraroutes", caller: caller, x)
            try await self.lock("network_router", id, x)
            let current = try await self.currentRoutes(id, x)
            let changed = adding ? current + asked.filter { !current.contains($0) } : current.filter { !asked.contains($0) }
            try await self.setRoutes(id, changed, x)
            try await self.touch("network_router", id, x)
        }
        return try await router(id, caller: caller)
    }
}
