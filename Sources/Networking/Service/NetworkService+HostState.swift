import Foundation
import HostAPI
import NimbusCore
import NimbusStore

/// The dataplane's side of the networking service: what each host must wire (its
/// `HostNetworkState`), which host serves each network's DHCP, and the agents' reports.
extension NetworkService {
    static let dhcpOwner = "network:dhcp"
    /// What a host running the Linux dataplane puts in its DHCP agent's configurations; the
    /// DHCP scheduler picks only such hosts (a fake host serves no DHCP).
    static let dnsmasqDriver = "dnsmasq"

    /// Records that `host` runs the Linux dataplane: its Linux bridge agent (with the tunnel
    /// endpoint other hosts send its VXLAN traffic to, as l2population reads it), its DHCP
    /// agent and its L3 agent (legacy routers), all alive as of `now`.
    public func reportDataplane(host: String, tunnelingIP: String, at now: Date = Date()) async throws {
        try await reportAgentState(host: host, type: .linuxBridge, configurations: [
            "tunneling_ip": .string(tunnelingIP), "tunnel_types": ["vxlan"], "l2_population": true,
            "interface_mappings": [:], "bridge_mappings": [:],
        ], at: now)
        try await reportAgentState(host: host, type: .dhcp, configurations: [
            "dhcp_driver": .string(Self.dnsmasqDriver), "dhcp_lease_duration": 86400,
        ], at: now)
        try await reportAgentState(host: host, type: .l3, configurations: [
            "agent_mode": "legacy", "interface_driver": "linuxbridge",
        ], at: now)
    }

    /// Applies a host's network agent report (see `NetworkAgentLink.reportNetwork`).
    public func applyNetworkReport(_ report: NetworkAgentReport) async throws {
        try await reportDataplane(host: report.host, tunnelingIP: report.tunnelingIP)
        try await portsWired(host: report.host, ports: report.wiredPorts)
    }

    /// Marks the ports the host has wired ACTIVE (Neutron's `update_device_up`); a port no
    /// longer bound to `host` is left alone.
    public func portsWired(host: String, ports: [String]) async throws {
        guard !ports.isEmpty else { return }
        let marks = Array(repeating: "?", count: ports.count).joined(separator: ", ")
        try await db.execute("UPDATE network_port SET status = 'ACTIVE' WHERE host_id = ? AND status <> 'ACTIVE' AND id IN (\(marks))",
                             [.text(host)] + ports.map { .text($0) })
    }

    /// What `host`'s dataplane must make true. Networks with a DHCP-enabled subnet and no
    /// DHCP host on a live dataplane host, and routers with a port and no L3 host on one, are
    /// scheduled first, so the state includes the DHCP servers and routers this host now runs.
    public func hostNetworkState(host: String) async throws -> HostNetworkState {
        let dataplaneHosts = try await liveDataplaneHosts()
        try await scheduleDHCP(on: dataplaneHosts)
        try await scheduleRouters(on: dataplaneHosts)
        var state = HostNetworkState(host: host)

        let ports = try await ports(where: "WHERE p.host_id = ? AND p.device_owner LIKE 'compute:%'", [.text(host)], db).map(\.json)
        state.ports = ports.map(Self.dataplanePort)

        let served = try await db.query("SELECT network_id FROM network_dhcp_host WHERE host = ? ORDER BY network_id", .text(host))
            .map { $0.string("network_id") }
        for network in served {
            if let server = try await dhcpServer(network: network, host: host) { state.dhcp.append(server) }
        }

        state.routers = try await hostRouters(host: host)

        // Every network something on this host is wired to, with the other hosts that have
        // something on it too.
        let networkIDs = Set(state.ports.map(\.networkID)).union(state.dhcp.map(\.networkID)).union(state.routers.flatMap(\.networkIDs)).sorted()
        for id in networkIDs {
            guard let row = try await db.first("SELECT mtu FROM network_network WHERE id = ?", .text(id)),
                  let segment = try await boundSegment(network: id, db) else { continue }
            let hosts = try await db.query("""
                SELECT host_id AS host FROM network_port WHERE network_id = ? AND host_id <> '' AND device_owner LIKE 'compute:%'
                UNION SELECT host FROM network_dhcp_host WHERE network_id = ?
                UNION SELECT h.host FROM network_l3_host h JOIN network_router r ON r.id = h.router_id JOIN network_port p ON p.device_id = r.id
                    WHERE p.network_id = ? AND p.device_owner IN (?, ?) AND r.admin_state_up = ?
                """, .text(id), .text(id), .text(id), .text(Self.interfaceOwner), .text(Self.gatewayOwner), .bool(true)).map { $0.string("host") }
            let peers = Set(hosts).subtracting([host]).compactMap { dataplaneHosts[$0] }.sorted()
            state.networks.append(.init(id: id, networkType: segment.type.rawValue, physicalNetwork: segment.physicalNetwork,
                                        segmentationID: segment.segmentationID.map(Int.init), mtu: Int(row.int("mtu")), peers: peers))
        }

        state.securityGroups = try await dataplaneSecurityGroups(Set(state.ports.filter(\.portSecurityEnabled).flatMap(\.securityGroupIDs)))
        return state
    }

    /// Hosts whose DHCP agent runs dnsmasq and reported within `agent_down_time`, with their
    /// tunnel endpoints.
    func liveDataplaneHosts(now: Date = Date()) async throws -> [String: String] {
        let since = SQLValue.real(now.timeIntervalSince1970 - settings.agentDownTime)
        let dhcpHosts = Set(try await db.query("SELECT host, configurations FROM network_agent WHERE agent_type = ? AND heartbeat_at >= ?",
                                               .text(AgentType.dhcp.rawValue), since)
            .filter { (try? JSON.parse($0.string("configurations")))?["dhcp_driver"]?.stringValue == Self.dnsmasqDriver }
            .map { $0.string("host") })
        var hosts: [String: String] = [:]
        for row in try await db.query("SELECT host, configurations FROM network_agent WHERE agent_type = ?", .text(AgentType.linuxBridge.rawValue))
        where dhcpHosts.contains(row.string("host")) {
            if let ip = (try? JSON.parse(row.string("configurations")))?["tunneling_ip"]?.stringValue { hosts[row.string("host")] = ip }
        }
        return hosts
    }

    /// Gives each network with a DHCP-enabled subnet whose DHCP host is not alive a live one:
    /// the host serving the fewest networks (Neutron's default `WeightScheduler`). A network
    /// whose host died moves, so its guests' renewals find a server again.
    func scheduleDHCP(on hosts: [String: String]) async throws {
        guard !hosts.isEmpty else { return }
        let needing = try await db.query("""
            SELECT DISTINCT s.network_id FROM network_subnet s LEFT JOIN network_dhcp_host d ON d.network_id = s.network_id
            WHERE s.enable_dhcp = ? AND s.ip_version = 4 AND (d.host IS NULL OR d.host NOT IN (\(hosts.keys.map { _ in "?" }.joined(separator: ", "))))
            """, [.bool(true)] + hosts.keys.sorted().map { .text($0) }).map { $0.string("network_id") }
        for network in needing {
            guard let chosen = try await leastLoaded(hosts, bindings: "network_dhcp_host") else { return }
            try await write { x in
                // The row is taken again under the write: another controller may have scheduled it.
                let current = try await x.first("SELECT host FROM network_dhcp_host WHERE network_id = ?", .text(network))?.string("host")
                if let current, hosts[current] != nil { return }
                if current == nil {
                    try await x.execute("INSERT INTO network_dhcp_host (network_id, host) VALUES (?, ?)", .text(network), .text(chosen))
                } else {
                    try await x.execute("UPDATE network_dhcp_host SET host = ? WHERE network_id = ?", .text(chosen), .text(network))
                }
                try await x.execute("UPDATE network_port SET host_id = ? WHERE network_id = ? AND device_owner = ?",
                                    .text(chosen), .text(network), .text(Self.dhcpOwner))
            }
        }
    }

    /// Of `hosts`, the one with the fewest rows in `bindings` (a table with a `host` column), the
    /// first by name among equals.
    func leastLoaded(_ hosts: [String: String], bindings: String) async throws -> String? {
        var load: [String: Int] = Dictionary(uniqueKeysWithValues: hosts.keys.map { ($0, 0) })
        for row in try await db.query("SELECT host, COUNT(*) AS n FROM \(bindings) GROUP BY host") where load[row.string("host")] != nil {
            load[row.string("host")] = Int(row.int("n"))
        }
        return load.min(by: { ($0.value, $0.key) < ($1.value, $1.key) })?.key
    }

    // MARK: Routers

    /// Gives each router with an interface or a gateway whose L3 host is not alive a live one:
    /// the host running the fewest routers (Neutron's `LeastRoutersScheduler`); a router whose
    /// host died moves. A router that lost all its ports is unscheduled. Afterwards every port
    /// of a scheduled router is bound to the router's host (`binding:host_id`), so an interface
    /// added later and a moved router's ports follow the router.
    func scheduleRouters(on hosts: [String: String]) async throws {
        let routerOwners: [SQLValue] = [.text(Self.interfaceOwner), .text(Self.gatewayOwner)]
        let portless = try await db.query("""
            SELECT router_id FROM network_l3_host WHERE router_id NOT IN (SELECT device_id FROM network_port WHERE device_owner IN (?, ?))
            """, routerOwners).map { $0.string("router_id") }
        for router in portless {
            try await write { x in
                _ = try await x.execute("""
                    DELETE FROM network_l3_host WHERE router_id = ? AND router_id NOT IN (SELECT device_id FROM network_port WHERE device_owner IN (?, ?))
                    """, [.text(router)] + routerOwners)
            }
        }
        if !hosts.isEmpty {
            let needing = try await db.query("""
                SELECT DISTINCT r.id FROM network_router r JOIN network_port p ON p.device_id = r.id LEFT JOIN network_l3_host h ON h.router_id = r.id
                WHERE p.device_owner IN (?, ?) AND (h.host IS NULL OR h.host NOT IN (\(hosts.keys.map { _ in "?" }.joined(separator: ", "))))
                ORDER BY r.id
                """, routerOwners + hosts.keys.sorted().map { .text($0) }).map { $0.string("id") }
            for router in needing {
                guard let chosen = try await leastLoaded(hosts, bindings: "network_l3_host") else { break }
                try await write { x in
                    // Taken again under the write: another controller may have scheduled it, or
                    // the router may be gone.
                    guard try await x.first("SELECT 1 FROM network_router WHERE id = ?", .text(router)) != nil else { return }
                    let current = try await x.first("SELECT host FROM network_l3_host WHERE router_id = ?", .text(router))?.string("host")
                    if let current, hosts[current] != nil { return }
                    if current == nil {
                        try await x.execute("INSERT INTO network_l3_host (router_id, host) VALUES (?, ?)", .text(router), .text(chosen))
                    } else {
                        try await x.execute("UPDATE network_l3_host SET host = ? WHERE router_id = ?", .text(chosen), .text(router))
                    }
                }
            }
        }
        let misbound = """
            SELECT p.id, h.host FROM network_port p JOIN network_l3_host h ON h.router_id = p.device_id WHERE p.device_owner IN (?, ?) AND p.host_id <> h.host
            """
        guard !(try await db.query(misbound, routerOwners)).isEmpty else { return }
        try await write { x in
            // Read again under the write, as a router may have moved meanwhile.
            for row in try await x.query(misbound, routerOwners) { try await self.bind(row.string("id"), host: row.string("host"), x) }
        }
    }

    /// The routers scheduled to `host` that are up and have a port, with their ports' IPv4
    /// addresses (the first gateway apart from the others), static routes, associated floating
    /// IPs and, when `enable_ndp_proxy` is on, the NDP proxies' addresses. A router that is down is not
    /// wired anywhere (Neutron's L3 agent removes it).
    func hostRouters(host: String) async throws -> [HostNetworkState.Router] {
        let routerOwners: [SQLValue] = [.text(Self.interfaceOwner), .text(Self.gatewayOwner)]
        var routers: [HostNetworkState.Router] = []
        for row in try await db.query("""
            SELECT r.* FROM network_router r JOIN network_l3_host h ON h.router_id = r.id WHERE h.host = ? AND r.admin_state_up = ? ORDER BY r.id
            """, .text(host), .bool(true)) {
            let id = row.string("id")
            var router = HostNetworkState.Router(id: id, enableSNAT: row.bool("enable_snat"))
            let ports = try await db.query("""
                SELECT p.id, p.network_id, p.mac_address, p.device_owner, n.mtu FROM network_port p JOIN network_network n ON n.id = p.network_id
                WHERE p.device_id = ? AND p.device_owner IN (?, ?) ORDER BY p.created_at, p.id
                """, [.text(id)] + routerOwners)
            for port in ports {
                let addresses = try await db.query("""
                    SELECT a.subnet_id, a.ip_address, s.cidr, s.gateway_ip FROM network_ip_allocation a JOIN network_subnet s ON s.id = a.subnet_id
                    WHERE a.port_id = ? AND s.ip_version = 4 ORDER BY s.created_at, s.id, a.ip_address
                    """, .text(port.string("id")))
                let rendered = HostNetworkState.RouterPort(
                    id: port.string("id"), networkID: port.string("network_id"), macAddress: port.string("mac_address"),
                    addresses: addresses.map { .init(subnetID: $0.string("subnet_id"), address: $0.string("ip_address"), cidr: $0.string("cidr")) },
                    mtu: Int(port.int("mtu")))
                if port.string("device_owner") == Self.gatewayOwner, port.string("id") == row.optionalString("gateway_port_id") {
                    // The default route goes to the gateway IP of the first address's subnet.
                    router.gateway = .init(port: rendered, nexthop: addresses.first?.optionalString("gateway_ip"))
                } else if port.string("device_owner") == Self.gatewayOwner {
                    router.extraGateways.append(rendered)
                } else {
                    router.interfaces.append(rendered)
                }
            }
            guard !router.interfaces.isEmpty || !router.gatewayPorts.isEmpty else { continue }
            router.routes = (Self.decode(row, "routes").arrayValue ?? []).compactMap { route in
                guard let destination = route["destination"]?.stringValue, IPNetwork(destination)?.version == 4,
                      let nexthop = route["nexthop"]?.stringValue else { return nil }
                return .init(destination: destination, nexthop: nexthop)
            }
            if router.gateway != nil && row.bool("enable_ndp_proxy") {
                router.ndpProxies = try await db.query("SELECT ip_address FROM network_ndp_proxy WHERE router_id = ? ORDER BY ip_address", .text(id))
                    .map { $0.string("ip_address") }
            }
            if router.gateway != nil {
                router.floatingIPs = try await db.query("""
                    SELECT floating_ip_address, fixed_ip_address FROM network_floatingip
                    WHERE router_id = ? AND port_id IS NOT NULL AND fixed_ip_address IS NOT NULL ORDER BY floating_ip_address, id
                    """, .text(id)).map { .init(floatingAddress: $0.string("floating_ip_address"), fixedAddress: $0.string("fixed_ip_address")) }
            }
            let subnets = router.interfaces.flatMap { $0.addresses.map(\.subnetID) }
            if !subnets.isEmpty {
                router.metadataClients = try await db.query("""
                    SELECT a.ip_address, p.device_id, p.project_id FROM network_ip_allocation a JOIN network_port p ON p.id = a.port_id
                    WHERE a.subnet_id IN (\(subnets.map { _ in "?" }.joined(separator: ", "))) AND p.device_owner LIKE 'compute:%' AND p.device_id <> ''
                    ORDER BY a.ip_address
                    """, subnets.map { .text($0) }).map {
                    .init(address: $0.string("ip_address"), instanceID: $0.string("device_id"), projectID: $0.string("project_id"))
                }
            }
            routers.append(router)
        }
        return routers
    }

    /// The network's DHCP server on `host`: its `network:dhcp` port (made, or given an address
    /// on a subnet added since, as Neutron's DHCP agent does through its RPC) and a fixed lease
    /// for every other port with an address on a DHCP-enabled subnet. Nil when the network has
    /// no DHCP-enabled IPv4 subnet.
    func dhcpServer(network: String, host: String) async throws -> HostNetworkState.DHCPServer? {
        let subnets = try await db.query("SELECT * FROM network_subnet WHERE network_id = ? AND ip_version = 4 ORDER BY created_at, id", .text(network))
        let dhcpSubnets = subnets.filter { $0.bool("enable_dhcp") }
        guard !dhcpSubnets.isEmpty, let net = try await db.first("SELECT project_id, mtu FROM network_network WHERE id = ?", .text(network)) else {
            return nil
        }
        // Written only when something is missing: this runs on every sync of the DHCP host.
        let dhcpSubnetIDs = Set(dhcpSubnets.map { $0.string("id") })
        var portID = try await db.first("SELECT id, host_id FROM network_port WHERE network_id = ? AND device_owner = ? ORDER BY created_at LIMIT 1",
                                        .text(network), .text(Self.dhcpOwner)).flatMap { row in row.string("host_id") == host ? row.string("id") : nil }
        if let current = portID {
            let held = Set(try await db.query("SELECT subnet_id FROM network_ip_allocation WHERE port_id = ?", .text(current)).map { $0.string("subnet_id") })
            if !dhcpSubnetIDs.isSubset(of: held) { portID = nil }
        }
        if portID == nil { portID = try await write { x in
            let existing = try await x.first("SELECT id FROM network_port WHERE network_id = ? AND device_owner = ? ORDER BY created_at LIMIT 1",
                                             .text(network), .text(Self.dhcpOwner))?.string("id")
            let id: String
            if let existing {
                id = existing
            } else {
                id = try await self.insertServicePort(project: net.string("project_id"), network: network, device: "dhcp-\(network)",
                                                      owner: Self.dhcpOwner, fixedIPs: [], versions: [], x)
            }
            try await x.execute("UPDATE network_port SET host_id = ?, vif_type = 'bridge', status = 'ACTIVE' WHERE id = ?", .text(host), .text(id))
            let held = Set(try await x.query("SELECT subnet_id FROM network_ip_allocation WHERE port_id = ?", .text(id)).map { $0.string("subnet_id") })
            let missing = dhcpSubnets.map { $0.string("id") }.filter { !held.contains($0) }
            if !missing.isEmpty {
                let mac = try await x.first("SELECT mac_address FROM network_port WHERE id = ?", .text(id))?.string("mac_address") ?? ""
                try await self.allocateAddresses(missing.map { FixedIPRequest(subnetID: $0, address: nil) }, port: id, network: network, mac: mac,
                                                 versions: [4], x)
            }
            return id
        } }
        guard let portID, let dhcpPort = try await ports(where: "WHERE p.id = ?", [.text(portID)], db).first?.json else { return nil }

        var hosts: [HostNetworkState.DHCPHost] = []
        for port in try await ports(where: "WHERE p.network_id = ? AND p.id <> ? ORDER BY p.created_at, p.id", [.text(network), .text(portID)], db).map(\.json) {
            let options = (port["extra_dhcp_opts"]?.arrayValue ?? []).compactMap { option -> HostNetworkState.DHCPOption? in
                guard let name = option["opt_name"]?.stringValue, let value = option["opt_value"]?.stringValue else { return nil }
                return .init(name: name, value: value, ipVersion: option["ip_version"]?.intValue.map(Int.init) ?? 4)
            }
            for fixed in port["fixed_ips"]?.arrayValue ?? [] {
                guard let subnet = fixed["subnet_id"]?.stringValue, dhcpSubnetIDs.contains(subnet),
                      let address = fixed["ip_address"]?.stringValue else { continue }
                hosts.append(.init(portID: port["id"]?.stringValue ?? "", macAddress: port["mac_address"]?.stringValue ?? "", ipAddress: address,
                                   hostname: "host-" + address.replacingOccurrences(of: ".", with: "-"), options: options,
                                   deviceOwner: port["device_owner"]?.stringValue ?? "", deviceID: port["device_id"]?.stringValue ?? "",
                                   projectID: port["project_id"]?.stringValue ?? ""))
            }
        }
        let routed = Set(try await db.query("""
            SELECT DISTINCT a.subnet_id FROM network_ip_allocation a JOIN network_port p ON p.id = a.port_id
            WHERE p.network_id = ? AND p.device_owner = 'network:router_interface'
            """, .text(network)).map { $0.string("subnet_id") })
        let rendered = dhcpSubnets.map { row in
            HostNetworkState.Subnet(id: row.string("id"), cidr: row.string("cidr"), ipVersion: 4, gatewayIP: row.optionalString("gateway_ip"),
                                    dnsNameservers: Self.decode(row, "dns_nameservers").arrayValue?.compactMap(\.stringValue) ?? [],
                                    hostRoutes: (Self.decode(row, "host_routes").arrayValue ?? []).compactMap { route in
                                        guard let destination = route["destination"]?.stringValue, let nexthop = route["nexthop"]?.stringValue else { return nil }
                                        return .init(destination: destination, nexthop: nexthop)
                                    }, isolated: !routed.contains(row.string("id")))
        }
        return .init(networkID: network, port: Self.dataplanePort(dhcpPort), mtu: Int(net.int("mtu")), subnets: rendered, hosts: hosts)
    }

    /// The groups `ids`, with their rules, and for every group a rule names as its remote group
    /// that group's member addresses.
    func dataplaneSecurityGroups(_ ids: Set<String>) async throws -> [HostNetworkState.SecurityGroup] {
        guard !ids.isEmpty else { return [] }
        let marks = { (count: Int) in Array(repeating: "?", count: count).joined(separator: ", ") }
        let sorted = ids.sorted()
        let rules = try await db.query("SELECT * FROM network_security_group_rule WHERE security_group_id IN (\(marks(sorted.count))) ORDER BY id",
                                       sorted.map { .text($0) })
        let remotes = Set(rules.compactMap { $0.optionalString("remote_group_id") })
        let all = ids.union(remotes).sorted()
        var members: [String: [String]] = [:]
        for row in try await db.query("""
            SELECT g.security_group_id, a.ip_address FROM network_port_security_group g JOIN network_ip_allocation a ON a.port_id = g.port_id
            WHERE g.security_group_id IN (\(marks(all.count))) ORDER BY a.ip_address
            """, all.map { .text($0) }) {
            members[row.string("security_group_id"), default: []].append(row.string("ip_address"))
        }
        for row in try await db.query("""
            SELECT g.security_group_id, p.allowed_address_pairs FROM network_port_security_group g JOIN network_port p ON p.id = g.port_id
            WHERE g.security_group_id IN (\(marks(all.count))) AND p.allowed_address_pairs <> '[]'
            """, all.map { .text($0) }) {
            for pair in Self.decode(row, "allowed_address_pairs").arrayValue ?? [] {
                if let ip = pair["ip_address"]?.stringValue { members[row.string("security_group_id"), default: []].append(ip) }
            }
        }
        let addressGroups = try await addressGroupCIDRs(Set(rules.compactMap { $0.optionalString("remote_address_group_id") }))
        return all.map { id in
            HostNetworkState.SecurityGroup(id: id, rules: rules.filter { $0.string("security_group_id") == id }.flatMap { row in
                let rule = HostNetworkState.Rule(id: row.string("id"), direction: row.string("direction"), ethertype: row.string("ethertype"),
                                                 protocol: row.optionalString("protocol"), portRangeMin: row.optionalInt("port_range_min").map(Int.init),
                                                 portRangeMax: row.optionalInt("port_range_max").map(Int.init), remoteIPPrefix: row.optionalString("remote_ip_prefix").flatMap { IPNetwork($0)?.description },
                                                 remoteGroupID: row.optionalString("remote_group_id"))
                return Self.expandingAddressGroup(rule, row.optionalString("remote_address_group_id").map { addressGroups[$0] ?? [] })
            }, memberAddresses: Array(Set(members[id] ?? [])).sorted())
        }
    }

    static func dataplanePort(_ port: [String: JSON]) -> HostNetworkState.Port {
        HostNetworkState.Port(
            id: port["id"]?.stringValue ?? "", networkID: port["network_id"]?.stringValue ?? "", macAddress: port["mac_address"]?.stringValue ?? "",
            fixedIPs: (port["fixed_ips"]?.arrayValue ?? []).compactMap { fixed in
                guard let subnet = fixed["subnet_id"]?.stringValue, let address = fixed["ip_address"]?.stringValue else { return nil }
                return .init(subnetID: subnet, address: address)
            },
            allowedAddressPairs: (port["allowed_address_pairs"]?.arrayValue ?? []).compactMap { pair in
                pair["ip_address"]?.stringValue.map { .init(ipAddress: $0, macAddress: pair["mac_address"]?.stringValue) }
            },
            securityGroupIDs: port["security_groups"]?.arrayValue?.compactMap(\.stringValue) ?? [],
            portSecurityEnabled: port["port_security_enabled"]?.boolValue ?? true, adminStateUp: port["admin_state_up"]?.boolValue ?? true,
            deviceOwner: port["device_owner"]?.stringValue ?? "", deviceID: port["device_id"]?.stringValue ?? "")
    }
}
