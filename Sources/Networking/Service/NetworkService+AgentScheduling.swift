import Foundation
import NimbusCore
import NimbusStore

/// The agent scheduler extensions (`dhcp_agent_scheduler`, `l3_agent_scheduler`): which host's
/// DHCP agent serves a network (`network_dhcp_host`) and which host's L3 agent runs a router
/// (`network_l3_host`), as the scheduler in `+HostState` chose them, and an admin's moves. A
/// network or router has one host at a time in Nimbus: adding a network to another DHCP agent
/// moves it there; a router must be removed from its L3 agent before it is added to another,
/// as Neutron requires of legacy routers. One removed is unhosted until the next scheduling
/// pass (a host's state poll) gives it a live host again, as Neutron's auto-scheduling does.
extension NetworkService {
    /// The agent of `type` with this id; 404 in Neutron's words for any other agent.
    func schedulingAgent(_ id: String, _ type: AgentType, caller: AuthContext) async throws -> Agent {
        try authorizeAgent("get_agent", caller)
        let agent = try await storedAgent(id)
        guard agent.type == type, agent.adminStateUp else {
            throw type == .dhcp ? APIError(.notFound, "Agent \(id) is not a valid DHCP Agent or has been disabled.", code: "InvalidDHCPAgent")
                                : APIError(.notFound, "Agent \(id) is not a L3 Agent or has been disabled.", code: "InvalidL3Agent")
        }
        return agent
    }

    func agents(_ type: AgentType, hosts: [String]) async throws -> [[String: JSON]] {
        guard !hosts.isEmpty else { return [] }
        let now = Date()
        return try await db.query("""
            SELECT * FROM network_agent WHERE agent_type = ? AND host IN (\(hosts.map { _ in "?" }.joined(separator: ", "))) ORDER BY host
            """, [.text(type.rawValue)] + hosts.map { .text($0) }).map { Agent(row: $0).json(now: now, downTime: settings.agentDownTime) }
    }

    // MARK: DHCP

    public func dhcpNetworks(agent id: String, caller: AuthContext) async throws -> [[String: JSON]] {
        try authorize("get_dhcp-networks", caller)
        let agent = try await schedulingAgent(id, .dhcp, caller: caller)
        return try await networks(where: "WHERE id IN (SELECT network_id FROM network_dhcp_host WHERE host = ?) ORDER BY created_at, id", [.text(agent.host)], db)
            .compactMap { visible("network", $0.json, target: $0.target, caller: caller) }
    }

    public func dhcpAgents(network: String, caller: AuthContext) async throws -> [[String: JSON]] {
        try authorize("get_dhcp-agents", caller)
        _ = try await visibleNetwork(network, caller: caller, db)
        let hosts = try await db.query("SELECT host FROM network_dhcp_host WHERE network_id = ?", .text(network)).map { $0.string("host") }
        return try await agents(.dhcp, hosts: hosts)
    }

    /// Moves the network's DHCP server to the agent's host, with its DHCP port.
    public func addDHCPNetwork(agent id: String, network: String, caller: AuthContext) async throws {
        try authorize("create_dhcp-network", caller)
        let agent = try await schedulingAgent(id, .dhcp, caller: caller)
        try await write { x in
            _ = try await self.visibleNetwork(network, caller: caller, x)
            let current = try await x.first("SELECT host FROM network_dhcp_host WHERE network_id = ?\(x.dialect.forUpdate)", .text(network))?.string("host")
            if current == agent.host {
                throw Self.conflict("The network \(network) has been already hosted by the DHCP Agent \(id).", code: "NetworkHostedByDHCPAgent")
            }
            if current == nil {
                try await x.execute("INSERT INTO network_dhcp_host (network_id, host) VALUES (?, ?)", .text(network), .text(agent.host))
            } else {
                try await x.execute("UPDATE network_dhcp_host SET host = ? WHERE network_id = ?", .text(agent.host), .text(network))
            }
            try await x.execute("UPDATE network_port SET host_id = ? WHERE network_id = ? AND device_owner = ?",
                                .text(agent.host), .text(network), .text(Self.dhcpOwner))
        }
    }

    public func removeDHCPNetwork(agent id: String, network: String, caller: AuthContext) async throws {
        try authorize("delete_dhcp-network", caller)
        let agent = try await schedulingAgent(id, .dhcp, caller: caller)
        try await write { x in
            _ = try await self.visibleNetwork(network, caller: caller, x)
            guard try await x.execute("DELETE FROM network_dhcp_host WHERE network_id = ? AND host = ?", .text(network), .text(agent.host)) == 1 else {
                throw Self.conflict("The network \(network) is not hosted by the DHCP agent \(id).", code: "NetworkNotHostedByDhcpAgent")
            }
        }
    }

    // MARK: L3

    public func l3Routers(agent id: String, caller: AuthContext) async throws -> [[String: JSON]] {
        try authorize("get_l3-routers", caller)
        let agent = try await schedulingAgent(id, .l3, caller: caller)
        return try await routers(where: "WHERE id IN (SELECT router_id FROM network_l3_host WHERE host = ?) ORDER BY created_at, id", [.text(agent.host)], db)
            .compactMap { visible("router", $0.json, target: $0.target, caller: caller) }
    }

    public func l3Agents(router: String, caller: AuthContext) async throws -> [[String: JSON]] {
        try authorize("get_l3-agents", caller)
        _ = try await self.router(router, caller: caller)
        let hosts = try await db.query("SELECT host FROM network_l3_host WHERE router_id = ?", .text(router)).map { $0.string("host") }
        return try await agents(.l3, hosts: hosts)
    }

    /// Schedules the router to the agent's host and binds its ports there.
    public func addL3Router(agent id: String, router: String, caller: AuthContext) async throws {
        try authorize("create_l3-router", caller)
        let agent = try await schedulingAgent(id, .l3, caller: caller)
        _ = try await self.router(router, caller: caller)
        try await write { x in
            if let current = try await x.first("SELECT host FROM network_l3_host WHERE router_id = ?\(x.dialect.forUpdate)", .text(router))?.string("host") {
                let holder = try await x.first("SELECT id FROM network_agent WHERE agent_type = ? AND host = ?", .text(AgentType.l3.rawValue), .text(current))?.string("id")
                throw Self.conflict("The router \(router) has been already hosted by the L3 Agent \(holder ?? current).", code: "RouterHostedByL3Agent")
            }
            try await x.execute("INSERT INTO network_l3_host (router_id, host) VALUES (?, ?)", .text(router), .text(agent.host))
            for port in try await x.query("SELECT id FROM network_port WHERE device_id = ? AND device_owner IN (?, ?)",
                                          .text(router), .text(Self.interfaceOwner), .text(Self.gatewayOwner)) {
                try await self.bind(port.string("id"), host: agent.host, x)
            }
        }
    }

    public func removeL3Router(agent id: String, router: String, caller: AuthContext) async throws {
        try authorize("delete_l3-router", caller)
        let agent = try await schedulingAgent(id, .l3, caller: caller)
        _ = try await self.router(router, caller: caller)
        try await write { x in
            guard try await x.execute("DELETE FROM network_l3_host WHERE router_id = ? AND host = ?", .text(router), .text(agent.host)) == 1 else {
                throw Self.conflict("The router \(router) is not hosted by L3 agent \(id).", code: "RouterNotHostedByL3Agent")
            }
        }
    }
}

extension NetworkService {
    /// The service providers: Nimbus's routers are Neutron's legacy, single-node L3 routers.
    public func serviceProviders(caller: AuthContext) throws -> [[String: JSON]] {
        try authorize("get_service_provider", caller)
        return [["service_type": "L3_ROUTER_NAT", "name": "single_node", "default": true]]
    }
}
