import Foundation
import HostAPI
import Networking
import NimbusCore
import NimbusTestSupport
import XCTest

/// The DHCP and L3 agent scheduler routes move what the hosts' network state serves.
final class AgentSchedulerTests: XCTestCase {
    func testMovingANetworkAndARouterBetweenHosts() async throws {
        try await onEachEngine { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let net = try await RoutingFixture.make(api, admin: admin, owner: alice.token)
            for (index, host) in ["net-a", "net-b"].enumerated() {
                try await plane.network.applyNetworkReport(NetworkAgentReport(host: host, tunnelingIP: "10.250.0.\(index + 1)"))
            }
            let agents = try await api.neutron(.get, "/agents", token: admin).json["agents"]?.arrayValue ?? []
            func agent(_ type: String, _ host: String) -> String {
                agents.first { $0["agent_type"]?.stringValue == type && $0["host"]?.stringValue == host }?["id"]?.stringValue ?? ""
            }
            // Scheduling happens when a host asks for its state.
            _ = try await plane.network.hostNetworkState(host: "net-a")
            let hosting = try await api.neutron(.get, "/networks/\(net.network)/dhcp-agents", token: admin)
            let first = try XCTUnwrap(hosting.json["agents"]?.arrayValue?.first?["host"]?.stringValue, hosting.text)
            let second = first == "net-a" ? "net-b" : "net-a"
            assertNeutronError(try await api.neutron(.get, "/networks/\(net.network)/dhcp-agents", token: alice.token), 403)
            assertNeutronError(try await api.neutron(.post, "/agents/\(agent("DHCP agent", first))/dhcp-networks", token: admin,
                                                     body: ["network_id": .string(net.network)]), 409, type: "NetworkHostedByDHCPAgent")
            assertNeutronError(try await api.neutron(.post, "/agents/\(agent("L3 agent", first))/dhcp-networks", token: admin,
                                                     body: ["network_id": .string(net.network)]), 404, type: "InvalidDHCPAgent")

            // Added to the other host's agent, the network's DHCP server moves there.
            assertStatus(try await api.neutron(.post, "/agents/\(agent("DHCP agent", second))/dhcp-networks", token: admin,
                                               body: ["network_id": .string(net.network)]), 201)
            let served = try await api.neutron(.get, "/agents/\(agent("DHCP agent", second))/dhcp-networks", token: admin)
            XCTAssertEqual(served.json["networks"]?.arrayValue?.compactMap { $0["id"]?.stringValue }.contains(net.network), true, served.text)
            let secondState = try await plane.network.hostNetworkState(host: second)
            XCTAssertEqual(secondState.dhcp.map(\.networkID).contains(net.network), true)
            let firstState = try await plane.network.hostNetworkState(host: first)
            XCTAssertEqual(firstState.dhcp.map(\.networkID).contains(net.network), false)
            assertStatus(try await api.neutron(.delete, "/agents/\(agent("DHCP agent", second))/dhcp-networks/\(net.network)", token: admin), 204)
            assertNeutronError(try await api.neutron(.delete, "/agents/\(agent("DHCP agent", second))/dhcp-networks/\(net.network)", token: admin),
                               409, type: "NetworkNotHostedByDhcpAgent")

            // A router is removed from its L3 agent before another takes it.
            let router = try await api.neutronCreate("routers", "router", ["external_gateway_info": ["network_id": .string(net.external)]], token: alice.token)
            let routerID = router["id"]?.stringValue ?? ""
            _ = try await plane.network.hostNetworkState(host: "net-a")
            let l3 = try await api.neutron(.get, "/routers/\(routerID)/l3-agents", token: admin)
            let routerHost = try XCTUnwrap(l3.json["agents"]?.arrayValue?.first?["host"]?.stringValue, l3.text)
            let otherHost = routerHost == "net-a" ? "net-b" : "net-a"
            assertNeutronError(try await api.neutron(.post, "/agents/\(agent("L3 agent", otherHost))/l3-routers", token: admin,
                                                     body: ["router_id": .string(routerID)]), 409, type: "RouterHostedByL3Agent")
            assertStatus(try await api.neutron(.delete, "/agents/\(agent("L3 agent", routerHost))/l3-routers/\(routerID)", token: admin), 204)
            assertStatus(try await api.neutron(.post, "/agents/\(agent("L3 agent", otherHost))/l3-routers", token: admin,
                                               body: ["router_id": .string(routerID)]), 201)
            let onOther = try await api.neutron(.get, "/agents/\(agent("L3 agent", otherHost))/l3-routers", token: admin)
            XCTAssertEqual(onOther.json["routers"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [routerID], onOther.text)
            let otherState = try await plane.network.hostNetworkState(host: otherHost)
            XCTAssertEqual(otherState.routers.map(\.id), [routerID])
            let gateway = try await api.neutron(.get, "/ports?device_id=\(routerID)", token: admin)
            XCTAssertEqual(gateway.json["ports"]?.arrayValue?.first?["binding:host_id"]?.stringValue, otherHost, gateway.text)

            let providers = try await api.neutron(.get, "/service-providers", token: alice.token)
            XCTAssertEqual(providers.json["service_providers"]?.arrayValue?.first?["service_type"], "L3_ROUTER_NAT", providers.text)
        }
    }
}
