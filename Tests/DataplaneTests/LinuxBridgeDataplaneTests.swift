import Foundation
import HostAPI
import Logging
import NimbusCore
import XCTest
@testable import Dataplane

/// The Linux bridge dataplane on a "host" that is a network namespace the test makes, with
/// "guests" that are namespaces behind veths named as the ports' taps (a tap needs a QEMU to
/// carry traffic; a veth does the same job for these checks). Every packet stays inside the
/// test's namespaces.
final class LinuxBridgeDataplaneTests: XCTestCase {
    var namespaces: [String] = []
    var stateDirectory = ""
    let suffix = String(Identifiers.hexID().prefix(6))

    override func setUp() async throws {
        guard getuid() == 0 else { throw XCTSkip("needs root (network namespaces, bridges)") }
        for tool in ["ip", "bridge", "dnsmasq", "busybox"] where HostProcess.locate(tool) == nil {
            throw XCTSkip("\(tool) is not installed (scripts/test installs it)")
        }
        stateDirectory = NSTemporaryDirectory() + "nimbus-dataplane-\(suffix)"
    }

    override func tearDown() async throws {
        // dnsmasq of the state directory, then every namespace this test made.
        for directory in (try? FileManager.default.contentsOfDirectory(atPath: stateDirectory + "/dhcp")) ?? [] {
            if let pid = LinuxBridgeDataplane.dnsmasqPID("\(stateDirectory)/dhcp/\(directory)") { kill(pid, SIGKILL) }
        }
        for namespace in namespaces { _ = try? await HostProcess.run("ip", ["netns", "del", namespace]) }
        try? FileManager.default.removeItem(atPath: stateDirectory)
    }

    func makeNamespace(_ name: String) async throws -> String {
        try await HostProcess.check("ip", ["netns", "add", name])
        namespaces.append(name)
        try await IPRoute.ip(["link", "set", "lo", "up"], netns: name)
        return name
    }

    /// A guest namespace whose NIC (with `mac`) is the peer of a veth named `tap` in the host.
    func makeGuest(_ name: String, tap: String, mac: String, host: String) async throws -> String {
        let guest = try await makeNamespace(name)
        try await IPRoute.ip(["link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", guest], netns: host)
        try await IPRoute.ip(["link", "set", "eth0", "address", mac, "up"], netns: guest)
        return guest
    }

    func state(host: String, network: String, subnet: String, ports: [HostNetworkState.Port], dhcpPort: HostNetworkState.Port?,
               peers: [String]) -> HostNetworkState {
        var state = HostNetworkState(host: host)
        state.networks = [.init(id: network, networkType: "vxlan", segmentationID: 4242, mtu: 1450, peers: peers)]
        state.ports = ports
        if let dhcpPort {
            state.dhcp = [.init(networkID: network, port: dhcpPort, mtu: 1450,
                                subnets: [.init(id: subnet, cidr: "10.66.0.0/24", gatewayIP: "10.66.0.1",
                                                hostRoutes: [.init(destination: "169.254.169.254/32", nexthop: "10.66.0.2")])],
                                hosts: ports.flatMap { port in port.fixedIPs.map {
                                    .init(portID: port.id, macAddress: port.macAddress, ipAddress: $0.address,
                                          hostname: "host-" + $0.address.replacingOccurrences(of: ".", with: "-"))
                                } })]
        }
        return state
    }

    func testAPortsTapIsWiredToItsBridgeAndItsGuestGetsItsLeaseFromDnsmasq() async throws {
        let host = try await makeNamespace("nbt-host-\(suffix)")
        let network = Identifiers.uuid(), subnet = Identifiers.uuid()
        let portA = HostNetworkState.Port(id: Identifiers.uuid(), networkID: network, macAddress: "fa:16:3e:10:00:0a",
                                          fixedIPs: [.init(subnetID: subnet, address: "10.66.0.10")], deviceOwner: "compute:nova")
        let dhcpPort = HostNetworkState.Port(id: Identifiers.uuid(), networkID: network, macAddress: "fa:16:3e:10:00:02",
                                             fixedIPs: [.init(subnetID: subnet, address: "10.66.0.2")], deviceOwner: "network:dhcp")
        let guest = try await makeGuest("nbt-guest-\(suffix)", tap: DeviceNames.tap(port: portA.id), mac: portA.macAddress, host: host)
        namespaces.append(DeviceNames.dhcpNamespace(network: network))

        let dataplane = LinuxBridgeDataplane(settings: .init(host: "h1", tunnelingIP: "10.251.0.1", stateDirectory: stateDirectory,
                                                             hostNamespace: host), logger: Logger(label: "test"))
        let wanted = state(host: "h1", network: network, subnet: subnet, ports: [portA], dhcpPort: dhcpPort, peers: ["10.251.0.2", "10.251.0.3"])
        let outcome = try await dataplane.apply(wanted)
        XCTAssertEqual(outcome.problems, [])
        XCTAssertEqual(outcome.wiredPorts, [portA.id])

        let bridge = DeviceNames.bridge(network: network)
        let links = Dictionary(try await IPRoute.links(netns: host).map { ($0.ifname, $0) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(links[bridge]?.kind, "bridge")
        XCTAssertEqual(links[DeviceNames.tap(port: portA.id)]?.master, bridge)
        XCTAssertEqual(links[DeviceNames.tap(port: dhcpPort.id)]?.master, bridge)
        XCTAssertEqual(links["vxlan-4242"]?.master, bridge)
        XCTAssertEqual(links[bridge]?.mtu, 1450)
        let flooding = try await IPRoute.fdb(device: "vxlan-4242", netns: host).filter { $0.mac == "00:00:00:00:00:00" }.compactMap(\.dst)
        XCTAssertEqual(Set(flooding), ["10.251.0.2", "10.251.0.3"])
        let dhcpNamespace = DeviceNames.dhcpNamespace(network: network)
        let dhcpAddresses = try await IPRoute.addresses(DeviceNames.dhcpInterface(port: dhcpPort.id), netns: dhcpNamespace)
        // Its own address, and the metadata service's for its isolated subnet's guests.
        XCTAssertEqual(dhcpAddresses, ["10.66.0.2/24", "169.254.169.254/32"])

        let lease = try await HostProcess.run("ip", ["netns", "exec", guest, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f",
                                                     "-s", "/bin/true", "-t", "5", "-T", "1", "-O", "mtu", "-O", "staticroutes"])
        XCTAssertTrue(lease.stdout.contains("lease of 10.66.0.10 obtained from 10.66.0.2") || lease.stderr.contains("lease of 10.66.0.10 obtained from 10.66.0.2"),
                      lease.stdout + lease.stderr)

        // The same state again changes nothing: dnsmasq keeps running, as the same process.
        let pid = LinuxBridgeDataplane.dnsmasqPID("\(stateDirectory)/dhcp/\(network)")
        XCTAssertNotNil(pid)
        let again = try await dataplane.apply(wanted)
        XCTAssertEqual(again.problems, [])
        XCTAssertEqual(LinuxBridgeDataplane.dnsmasqPID("\(stateDirectory)/dhcp/\(network)"), pid)

        // One peer leaves; a second port arrives: its tap is wired and dnsmasq, told by SIGHUP,
        // hands out its address without a restart.
        let portB = HostNetworkState.Port(id: Identifiers.uuid(), networkID: network, macAddress: "fa:16:3e:10:00:0b",
                                          fixedIPs: [.init(subnetID: subnet, address: "10.66.0.11")], deviceOwner: "compute:nova")
        let guestB = try await makeGuest("nbt-guestb-\(suffix)", tap: DeviceNames.tap(port: portB.id), mac: portB.macAddress, host: host)
        let grown = state(host: "h1", network: network, subnet: subnet, ports: [portA, portB], dhcpPort: dhcpPort, peers: ["10.251.0.3"])
        let grownProblems = try await dataplane.apply(grown).problems
        XCTAssertEqual(grownProblems, [])
        XCTAssertEqual(LinuxBridgeDataplane.dnsmasqPID("\(stateDirectory)/dhcp/\(network)"), pid)
        let remainingPeers = try await IPRoute.fdb(device: "vxlan-4242", netns: host).filter { $0.mac == "00:00:00:00:00:00" }.compactMap(\.dst)
        XCTAssertEqual(remainingPeers, ["10.251.0.3"])
        let leaseB = try await HostProcess.run("ip", ["netns", "exec", guestB, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f",
                                                      "-s", "/bin/true", "-t", "5", "-T", "1"])
        XCTAssertTrue((leaseB.stdout + leaseB.stderr).contains("lease of 10.66.0.11 obtained"),
                      leaseB.stdout + leaseB.stderr + ((try? String(contentsOfFile: "\(stateDirectory)/dhcp/\(network)/log", encoding: .utf8)) ?? ""))

        // Nothing left: every interface, the DHCP namespace and dnsmasq go.
        let emptiedProblems = try await dataplane.apply(HostNetworkState(host: "h1")).problems
        XCTAssertEqual(emptiedProblems, [])
        let left = try await IPRoute.links(netns: host).map(\.ifname).filter { name in DeviceNames.interfacePrefixes.contains { name.hasPrefix($0) } }
        XCTAssertEqual(left, [], "the guests' own veths went with their bridge's ports")
        let dhcpNamespaceLeft = try await IPRoute.namespaces().contains(dhcpNamespace)
        XCTAssertFalse(dhcpNamespaceLeft)
        XCTAssertNil(LinuxBridgeDataplane.dnsmasqPID("\(stateDirectory)/dhcp/\(network)"))
    }

    func testAGuestOnOneHostLeasesFromTheDHCPServerOnAnotherAcrossVXLAN() async throws {
        let hostA = try await makeNamespace("nbt-ha-\(suffix)"), hostB = try await makeNamespace("nbt-hb-\(suffix)")
        // The underlay: one veth between the two hosts.
        try await IPRoute.ip(["link", "add", "underlay", "type", "veth", "peer", "name", "underlay", "netns", hostB], netns: hostA)
        for (host, address) in [(hostA, "10.252.0.1/24"), (hostB, "10.252.0.2/24")] {
            try await IPRoute.ip(["addr", "add", address, "dev", "underlay"], netns: host)
            try await IPRoute.ip(["link", "set", "underlay", "up"], netns: host)
        }
        let network = Identifiers.uuid(), subnet = Identifiers.uuid()
        // Both guests in one group that admits its own members (as a project's default group does).
        let group = Identifiers.uuid()
        let port = HostNetworkState.Port(id: Identifiers.uuid(), networkID: network, macAddress: "fa:16:3e:30:00:0a",
                                         fixedIPs: [.init(subnetID: subnet, address: "10.66.0.10")], securityGroupIDs: [group], deviceOwner: "compute:nova")
        let portB = HostNetworkState.Port(id: Identifiers.uuid(), networkID: network, macAddress: "fa:16:3e:30:00:0b",
                                          fixedIPs: [.init(subnetID: subnet, address: "10.66.0.11")], securityGroupIDs: [group], deviceOwner: "compute:nova")
        let groups = [HostNetworkState.SecurityGroup(id: group, rules: [
            .init(id: Identifiers.uuid(), direction: "ingress", ethertype: "IPv4", remoteGroupID: group),
            .init(id: Identifiers.uuid(), direction: "egress", ethertype: "IPv4"),
        ], memberAddresses: ["10.66.0.10", "10.66.0.11"])]
        let dhcpPort = HostNetworkState.Port(id: Identifiers.uuid(), networkID: network, macAddress: "fa:16:3e:30:00:02",
                                             fixedIPs: [.init(subnetID: subnet, address: "10.66.0.2")], deviceOwner: "network:dhcp")
        let guest = try await makeGuest("nbt-gx-\(suffix)", tap: DeviceNames.tap(port: port.id), mac: port.macAddress, host: hostA)
        let guestB = try await makeGuest("nbt-gy-\(suffix)", tap: DeviceNames.tap(port: portB.id), mac: portB.macAddress, host: hostB)
        namespaces.append(DeviceNames.dhcpNamespace(network: network))

        let onA = LinuxBridgeDataplane(settings: .init(host: "a", tunnelingIP: "10.252.0.1", stateDirectory: stateDirectory + "-a", hostNamespace: hostA),
                                       logger: Logger(label: "test"))
        let onB = LinuxBridgeDataplane(settings: .init(host: "b", tunnelingIP: "10.252.0.2", stateDirectory: stateDirectory, hostNamespace: hostB),
                                       logger: Logger(label: "test"))
        defer { try? FileManager.default.removeItem(atPath: stateDirectory + "-a") }
        var stateA = state(host: "a", network: network, subnet: subnet, ports: [port], dhcpPort: nil, peers: ["10.252.0.2"])
        stateA.securityGroups = groups
        var stateB = state(host: "b", network: network, subnet: subnet, ports: [port, portB], dhcpPort: dhcpPort, peers: ["10.252.0.1"])
        stateB.ports = [portB]
        stateB.securityGroups = groups
        let problemsA = try await onA.apply(stateA).problems, problemsB = try await onB.apply(stateB).problems
        XCTAssertEqual(problemsA + problemsB, [])

        let lease = try await HostProcess.run("ip", ["netns", "exec", guest, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f",
                                                     "-s", "/bin/true", "-t", "5", "-T", "1"])
        XCTAssertTrue((lease.stdout + lease.stderr).contains("lease of 10.66.0.10 obtained from 10.66.0.2"), lease.stdout + lease.stderr)

        // A reaches B across the hosts, through both hosts' security groups.
        try await IPRoute.ip(["addr", "add", "10.66.0.10/24", "dev", "eth0"], netns: guest)
        try await IPRoute.ip(["addr", "add", "10.66.0.11/24", "dev", "eth0"], netns: guestB)
        let ping = try await HostProcess.run("ip", ["netns", "exec", guest, "ping", "-c", "2", "-W", "2", "10.66.0.11"])
        XCTAssertEqual(ping.status, 0, ping.stdout + ping.stderr)
        try await onA.removeAll()
        try await onB.removeAll()
    }

    func testAnotherHostsInterfacesInTheSameNamespaceAreNotLeftovers() async throws {
        let host = try await makeNamespace("nbt-shared-\(suffix)")
        let network = Identifiers.uuid()
        let port = HostNetworkState.Port(id: Identifiers.uuid(), networkID: network, macAddress: "fa:16:3e:20:00:01")
        let other = LinuxBridgeDataplane(settings: .init(host: "other", tunnelingIP: "10.251.0.9", stateDirectory: stateDirectory + "-other",
                                                         hostNamespace: host), logger: Logger(label: "test"))
        defer { try? FileManager.default.removeItem(atPath: stateDirectory + "-other") }
        var othersState = HostNetworkState(host: "other")
        othersState.networks = [.init(id: network, networkType: "local")]
        othersState.ports = [port]
        let othersProblems = try await other.apply(othersState).problems
        XCTAssertEqual(othersProblems, [])

        let mine = LinuxBridgeDataplane(settings: .init(host: "mine", tunnelingIP: "10.251.0.1", stateDirectory: stateDirectory, hostNamespace: host),
                                        logger: Logger(label: "test"))
        let myProblems = try await mine.apply(HostNetworkState(host: "mine")).problems
        XCTAssertEqual(myProblems, [])
        let names = Set(try await IPRoute.links(netns: host).map(\.ifname))
        XCTAssertTrue(names.contains(DeviceNames.tap(port: port.id)))
        XCTAssertTrue(names.contains(DeviceNames.bridge(network: network)))
        try await other.removeAll()
        let namesAfterRemoval = try await IPRoute.links(netns: host).map(\.ifname)
        XCTAssertFalse(Set(namesAfterRemoval).contains(DeviceNames.bridge(network: network)))
    }

    /// A `vlan` network: its bridge takes a VLAN sub-interface of the interface its physical
    /// network is mapped to (never the interface itself), and a guest on it reaches a "switch"
    /// namespace across that interface with the network's tag. On a kernel without 802.1Q the
    /// network is not wired, its port is not plugged, and the test is skipped with the kernel's
    /// own error.
    func testAVLANNetworkIsWiredAsASubInterfaceOfItsMappedInterface() async throws {
        let host = try await makeNamespace("nbt-vh-\(suffix)"), wire = try await makeNamespace("nbt-vs-\(suffix)")
        // The "physical" interface: a veth whose other end is the switch's port.
        try await IPRoute.ip(["link", "add", "phys0", "type", "veth", "peer", "name", "eth0", "netns", wire], netns: host)
        try await IPRoute.ip(["link", "set", "phys0", "up"], netns: host)
        try await IPRoute.ip(["link", "set", "eth0", "up"], netns: wire)
        let network = Identifiers.uuid(), subnet = Identifiers.uuid()
        // No port security: the check is about the wire, not the filter.
        let port = HostNetworkState.Port(id: Identifiers.uuid(), networkID: network, macAddress: "fa:16:3e:30:00:0a",
                                         fixedIPs: [.init(subnetID: subnet, address: "10.67.0.10")], portSecurityEnabled: false,
                                         deviceOwner: "compute:nova")
        let tap = DeviceNames.tap(port: port.id), bridge = DeviceNames.bridge(network: network)
        let guest = try await makeGuest("nbt-vg-\(suffix)", tap: tap, mac: port.macAddress, host: host)
        try await IPRoute.ip(["addr", "add", "10.67.0.10/24", "dev", "eth0"], netns: guest)

        let dataplane = LinuxBridgeDataplane(settings: .init(host: "h1", tunnelingIP: "10.251.0.1", stateDirectory: stateDirectory,
                                                             physicalInterfaceMappings: ["physnet1": "phys0"], hostNamespace: host),
                                             logger: Logger(label: "test"))
        var wanted = HostNetworkState(host: "h1")
        wanted.networks = [.init(id: network, networkType: "vlan", physicalNetwork: "physnet1", segmentationID: 101, mtu: 1500)]
        wanted.ports = [port]
        let outcome = try await dataplane.apply(wanted)
        let links = Dictionary(try await IPRoute.links(netns: host).map { ($0.ifname, $0) }, uniquingKeysWith: { a, _ in a })
        let subInterface = LinuxBridgeDataplane.vlanInterface(physical: "phys0", vlan: 101)
        XCTAssertEqual(subInterface, "phys0.101")
        if let problem = outcome.problems.first(where: { $0.contains(LinuxBridgeDataplane.vlanUnavailable) }) {
            // Not wired: the port is neither plugged nor reported wired, and nothing is half made.
            XCTAssertEqual(outcome.wiredPorts, [])
            XCTAssertEqual(outcome.problems, [problem, "port \(port.id): not plugged, its network \(network) is not wired"])
            XCTAssertNil(links[tap]?.master)
            XCTAssertNil(links[subInterface])
            XCTAssertNil(links["phys0"]?.master, "the mapped interface itself is never put on a vlan network's bridge")
            throw XCTSkip("this kernel has no 802.1Q VLAN interfaces: \(problem)")
        }
        XCTAssertEqual(outcome.problems, [])
        XCTAssertEqual(outcome.wiredPorts, [port.id])
        XCTAssertEqual(links[subInterface]?.kind, "vlan")
        XCTAssertEqual(links[subInterface]?.linkinfo?.info_data?.id, 101)
        XCTAssertEqual(links[subInterface]?.master, bridge)
        XCTAssertEqual(links[subInterface]?.isUp, true)
        XCTAssertEqual(links[tap]?.master, bridge)
        XCTAssertNil(links["phys0"]?.master, "the mapped interface itself is never put on a vlan network's bridge")
        let trace = DataplaneTrace(host: "h1", stateDirectory: stateDirectory, hostNamespace: host)
        let traced = trace.checkLayer2(port: .init(id: port.id, status: "ACTIVE", bindingHost: "h1", vifType: "bridge", macAddress: port.macAddress,
                                                   addresses: ["10.67.0.10"], portSecurityEnabled: false),
                                       network: .init(id: network, networkType: "vlan", segmentationID: 101), interfaces: links)
        XCTAssertEqual(traced.map(\.kind), [.tap, .bridge, .vlan])
        XCTAssertEqual(traced.filter(\.isBroken), [])

        // The switch hears VLAN 101 only: the guest reaches its address there.
        try await IPRoute.ip(["link", "add", "link", "eth0", "name", "eth0.101", "type", "vlan", "id", "101"], netns: wire)
        try await IPRoute.ip(["addr", "add", "10.67.0.1/24", "dev", "eth0.101"], netns: wire)
        try await IPRoute.ip(["link", "set", "eth0.101", "up"], netns: wire)
        let ping = try await HostProcess.run("ip", ["netns", "exec", guest, "ping", "-c", "3", "-W", "1", "10.67.0.1"])
        XCTAssertEqual(ping.status, 0, ping.stdout + ping.stderr)

        // Removed with its network; the mapped interface is the operator's and stays.
        let emptiedProblems = try await dataplane.apply(HostNetworkState(host: "h1")).problems
        XCTAssertEqual(emptiedProblems, [])
        let left = Set(try await IPRoute.links(netns: host).map(\.ifname))
        XCTAssertFalse(left.contains(subInterface))
        XCTAssertFalse(left.contains(bridge))
        XCTAssertTrue(left.contains("phys0"))
    }

    /// ML2 accepts `gre` networks, but Neutron's Linux bridge agent has no GRE: nothing of such
    /// a network is made, its port is not plugged (so no guest starts on it) and the outcome says why.
    func testAGRENetworkIsNotWiredAndItsPortIsNotPlugged() async throws {
        let host = try await makeNamespace("nbt-gre-\(suffix)")
        let network = Identifiers.uuid()
        let port = HostNetworkState.Port(id: Identifiers.uuid(), networkID: network, macAddress: "fa:16:3e:30:00:0b", deviceOwner: "compute:nova")
        let dataplane = LinuxBridgeDataplane(settings: .init(host: "h1", tunnelingIP: "10.251.0.1", stateDirectory: stateDirectory, hostNamespace: host),
                                             logger: Logger(label: "test"))
        var wanted = HostNetworkState(host: "h1")
        wanted.networks = [.init(id: network, networkType: "gre", segmentationID: 7, mtu: 1458)]
        wanted.ports = [port]
        let outcome = try await dataplane.apply(wanted)
        XCTAssertEqual(outcome.wiredPorts, [])
        XCTAssertEqual(outcome.problems, [
            "network \(network): network type gre is not supported by the Linux bridge dataplane (local, flat, vlan, vxlan are)",
            "port \(port.id): not plugged, its network \(network) is not wired",
        ])
        let names = try await IPRoute.links(netns: host).map(\.ifname).filter { $0 != "lo" }
        XCTAssertEqual(names, [], "no bridge, tap or tunnel for a gre network")
    }

    func testManyNewPortsAreWiredAtOnceAndOneThatCannotBeDoesNotStopTheOthers() async throws {
        let host = try await makeNamespace("nbt-many-\(suffix)")
        let network = Identifiers.uuid()
        let ports = (0..<20).map { HostNetworkState.Port(id: Identifiers.uuid(), networkID: network, macAddress: String(format: "fa:16:3e:30:00:%02x", $0)) }
        // The first port's tap name is taken by a bridge, which cannot be put on another bridge.
        let blocked = DeviceNames.tap(port: ports[0].id)
        try await IPRoute.ip(["link", "add", blocked, "type", "bridge"], netns: host)

        let dataplane = LinuxBridgeDataplane(settings: .init(host: "h1", tunnelingIP: "10.251.0.1", stateDirectory: stateDirectory, hostNamespace: host),
                                             logger: Logger(label: "test"))
        var wanted = HostNetworkState(host: "h1")
        wanted.networks = [.init(id: network, networkType: "local", mtu: 1400)]
        wanted.ports = ports
        let outcome = try await dataplane.apply(wanted)

        XCTAssertEqual(outcome.problems.count, 1, "\(outcome.problems)")
        XCTAssertTrue(outcome.problems.first?.hasPrefix("port \(ports[0].id):") ?? false, "\(outcome.problems)")
        XCTAssertEqual(Set(outcome.wiredPorts), Set(ports.dropFirst().map(\.id)))
        let links = Dictionary(try await IPRoute.links(netns: host).map { ($0.ifname, $0) }, uniquingKeysWith: { first, _ in first })
        for port in ports.dropFirst() {
            let tap = links[DeviceNames.tap(port: port.id)]
            XCTAssertEqual(tap?.kind, "tun", port.id)
            XCTAssertEqual(tap?.master, DeviceNames.bridge(network: network), port.id)
            XCTAssertEqual(tap?.mtu, 1400, port.id)
            XCTAssertEqual(tap?.isUp, true, port.id)
            XCTAssertEqual(tap?.ifalias, "nimbus:h1", port.id)
        }
        XCTAssertNil(links[blocked]?.master)

        // Nothing left to do: a second apply changes nothing and reports the same.
        let again = try await dataplane.apply(wanted)
        XCTAssertEqual(again, outcome)
    }
}
