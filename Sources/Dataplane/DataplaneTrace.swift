import Foundation
import NimbusCore

/// The troubleshooting walk of one port (Neutron operators' "the instance gets no IP", "ping
/// fails" lists) as checks: each link of the chain its traffic takes — its binding, its tap on
/// the network's bridge, the VXLAN interface and its flooding entries, the DHCP server, the
/// router with its NAT for the port's floating IPs, its security-group chains, the metadata
/// listener — compared between what the cloud says should exist (`Expectation`, from the API)
/// and what this host's kernel has. Links that live on another host are reported as such and
/// not checked. Reads only; changes nothing.
public struct DataplaneTrace: Sendable {
    /// This host's name (as ports' `binding:host_id` and the DHCP and router hosts name it).
    public var host: String
    /// The agent's state directory (`dhcp/<network id>/` holds each DHCP server's files).
    public var stateDirectory: String
    /// The named namespace the host's bridges and taps live in; nil for the caller's own.
    public var hostNamespace: String?

    public init(host: String, stateDirectory: String, hostNamespace: String? = nil) {
        (self.host, self.stateDirectory, self.hostNamespace) = (host, stateDirectory, hostNamespace)
    }

    // MARK: What should exist

    /// What the cloud's API says about one port and everything its traffic depends on.
    public struct Expectation: Sendable, Equatable {
        public var port: Port
        public var network: Network
        /// The network's DHCP server; nil when no subnet of the port's has DHCP.
        public var dhcp: DHCP?
        /// The router with an interface on the port's subnet; nil when there is none.
        public var router: Router?

        public init(port: Port, network: Network, dhcp: DHCP? = nil, router: Router? = nil) {
            (self.port, self.network, self.dhcp, self.router) = (port, network, dhcp, router)
        }
    }

    public struct Port: Sendable, Equatable {
        public var id: String
        /// Neutron's `status`: `ACTIVE` once its host wired it.
        public var status: String
        /// `binding:host_id`; empty when unbound.
        public var bindingHost: String
        /// `binding:vif_type`: `unbound` or `binding_failed` when no host can carry it.
        public var vifType: String
        public var macAddress: String
        /// Its fixed IPv4 addresses.
        public var addresses: [String]
        public var portSecurityEnabled: Bool

        public init(id: String, status: String, bindingHost: String, vifType: String, macAddress: String, addresses: [String],
                    portSecurityEnabled: Bool = true) {
            (self.id, self.status, self.bindingHost, self.vifType) = (id, status, bindingHost, vifType)
            (self.macAddress, self.addresses, self.portSecurityEnabled) = (macAddress, addresses, portSecurityEnabled)
        }
    }

    public struct Network: Sendable, Equatable {
        public var id: String
        /// `provider:network_type`.
        public var networkType: String
        /// `provider:segmentation_id` (the VNI of a `vxlan` network, the VLAN id of a `vlan` one).
        public var segmentationID: Int?
        /// The tunnel endpoints of the other hosts with something on the network, which this
        /// host's VXLAN interface must flood to; nil when they are not known (not compared).
        public var peers: [String]?

        public init(id: String, networkType: String, segmentationID: Int? = nil, peers: [String]? = nil) {
            (self.id, self.networkType, self.segmentationID, self.peers) = (id, networkType, segmentationID, peers)
        }
    }

    public struct DHCP: Sendable, Equatable {
        /// The host its `network:dhcp` port is bound to (where dnsmasq runs).
        public var host: String
        public var portID: String
        /// The DHCP port's addresses with their subnets' prefix lengths (`10.0.0.2/24`).
        public var addresses: [String]
        /// The guests on an isolated subnet (no router) reach the metadata service here.
        public var servesMetadata: Bool

        public init(host: String, portID: String, addresses: [String], servesMetadata: Bool) {
            (self.host, self.portID, self.addresses, self.servesMetadata) = (host, portID, addresses, servesMetadata)
        }
    }

    public struct Router: Sendable, Equatable {
        public var id: String
        /// The host its ports are bound to (its L3 agent's).
        public var host: String
        /// Its `network:router_interface` port on the port's subnet (`qr-`).
        public var interfacePortID: String
        /// Its `network:router_gateway` port (`qg-`); nil without an external gateway.
        public var gatewayPortID: String?
        /// The gateway port's addresses with their prefix lengths (`172.24.4.2/24`).
        public var gatewayAddresses: [String]
        /// The floating IPs associated with the traced port.
        public var floatingIPs: [FloatingIP]

        public init(id: String, host: String, interfacePortID: String, gatewayPortID: String? = nil, gatewayAddresses: [String] = [],
                    floatingIPs: [FloatingIP] = []) {
            (self.id, self.host, self.interfacePortID, self.gatewayPortID) = (id, host, interfacePortID, gatewayPortID)
            (self.gatewayAddresses, self.floatingIPs) = (gatewayAddresses, floatingIPs)
        }
    }

    public struct FloatingIP: Sendable, Equatable {
        public var floatingAddress: String
        public var fixedAddress: String

        public init(floatingAddress: String, fixedAddress: String) { (self.floatingAddress, self.fixedAddress) = (floatingAddress, fixedAddress) }
    }

    // MARK: What was found

    /// One link of the chain.
    public enum Kind: String, Sendable, CaseIterable {
        case port, tap, bridge, vxlan, vlan, flooding, securityGroups = "security groups"
        case dhcpNamespace = "dhcp namespace", dhcpInterface = "dhcp interface", dnsmasq, dhcpHostEntry = "dhcp host entry"
        case routerNamespace = "router namespace", routerInterface = "router interface", routerGateway = "router gateway"
        case floatingIPNAT = "floating ip nat", metadata
    }

    public enum Status: Sendable, Equatable {
        case ok
        /// What is wrong with it.
        case broken(String)
        /// It lives on another host: not checked here.
        case elsewhere(host: String)
    }

    public struct Link: Sendable, Equatable {
        public var kind: Kind
        /// The device, namespace or file checked (`tap3f2a9c1e-7b`, `qdhcp-…`).
        public var subject: String
        public var status: Status
        /// What was found, for an `ok` link.
        public var detail: String

        public init(_ kind: Kind, _ subject: String, _ status: Status, _ detail: String = "") {
            (self.kind, self.subject, self.status, self.detail) = (kind, subject, status, detail)
        }

        public var isBroken: Bool { if case .broken = status { return true } else { return false } }
    }

    // MARK: Checking

    /// The port's chain, in the order its traffic takes it. A check that could not run (a tool
    /// failed) is a broken link saying why.
    public func trace(_ expected: Expectation) async -> [Link] {
        var links: [Link] = []
        let port = expected.port
        links.append(checkBinding(port))
        let boundHere = port.bindingHost == host
        let tap = DeviceNames.tap(port: port.id), bridge = DeviceNames.bridge(network: expected.network.id)
        let hostLinks = await hostInterfaces()

        // Layer 2: the port's tap and filter where it is bound; the network's bridge wherever
        // this host has something on it (the port, or the network's DHCP server or router).
        let localDHCP = expected.dhcp?.host == host, localRouter = expected.router?.host == host
        switch hostLinks {
        case .failure(let error):
            links.append(Link(.bridge, bridge, .broken("cannot list the host's interfaces: \(error)")))
        case .success(let interfaces):
            if boundHere || localDHCP || localRouter {
                links += checkLayer2(port: boundHere ? port : nil, network: expected.network, interfaces: interfaces)
                if let flooding = await checkFlooding(expected.network, interfaces: interfaces) { links.append(flooding) }
            } else if !port.bindingHost.isEmpty {
                links.append(Link(.bridge, bridge, .elsewhere(host: port.bindingHost)))
            }
        }
        if boundHere {
            links.append(await checkSecurityGroups(port))
        } else if !port.bindingHost.isEmpty {
            links.insert(Link(.tap, tap, .elsewhere(host: port.bindingHost)), at: 1)
            links.append(Link(.securityGroups, tap, .elsewhere(host: port.bindingHost)))
        }

        let namespaces = (try? await IPRoute.namespaces()) ?? []
        if let dhcp = expected.dhcp { links += await checkDHCP(dhcp, port: port, network: expected.network.id, namespaces: namespaces) }
        if let router = expected.router { links += await checkRouter(router, namespaces: namespaces) }
        links.append(await checkMetadata(expected, namespaces: namespaces))
        return links
    }

    func checkBinding(_ port: Port) -> Link {
        let detail = "status \(port.status), bound to \(port.bindingHost.isEmpty ? "(none)" : port.bindingHost), vif type \(port.vifType)"
        if port.bindingHost.isEmpty || ["unbound", "binding_failed"].contains(port.vifType) {
            return Link(.port, port.id, .broken("not bound: \(detail)"))
        }
        if port.status != "ACTIVE" { return Link(.port, port.id, .broken("not ACTIVE: \(detail)")) }
        return Link(.port, port.id, .ok, detail)
    }

    func hostInterfaces() async -> Result<[String: IPRoute.Link], Error> {
        do {
            return .success(Dictionary(try await IPRoute.links(netns: hostNamespace).map { ($0.ifname, $0) }, uniquingKeysWith: { first, _ in first }))
        } catch {
            return .failure(error)
        }
    }

    /// The port's tap (when `port` is given), the network's bridge and, for `vxlan`, its VXLAN
    /// interface; for `vlan`, its VLAN sub-interface (found by its VLAN id: which physical
    /// interface it hangs from is the host's configuration, not the API's).
    func checkLayer2(port: Port?, network: Network, interfaces: [String: IPRoute.Link]) -> [Link] {
        var links: [Link] = []
        let bridge = DeviceNames.bridge(network: network.id)
        if let port {
            let tap = DeviceNames.tap(port: port.id)
            if let link = interfaces[tap] {
                if !link.isUp {
                    links.append(Link(.tap, tap, .broken("is down")))
                } else if link.master != bridge {
                    links.append(Link(.tap, tap, .broken("is on \(link.master ?? "no bridge"), not \(bridge)")))
                } else {
                    links.append(Link(.tap, tap, .ok, "up, on \(bridge)"))
                }
            } else {
                links.append(Link(.tap, tap, .broken("does not exist")))
            }
        }
        if let link = interfaces[bridge] {
            links.append(link.kind != "bridge" ? Link(.bridge, bridge, .broken("is a \(link.kind ?? "device"), not a bridge"))
                         : link.isUp ? Link(.bridge, bridge, .ok, "up, mtu \(link.mtu.map(String.init) ?? "?")")
                         : Link(.bridge, bridge, .broken("is down")))
        } else {
            links.append(Link(.bridge, bridge, .broken("does not exist")))
        }
        if network.networkType == "vxlan" {
            guard let vni = network.segmentationID else {
                links.append(Link(.vxlan, "vxlan", .broken("the network has no VNI")))
                return links
            }
            let name = DeviceNames.vxlan(vni: vni)
            if let link = interfaces[name] {
                if link.kind != "vxlan" || link.linkinfo?.info_data?.id != vni {
                    links.append(Link(.vxlan, name, .broken("is not a VXLAN interface with VNI \(vni)")))
                } else if link.master != bridge {
                    links.append(Link(.vxlan, name, .broken("is on \(link.master ?? "no bridge"), not \(bridge)")))
                } else if !link.isUp {
                    links.append(Link(.vxlan, name, .broken("is down")))
                } else {
                    links.append(Link(.vxlan, name, .ok, "VNI \(vni), up, on \(bridge)"))
                }
            } else {
                links.append(Link(.vxlan, name, .broken("does not exist")))
            }
        }
        if network.networkType == "vlan" {
            guard let vlan = network.segmentationID else {
                links.append(Link(.vlan, "vlan", .broken("the network has no VLAN id")))
                return links
            }
            let tagged = interfaces.values.filter { $0.kind == "vlan" && $0.linkinfo?.info_data?.id == vlan }.sorted { $0.ifname < $1.ifname }
            if let link = tagged.first(where: { $0.master == bridge }) ?? tagged.first {
                links.append(link.master != bridge ? Link(.vlan, link.ifname, .broken("is on \(link.master ?? "no bridge"), not \(bridge)"))
                             : !link.isUp ? Link(.vlan, link.ifname, .broken("is down"))
                             : Link(.vlan, link.ifname, .ok, "VLAN \(vlan), up, on \(bridge)"))
            } else {
                links.append(Link(.vlan, "VLAN \(vlan)", .broken("no VLAN interface with that id exists")))
            }
        }
        return links
    }

    /// A `vxlan` network's flooding entries (one all-zero entry per peer); nil for other types.
    func checkFlooding(_ network: Network, interfaces: [String: IPRoute.Link]) async -> Link? {
        guard network.networkType == "vxlan", let vni = network.segmentationID else { return nil }
        let name = DeviceNames.vxlan(vni: vni)
        guard interfaces[name] != nil else { return Link(.flooding, name, .broken("no VXLAN interface to flood from")) }
        let present: Set<String>
        do {
            present = Set(try await IPRoute.fdb(device: name, netns: hostNamespace).filter { $0.mac == "00:00:00:00:00:00" }.compactMap(\.dst))
        } catch {
            return Link(.flooding, name, .broken("cannot read its forwarding entries: \(error)"))
        }
        let listed = present.isEmpty ? "no peers" : "peers " + present.sorted().joined(separator: ", ")
        guard let peers = network.peers else { return Link(.flooding, name, .ok, listed + " (expected peers unknown)") }
        let missing = Set(peers).subtracting(present), extra = present.subtracting(peers)
        var wrong: [String] = []
        if !missing.isEmpty { wrong.append("no flooding entry for " + missing.sorted().joined(separator: ", ")) }
        if !extra.isEmpty { wrong.append("floods to " + extra.sorted().joined(separator: ", ") + ", which have nothing on the network") }
        return wrong.isEmpty ? Link(.flooding, name, .ok, listed) : Link(.flooding, name, .broken(wrong.joined(separator: "; ")))
    }

    func checkSecurityGroups(_ port: Port) async -> Link {
        let tap = DeviceNames.tap(port: port.id)
        do {
            let filtering = try await SecurityGroupFirewall(namespace: hostNamespace).isFiltering(portID: port.id)
            switch (port.portSecurityEnabled, filtering) {
            case (true, true): return Link(.securityGroups, tap, .ok, "its four chains are loaded")
            case (true, false): return Link(.securityGroups, tap, .broken("its chains are not (all) loaded: its traffic is not filtered"))
            case (false, false): return Link(.securityGroups, tap, .ok, "port security off: no chains")
            case (false, true): return Link(.securityGroups, tap, .broken("port security is off but its chains are loaded"))
            }
        } catch {
            return Link(.securityGroups, tap, .broken("cannot read the firewall: \(error)"))
        }
    }

    func checkDHCP(_ dhcp: DHCP, port: Port, network: String, namespaces: Set<String>) async -> [Link] {
        let namespace = DeviceNames.dhcpNamespace(network: network)
        guard dhcp.host == host else { return [Link(.dhcpNamespace, namespace, .elsewhere(host: dhcp.host))] }
        guard namespaces.contains(namespace) else { return [Link(.dhcpNamespace, namespace, .broken("does not exist"))] }
        var links = [Link(.dhcpNamespace, namespace, .ok)]

        let interface = DeviceNames.dhcpInterface(port: dhcp.portID)
        do {
            let link = try await IPRoute.links(netns: namespace).first { $0.ifname == interface }
            let addresses = link == nil ? [] : try await IPRoute.addresses(interface, netns: namespace)
            let missing = Set(dhcp.addresses).subtracting(addresses)
            if link == nil {
                links.append(Link(.dhcpInterface, interface, .broken("does not exist in \(namespace)")))
            } else if link?.isUp != true {
                links.append(Link(.dhcpInterface, interface, .broken("is down")))
            } else if !missing.isEmpty {
                links.append(Link(.dhcpInterface, interface, .broken("lacks " + missing.sorted().joined(separator: ", "))))
            } else {
                links.append(Link(.dhcpInterface, interface, .ok, "up, " + dhcp.addresses.sorted().joined(separator: ", ")))
            }
        } catch {
            links.append(Link(.dhcpInterface, interface, .broken("cannot read \(namespace): \(error)")))
        }

        let directory = "\(stateDirectory)/dhcp/\(network)"
        if let pid = LinuxBridgeDataplane.dnsmasqPID(directory) {
            links.append(Link(.dnsmasq, directory, .ok, "pid \(pid)"))
        } else {
            links.append(Link(.dnsmasq, directory, .broken("not running")))
        }

        // The hosts file's lines are `mac,[set:tag,]hostname,address` (DnsmasqFiles).
        let hostsFile = "\(directory)/host"
        if let text = try? String(contentsOfFile: hostsFile, encoding: .utf8) {
            let entries = text.split(separator: "\n").map { $0.split(separator: ",").map(String.init) }
            let missing = port.addresses.filter { address in
                !entries.contains { $0.first?.lowercased() == port.macAddress.lowercased() && $0.last == address }
            }
            links.append(missing.isEmpty ? Link(.dhcpHostEntry, hostsFile, .ok, "\(port.macAddress) → " + port.addresses.joined(separator: ", "))
                         : Link(.dhcpHostEntry, hostsFile, .broken("no entry for \(port.macAddress) → " + missing.joined(separator: ", "))))
        } else {
            links.append(Link(.dhcpHostEntry, hostsFile, .broken("cannot be read")))
        }
        return links
    }

    func checkRouter(_ router: Router, namespaces: Set<String>) async -> [Link] {
        let namespace = DeviceNames.routerNamespace(router: router.id)
        guard router.host == host else { return [Link(.routerNamespace, namespace, .elsewhere(host: router.host))] }
        guard namespaces.contains(namespace) else { return [Link(.routerNamespace, namespace, .broken("does not exist"))] }
        var links = [Link(.routerNamespace, namespace, .ok)]
        let inside: [String: IPRoute.Link]
        do {
            inside = Dictionary(try await IPRoute.links(netns: namespace).map { ($0.ifname, $0) }, uniquingKeysWith: { first, _ in first })
        } catch {
            return links + [Link(.routerInterface, namespace, .broken("cannot list its interfaces: \(error)"))]
        }

        let interface = DeviceNames.routerInterface(port: router.interfacePortID)
        links.append(inside[interface] == nil ? Link(.routerInterface, interface, .broken("does not exist in \(namespace)"))
                     : inside[interface]?.isUp == true ? Link(.routerInterface, interface, .ok, "up")
                     : Link(.routerInterface, interface, .broken("is down")))

        if let gatewayPort = router.gatewayPortID {
            let gateway = DeviceNames.routerGateway(port: gatewayPort)
            if inside[gateway] == nil {
                links.append(Link(.routerGateway, gateway, .broken("does not exist in \(namespace)")))
            } else if inside[gateway]?.isUp != true {
                links.append(Link(.routerGateway, gateway, .broken("is down")))
            } else {
                // The gateway holds its own addresses and each floating address (as /32).
                let wanted = Set(router.gatewayAddresses + router.floatingIPs.map { "\($0.floatingAddress)/32" })
                let had = (try? await IPRoute.addresses(gateway, netns: namespace)) ?? []
                let missing = wanted.subtracting(had)
                links.append(missing.isEmpty ? Link(.routerGateway, gateway, .ok, "up, " + wanted.sorted().joined(separator: ", "))
                             : Link(.routerGateway, gateway, .broken("lacks " + missing.sorted().joined(separator: ", "))))
            }
        }

        if !router.floatingIPs.isEmpty {
            let subject = "table ip \(LinuxBridgeDataplane.natTable) in \(namespace)"
            let listing = await HostProcess.runOrNil("ip", ["netns", "exec", namespace, "nft", "list", "table", "ip", LinuxBridgeDataplane.natTable])
            guard let listing else {
                links.append(Link(.floatingIPNAT, subject, .broken("no NAT table")))
                return links
            }
            let lines = listing.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            var missing: [String] = []
            for floating in router.floatingIPs {
                // DNAT in prerouting (from outside) and output (from the router itself); SNAT once.
                let dnat = "ip daddr \(floating.floatingAddress) dnat to \(floating.fixedAddress)"
                let snat = "ip saddr \(floating.fixedAddress) snat to \(floating.floatingAddress)"
                let dnatCount = lines.filter { $0 == dnat }.count
                if dnatCount == 0 { missing.append(dnat) } else if dnatCount == 1 { missing.append(dnat + " (in one of prerouting and output only)") }
                if !lines.contains(snat) { missing.append(snat) }
            }
            let pairs = router.floatingIPs.map { "\($0.floatingAddress) ↔ \($0.fixedAddress)" }.joined(separator: ", ")
            links.append(missing.isEmpty ? Link(.floatingIPNAT, subject, .ok, pairs)
                         : Link(.floatingIPNAT, subject, .broken("missing: " + missing.joined(separator: "; "))))
        }
        return links
    }

    /// Something listens on 169.254.169.254:80 where the port's guest reaches the metadata
    /// service: the router's namespace when its subnet has a router, else the DHCP namespace.
    func checkMetadata(_ expected: Expectation, namespaces: Set<String>) async -> Link {
        let namespace: String, serverHost: String
        if let router = expected.router {
            (namespace, serverHost) = (DeviceNames.routerNamespace(router: router.id), router.host)
        } else if let dhcp = expected.dhcp, dhcp.servesMetadata {
            (namespace, serverHost) = (DeviceNames.dhcpNamespace(network: expected.network.id), dhcp.host)
        } else {
            return Link(.metadata, "\(MetadataAddress.ipv4):\(MetadataAddress.port)", .broken("no router and no DHCP server: the guest has no way to the metadata service"))
        }
        let subject = "\(MetadataAddress.ipv4):\(MetadataAddress.port) in \(namespace)"
        guard serverHost == host else { return Link(.metadata, subject, .elsewhere(host: serverHost)) }
        guard namespaces.contains(namespace) else { return Link(.metadata, subject, .broken("\(namespace) does not exist")) }
        guard let sockets = await HostProcess.runOrNil("ip", ["netns", "exec", namespace, "ss", "-Hltn"]) else {
            return Link(.metadata, subject, .broken("cannot list the listening sockets in \(namespace)"))
        }
        // `ss -ltn` columns: State Recv-Q Send-Q Local-Address:Port Peer-Address:Port.
        let listening = sockets.split(separator: "\n").contains { line in
            let columns = line.split(separator: " ", omittingEmptySubsequences: true)
            return columns.count >= 4 && (columns[3] == "\(MetadataAddress.ipv4):\(MetadataAddress.port)" || columns[3] == "0.0.0.0:\(MetadataAddress.port)")
        }
        return listening ? Link(.metadata, subject, .ok, "listening") : Link(.metadata, subject, .broken("nothing listens (the host's agent runs the metadata proxy)"))
    }
}

extension HostProcess {
    /// The command's stdout when it exits 0, else nil.
    static func runOrNil(_ executable: String, _ arguments: [String]) async -> String? {
        guard let output = try? await run(executable, arguments), output.status == 0 else { return nil }
        return output.stdout
    }
}
