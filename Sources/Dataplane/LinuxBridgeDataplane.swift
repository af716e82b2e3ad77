import Foundation
import HostAPI
import Logging
import NimbusCore
#if canImport(Glibc)
import Glibc
#endif

/// Where a host's dataplane meets the host: its tunnel endpoint, its physical networks, and
/// the directory that holds its DHCP servers' files.
public struct DataplaneSettings: Sendable {
    /// The host's name; the interfaces it makes carry `nimbus:<host>` as their alias, so two
    /// hosts sharing one network namespace (tests do) never take each other's for leftovers.
    public var host: String
    /// The underlay address VXLAN traffic leaves from and other hosts send to (`[vxlan] local_ip`).
    public var tunnelingIP: String
    /// Holds `dhcp/<network id>/` for each DHCP server (dnsmasq's pid, hosts, options and leases)
    /// and `routers/<router id>/` for each router (its NAT ruleset as last loaded).
    public var stateDirectory: String
    /// Physical network → the interface a `flat` network's bridge takes in (and a `vlan`
    /// network's sub-interfaces hang from): `physical_interface_mappings`.
    public var physicalInterfaceMappings: [String: String]
    /// The named network namespace the host's bridges and taps live in; nil for the agent's
    /// own (tests put a whole "host" in a namespace this way).
    public var hostNamespace: String?

    public init(host: String, tunnelingIP: String, stateDirectory: String, physicalInterfaceMappings: [String: String] = [:],
                hostNamespace: String? = nil) {
        (self.host, self.tunnelingIP, self.stateDirectory, self.physicalInterfaceMappings) = (host, tunnelingIP, stateDirectory, physicalInterfaceMappings)
        self.hostNamespace = hostNamespace
    }
}

/// Neutron's Linux bridge, DHCP and L3 agents' work on one host (the seed's guest NIC → tap →
/// bridge → VXLAN path, dnsmasq in `qdhcp-` namespaces, routers with NAT in `qrouter-`
/// namespaces): makes the host match a `HostNetworkState`.
public actor LinuxBridgeDataplane {
    public let settings: DataplaneSettings
    let logger: Logger
    let firewall: SecurityGroupFirewall
    /// The ports and groups the firewall was last loaded with: loaded again only when they change.
    var firewallLoaded: FirewallInput?

    struct FirewallInput: Equatable {
        var ports: [HostNetworkState.Port]
        var groups: [HostNetworkState.SecurityGroup]
    }
    /// The VXLAN UDP port (IANA's, as Linux bridge agent's `vxlan_udp_port` default).
    static let vxlanPort = 4789

    public init(settings: DataplaneSettings, logger: Logger) {
        (self.settings, self.logger) = (settings, logger)
        firewall = SecurityGroupFirewall(namespace: settings.hostNamespace, rulesetFile: settings.stateDirectory + "/security-groups.nft", logger: logger)
    }

    var marker: String { "nimbus:\(settings.host)" }
    var dhcpRoot: String { settings.stateDirectory + "/dhcp" }

    /// What `apply` did not manage: each problem names the resource and what failed.
    public struct Outcome: Sendable, Equatable {
        /// Ports of the state whose tap exists, is up and is on its network's bridge.
        public var wiredPorts: [String]
        public var problems: [String]
    }

    /// Makes the host match `state`, changing only what differs. `pinned` are guests' ports
    /// plugged ahead of their binding (a guest arriving by migration): they are wired as the
    /// state's ports are and not taken for leftovers.
    ///
    /// Postconditions: each port's tap exists and is up on its network's bridge (`brq…`), with
    /// the network's MTU; a `vxlan` network's bridge holds `vxlan-<VNI>` whose flooding entries
    /// name exactly the network's peers; a `flat` network's bridge holds its mapped interface;
    /// each DHCP server runs: its `qdhcp-` namespace, its veth (`tap…` on the bridge, `ns-…`
    /// with the port's MAC and addresses inside), and dnsmasq with the current hosts and options
    /// (re-read without a restart when only they changed); the security groups of the state's
    /// ports are loaded (`SecurityGroupFirewall`) before their taps join a bridge; each router
    /// runs in its `qrouter-` namespace (`ensureRouter`); every interface this host made and
    /// every DHCP server and router it runs that the state no longer has are gone. One resource
    /// failing does not stop the others: its problem is in the outcome.
    public func apply(_ state: HostNetworkState, pinned: [VIF] = []) async throws -> Outcome {
        var problems: [String] = []
        var links = Dictionary(try await IPRoute.links(netns: settings.hostNamespace).map { ($0.ifname, $0) }, uniquingKeysWith: { first, _ in first })
        let networks = Dictionary(state.networks.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })

        // Filtering first, so no port is on a bridge unfiltered.
        let firewallInput = FirewallInput(ports: state.ports, groups: state.securityGroups)
        if firewallInput != firewallLoaded {
            do {
                // No port to filter: no tables at all (a host without guests keeps its firewall as it was).
                if state.ports.isEmpty { try await firewall.removeAll() } else { try await firewall.apply(ports: state.ports, securityGroups: state.securityGroups) }
                firewallLoaded = firewallInput
            } catch {
                firewallLoaded = nil
                problems.append("security groups: \(error)")
            }
        }

        var wanted: Set<String> = []
        var ports = state.ports.map { (id: $0.id, network: $0.networkID, up: $0.adminStateUp) }
        for vif in pinned where !ports.contains(where: { $0.id == vif.portID }) { ports.append((vif.portID, vif.networkID, true)) }
        let networkIDs = Set(ports.map(\.network)).union(state.dhcp.map(\.networkID)).union(state.routers.flatMap(\.networkIDs))

        // Networks whose bridge or way off the host could not be made: their ports are not
        // plugged (as Neutron's Linux bridge agent leaves a port of an unknown network type).
        var unwired: Set<String> = []
        for id in networkIDs.sorted() {
            let network = networks[id] ?? .init(id: id, networkType: "local", mtu: pinned.first { $0.networkID == id }?.mtu ?? 1500)
            let bridge = DeviceNames.bridge(network: id)
            wanted.insert(bridge)
            do {
                guard Self.networkTypes.contains(network.networkType) else {
                    // `gre` (ML2 has a type driver for it): Neutron's Linux bridge agent carries
                    // no GRE, and its mechanism driver binds no port on such a segment.
                    throw DataplaneError("network type \(network.networkType) is not supported by the Linux bridge dataplane (\(Self.networkTypes.joined(separator: ", ")) are)")
                }
                try await ensureBridge(bridge, mtu: network.mtu, links: &links)
                if let uplink = try await ensureUplink(network, bridge: bridge, links: &links) { wanted.insert(uplink) }
            } catch {
                problems.append("network \(id): \(error)")
                unwired.insert(id)
            }
        }

        let mtuOf = { (port: (id: String, network: String, up: Bool)) in networks[port.network]?.mtu ?? pinned.first { $0.portID == port.id }?.mtu ?? 1500 }
        await ensureTaps(ports.filter { !unwired.contains($0.network) }.map { (DeviceNames.tap(port: $0.id), DeviceNames.bridge(network: $0.network), mtuOf($0), $0.up) },
                         links: &links)
        var wired: [String] = []
        for port in ports {
            let tap = DeviceNames.tap(port: port.id)
            wanted.insert(tap)
            guard !unwired.contains(port.network) else {
                problems.append("port \(port.id): not plugged, its network \(port.network) is not wired")
                continue
            }
            let mtu = mtuOf(port)
            do {
                try await ensureTap(tap, bridge: DeviceNames.bridge(network: port.network), mtu: mtu, up: port.up, links: &links)
                if state.ports.contains(where: { $0.id == port.id }) { wired.append(port.id) }
            } catch {
                problems.append("port \(port.id): \(error)")
            }
        }

        var servers: Set<String> = []
        for server in state.dhcp {
            servers.insert(server.networkID)
            wanted.insert(DeviceNames.tap(port: server.port.id))
            do {
                try await ensureDHCP(server, links: &links)
            } catch {
                problems.append("DHCP of network \(server.networkID): \(error)")
            }
        }

        var routers: Set<String> = []
        for router in state.routers {
            routers.insert(router.id)
            wanted.formUnion(Self.bridgeSideDevices(router))
            do {
                try await ensureRouter(router, links: &links)
            } catch {
                problems.append("router \(router.id): \(error)")
            }
        }

        problems += await removeLeftovers(keeping: wanted, servers: servers, routers: routers, links: links)
        return Outcome(wiredPorts: wired, problems: problems)
    }

    /// Removes everything this host made: every DHCP server and every interface carrying its
    /// marker. Postcondition: nothing of this host's is left on the host.
    public func removeAll() async throws {
        let problems = await removeLeftovers(keeping: [], servers: [], routers: [], links: Dictionary(try await IPRoute.links(netns: settings.hostNamespace).map { ($0.ifname, $0) },
                                                                                      uniquingKeysWith: { first, _ in first }))
        do {
            try await firewall.removeAll()
            firewallLoaded = nil
        } catch {
            throw DataplaneError((problems + ["security groups: \(error)"]).joined(separator: "; "))
        }
        if !problems.isEmpty { throw DataplaneError(problems.joined(separator: "; ")) }
    }

    // MARK: Layer 2

    func ensureBridge(_ name: String, mtu: Int, links: inout [String: IPRoute.Link]) async throws {
        if links[name] == nil {
            // No STP and no forwarding delay: a bridge with one uplink cannot loop, and a port
            // must forward the moment it is added (a guest's first DHCP discover).
            try await IPRoute.ip(["link", "add", name, "type", "bridge", "stp_state", "0", "forward_delay", "0"], netns: settings.hostNamespace)
            try await IPRoute.ip(["link", "set", name, "alias", marker, "mtu", String(mtu), "up"], netns: settings.hostNamespace)
            links[name] = IPRoute.Link(ifname: name, mtu: mtu, flags: ["UP"], ifalias: marker, linkinfo: .init(info_kind: "bridge"))
            return
        }
        if links[name]?.mtu != mtu || links[name]?.isUp != true {
            try await IPRoute.ip(["link", "set", name, "mtu", String(mtu), "up"], netns: settings.hostNamespace)
        }
    }

    /// The network's way off the host, attached to its bridge: its name, or nil for a `local`
    /// network (or a `flat` one, whose mapped interface is the operator's).
    func ensureUplink(_ network: HostNetworkState.Network, bridge: String, links: inout [String: IPRoute.Link]) async throws -> String? {
        switch network.networkType {
        case "vxlan":
            guard let vni = network.segmentationID else { throw DataplaneError("a vxlan network without a VNI") }
            let name = DeviceNames.vxlan(vni: vni)
            if links[name] == nil {
                try await IPRoute.ip(["link", "add", name, "type", "vxlan", "id", String(vni), "local", settings.tunnelingIP,
                                      "dstport", String(Self.vxlanPort)], netns: settings.hostNamespace)
                links[name] = IPRoute.Link(ifname: name, ifalias: marker, linkinfo: .init(info_kind: "vxlan"))
            }
            try await attach(name, to: bridge, mtu: network.mtu, links: &links)
            try await syncFlooding(name, peers: network.peers)
            return name
        case "flat", "vlan":
            guard let physnet = network.physicalNetwork, let interface = settings.physicalInterfaceMappings[physnet] else {
                throw DataplaneError("physical network \(network.physicalNetwork ?? "(none)") is not in physical_interface_mappings")
            }
            if network.networkType == "flat" {
                // The mapped interface is the operator's: it is attached, never made or removed.
                if links[interface]?.master != bridge { try await IPRoute.ip(["link", "set", interface, "master", bridge, "up"], netns: settings.hostNamespace) }
                return nil
            }
            guard let vlan = network.segmentationID else { throw DataplaneError("a vlan network without a VLAN id") }
            let name = Self.vlanInterface(physical: interface, vlan: vlan)
            if links[name] == nil {
                do {
                    try await IPRoute.ip(["link", "add", "link", interface, "name", name, "type", "vlan", "id", String(vlan)], netns: settings.hostNamespace)
                } catch let error as HostProcessError {
                    // A kernel without 802.1Q answers "Unknown device type": said as the kernel says it.
                    throw DataplaneError("\(Self.vlanUnavailable) \(name) on \(interface): \(error.message)")
                }
                links[name] = IPRoute.Link(ifname: name, ifalias: marker, linkinfo: .init(info_kind: "vlan"))
            }
            try await attach(name, to: bridge, mtu: network.mtu, links: &links)
            return name
        default:
            return nil
        }
    }

    /// The network types the Linux bridge dataplane wires (Neutron's Linux bridge agent's).
    static let networkTypes = ["local", "flat", "vlan", "vxlan"]

    /// The start of the problem a VLAN interface the kernel would not make is reported with.
    static let vlanUnavailable = "cannot make VLAN interface"

    /// A `vlan` network's sub-interface of the physical interface: `<interface>.<VLAN id>`,
    /// the interface's name cut to 10 characters so the whole fits Linux's 15.
    static func vlanInterface(physical: String, vlan: Int) -> String { "\(physical.prefix(10)).\(vlan)" }

    /// A VXLAN device floods broadcast and unknown traffic to every peer through all-zero FDB
    /// entries (as the Linux bridge agent with l2population does): exactly one per peer.
    func syncFlooding(_ device: String, peers: [String]) async throws {
        let current = Set(try await IPRoute.fdb(device: device, netns: settings.hostNamespace).filter { $0.mac == "00:00:00:00:00:00" }.compactMap(\.dst))
        for peer in Set(peers).subtracting(current).sorted() {
            try await IPRoute.bridge(["fdb", "append", "00:00:00:00:00:00", "dev", device, "dst", peer], netns: settings.hostNamespace)
        }
        for peer in current.subtracting(peers).sorted() {
            try await IPRoute.bridge(["fdb", "del", "00:00:00:00:00:00", "dev", device, "dst", peer], netns: settings.hostNamespace)
        }
    }

    /// Makes and attaches every tap that is missing or not as wanted in one `ip -batch` (two
    /// commands per new tap in one process: a host gaining 200 ports at once spent most of its
    /// sync starting 400 `ip` processes). What the batch did is then read back from the kernel,
    /// so that `ensureTap`, which runs for each port afterwards, finds the taps done and redoes
    /// (and reports, port by port) only what failed.
    func ensureTaps(_ taps: [(name: String, bridge: String, mtu: Int, up: Bool)], links: inout [String: IPRoute.Link]) async {
        // ip's batch syntax splits on white space: an alias with any (a host name) is left to ensureTap.
        guard !marker.contains(where: { $0.isWhitespace || $0 == "\"" || $0 == "'" }) else { return }
        var commands: [String] = []
        for tap in taps where links[tap.bridge] != nil {
            let link = links[tap.name]
            if link == nil { commands.append("tuntap add dev \(tap.name) mode tap") }
            if link?.master != tap.bridge || link?.mtu != tap.mtu || link?.isUp != tap.up || link?.ifalias != marker {
                commands.append("link set \(tap.name) alias \(marker) master \(tap.bridge) mtu \(tap.mtu) \(tap.up ? "up" : "down")")
            }
        }
        guard commands.count > 1 else { return }  // one command: ensureTap's one call costs the same
        do {
            try await IPRoute.batch(commands, netns: settings.hostNamespace)
        } catch {
            // Some command failed: the kernel's view decides what ensureTap redoes.
            if let current = try? await IPRoute.links(netns: settings.hostNamespace) {
                links = Dictionary(current.map { ($0.ifname, $0) }, uniquingKeysWith: { first, _ in first })
            }
            return
        }
        for tap in taps where links[tap.bridge] != nil {
            if links[tap.name] == nil { links[tap.name] = IPRoute.Link(ifname: tap.name, linkinfo: .init(info_kind: "tun")) }
            links[tap.name]?.master = tap.bridge
            links[tap.name]?.mtu = tap.mtu
            links[tap.name]?.ifalias = marker
            links[tap.name]?.flags = tap.up ? ["UP"] : []
        }
    }

    func ensureTap(_ name: String, bridge: String, mtu: Int, up: Bool, links: inout [String: IPRoute.Link]) async throws {
        if links[name] == nil {
            // Persistent, so it outlives a QEMU that opens it by name (`ifname=`) and the agent.
            try await IPRoute.ip(["tuntap", "add", "dev", name, "mode", "tap"], netns: settings.hostNamespace)
            links[name] = IPRoute.Link(ifname: name, linkinfo: .init(info_kind: "tun"))
        }
        try await attach(name, to: bridge, mtu: mtu, up: up, links: &links)
    }

    /// Puts `device` on `bridge` with `mtu`, marked as this host's, up or down as asked.
    func attach(_ device: String, to bridge: String, mtu: Int, up: Bool = true, links: inout [String: IPRoute.Link]) async throws {
        let link = links[device]
        guard link?.master != bridge || link?.mtu != mtu || link?.isUp != up || link?.ifalias != marker else { return }
        try await IPRoute.ip(["link", "set", device, "alias", marker, "master", bridge, "mtu", String(mtu), up ? "up" : "down"], netns: settings.hostNamespace)
        links[device]?.master = bridge
        links[device]?.mtu = mtu
        links[device]?.ifalias = marker
        links[device]?.flags = up ? ["UP"] : []
    }

    // MARK: DHCP

    func ensureDHCP(_ server: HostNetworkState.DHCPServer, links: inout [String: IPRoute.Link]) async throws {
        let namespace = DeviceNames.dhcpNamespace(network: server.networkID)
        let outside = DeviceNames.tap(port: server.port.id), inside = DeviceNames.dhcpInterface(port: server.port.id)
        let directory = "\(dhcpRoot)/\(server.networkID)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])

        try await ensureNamespace(namespace)
        var addresses: Set<String> = []
        for fixed in server.port.fixedIPs {
            guard let subnet = server.subnets.first(where: { $0.id == fixed.subnetID }), let cidr = IPNetwork(subnet.cidr) else { continue }
            addresses.insert("\(fixed.address)/\(cidr.prefixLength)")
        }
        // The metadata proxy of isolated subnets listens on 169.254.169.254 in this namespace.
        if server.subnets.contains(where: \.isolated) { addresses.insert("\(MetadataAddress.ipv4)/32") }
        try await ensureVeth(outside: outside, inside: inside, namespace: namespace, insideLinks: try await IPRoute.links(netns: namespace),
                             bridge: DeviceNames.bridge(network: server.networkID), mac: server.port.macAddress, mtu: server.mtu,
                             addresses: addresses, links: &links)

        let files = DnsmasqFiles(server: server, interface: inside, directory: directory)
        let hostsChanged = try Self.write(files.hosts, to: "\(directory)/host")
        let optionsChanged = try Self.write(files.options, to: "\(directory)/opts")
        let commandLine = files.arguments.joined(separator: "\n")
        let commandChanged = try Self.write(commandLine, to: "\(directory)/cmdline")
        if let pid = Self.dnsmasqPID(directory), !commandChanged {
            // dnsmasq reads its hosts and options files again on SIGHUP; leases stay.
            if hostsChanged || optionsChanged { kill(pid, SIGHUP) }
            return
        }
        await stopDnsmasq(directory)
        // dnsmasq drops root for `nobody` before it reads its files, so it keeps root only when
        // `nobody` could not reach them (a state directory below a private one).
        let user = Self.reachableByOthers(directory) ? [] : ["--user=root"]
        try await HostProcess.check("ip", ["netns", "exec", namespace, "dnsmasq"] + files.arguments + user)
    }

    // MARK: Namespaces

    /// Postcondition: the named namespace exists with its loopback up.
    func ensureNamespace(_ namespace: String) async throws {
        guard !(try await IPRoute.namespaces()).contains(namespace) else { return }
        try await IPRoute.ip(["netns", "add", namespace])
        try await IPRoute.ip(["link", "set", "lo", "up"], netns: namespace)
    }

    /// Postcondition: a veth joins the host to `namespace`: `outside` is this host's, up on
    /// `bridge` with `mtu`; `inside` (in the namespace, `insideLinks` being its interfaces) has
    /// `mac`, `mtu`, is up and has exactly the IPv4 `addresses` (`a.b.c.d/len`). A pair with
    /// one end missing is made again.
    func ensureVeth(outside: String, inside: String, namespace: String, insideLinks: [IPRoute.Link], bridge: String, mac: String, mtu: Int,
                    addresses: Set<String>, links: inout [String: IPRoute.Link]) async throws {
        var current = insideLinks.first { $0.ifname == inside }
        if links[outside] == nil || current == nil {
            if links[outside] != nil { try await IPRoute.ip(["link", "del", outside], netns: settings.hostNamespace) }
            if current != nil { try await IPRoute.ip(["link", "del", inside], netns: namespace) }
            try await IPRoute.ip(["link", "add", outside, "type", "veth", "peer", "name", inside, "netns", namespace], netns: settings.hostNamespace)
            links[outside] = IPRoute.Link(ifname: outside, linkinfo: .init(info_kind: "veth"))
            current = nil
        }
        try await attach(outside, to: bridge, mtu: mtu, links: &links)
        if current?.address?.lowercased() != mac.lowercased() || current?.mtu != mtu || current?.isUp != true {
            try await IPRoute.ip(["link", "set", inside, "address", mac, "mtu", String(mtu), "up"], netns: namespace)
        }
        let had = try await IPRoute.addresses(inside, netns: namespace)
        for address in addresses.subtracting(had).sorted() { try await IPRoute.ip(["addr", "add", address, "dev", inside], netns: namespace) }
        for address in had.subtracting(addresses).sorted() { try await IPRoute.ip(["addr", "del", address, "dev", inside], netns: namespace) }
    }

    /// Whether every directory from / down to `path` lets others through (o+x).
    static func reachableByOthers(_ path: String) -> Bool {
        var current = ""
        for component in path.split(separator: "/") {
            current += "/" + component
            var info = stat()
            guard stat(current, &info) == 0, info.st_mode & 0o001 != 0 else { return false }
        }
        return true
    }

    /// Writes `text` to `path` when it differs from what is there; true when it wrote.
    static func write(_ text: String, to path: String) throws -> Bool {
        if let current = FileManager.default.contents(atPath: path), current == Data(text.utf8) { return false }
        try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        return true
    }

    /// The pid of the dnsmasq serving `directory`, when one runs.
    static func dnsmasqPID(_ directory: String) -> pid_t? {
        guard let text = try? String(contentsOfFile: "\(directory)/pid", encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0,
              let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
              String(decoding: cmdline, as: UTF8.self).contains(directory) else { return nil }
        return pid
    }

    func stopDnsmasq(_ directory: String) async {
        guard let pid = Self.dnsmasqPID(directory) else { return }
        kill(pid, SIGTERM)
        // Gone once /proc no longer shows it running for this directory (a zombie shows no
        // command line: whoever reaps it is not us, as dnsmasq detached itself).
        for _ in 0..<50 where Self.dnsmasqPID(directory) == pid {
            guard (try? await Task.sleep(for: .milliseconds(20))) != nil else { return }
        }
        if Self.dnsmasqPID(directory) == pid { kill(pid, SIGKILL) }
    }

    // MARK: Leftovers

    /// Removes the DHCP servers not in `servers`, the routers not in `routers` and this host's
    /// interfaces not in `keeping`; returns what could not be removed.
    func removeLeftovers(keeping: Set<String>, servers: Set<String>, routers: Set<String>, links: [String: IPRoute.Link]) async -> [String] {
        var problems = await removeRouters(keeping: routers)
        let served = (try? FileManager.default.contentsOfDirectory(atPath: dhcpRoot)) ?? []
        let namespaces = (try? await IPRoute.namespaces()) ?? []
        for network in served where !servers.contains(network) {
            let directory = "\(dhcpRoot)/\(network)"
            await stopDnsmasq(directory)
            let namespace = DeviceNames.dhcpNamespace(network: network)
            do {
                // Deleting the namespace deletes its veth end, and with it the bridge's end.
                if namespaces.contains(namespace) { try await IPRoute.ip(["netns", "del", namespace]) }
                try FileManager.default.removeItem(atPath: directory)
            } catch {
                problems.append("DHCP server of network \(network): \(error)")
            }
        }
        // Ports first, then uplinks, then the bridges they were on.
        let ours = links.values.filter { $0.ifalias == marker && !keeping.contains($0.ifname) }
        let order: (IPRoute.Link) -> Int = { $0.kind == "bridge" ? 2 : ($0.kind == "vxlan" || $0.kind == "vlan") ? 1 : 0 }
        for link in ours.sorted(by: { (order($0), $0.ifname) < (order($1), $1.ifname) }) {
            do {
                try await IPRoute.ip(["link", "del", link.ifname], netns: settings.hostNamespace)
            } catch let error as HostProcessError where error.message.contains("Cannot find device") {
                continue  // gone with its peer or its namespace
            } catch {
                problems.append("interface \(link.ifname): \(error)")
            }
        }
        return problems
    }
}

public struct DataplaneError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
