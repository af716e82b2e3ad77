import Foundation
import HostAPI
import Logging
import NimbusCore
import XCTest
@testable import Dataplane

/// Routers on a "host" namespace: a project network with a guest behind a tap-named veth, and a
/// flat external network whose mapped interface is a veth to an "external" namespace that has
/// no route to the project network, so whatever reaches it from the guest and back went
/// through the router's NAT.
extension LinuxBridgeDataplaneTests {
    /// A one-shot TCP server in `server` that answers with the address it saw the client come
    /// from; `client` connects to it at `address` (retrying while the server starts). Returns
    /// what the client read, or nil when it never connected.
    func sourceAddress(seenBy server: String, from client: String, at address: String) async throws -> String? {
        let serverCode = """
            import socket
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", 8080))
            s.listen(1)
            s.settimeout(8)
            c, peer = s.accept()
            c.sendall(peer[0].encode())
            c.close()
            """
        let clientCode = """
            import socket, sys, time
            for _ in range(40):
                try:
                    s = socket.create_connection((sys.argv[1], 8080), timeout=1)
                    print(s.recv(64).decode())
                    break
                except OSError:
                    time.sleep(0.1)
            """
        async let served = HostProcess.run("ip", ["netns", "exec", server, "python3", "-c", serverCode])
        let read = try await HostProcess.run("ip", ["netns", "exec", client, "python3", "-c", clientCode, address])
        _ = try await served
        let text = read.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }

    func pings(from namespace: String, to address: String) async throws -> Bool {
        try await HostProcess.run("ip", ["netns", "exec", namespace, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", address]).status == 0
    }

    func testARouterNATsItsSubnetToTheOutsideAndFloatingIPsBothWays() async throws {
        for tool in ["python3", "ping", "nft", "sysctl"] where HostProcess.locate(tool) == nil { throw XCTSkip("\(tool) is not installed") }
        let rootForwarding = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8)
        let host = try await makeNamespace("nbt-rh-\(suffix)"), external = try await makeNamespace("nbt-rx-\(suffix)")
        // The outside world: 10.253.0.1, no default route and no route to the project network.
        try await IPRoute.ip(["link", "add", "ext0", "type", "veth", "peer", "name", "eth0", "netns", external], netns: host)
        try await IPRoute.ip(["addr", "add", "10.253.0.1/24", "dev", "eth0"], netns: external)
        try await IPRoute.ip(["link", "set", "eth0", "up"], netns: external)

        let network = Identifiers.uuid(), subnet = Identifiers.uuid(), externalNetwork = Identifiers.uuid(), externalSubnet = Identifiers.uuid()
        let group = Identifiers.uuid()
        let port = HostNetworkState.Port(id: Identifiers.uuid(), networkID: network, macAddress: "fa:16:3e:40:00:0a",
                                         fixedIPs: [.init(subnetID: subnet, address: "10.66.0.10")], securityGroupIDs: [group], deviceOwner: "compute:nova")
        let guest = try await makeGuest("nbt-rg-\(suffix)", tap: DeviceNames.tap(port: port.id), mac: port.macAddress, host: host)
        try await IPRoute.ip(["addr", "add", "10.66.0.10/24", "dev", "eth0"], netns: guest)
        try await IPRoute.ip(["route", "add", "default", "via", "10.66.0.1"], netns: guest)

        var router = HostNetworkState.Router(
            id: Identifiers.uuid(),
            interfaces: [.init(id: Identifiers.uuid(), networkID: network, macAddress: "fa:16:3e:40:00:01",
                               addresses: [.init(subnetID: subnet, address: "10.66.0.1", cidr: "10.66.0.0/24")], mtu: 1450)],
            gateway: .init(port: .init(id: Identifiers.uuid(), networkID: externalNetwork, macAddress: "fa:16:3e:40:00:02",
                                       addresses: [.init(subnetID: externalSubnet, address: "10.253.0.2", cidr: "10.253.0.0/24")]),
                           nexthop: "10.253.0.1"))
        let namespace = DeviceNames.routerNamespace(router: router.id)
        namespaces.append(namespace)
        var state = HostNetworkState(host: "h1")
        state.networks = [.init(id: network, networkType: "vxlan", segmentationID: 4343, mtu: 1450),
                          .init(id: externalNetwork, networkType: "flat", physicalNetwork: "public")]
        state.ports = [port]
        state.securityGroups = [.init(id: group, rules: [
            .init(id: Identifiers.uuid(), direction: "ingress", protocol: "icmp"), .init(id: Identifiers.uuid(), direction: "ingress", protocol: "tcp"),
            .init(id: Identifiers.uuid(), direction: "egress"),
        ])]
        state.routers = [router]
        let dataplane = LinuxBridgeDataplane(settings: .init(host: "h1", tunnelingIP: "10.251.0.1", stateDirectory: stateDirectory,
                                                             physicalInterfaceMappings: ["public": "ext0"], hostNamespace: host),
                                             logger: Logger(label: "test"))
        let applied = try await dataplane.apply(state)
        XCTAssertEqual(applied.problems, [])

        // The namespace forwards; nothing outside it changed.
        let forwarding = try await HostProcess.check("ip", ["netns", "exec", namespace, "sysctl", "-n", "net.ipv4.ip_forward"])
        XCTAssertEqual(forwarding.trimmingCharacters(in: .whitespacesAndNewlines), "1")
        let hostForwarding = try await HostProcess.check("ip", ["netns", "exec", host, "sysctl", "-n", "net.ipv4.ip_forward"])
        XCTAssertEqual(hostForwarding.trimmingCharacters(in: .whitespacesAndNewlines), "0")
        let interfaceName = DeviceNames.routerInterface(port: router.interfaces[0].id)
        let gatewayName = DeviceNames.routerGateway(port: router.gateway!.port.id)
        let interfaceAddresses = try await IPRoute.addresses(interfaceName, netns: namespace)
        XCTAssertEqual(interfaceAddresses, ["10.66.0.1/24"])
        let gatewayAddresses = try await IPRoute.addresses(gatewayName, netns: namespace)
        XCTAssertEqual(gatewayAddresses, ["10.253.0.2/24"])
        let hostLinks = Dictionary(try await IPRoute.links(netns: host).map { ($0.ifname, $0) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(hostLinks[DeviceNames.tap(port: router.interfaces[0].id)]?.master, DeviceNames.bridge(network: network))
        XCTAssertEqual(hostLinks[DeviceNames.tap(port: router.gateway!.port.id)]?.master, DeviceNames.bridge(network: externalNetwork))
        XCTAssertEqual(hostLinks["ext0"]?.master, DeviceNames.bridge(network: externalNetwork))
        let insideLinks = Dictionary(try await IPRoute.links(netns: namespace).map { ($0.ifname, $0) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(insideLinks[interfaceName]?.address, "fa:16:3e:40:00:01")
        XCTAssertEqual(insideLinks[interfaceName]?.mtu, 1450)

        // SNAT: the guest reaches the outside, which sees the router's gateway address.
        let guestPingsOut = try await pings(from: guest, to: "10.253.0.1")
        XCTAssertTrue(guestPingsOut)
        let snatSource = try await sourceAddress(seenBy: external, from: guest, at: "10.253.0.1")
        XCTAssertEqual(snatSource, "10.253.0.2")

        // The same state again changes nothing: the rules keep their handles (a reload would
        // number them anew), the addresses and routes stay.
        let rulesBefore = try await HostProcess.check("ip", ["netns", "exec", namespace, "nft", "-a", "list", "ruleset"])
        let routesBefore = try await IPRoute.ip(["-4", "route", "show"], netns: namespace)
        let again = try await dataplane.apply(state)
        XCTAssertEqual(again.problems, [])
        let rulesAfter = try await HostProcess.check("ip", ["netns", "exec", namespace, "nft", "-a", "list", "ruleset"])
        let routesAfter = try await IPRoute.ip(["-4", "route", "show"], netns: namespace)
        XCTAssertEqual(rulesAfter, rulesBefore)
        XCTAssertEqual(routesAfter, routesBefore)
        XCTAssertTrue(routesAfter.contains("default via 10.253.0.1 dev \(gatewayName) proto static"), routesAfter)

        // A floating IP and a static route: the outside reaches the guest at the floating
        // address and sees it come from there; the guest sees the outside's real address.
        router.floatingIPs = [.init(floatingAddress: "10.253.0.50", fixedAddress: "10.66.0.10")]
        router.routes = [.init(destination: "10.99.0.0/24", nexthop: "10.66.0.20")]
        state.routers = [router]
        let withFloating = try await dataplane.apply(state)
        XCTAssertEqual(withFloating.problems, [])
        let gatewayWithFloating = try await IPRoute.addresses(gatewayName, netns: namespace)
        XCTAssertEqual(gatewayWithFloating, ["10.253.0.2/24", "10.253.0.50/32"])
        let routesWithStatic = try await IPRoute.ip(["-4", "route", "show"], netns: namespace)
        XCTAssertTrue(routesWithStatic.contains("10.99.0.0/24 via 10.66.0.20 dev \(interfaceName) proto static"), routesWithStatic)
        let outsidePingsFloating = try await pings(from: external, to: "10.253.0.50")
        XCTAssertTrue(outsidePingsFloating)
        let inboundSource = try await sourceAddress(seenBy: guest, from: external, at: "10.253.0.50")
        XCTAssertEqual(inboundSource, "10.253.0.1")
        let floatingSource = try await sourceAddress(seenBy: external, from: guest, at: "10.253.0.1")
        XCTAssertEqual(floatingSource, "10.253.0.50")

        // Without the floating IP and the route: their rules, address and route are gone, and
        // the guest is back behind the gateway's address.
        router.floatingIPs = []
        router.routes = []
        state.routers = [router]
        let withoutFloating = try await dataplane.apply(state)
        XCTAssertEqual(withoutFloating.problems, [])
        let rules = try await HostProcess.check("ip", ["netns", "exec", namespace, "nft", "list", "ruleset"])
        XCTAssertFalse(rules.contains("10.253.0.50"), rules)
        XCTAssertTrue(rules.contains("snat to 10.253.0.2"), rules)
        let gatewayWithoutFloating = try await IPRoute.addresses(gatewayName, netns: namespace)
        XCTAssertEqual(gatewayWithoutFloating, ["10.253.0.2/24"])
        let routesWithoutStatic = try await IPRoute.ip(["-4", "route", "show"], netns: namespace)
        XCTAssertFalse(routesWithoutStatic.contains("10.99.0.0/24"), routesWithoutStatic)
        let outsidePingsGone = try await pings(from: external, to: "10.253.0.50")
        XCTAssertFalse(outsidePingsGone)
        let sourceAgain = try await sourceAddress(seenBy: external, from: guest, at: "10.253.0.1")
        XCTAssertEqual(sourceAgain, "10.253.0.2")

        // SNAT off: the guest's packets leave with their own address, which the outside cannot
        // answer (it has no route back).
        router.enableSNAT = false
        state.routers = [router]
        let withoutSNAT = try await dataplane.apply(state)
        XCTAssertEqual(withoutSNAT.problems, [])
        let natTableLeft = try await HostProcess.run("ip", ["netns", "exec", namespace, "nft", "list", "table", "ip", "nimbus-nat"]).status
        XCTAssertNotEqual(natTableLeft, 0, "no NAT to do: no table")
        let pingsWithoutSNAT = try await pings(from: guest, to: "10.253.0.1")
        XCTAssertFalse(pingsWithoutSNAT)

        // The router goes: its namespace, its veths and its directory with it.
        state.routers = []
        let removed = try await dataplane.apply(state)
        XCTAssertEqual(removed.problems, [])
        let routerNamespaceLeft = try await IPRoute.namespaces().contains(namespace)
        XCTAssertFalse(routerNamespaceLeft)
        let names = Set(try await IPRoute.links(netns: host).map(\.ifname))
        XCTAssertFalse(names.contains(DeviceNames.tap(port: router.interfaces[0].id)))
        XCTAssertFalse(names.contains(DeviceNames.tap(port: router.gateway!.port.id)))
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(stateDirectory)/routers/\(router.id)"))
        let rootForwardingAfter = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8)
        XCTAssertEqual(rootForwardingAfter, rootForwarding)
        try await dataplane.removeAll()
    }
}

/// The NAT ruleset a router gets, without a kernel.
final class RouterNATRulesetTests: XCTestCase {
    let gateway = HostNetworkState.RouterGateway(port: .init(id: "0123456789abcdef", networkID: "ext", macAddress: "fa:16:3e:00:00:01",
                                                             addresses: [.init(subnetID: "s", address: "172.24.4.2", cidr: "172.24.4.0/24")]),
                                                 nexthop: "172.24.4.1")

    func testNoGatewayOrNothingToTranslateGivesNoTable() {
        XCTAssertNil(LinuxBridgeDataplane.natRuleset(.init(id: "r")))
        XCTAssertNil(LinuxBridgeDataplane.natRuleset(.init(id: "r", gateway: gateway, enableSNAT: false)))
    }

    func testFloatingIPsComeBeforeTheGatewaysSNAT() throws {
        let text = try XCTUnwrap(LinuxBridgeDataplane.natRuleset(.init(id: "r", gateway: gateway,
                                                                        floatingIPs: [.init(floatingAddress: "172.24.4.50", fixedAddress: "10.0.0.5")])))
        let postrouting = try XCTUnwrap(text.components(separatedBy: "chain postrouting").last)
        let lines = postrouting.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        XCTAssertEqual(Array(lines.dropFirst(2).prefix(4)), [
            #"oifname != "qg-0123456789a" ct status ! dnat accept"#,
            "ip saddr 10.0.0.5 snat to 172.24.4.50",
            #"oifname "qg-0123456789a" snat to 172.24.4.2"#,
            #"iifname != "qg-0123456789a" ct status dnat snat to 172.24.4.2"#,
        ])
        XCTAssertEqual(text.components(separatedBy: "ip daddr 172.24.4.50 dnat to 10.0.0.5").count, 3, "prerouting and output")
        let snatOff = try XCTUnwrap(LinuxBridgeDataplane.natRuleset(.init(id: "r", gateway: gateway, enableSNAT: false,
                                                                           floatingIPs: [.init(floatingAddress: "172.24.4.50", fixedAddress: "10.0.0.5")])))
        XCTAssertFalse(snatOff.contains("172.24.4.2"), snatOff)
    }
}

/// The state's JSON, as it travels from the controller to a `nimbus agent`.
final class HostNetworkStateCodingTests: XCTestCase {
    func testRoutersRoundTripAndAStateWithoutThemDecodesWithNone() throws {
        var state = HostNetworkState(host: "h1", networks: [.init(id: "n", networkType: "flat", physicalNetwork: "public")])
        state.routers = [.init(id: "r", interfaces: [.init(id: "p", networkID: "n", macAddress: "fa:16:3e:00:00:01",
                                                           addresses: [.init(subnetID: "s", address: "10.0.0.1", cidr: "10.0.0.0/24")], mtu: 1450)],
                               gateway: nil, enableSNAT: false, routes: [.init(destination: "10.9.0.0/16", nexthop: "10.0.0.9")],
                               floatingIPs: [.init(floatingAddress: "172.24.4.9", fixedAddress: "10.0.0.5")])]
        let data = try JSONEncoder().encode(state)
        XCTAssertEqual(try JSONDecoder().decode(HostNetworkState.self, from: data), state)

        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        object["routers"] = nil
        let older = try JSONDecoder().decode(HostNetworkState.self, from: try JSONSerialization.data(withJSONObject: object))
        XCTAssertEqual(older.routers, [])
        XCTAssertEqual(older.networks, state.networks)
    }
}
