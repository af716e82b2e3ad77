import Foundation
import HostAPI
import Networking
import NimbusCore
import NimbusTestSupport
import XCTest

/// What a router's host is told of its further gateways and NDP proxies.
final class HostRouterGatewaysTests: XCTestCase {
    func testTheHostGetsEveryGatewayPortAndTheProxiesWhileTheSwitchIsOn() async throws {
        try await onEachEngine { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            try await plane.network.applyNetworkReport(NetworkAgentReport(host: "net-a", tunnelingIP: "10.250.0.1"))
            let scope = try await api.neutronCreate("address-scopes", "address_scope", ["ip_version": 6, "shared": true], token: admin)["id"] ?? .null
            let pool = try await api.neutronCreate("subnetpools", "subnetpool", ["prefixes": ["2001:db8::/48"], "default_prefixlen": 64, "shared": true,
                                                                                 "address_scope_id": scope], token: admin)["id"] ?? .null
            let external = try await api.neutronCreate("networks", "network", ["router:external": true], token: admin)["id"] ?? .null
            _ = try await api.neutronCreate("subnets", "subnet", ["network_id": external, "ip_version": 4, "cidr": "172.24.4.0/24"], token: admin)
            _ = try await api.neutronCreate("subnets", "subnet", ["network_id": external, "ip_version": 6, "subnetpool_id": pool], token: admin)
            let second = try await api.neutronCreate("networks", "network", ["router:external": true], token: admin)["id"] ?? .null
            _ = try await api.neutronCreate("subnets", "subnet", ["network_id": second, "ip_version": 4, "cidr": "172.25.0.0/24"], token: admin)
            let inside = try await api.neutronCreate("networks", "network", [:], token: alice.token)["id"] ?? .null
            let subnet = try await api.neutronCreate("subnets", "subnet", ["network_id": inside, "ip_version": 6, "subnetpool_id": pool,
                                                                           "ipv6_address_mode": "slaac", "ipv6_ra_mode": "slaac"], token: alice.token)["id"] ?? .null

            let router = try await api.neutronCreate("routers", "router", ["enable_ndp_proxy": true, "external_gateway_info": ["network_id": external]],
                                                     token: alice.token)
            let id = router["id"]?.stringValue ?? ""
            assertStatus(try await api.neutron(.put, "/routers/\(id)/add_router_interface", token: alice.token, body: ["subnet_id": subnet]), 200)
            assertStatus(try await api.neutron(.put, "/routers/\(id)/add_external_gateways", token: alice.token,
                                               body: ["router": ["external_gateways": [["network_id": second]]]]), 200)
            let port = try await api.neutronCreate("ports", "port", ["network_id": inside], token: alice.token)
            let proxy = try await api.neutronCreate("ndp_proxies", "ndp_proxy", ["router_id": .string(id), "port_id": port["id"] ?? .null], token: alice.token)
            let address = try XCTUnwrap(proxy["ip_address"]?.stringValue)

            let routers = try await plane.network.hostNetworkState(host: "net-a").routers
            let wired = try XCTUnwrap(routers.first)
            XCTAssertEqual(wired.gateway?.port.networkID, external.stringValue)
            XCTAssertEqual(wired.gateway?.port.addresses.map(\.cidr), ["172.24.4.0/24"], "IPv4 only: IPv6 is not routed yet")
            XCTAssertEqual(wired.extraGateways.map(\.networkID), [second.stringValue ?? ""])
            XCTAssertEqual(wired.extraGateways.first?.addresses.map(\.cidr), ["172.25.0.0/24"])
            XCTAssertEqual(wired.ndpProxies, [address])
            let state = try await plane.network.hostNetworkState(host: "net-a")
            XCTAssertTrue(Set(state.networks.map(\.id)).isSuperset(of: [external.stringValue ?? "", second.stringValue ?? ""]), "\(state.networks)")

            assertStatus(try await api.neutron(.put, "/routers/\(id)", token: alice.token, body: ["router": ["enable_ndp_proxy": false]]), 200)
            let afterwards = try await plane.network.hostNetworkState(host: "net-a").routers
            let off = try XCTUnwrap(afterwards.first)
            XCTAssertEqual(off.ndpProxies, [])
        }
    }
}
