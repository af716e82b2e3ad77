import Foundation
import NimbusCore
import NimbusStore

/// A gateway as `add_external_gateways`, `update_external_gateways` and
/// `remove_external_gateways` name it: a network, and the addresses that tell apart two
/// gateways on one network.
struct GatewayRequest: Sendable {
    var network: String
    var enableSNAT: Bool?
    var fixedIPs: [FixedIPRequest]?

    var change: GatewayChange { .set(network: network, enableSNAT: enableSNAT, fixedIPs: fixedIPs) }
}

/// Several external gateways per router (`external-gateway-multihoming`). The router's first
/// gateway is the one `external_gateway_info` shows (`gateway_port_id`), made and changed as
/// before; each further one is another `network:router_gateway` port of the router on an
/// external network. The dataplane plugs every gateway port into the router's namespace; the
/// default route, SNAT, floating IPs and NDP proxies use the first only (Neutron's ECMP and
/// BFD over several gateways are not offered).
extension NetworkService {
    /// The gateway list of a request body; `{}` or null is no gateways (Neutron's "nodata").
    static func gatewayRequests(_ body: JSON) throws -> [GatewayRequest]? {
        let input = try JSONInput(body: body, key: "router")
        try allowOnly(input, ["external_gateways"])
        guard let value = input.fields["external_gateways"] else { return nil }
        if value.isNull || value.objectValue?.isEmpty == true { return [] }
        guard let entries = value.arrayValue else {
            throw badRequest("Invalid input for external_gateways. Reason: '\(value.serialized())' is not a list.", code: "InvalidInput")
        }
        return try entries.enumerated().map { index, entry in
            guard let object = entry.objectValue else {
                throw badRequest("Invalid input for external_gateways. Reason: '\(entry.serialized())' is not a dictionary.", code: "InvalidInput")
            }
            let info = JSONInput(object, path: "external_gateways[\(index)]")
            try allowOnly(info, ["network_id", "enable_snat", "external_fixed_ips", "qos_policy_id"])
            guard let network = try info.string("network_id") else {
                throw badRequest("Invalid input for external_gateways. Reason: '\(entry.serialized())' has no network_id.", code: "InvalidInput")
            }
            return GatewayRequest(network: network, enableSNAT: try info.bool("enable_snat"),
                                  fixedIPs: try info.array("external_fixed_ips").map(fixedIPRequests))
        }
    }

    /// `PUT /routers/{id}/add_external_gateways`: a router without a gateway takes the first
    /// as its first gateway; every other one becomes a further gateway port.
    public func addExternalGateways(_ id: String, _ body: JSON, caller: AuthContext) async throws -> [String: JSON] {
        let requests = try Self.gatewayRequests(body)
        try await write { x in
            let router = try await self.forWrite("router", id, "add_external_gateways", caller: caller, x)
            for request in requests ?? [] { try self.authorizeGateway("update_router", request.change, caller, target: router.target) }
            try await self.lock("network_router", id, x)
            var rest = requests ?? []
            if !rest.isEmpty, try await self.firstGatewayPort(id, x) == nil {
                try await self.changeGateway(id, rest.removeFirst().change, x)
            }
            for request in rest { try await self.addExtraGateway(id, request, x) }
            try await self.touch("network_router", id, x)
        }
        return try await router(id, caller: caller)
    }

    /// `PUT /routers/{id}/update_external_gateways`: the router's gateways become the list —
    /// the first is the first gateway (an existing port that matches it takes that place),
    /// ports matching the others stay (their addresses set when asked), unmatched ones go
    /// and new ones are made. An empty list removes them all.
    public func updateExternalGateways(_ id: String, _ body: JSON, caller: AuthContext) async throws -> [String: JSON] {
        let requests = try Self.gatewayRequests(body)
        try await write { x in
            let router = try await self.forWrite("router", id, "update_external_gateways", caller: caller, x)
            for request in requests ?? [] { try self.authorizeGateway("update_router", request.change, caller, target: router.target) }
            try await self.lock("network_router", id, x)
            guard let requests else { return }
            guard let first = requests.first else {
                try await self.removeAllGateways(id, x)
                try await self.touch("network_router", id, x)
                return
            }
            for request in requests { try await self.requireExternal(request.network, x) }
            // A further gateway port matching the first entry becomes the first gateway.
            if let match = try await self.matchGatewayPorts(id, [first], strict: false, x).matched.first?.port,
               match != (try await self.firstGatewayPort(id, x)) {
                let network = try await x.first("SELECT network_id FROM network_port WHERE id = ?", .text(match))?.string("network_id") ?? ""
                try await x.execute("UPDATE network_router SET gateway_port_id = ?, gateway_network_id = ? WHERE id = ?", .text(match), .text(network), .text(id))
            }
            try await self.changeGateway(id, first.change, x)
            let primary = try await self.firstGatewayPort(id, x)
            let (matched, unmatched) = try await self.matchGatewayPorts(id, Array(requests.dropFirst()), strict: false, exclude: primary, x)
            for (port, request) in matched {
                guard let fixedIPs = request.fixedIPs else { continue }
                try await self.setGatewayAddresses(port, network: request.network, fixedIPs, x)
            }
            let kept = Set(matched.map(\.port)).union(primary.map { [$0] } ?? [])
            for port in try await self.gatewayPorts(id, x) where !kept.contains(port.id) { try await self.removeGatewayPort(id, port.id, x) }
            for request in unmatched { try await self.addExtraGateway(id, request, x) }
            try await self.touch("network_router", id, x)
        }
        return try await router(id, caller: caller)
    }

    /// `PUT /routers/{id}/remove_external_gateways`: the ports matching the list go (a
    /// network with one gateway port needs no addresses to name it); when the first gateway
    /// goes, the next port becomes the first. An empty list removes nothing.
    public func removeExternalGateways(_ id: String, _ body: JSON, caller: AuthContext) async throws -> [String: JSON] {
        let requests = try Self.gatewayRequests(body)
        try await write { x in
            _ = try await self.forWrite("router", id, "remove_external_gateways", caller: caller, x)
            try await self.lock("network_router", id, x)
            guard let requests, !requests.isEmpty else { return }
            if try await self.gatewayPorts(id, x).isEmpty {
                throw Self.conflict("Unable to remove external gateways from router \(id): the router does not have any external gateways.",
                                    code: "UnableToRemoveGateways")
            }
            let (matched, _) = try await self.matchGatewayPorts(id, requests, strict: true, x)
            let primary = try await self.firstGatewayPort(id, x)
            for (port, _) in matched where port != primary { try await self.removeGatewayPort(id, port, x) }
            if let primary, matched.contains(where: { $0.port == primary }) { try await self.changeGateway(id, .clear, x) }
            try await self.touch("network_router", id, x)
        }
        return try await router(id, caller: caller)
    }

    // MARK: Gateway ports

    func firstGatewayPort(_ router: String, _ x: any SQLExecutor) async throws -> String? {
        try await x.first("SELECT gateway_port_id FROM network_router WHERE id = ?", .text(router))?.optionalString("gateway_port_id")
    }

    /// The router's gateway ports, in the order they were made, with their networks and addresses.
    func gatewayPorts(_ router: String, _ x: any SQLExecutor) async throws -> [(id: String, network: String, addresses: Set<String>)] {
        var ports: [(id: String, network: String, addresses: Set<String>)] = []
        for row in try await x.query("""
            SELECT p.id, p.network_id, a.ip_address FROM network_port p LEFT JOIN network_ip_allocation a ON a.port_id = p.id
            WHERE p.device_id = ? AND p.device_owner = ? ORDER BY p.created_at, p.id
            """, .text(router), .text(Self.gatewayOwner)) {
            let address = row.optionalString("ip_address").flatMap(IPAddress.init)?.description
            if let index = ports.firstIndex(where: { $0.id == row.string("id") }) {
                if let address { ports[index].addresses.insert(address) }
            } else {
                ports.append((row.string("id"), row.string("network_id"), address.map { [$0] } ?? []))
            }
        }
        return ports
    }

    /// Finds the gateway port each request names, as Neutron matches them: on the request's
    /// network, the only port there when it gives no addresses, else the port sharing an
    /// address with it. `strict` (removal) makes a request that names no port a 400;
    /// otherwise it is returned unmatched, to be made.
    func matchGatewayPorts(_ router: String, _ requests: [GatewayRequest], strict: Bool, exclude: String? = nil,
                           _ x: any SQLExecutor) async throws -> (matched: [(port: String, request: GatewayRequest)], unmatched: [GatewayRequest]) {
        let ports = try await gatewayPorts(router, x).filter { $0.id != exclude }
        var matched: [(port: String, request: GatewayRequest)] = [], unmatched: [GatewayRequest] = []
        for request in requests {
            let taken = Set(matched.map(\.port))
            let candidates = ports.filter { $0.network == request.network && !taken.contains($0.id) }
            let asked = Set((request.fixedIPs ?? []).compactMap { $0.address?.description })
            let found: String?
            if candidates.isEmpty {
                found = nil
            } else if asked.isEmpty {
                guard candidates.count == 1 else {
                    throw Self.badRequest("Unable to match gateways of router \(router): multiple gateway ports are attached to the same network \(request.network) but external_fixed_ips parameter is not specified in the request.",
                                          code: "UnableToMatchGateways")
                }
                found = candidates[0].id
            } else {
                found = candidates.first { !$0.addresses.isDisjoint(with: asked) }?.id
            }
            if let found {
                matched.append((found, request))
            } else if strict {
                throw Self.badRequest("Unable to match gateways of router \(router): could not match a gateway port attached to network \(request.network).",
                                      code: "UnableToMatchGateways")
            } else {
                unmatched.append(request)
            }
        }
        return (matched, unmatched)
    }

    func requireExternal(_ network: String, _ x: any SQLExecutor) async throws {
        guard let row = try await x.first("SELECT external FROM network_network WHERE id = ?", .text(network)) else { throw Self.notFound("network", network) }
        guard row.bool("external") else {
            throw Self.badRequest("Bad router request: Network \(network) is not an external network.", code: "BadRequest")
        }
    }

    /// A further gateway port on `request.network`. Its subnets may not overlap the router's
    /// interfaces' nor those of a gateway on another network (one external network may hold
    /// several of the router's gateways).
    func addExtraGateway(_ router: String, _ request: GatewayRequest, _ x: any SQLExecutor) async throws {
        try await requireExternal(request.network, x)
        let external = try await x.query("SELECT id, cidr FROM network_subnet WHERE network_id = ?", .text(request.network))
            .compactMap { row in IPNetwork(row.string("cidr")).map { (id: row.string("id"), cidr: $0) } }
        let attached = try await x.query("""
            SELECT s.id, s.cidr FROM network_port p JOIN network_ip_allocation a ON a.port_id = p.id JOIN network_subnet s ON s.id = a.subnet_id
            WHERE p.device_id = ? AND (p.device_owner = ? OR (p.device_owner = ? AND p.network_id <> ?))
            """, .text(router), .text(Self.interfaceOwner), .text(Self.gatewayOwner), .text(request.network))
            .compactMap { row in IPNetwork(row.string("cidr")).map { (id: row.string("id"), cidr: $0) } }
        for new in external {
            if let clash = attached.first(where: { $0.cidr.overlaps(new.cidr) }) {
                throw Self.badRequest("Bad router request: Cidr \(new.cidr) of subnet \(new.id) overlaps with cidr \(clash.cidr) of subnet \(clash.id).",
                                      code: "BadRequest")
            }
        }
        let port = try await insertServicePort(project: "", network: request.network, device: router, owner: Self.gatewayOwner,
                                               fixedIPs: request.fixedIPs, x)
        try await requireAddresses(port, network: request.network, x)
    }

    /// Removes a gateway port other than the first, unless floating IPs through the router
    /// need its network and no other gateway port of the router is on it (409, as Neutron).
    func removeGatewayPort(_ router: String, _ port: String, _ x: any SQLExecutor) async throws {
        guard let network = try await x.first("SELECT network_id FROM network_port WHERE id = ?", .text(port))?.string("network_id") else { return }
        if try await x.first("SELECT 1 FROM network_floatingip WHERE router_id = ? AND floating_network_id = ?", .text(router), .text(network)) != nil,
           try await x.first("SELECT 1 FROM network_port WHERE device_id = ? AND device_owner = ? AND network_id = ? AND id <> ?",
                             .text(router), .text(Self.gatewayOwner), .text(network), .text(port)) == nil {
            throw Self.conflict("Gateway cannot be updated for router \(router), since a gateway to external network \(network) is required by one or more floating IPs.",
                                code: "RouterExternalGatewayInUseByFloatingIp")
        }
        try await removePort(port, x)
    }

    func setGatewayAddresses(_ port: String, network: String, _ fixedIPs: [FixedIPRequest], _ x: any SQLExecutor) async throws {
        try await x.execute("DELETE FROM network_ip_allocation WHERE port_id = ?", .text(port))
        let mac = try await x.first("SELECT mac_address FROM network_port WHERE id = ?", .text(port))?.string("mac_address") ?? ""
        try await allocateAddresses(fixedIPs, port: port, network: network, mac: mac, x)
        try await requireAddresses(port, network: network, x)
        try await touch("network_port", port, x)
    }

    /// After the first gateway went: the router's oldest remaining gateway port becomes it.
    func promoteGatewayPort(_ router: String, _ x: any SQLExecutor) async throws {
        guard let next = try await gatewayPorts(router, x).first else { return }
        try await x.execute("UPDATE network_router SET gateway_port_id = ?, gateway_network_id = ? WHERE id = ?", .text(next.id), .text(next.network), .text(router))
    }

    /// Every gateway of the router goes: the further ones, then the first (with its checks).
    func removeAllGateways(_ router: String, _ x: any SQLExecutor) async throws {
        let primary = try await firstGatewayPort(router, x)
        for port in try await gatewayPorts(router, x) where port.id != primary { try await removeGatewayPort(router, port.id, x) }
        try await changeGateway(router, .clear, x)
    }
}
