import XCTest
import HostAPI
import NimbusCore
@testable import Dataplane

/// The firewall against real traffic: a namespace plays the host (a bridge, veths whose host
/// ends are named like taps, the firewall's nft tables), three namespaces play guests A, B and
/// C, and ping, TCP and UDP between them show what passes. Nothing leaves those namespaces;
/// deleting them in the teardown removes everything the test made, tables included.
final class SecurityGroupFirewallTests: XCTestCase {
    typealias Port = HostNetworkState.Port
    typealias Group = HostNetworkState.SecurityGroup
    typealias Rule = HostNetworkState.Rule

    struct Guest {
        let namespace: String
        let port: String
        let mac: String
        let ip: String
        var tap: String { DeviceNames.tap(port: port) }
    }

    private var host = ""
    private var a: Guest!, b: Guest!, c: Guest!
    private var firewall: SecurityGroupFirewall!
    private let network = "net-sg-test"
    private let allEgress = [Rule(id: "r-out4", direction: "egress", ethertype: "IPv4"), Rule(id: "r-out6", direction: "egress", ethertype: "IPv6")]

    override func setUp() async throws {
        guard getuid() == 0 else { throw XCTSkip("needs root: it creates network namespaces, a bridge and nft tables") }
        for tool in ["nft", "ip", "ping", "python3"] where HostProcess.locate(tool) == nil {
            throw XCTSkip("needs \(tool), which is not installed")
        }
        let tag = Identifiers.hexID().prefix(6)
        host = "sgt-\(tag)-host"
        a = Guest(namespace: "sgt-\(tag)-a", port: "port-a-\(tag)-0001", mac: "02:00:00:00:00:0a", ip: "10.77.0.10")
        b = Guest(namespace: "sgt-\(tag)-b", port: "port-b-\(tag)-0002", mac: "02:00:00:00:00:0b", ip: "10.77.0.11")
        c = Guest(namespace: "sgt-\(tag)-c", port: "port-c-\(tag)-0003", mac: "02:00:00:00:00:0c", ip: "10.77.0.12")
        let namespaces = [host, a.namespace, b.namespace, c.namespace]
        addTeardownBlock {
            for namespace in namespaces { _ = try? await HostProcess.run("ip", ["netns", "delete", namespace]) }
        }
        for namespace in namespaces { try await sh(nil, "ip", "netns", "add", namespace) }
        let bridge = DeviceNames.bridge(network: network)
        try await sh(host, "ip", "link", "add", bridge, "type", "bridge")
        try await sh(host, "ip", "link", "set", bridge, "up")
        for guest in [a!, b!, c!] {
            // No duplicate address detection, so link-local addresses work at once.
            try await sh(guest.namespace, "sysctl", "-q", "-w", "net.ipv6.conf.default.accept_dad=0")
            try await sh(host, "ip", "link", "add", guest.tap, "type", "veth", "peer", "name", "eth0", "netns", guest.namespace)
            try await sh(host, "ip", "link", "set", guest.tap, "master", bridge, "up")
            try await sh(guest.namespace, "ip", "link", "set", "eth0", "address", guest.mac)
            try await sh(guest.namespace, "ip", "addr", "add", guest.ip + "/24", "dev", "eth0")
            try await sh(guest.namespace, "ip", "link", "set", "eth0", "up")
            try await sh(guest.namespace, "ip", "link", "set", "lo", "up")
        }
        firewall = SecurityGroupFirewall(namespace: host)
    }

    func port(_ guest: Guest, groups: [String], pairs: [HostNetworkState.AddressPair] = [], security: Bool = true) -> Port {
        Port(id: guest.port, networkID: network, macAddress: guest.mac, fixedIPs: [.init(subnetID: "subnet", address: guest.ip)],
             allowedAddressPairs: pairs, securityGroupIDs: security ? groups : [], portSecurityEnabled: security)
    }

    // MARK: - Tests

    func testIngressDeniedUntilAllowedStatefulAndPerPort() async throws {
        let quiet = Group(id: "sg-quiet", rules: allEgress)
        try await firewall.apply(ports: [port(a, groups: ["sg-quiet"]), port(b, groups: ["sg-quiet"])], securityGroups: [quiet])
        let filteringA = try await firewall.isFiltering(portID: a.port)
        let filteringC = try await firewall.isFiltering(portID: c.port)
        XCTAssertTrue(filteringA)
        XCTAssertFalse(filteringC, "C is not given to the firewall")
        let pingAB0 = try await ping(a, b.ip), pingBA0 = try await ping(b, a.ip)
        XCTAssertFalse(pingAB0, "no ingress rule: B accepts nothing")
        XCTAssertFalse(pingBA0, "no ingress rule: A accepts nothing")
        let chainsOfA = try await listing(of: a)

        // B allows ICMP in: A's pings reach B and their replies come back through A's
        // ingress, which allows nothing new; B's pings to A still do not.
        let pingable = Group(id: "sg-pingable", rules: allEgress + [Rule(id: "r-icmp", direction: "ingress", protocol: "icmp")])
        try await firewall.updatePort(port(b, groups: ["sg-pingable"]), securityGroups: [pingable])
        let pingAB1 = try await ping(a, b.ip), pingBA1 = try await ping(b, a.ip)
        XCTAssertTrue(pingAB1, "B's ingress rule allows A's ping; the reply is a reply")
        XCTAssertFalse(pingBA1, "A still allows nothing in")

        // Removing the rule stops it; adding it back restores it; A's chains never change.
        try await firewall.updatePort(port(b, groups: ["sg-quiet"]), securityGroups: [quiet])
        let pingAB2 = try await ping(a, b.ip)
        XCTAssertFalse(pingAB2, "the ICMP rule is gone")
        // A new firewall (an agent restarted) reads B's number back and updates B alone.
        firewall = SecurityGroupFirewall(namespace: host)
        try await firewall.updatePort(port(b, groups: ["sg-pingable"]), securityGroups: [pingable])
        let pingAB3 = try await ping(a, b.ip)
        XCTAssertTrue(pingAB3, "the ICMP rule is back")
        let chainsOfAAfter = try await listing(of: a)
        XCTAssertEqual(chainsOfAAfter, chainsOfA, "updating B left A's chains (rule handles included) as they were")
        let toB = try await sh(host, "nft", "list", "chain", "bridge", "nimbus-sg", SecurityGroupRuleset.toChain(tap: b.tap))
        XCTAssertTrue(toB.contains("meta mark set meta mark | 0x00000002"), "B kept number 2 across the restart: \(toB)")

        // TCP and UDP: B allows TCP 8080 and UDP 5353 in; A allows nothing in.
        let services = Group(id: "sg-services", rules: allEgress + [
            Rule(id: "r-tcp", direction: "ingress", protocol: "tcp", portRangeMin: 8080, portRangeMax: 8080),
            Rule(id: "r-udp", direction: "ingress", protocol: "udp", portRangeMin: 5353, portRangeMax: 5353),
        ])
        try await firewall.updatePort(port(b, groups: ["sg-services"]), securityGroups: [services])
        let tcpAB = try await exchange(.tcp, from: a, to: b, port: 8080)
        let udpAB = try await exchange(.udp, from: a, to: b, port: 5353)
        let tcpOther = try await exchange(.tcp, from: a, to: b, port: 8081)
        let tcpBA = try await exchange(.tcp, from: b, to: a, port: 8080)
        XCTAssertEqual(tcpAB, "HELLO", "TCP to an allowed port, and its replies")
        XCTAssertEqual(udpAB, "HELLO", "UDP to an allowed port, and its reply")
        XCTAssertNil(tcpOther, "TCP to a port no rule names")
        XCTAssertNil(tcpBA, "A allows no TCP in")

        // IPv6 link-local: neighbour discovery passes on its own, echo only once a rule allows it.
        let ping6Before = try await ping(a, linkLocal(b))
        try await firewall.updatePort(port(b, groups: ["sg-services", "sg-ping6"]),
                                      securityGroups: [services, Group(id: "sg-ping6", rules: [Rule(id: "r-icmp6", direction: "ingress", ethertype: "IPv6", protocol: "icmp")])])
        let ping6After = try await ping(a, linkLocal(b))
        XCTAssertFalse(ping6Before)
        XCTAssertTrue(ping6After, "IPv6 passes br_netfilter to the inet chains too")

        try await firewall.removeAll()
        let tables = try await sh(host, "nft", "list", "tables")
        XCTAssertFalse(tables.contains("nimbus-sg"), tables)
        let pingBAOpen = try await ping(b, a.ip)
        XCTAssertTrue(pingBAOpen, "nothing filters once the tables are gone")
    }

    func testARestartedFirewallLoadsNothingWhenTheKernelHasItsRulesetAndLoadsAgainOtherwise() async throws {
        let directory = NSTemporaryDirectory() + "nimbus-sg-\(Identifiers.hexID())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/security-groups.nft"
        let pingable = Group(id: "sg-pingable", rules: allEgress + [Rule(id: "r-icmp", direction: "ingress", protocol: "icmp")])
        let ports = [port(a, groups: ["sg-pingable"]), port(b, groups: ["sg-pingable"])]
        try await SecurityGroupFirewall(namespace: host, rulesetFile: file).apply(ports: ports, securityGroups: [pingable])
        XCTAssertTrue(FileManager.default.fileExists(atPath: file))
        // Loading replaces the tables, and a new table gets a new handle.
        let loaded = try await tableHandles()

        // A new firewall (an agent restarted) with the same ports and groups: nothing is loaded,
        // and the ports stay filtered.
        try await SecurityGroupFirewall(namespace: host, rulesetFile: file).apply(ports: ports, securityGroups: [pingable])
        let kept = try await tableHandles()
        XCTAssertEqual(kept, loaded)
        let pings = try await ping(a, b.ip)
        XCTAssertTrue(pings)

        // A chain the ruleset does not have (made by hand): the next restart loads the ruleset again.
        try await sh(host, "nft", "add", "chain", "inet", "nimbus-sg", "by-hand")
        try await SecurityGroupFirewall(namespace: host, rulesetFile: file).apply(ports: ports, securityGroups: [pingable])
        let chains = try await sh(host, "nft", "list", "chains", "inet")
        XCTAssertFalse(chains.contains("by-hand"), chains)
        let reloaded = try await tableHandles()
        XCTAssertNotEqual(reloaded, loaded, "loaded again")

        // Any other change makes the file untrue, so it goes: the next restart loads again.
        let restarted = SecurityGroupFirewall(namespace: host, rulesetFile: file)
        try await restarted.updatePort(port(b, groups: []), securityGroups: [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: file))
        try await SecurityGroupFirewall(namespace: host, rulesetFile: file).apply(ports: ports, securityGroups: [pingable])
        let afterUpdate = try await tableHandles()
        XCTAssertNotEqual(afterUpdate, reloaded, "loaded again after the update")
        let pingsAgain = try await ping(a, b.ip)
        XCTAssertTrue(pingsAgain)
    }

    func testRemoteGroupMembershipChangesOnlyTheSet() async throws {
        let friends = Group(id: "sg-friends", rules: allEgress, memberAddresses: [a.ip])
        let guarded = Group(id: "sg-guarded", rules: allEgress + [Rule(id: "r-from-friends", direction: "ingress", protocol: "icmp", remoteGroupID: "sg-friends")])
        try await firewall.apply(ports: [port(a, groups: ["sg-friends"]), port(b, groups: ["sg-guarded"]), port(c, groups: ["sg-friends"])],
                                 securityGroups: [friends, guarded])
        let fromA = try await ping(a, b.ip), fromC = try await ping(c, b.ip)
        XCTAssertTrue(fromA, "A is a member of B's remote group")
        XCTAssertFalse(fromC, "C is not (yet)")
        let chainsOfB = try await listing(of: b)

        try await firewall.updateRemoteGroup(Group(id: "sg-friends", rules: allEgress, memberAddresses: [c.ip]))
        let fromAAfter = try await ping(a, b.ip), fromCAfter = try await ping(c, b.ip)
        XCTAssertFalse(fromAAfter, "A left the group")
        XCTAssertTrue(fromCAfter, "C joined it")
        let set = try await sh(host, "nft", "list", "set", "inet", "nimbus-sg", "sg-sg-friends-v4")
        XCTAssertTrue(set.contains("elements = { \(c.ip) }"), set)
        let chainsOfBAfter = try await listing(of: b)
        XCTAssertEqual(chainsOfBAfter, chainsOfB, "only the set changed")
    }

    func testSpoofedAddressesAndMACsAreDroppedUntilPortSecurityIsOff() async throws {
        let open = Group(id: "sg-open", rules: allEgress + [Rule(id: "r-icmp", direction: "ingress", protocol: "icmp")])
        let portA = port(a, groups: ["sg-open"], pairs: [.init(ipAddress: "10.77.0.50")])
        try await firewall.apply(ports: [portA, port(b, groups: ["sg-open"])], securityGroups: [open])
        let honest = try await ping(a, b.ip)
        XCTAssertTrue(honest)
        // Static neighbours both ways, so only the firewall can stop what follows (not ARP).
        try await sh(a.namespace, "ip", "neigh", "replace", b.ip, "lladdr", b.mac, "dev", "eth0", "nud", "permanent")

        // A source address that is neither A's fixed IP nor an allowed pair.
        try await sh(a.namespace, "ip", "addr", "add", "10.77.0.99/24", "dev", "eth0")
        try await sh(b.namespace, "ip", "neigh", "replace", "10.77.0.99", "lladdr", a.mac, "dev", "eth0", "nud", "permanent")
        let spoofedIP = try await ping(a, b.ip, from: "10.77.0.99")
        XCTAssertFalse(spoofedIP, "a source address A does not own is dropped")
        // An allowed address pair is A's to use.
        try await sh(a.namespace, "ip", "addr", "add", "10.77.0.50/24", "dev", "eth0")
        try await sh(b.namespace, "ip", "neigh", "replace", "10.77.0.50", "lladdr", a.mac, "dev", "eth0", "nud", "permanent")
        let pairIP = try await ping(a, b.ip, from: "10.77.0.50")
        XCTAssertTrue(pairIP, "an allowed address pair passes")

        // A MAC that is not A's, from A's own address.
        try await sh(a.namespace, "ip", "link", "set", "eth0", "address", "02:00:00:00:00:99")
        for address in [a.ip, "10.77.0.99"] {
            try await sh(b.namespace, "ip", "neigh", "replace", address, "lladdr", "02:00:00:00:00:99", "dev", "eth0", "nud", "permanent")
        }
        let spoofedMAC = try await ping(a, b.ip)
        XCTAssertFalse(spoofedMAC, "a source MAC that is not A's is dropped")

        // Port security off lifts it all for A (B's ingress rules still apply to what A sends).
        try await firewall.updatePort(port(a, groups: [], security: false), securityGroups: [open])
        let filtering = try await firewall.isFiltering(portID: a.port)
        XCTAssertFalse(filtering)
        let liftedMAC = try await ping(a, b.ip), liftedIP = try await ping(a, b.ip, from: "10.77.0.99")
        XCTAssertTrue(liftedMAC, "A's MAC is no longer checked")
        XCTAssertTrue(liftedIP, "nor its source address")
        // And for B: with no ingress rule at all, port security off lets everything in.
        try await firewall.updatePort(port(b, groups: ["sg-closed"]), securityGroups: [Group(id: "sg-closed", rules: allEgress)])
        let closed = try await ping(a, b.ip)
        try await firewall.updatePort(port(b, groups: [], security: false), securityGroups: [])
        let lifted = try await ping(a, b.ip)
        XCTAssertFalse(closed)
        XCTAssertTrue(lifted, "port security off lifts B's ingress filtering")
    }

    // MARK: - Helpers

    /// Runs a command in `namespace` (the caller's when nil); throws unless it succeeds.
    @discardableResult
    private func sh(_ namespace: String?, _ arguments: String...) async throws -> String {
        let command = namespace.map { ["netns", "exec", $0] + arguments } ?? Array(arguments.dropFirst())
        return try await HostProcess.check(namespace == nil ? arguments[0] : "ip", command)
    }

    /// Whether any of three echo requests, 0.2 s apart, is answered within a second: one lost
    /// request on a loaded machine (CI saw it) must not read as "filtered", and a check that
    /// expects a drop gets three chances to see a leak.
    private func ping(_ from: Guest, _ address: String, from source: String? = nil) async throws -> Bool {
        let sourceArguments = source.map { ["-I", $0] } ?? []
        let output = try await HostProcess.run("ip", ["netns", "exec", from.namespace, "ping", "-c", "3", "-i", "0.2", "-W", "1"] + sourceArguments + [address])
        return output.status == 0
    }

    private func linkLocal(_ guest: Guest) -> String { PortAddresses.linkLocal(mac: guest.mac).description + "%eth0" }

    /// The guest's four chains as nft lists them with rule handles: a chain made anew, or a rule
    /// added, changes the text.
    /// The first lines of Nimbus's two tables as `nft -a` lists them: each with its table's handle.
    private func tableHandles() async throws -> String {
        var lines: [Substring] = []
        for family in ["bridge", "inet"] {
            lines += try await sh(host, "nft", "-a", "list", "table", family, "nimbus-sg").split(separator: "\n").prefix(1)
        }
        return lines.joined(separator: "\n")
    }

    private func listing(of guest: Guest) async throws -> String {
        var text = ""
        for (family, chain) in [("bridge", SecurityGroupRuleset.fromChain(tap: guest.tap)), ("bridge", SecurityGroupRuleset.toChain(tap: guest.tap)),
                                ("inet", SecurityGroupRuleset.egressChain(tap: guest.tap)), ("inet", SecurityGroupRuleset.ingressChain(tap: guest.tap))] {
            text += try await sh(host, "nft", "-a", "list", "chain", family, "nimbus-sg", chain)
        }
        return text
    }

    enum Transport: String { case tcp, udp }

    /// Sends "hello" from `from` to `to`'s `port` over a one-shot python3 server there, which
    /// answers it upper-cased; the answer, or nil when nothing came back within two seconds.
    private func exchange(_ transport: Transport, from: Guest, to: Guest, port: Int) async throws -> String? {
        let server = transport == .tcp ? """
            import socket
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("\(to.ip)", \(port))); s.listen(1); s.settimeout(4); print("ready", flush=True)
            try:
                c, _ = s.accept(); c.settimeout(2); c.sendall(c.recv(100).upper())
            except OSError:
                pass
            """ : """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("\(to.ip)", \(port))); s.settimeout(4)
            try:
                while True:
                    data, peer = s.recvfrom(100); s.sendto(data.upper(), peer)
            except OSError:
                pass
            """
        let client = transport == .tcp ? """
            import socket, time
            for attempt in range(20):
                try:
                    c = socket.create_connection(("\(to.ip)", \(port)), timeout=2); break
                except ConnectionRefusedError:
                    time.sleep(0.1)
                except OSError:
                    raise SystemExit(1)
            else:
                raise SystemExit(1)
            c.settimeout(2); c.sendall(b"hello"); print(c.recv(100).decode())
            """ : """
            import socket
            c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.settimeout(0.5)
            for attempt in range(4):
                c.sendto(b"hello", ("\(to.ip)", \(port)))
                try:
                    print(c.recvfrom(100)[0].decode()); break
                except OSError:
                    pass
            else:
                raise SystemExit(1)
            """
        async let served = HostProcess.run("ip", ["netns", "exec", to.namespace, "python3", "-c", server])
        // The TCP client retries while the server is not yet listening; give UDP's a head start.
        try await Task.sleep(for: .milliseconds(300))
        let answer = try await HostProcess.run("ip", ["netns", "exec", from.namespace, "python3", "-c", client])
        _ = try await served
        let text = answer.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return answer.status == 0 && !text.isEmpty ? text : nil
    }
}
