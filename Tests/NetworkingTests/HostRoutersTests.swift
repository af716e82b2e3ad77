import Foundation
import HostAPI
import Networking
import NimbusCore
import NimbusTestSupport
import XCTest

/// Routers in the hosts' network state: each one with a port runs on exactly one live dataplane
/// host, with its ports bound there, and moves when that host dies.
final class HostRoutersTests: XCTestCase {
    func testARouterRunsOnExactlyOneLiveDataplaneHostWithItsFloatingIPs() async throws {
        try await onEachEngine { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let net = try await RoutingFixture.make(api, admin: admin, owner: alice.token)
            let hosts = ["net-a", "net-b"]
            for (index, host) in hosts.enumerated() {
                try await plane.network.applyNetworkReport(NetworkAgentReport(host: host, tunnelingIP: "10.250.0.\(index + 1)"))
            }
            // Each dataplane host is also an L3 agent.
            let l3Agents = try await api.neutron(.get, "/agents?agent_type=L3%20agent", token: admin).json["agents"]?.arrayValue ?? []
            XCTAssertEqual(Set(l3Agents.compactMap { $0["host"]?.stringValue }).isSuperset(of: hosts), true, "\(l3Agents)")

            // A router without ports runs nowhere.
            let router = try await api.neutronCreate("routers", "router", ["name": "r1"], token: alice.token)
            let routerID = try XCTUnwrap(router["id"]?.stringValue)
            for host in hosts {
                let routers = try await plane.network.hostNetworkState(host: host).routers
                XCTAssertEqual(routers, [], host)
            }

            // With a gateway, an interface and a floating IP on a port behind it.
            assertStatus(try await api.neutron(.put, "/routers/\(routerID)", token: alice.token,
                                               body: ["router": ["external_gateway_info": ["network_id": .string(net.external)]]]), 200)
            assertStatus(try await api.neutron(.put, "/routers/\(routerID)/add_router_interface", token: alice.token,
                                               body: ["subnet_id": .string(net.subnet)]), 200)
            let port = try await api.neutronCreate("ports", "port", ["network_id": .string(net.network)], token: alice.token)
            let fixed = try XCTUnwrap(port["fixed_ips"]?.arrayValue?.first?["ip_address"]?.stringValue)
            let floating = try await api.neutronCreate("floatingips", "floatingip", ["floating_network_id": .string(net.external),
                                                                                     "port_id": port["id"] ?? .null], token: alice.token)
            let floatingAddress = try XCTUnwrap(floating["floating_ip_address"]?.stringValue)
            assertStatus(try await api.neutron(.put, "/routers/\(routerID)", token: admin, body: ["router": ["routes": [
                ["destination": "192.168.50.0/24", "nexthop": "10.0.0.20"]]]]), 200)

            var states: [String: HostNetworkState] = [:]
            for host in hosts { states[host] = try await plane.network.hostNetworkState(host: host) }
            let running = hosts.filter { states[$0]?.routers.isEmpty == false }
            XCTAssertEqual(running.count, 1, "\(states)")
            let chosen = try XCTUnwrap(running.first), other = hosts.first { $0 != chosen } ?? ""
            let wired = try XCTUnwrap(states[chosen]?.routers.first)
            XCTAssertEqual(wired.id, routerID)
            XCTAssertTrue(wired.enableSNAT)
            XCTAssertEqual(wired.interfaces.map(\.networkID), [net.network])
            XCTAssertEqual(wired.interfaces.first?.addresses, [.init(subnetID: net.subnet, address: "10.0.0.1", cidr: "10.0.0.0/24")])
            XCTAssertEqual(wired.gateway?.port.networkID, net.external)
            XCTAssertEqual(wired.gateway?.nexthop, "172.24.4.1")
            XCTAssertEqual(wired.gateway?.port.addresses.map(\.cidr), ["172.24.4.0/24"])
            XCTAssertEqual(wired.routes, [.init(destination: "192.168.50.0/24", nexthop: "10.0.0.20")])
            XCTAssertEqual(wired.floatingIPs, [.init(floatingAddress: floatingAddress, fixedAddress: fixed)])
            // Its networks are wired on its host, the external one with its segment.
            let networks = Set(states[chosen]?.networks.map(\.id) ?? [])
            XCTAssertTrue(networks.isSuperset(of: [net.network, net.external]), "\(networks)")
            // Its ports are bound there.
            let routerPorts = try await api.neutron(.get, "/ports?device_id=\(routerID)", token: admin).json["ports"]?.arrayValue ?? []
            XCTAssertEqual(routerPorts.count, 2)
            XCTAssertEqual(Set(routerPorts.compactMap { $0["binding:host_id"]?.stringValue }), [chosen])

            // Its host dies: the router moves to the live one, its ports follow, and the live
            // host's state names the dead one no more as a peer of the router's networks.
            try await plane.network.reportDataplane(host: chosen, tunnelingIP: "10.250.0.9", at: Date().addingTimeInterval(-1000))
            let moved = try await plane.network.hostNetworkState(host: other)
            XCTAssertEqual(moved.routers.map(\.id), [routerID])
            let movedPorts = try await api.neutron(.get, "/ports?device_id=\(routerID)", token: admin).json["ports"]?.arrayValue ?? []
            XCTAssertEqual(Set(movedPorts.compactMap { $0["binding:host_id"]?.stringValue }), [other])

            // A router that is down runs nowhere; without ports it is unscheduled.
            assertStatus(try await api.neutron(.put, "/routers/\(routerID)", token: alice.token, body: ["router": ["admin_state_up": false]]), 200)
            let downState = try await plane.network.hostNetworkState(host: other)
            XCTAssertEqual(downState.routers, [])
            assertStatus(try await api.neutron(.put, "/routers/\(routerID)", token: alice.token, body: ["router": ["admin_state_up": true]]), 200)
            assertStatus(try await api.neutron(.delete, "/floatingips/\(floating["id"]?.stringValue ?? "")", token: alice.token), 204)
            assertStatus(try await api.neutron(.put, "/routers/\(routerID)", token: admin, body: ["router": ["routes": []]]), 200)
            assertStatus(try await api.neutron(.put, "/routers/\(routerID)/remove_router_interface", token: alice.token,
                                               body: ["subnet_id": .string(net.subnet)]), 200)
            assertStatus(try await api.neutron(.put, "/routers/\(routerID)", token: alice.token, body: ["router": ["external_gateway_info": .null]]), 200)
            let emptied = try await plane.network.hostNetworkState(host: other)
            XCTAssertEqual(emptied.routers, [])
            let bindings = try await cloud.rawColumn("SELECT host FROM network_l3_host")
            XCTAssertEqual(bindings, [])
        }
    }
}
