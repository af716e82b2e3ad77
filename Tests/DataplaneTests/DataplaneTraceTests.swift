import Foundation
import HostAPI
import Logging
import NimbusCore
import XCTest
@testable import Dataplane

/// `nimbus manage trace`'s checks on a "host" namespace wired by `LinuxBridgeDataplane.apply`:
/// all OK, then one link broken by hand at a time, each named alone.
extension LinuxBridgeDataplaneTests {
    /// The metadata API is never asked here: the trace only looks for the proxy's listener.
    struct UnreachableMetadataAPI: MetadataAPILink {
        func forward(_ request: MetadataRequest) async throws -> MetadataReply { throw DataplaneError("no metadata API in this test") }
    }

    func brokenKinds(_ links: [DataplaneTrace.Link]) -> [DataplaneTrace.Kind] { links.filter(\.isBroken).map(\.kind) }

    func testTheTraceIsAllOKAndNamesExactlyTheLinkBrokenByHand() async throws {
        for tool in ["nft", "sysctl", "ss"] where HostProcess.locate(tool) == nil { throw XCTSkip("\(tool) is not installed") }
        let host = try await makeNamespace("nbt-th-\(suffix)")
        // The external network's mapped interface (this kernel has no dummy devices): a veth
        // whose peer stays in the host, as nothing needs to reach beyond it here.
        try await IPRoute.ip(["link", "add", "ext0", "type", "veth", "peer", "name", "ext0-peer"], netns: host)

        let network = Identifiers.uuid(), subnet = Identifiers.uuid(), externalNetwork = Identifiers.uuid(), externalSubnet = Identifiers.uuid()
        let group = Identifiers.uuid()
        let port = HostNetworkState.Port(id: Identifiers.uuid(), networkID: network, macAddress: "fa:16:3e:50:00:0a",
                                         fixedIPs: [.init(subnetID: subnet, address: "10.67.0.10")], securityGroupIDs: [group], deviceOwner: "compute:nova")
        _ = try await makeGuest("nbt-tg-\(suffix)", tap: DeviceNames.tap(port: port.id), mac: port.macAddress, host: host)
        let dhcpPort = HostNetworkState.Port(id: Identifiers.uuid(), networkID: network, macAddress: "fa:16:3e:50:00:02",
                                             fixedIPs: [.init(subnetID: subnet, address: "10.67.0.2")], deviceOwner: "network:dhcp")
        let router = HostNetworkState.Router(
            id: Identifiers.uuid(),
            interfaces: [.init(id: Identifiers.uuid(), networkID: network, macAddress: "fa:16:3e:50:00:01",
                               addresses: [.init(subnetID: subnet, address: "10.67.0.1", cidr: "10.67.0.0/24")], mtu: 1450)],
            gateway: .init(port: .init(id: Identifiers.uuid(), networkID: externalNetwork, macAddress: "fa:16:3e:50:00:03",
                                       addresses: [.init(subnetID: externalSubnet, address: "10.254.0.2", cidr: "10.254.0.0/24")]),
                           nexthop: "10.254.0.1"),
            floatingIPs: [.init(floatingAddress: "10.254.0.50", fixedAddress: "10.67.0.10")])
        namespaces += [DeviceNames.dhcpNamespace(network: network), DeviceNames.routerNamespace(router: router.id)]

        var state = HostNetworkState(host: "h1")
        state.networks = [.init(id: network, networkType: "vxlan", segmentationID: 4545, mtu: 1450, peers: ["10.251.0.2"]),
                          .init(id: externalNetwork, networkType: "flat", physicalNetwork: "public")]
        state.ports = [port]
        state.securityGroups = [.init(id: group, rules: [.init(id: Identifiers.uuid(), direction: "egress")])]
        state.dhcp = [.init(networkID: network, port: dhcpPort, mtu: 1450,
                            subnets: [.init(id: subnet, cidr: "10.67.0.0/24", gatewayIP: "10.67.0.1", isolated: false)],
                            hosts: [.init(portID: port.id, macAddress: port.macAddress, ipAddress: "10.67.0.10", hostname: "host-10-67-0-10")])]
        state.routers = [router]
        let dataplane = LinuxBridgeDataplane(settings: .init(host: "h1", tunnelingIP: "10.251.0.1", stateDirectory: stateDirectory,
                                                             physicalInterfaceMappings: ["public": "ext0"], hostNamespace: host),
                                             logger: Logger(label: "test"))
        let applied = try await dataplane.apply(state)
        XCTAssertEqual(applied.problems, [])
        let logger = Logger(label: "test")
        let proxies = MetadataProxies(makeProxy: { MetadataProxy(lookup: $0, api: UnreachableMetadataAPI(), secret: "s", logger: logger) }, logger: logger)
        await proxies.update(state)

        let expected = DataplaneTrace.Expectation(
            port: .init(id: port.id, status: "ACTIVE", bindingHost: "h1", vifType: "bridge", macAddress: port.macAddress, addresses: ["10.67.0.10"]),
            network: .init(id: network, networkType: "vxlan", segmentationID: 4545, peers: ["10.251.0.2"]),
            dhcp: .init(host: "h1", portID: dhcpPort.id, addresses: ["10.67.0.2/24"], servesMetadata: false),
            router: .init(id: router.id, host: "h1", interfacePortID: router.interfaces[0].id, gatewayPortID: router.gateway!.port.id,
                          gatewayAddresses: ["10.254.0.2/24"], floatingIPs: [.init(floatingAddress: "10.254.0.50", fixedAddress: "10.67.0.10")]))
        let trace = DataplaneTrace(host: "h1", stateDirectory: stateDirectory, hostNamespace: host)

        let healthy = await trace.trace(expected)
        XCTAssertEqual(healthy.filter { $0.status != .ok }, [])
        // Every link of a vxlan network's chain (the `vlan` link is a vlan network's: LinuxBridgeDataplaneTests checks it).
        XCTAssertEqual(Set(healthy.map(\.kind)), Set(DataplaneTrace.Kind.allCases).subtracting([.vlan]), "every link of the chain is checked")

        // Elsewhere: a DHCP server on another host is named, not checked.
        var remoteDHCP = expected
        remoteDHCP.dhcp?.host = "h2"
        let remote = await trace.trace(remoteDHCP)
        XCTAssertEqual(remote.filter { $0.kind == .dhcpNamespace }.map(\.status), [.elsewhere(host: "h2")])
        XCTAssertEqual(brokenKinds(remote), [])
        // The peers the cloud expects are compared with the flooding entries.
        var morePeers = expected
        morePeers.network.peers = ["10.251.0.2", "10.251.0.3"]
        let lacking = await trace.trace(morePeers)
        XCTAssertEqual(brokenKinds(lacking), [.flooding])

        // The tap down.
        let tap = DeviceNames.tap(port: port.id)
        try await IPRoute.ip(["link", "set", tap, "down"], netns: host)
        let tapDown = await trace.trace(expected)
        XCTAssertEqual(brokenKinds(tapDown), [.tap])
        XCTAssertEqual(tapDown.first { $0.kind == .tap }?.status, .broken("is down"))
        try await IPRoute.ip(["link", "set", tap, "up"], netns: host)

        // dnsmasq killed.
        let directory = "\(stateDirectory)/dhcp/\(network)"
        let pid = try XCTUnwrap(LinuxBridgeDataplane.dnsmasqPID(directory))
        kill(pid, SIGKILL)
        for _ in 0..<100 where LinuxBridgeDataplane.dnsmasqPID(directory) != nil { try await Task.sleep(for: .milliseconds(20)) }
        let dnsmasqKilled = await trace.trace(expected)
        XCTAssertEqual(brokenKinds(dnsmasqKilled), [.dnsmasq])
        let restarted = try await dataplane.apply(state)
        XCTAssertEqual(restarted.problems, [])

        // The floating IP's DNAT rules deleted.
        let routerNamespace = DeviceNames.routerNamespace(router: router.id)
        try await HostProcess.check("ip", ["netns", "exec", routerNamespace, "nft", "flush", "chain", "ip", "nimbus-nat", "prerouting"])
        let natDeleted = await trace.trace(expected)
        XCTAssertEqual(brokenKinds(natDeleted), [.floatingIPNAT])
        let reloaded = try await dataplane.apply(state)
        XCTAssertEqual(reloaded.problems, [])
        let repaired = await trace.trace(expected)
        XCTAssertEqual(brokenKinds(repaired), [])

        // The router's qg- removed.
        try await IPRoute.ip(["link", "del", DeviceNames.routerGateway(port: router.gateway!.port.id)], netns: routerNamespace)
        let gatewayGone = await trace.trace(expected)
        XCTAssertEqual(brokenKinds(gatewayGone), [.routerGateway])

        // The metadata proxy stopped.
        await proxies.stopAll()
        var stopped: [DataplaneTrace.Kind] = []
        for _ in 0..<50 {
            stopped = brokenKinds(await trace.trace(expected))
            if stopped.contains(.metadata) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        XCTAssertEqual(stopped, [.routerGateway, .metadata])
        _ = try await dataplane.apply(HostNetworkState(host: "h1"))
    }
}
