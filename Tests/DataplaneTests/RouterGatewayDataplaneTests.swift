import Foundation
import HostAPI
import Logging
import NimbusCore
import XCTest
@testable import Dataplane

/// A router with two gateways (multihoming) and NDP proxies, on a "host" namespace whose two
/// flat external networks map to veths of the test's own.
extension LinuxBridgeDataplaneTests {
    func testEveryGatewayIsPluggedAndNDPProxiesComeAndGoOnTheFirst() async throws {
        for tool in ["nft", "sysctl"] where HostProcess.locate(tool) == nil { throw XCTSkip("\(tool) is not installed") }
        let host = try await makeNamespace("nbt-gh-\(suffix)")
        try await IPRoute.ip(["link", "add", "ext0", "type", "veth", "peer", "name", "ext0p"], netns: host)
        try await IPRoute.ip(["link", "add", "ext1", "type", "veth", "peer", "name", "ext1p"], netns: host)

        let first = Identifiers.uuid(), second = Identifiers.uuid()
        var router = HostNetworkState.Router(
            id: Identifiers.uuid(),
            gateway: .init(port: .init(id: Identifiers.uuid(), networkID: first, macAddress: "fa:16:3e:50:00:02",
                                       addresses: [.init(subnetID: Identifiers.uuid(), address: "10.253.0.2", cidr: "10.253.0.0/24")]),
                           nexthop: "10.253.0.1"),
            extraGateways: [.init(id: Identifiers.uuid(), networkID: second, macAddress: "fa:16:3e:50:00:03",
                                  addresses: [.init(subnetID: Identifiers.uuid(), address: "10.254.0.2", cidr: "10.254.0.0/24")])],
            ndpProxies: ["2001:db8:1::10", "2001:db8:1::11"])
        let namespace = DeviceNames.routerNamespace(router: router.id)
        namespaces.append(namespace)
        var state = HostNetworkState(host: "h1")
        state.networks = [.init(id: first, networkType: "flat", physicalNetwork: "public"), .init(id: second, networkType: "flat", physicalNetwork: "public2")]
        state.routers = [router]
        let dataplane = LinuxBridgeDataplane(settings: .init(host: "h1", tunnelingIP: "10.251.0.1", stateDirectory: stateDirectory,
                                                             physicalInterfaceMappings: ["public": "ext0", "public2": "ext1"], hostNamespace: host),
                                             logger: Logger(label: "test"))
        let applied = try await dataplane.apply(state)
        XCTAssertEqual(applied.problems, [])

        // Both gateways are in the namespace with their addresses, their host ends on their bridges.
        let firstDevice = DeviceNames.routerGateway(port: router.gateway!.port.id)
        let secondDevice = DeviceNames.routerGateway(port: router.extraGateways[0].id)
        let firstAddresses = try await IPRoute.addresses(firstDevice, netns: namespace)
        XCTAssertEqual(firstAddresses, ["10.253.0.2/24"])
        let secondAddresses = try await IPRoute.addresses(secondDevice, netns: namespace)
        XCTAssertEqual(secondAddresses, ["10.254.0.2/24"])
        let hostLinks = Dictionary(try await IPRoute.links(netns: host).map { ($0.ifname, $0) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(hostLinks[DeviceNames.tap(port: router.extraGateways[0].id)]?.master, DeviceNames.bridge(network: second))
        // The default route and SNAT use the first gateway only.
        let routes = try await IPRoute.ip(["-4", "route", "show"], netns: namespace)
        XCTAssertTrue(routes.contains("default via 10.253.0.1 dev \(firstDevice) proto static"), routes)
        let rules = try await HostProcess.check("ip", ["netns", "exec", namespace, "nft", "list", "table", "ip", LinuxBridgeDataplane.natTable])
        XCTAssertTrue(rules.contains("oifname \"\(firstDevice)\" snat to 10.253.0.2"), rules)

        // The proxies answer on the first gateway, which proxies NDP; the second does not.
        let proxies = try await dataplane.ndpProxyEntries(device: firstDevice, namespace: namespace)
        XCTAssertEqual(proxies, ["2001:db8:1::10", "2001:db8:1::11"])
        let secondProxies = try await dataplane.ndpProxyEntries(device: secondDevice, namespace: namespace)
        XCTAssertEqual(secondProxies, [])
        func proxyNDP(_ device: String) async throws -> String {
            try await HostProcess.check("ip", ["netns", "exec", namespace, "sysctl", "-n", "net.ipv6.conf.\(device).proxy_ndp"])
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let firstProxying = try await proxyNDP(firstDevice)
        XCTAssertEqual(firstProxying, "1")
        let secondProxying = try await proxyNDP(secondDevice)
        XCTAssertEqual(secondProxying, "0")
        let hostProxying = try await HostProcess.check("ip", ["netns", "exec", host, "sysctl", "-n", "net.ipv6.conf.all.proxy_ndp"])
        XCTAssertEqual(hostProxying.trimmingCharacters(in: .whitespacesAndNewlines), "0", "nothing outside the router's namespace changes")

        // One proxy goes, then the other and the second gateway: the entries, the setting and the device go.
        router.ndpProxies = ["2001:db8:1::11"]
        state.routers = [router]
        let fewer = try await dataplane.apply(state)
        XCTAssertEqual(fewer.problems, [])
        let remaining = try await dataplane.ndpProxyEntries(device: firstDevice, namespace: namespace)
        XCTAssertEqual(remaining, ["2001:db8:1::11"])
        router.ndpProxies = []
        router.extraGateways = []
        state.routers = [router]
        let none = try await dataplane.apply(state)
        XCTAssertEqual(none.problems, [])
        let gone = try await dataplane.ndpProxyEntries(device: firstDevice, namespace: namespace)
        XCTAssertEqual(gone, [])
        let proxyingAfter = try await proxyNDP(firstDevice)
        XCTAssertEqual(proxyingAfter, "0")
        let inside = Set(try await IPRoute.links(netns: namespace).map(\.ifname))
        XCTAssertFalse(inside.contains(secondDevice))
        XCTAssertTrue(inside.contains(firstDevice))

        state.routers = []
        let removed = try await dataplane.apply(state)
        XCTAssertEqual(removed.problems, [])
        try await dataplane.removeAll()
    }
}
