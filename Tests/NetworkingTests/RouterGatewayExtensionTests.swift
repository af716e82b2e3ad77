import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

/// Several external gateways per router (`external-gateway-multihoming`) and NDP proxies.
final class RouterGatewayExtensionTests: XCTestCase {
    func testRouterGatewaysAreAddedMatchedReorderedAndRemoved() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")
            let net = try await RoutingFixture.make(api, admin: admin, owner: alice.token)
            let second = try await api.neutronCreate("networks", "network", ["name": "public2", "router:external": true], token: admin)["id"] ?? .null
            _ = try await api.neutronCreate("subnets", "subnet", ["network_id": second, "ip_version": 4, "cidr": "172.25.0.0/24"], token: admin)
            let overlapping = try await api.neutronCreate("networks", "network", ["name": "public3", "router:external": true], token: admin)["id"] ?? .null
            _ = try await api.neutronCreate("subnets", "subnet", ["network_id": overlapping, "ip_version": 4, "cidr": "10.0.0.0/16"], token: admin)

            let router = try await api.neutronCreate("routers", "router", ["name": "r", "external_gateway_info": ["network_id": .string(net.external)]],
                                                     token: alice.token)
            let id = try XCTUnwrap(router["id"]?.stringValue)
            XCTAssertEqual(router["external_gateways"]?.arrayValue?.count, 1, "\(router)")
            let firstPort = try await routerGatewayPorts(api, router: id, token: admin).first?["id"]

            // A second gateway on another external network: the first stays first.
            let added = try await api.neutron(.put, "/routers/\(id)/add_external_gateways", token: alice.token,
                                              body: ["router": ["external_gateways": [["network_id": second]]]])
            assertStatus(added, 200)
            let gateways = added.json["router"]?["external_gateways"]?.arrayValue ?? []
            XCTAssertEqual(gateways.map { $0["network_id"] }, [.string(net.external), second], added.text)
            XCTAssertEqual(added.json["router"]?["external_gateway_info"]?["network_id"]?.stringValue, net.external)
            XCTAssertEqual(gateways[1]["external_fixed_ips"]?.arrayValue?.first?["ip_address"]?.stringValue?.hasPrefix("172.25.0."), true)
            // A third on the first network, at a chosen address (the operator's call).
            let ownAddress: JSON = ["router": ["external_gateways": [["network_id": .string(net.external), "external_fixed_ips": [["ip_address": "172.24.4.77"]]]]]]
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)/add_external_gateways", token: alice.token, body: ownAddress), 403)
            assertStatus(try await api.neutron(.put, "/routers/\(id)/add_external_gateways", token: admin, body: ownAddress), 200)
            let ports = try await routerGatewayPorts(api, router: id, token: admin)
            XCTAssertEqual(ports.count, 3)
            XCTAssertEqual(Set(ports.compactMap { $0["device_owner"]?.stringValue }), ["network:router_gateway"])

            // What cannot be a gateway, or cannot be told apart.
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)/add_external_gateways", token: alice.token,
                                                     body: ["router": ["external_gateways": [["network_id": .string(net.network)]]]]), 400)
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)/add_external_gateways", token: alice.token,
                                                     body: ["router": ["external_gateways": "public"]]), 400)
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)/add_external_gateways", token: bob.token,
                                                     body: ["router": ["external_gateways": [["network_id": second]]]]), 404)
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)/remove_external_gateways", token: alice.token,
                                                     body: ["router": ["external_gateways": [["network_id": .string(net.external)]]]]), 400,
                               type: "UnableToMatchGateways")
            // An interface's subnet may not overlap a gateway's, nor the other way round.
            assertStatus(try await api.neutron(.put, "/routers/\(id)/add_router_interface", token: alice.token, body: ["subnet_id": .string(net.subnet)]), 200)
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)/add_external_gateways", token: alice.token,
                                                     body: ["router": ["external_gateways": [["network_id": overlapping]]]]), 400)
            // An empty removal (what the CLI sends with `router unset`) removes nothing.
            let none = try await api.neutron(.put, "/routers/\(id)/remove_external_gateways", token: alice.token, body: ["router": ["external_gateways": [:]]])
            XCTAssertEqual(none.json["router"]?["external_gateways"]?.arrayValue?.count, 3, none.text)

            // The update makes the list exactly this: the second network's port becomes the first
            // gateway (the same port), the ones on the first network go.
            let secondPort = ports.first { $0["network_id"] == second }?["id"]
            let updated = try await api.neutron(.put, "/routers/\(id)/update_external_gateways", token: alice.token,
                                                body: ["router": ["external_gateways": [["network_id": second]]]])
            assertStatus(updated, 200)
            XCTAssertEqual(updated.json["router"]?["external_gateways"]?.arrayValue?.map { $0["network_id"] }, [second], updated.text)
            XCTAssertEqual(updated.json["router"]?["external_gateway_info"]?["network_id"], second)
            let remaining = try await routerGatewayPorts(api, router: id, token: admin)
            XCTAssertEqual(remaining.map { $0["id"] }, [secondPort])
            XCTAssertNotEqual(secondPort, firstPort)

            // Back to two, then removing the first gateway makes the other one first.
            assertStatus(try await api.neutron(.put, "/routers/\(id)/add_external_gateways", token: alice.token,
                                               body: ["router": ["external_gateways": [["network_id": .string(net.external)]]]]), 200)
            let removed = try await api.neutron(.put, "/routers/\(id)/remove_external_gateways", token: alice.token,
                                                body: ["router": ["external_gateways": [["network_id": second]]]])
            assertStatus(removed, 200)
            XCTAssertEqual(removed.json["router"]?["external_gateway_info"]?["network_id"]?.stringValue, net.external, removed.text)
            XCTAssertEqual(removed.json["router"]?["external_gateways"]?.arrayValue?.count, 1)

            // An empty update removes every gateway; the router then deletes cleanly.
            let cleared = try await api.neutron(.put, "/routers/\(id)/update_external_gateways", token: alice.token,
                                                body: ["router": ["external_gateways": []]])
            XCTAssertEqual(cleared.json["router"]?["external_gateway_info"], .null, cleared.text)
            XCTAssertEqual(cleared.json["router"]?["external_gateways"], [])
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)/remove_external_gateways", token: alice.token,
                                                     body: ["router": ["external_gateways": [["network_id": second]]]]), 409)
            assertStatus(try await api.neutron(.put, "/routers/\(id)/add_external_gateways", token: alice.token,
                                               body: ["router": ["external_gateways": [["network_id": .string(net.external)], ["network_id": second]]]]), 200)
            assertStatus(try await api.neutron(.put, "/routers/\(id)/remove_router_interface", token: alice.token, body: ["subnet_id": .string(net.subnet)]), 200)
            assertStatus(try await api.neutron(.delete, "/routers/\(id)", token: alice.token), 204)
            let left = try await routerGatewayPorts(api, router: id, token: admin)
            XCTAssertEqual(left.count, 0)
        }
    }

    func testFloatingIPsKeepTheirGatewayThroughTheGatewayActions() async throws {
        try await onEachEngine { (cloud: TestCloud, api: API) in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let net = try await RoutingFixture.make(api, admin: admin, owner: alice.token)
            let second = try await api.neutronCreate("networks", "network", ["router:external": true], token: admin)["id"] ?? .null
            _ = try await api.neutronCreate("subnets", "subnet", ["network_id": second, "ip_version": 4, "cidr": "172.25.0.0/24"], token: admin)
            let router = try await api.neutronCreate("routers", "router", ["external_gateway_info": ["network_id": .string(net.external)]], token: alice.token)
            let id = router["id"]?.stringValue ?? ""
            assertStatus(try await api.neutron(.put, "/routers/\(id)/add_router_interface", token: alice.token, body: ["subnet_id": .string(net.subnet)]), 200)
            let port = try await api.neutronCreate("ports", "port", ["network_id": .string(net.network)], token: alice.token)
            _ = try await api.neutronCreate("floatingips", "floatingip", ["floating_network_id": .string(net.external), "port_id": port["id"] ?? .null],
                                            token: alice.token)
            assertStatus(try await api.neutron(.put, "/routers/\(id)/add_external_gateways", token: alice.token,
                                               body: ["router": ["external_gateways": [["network_id": second]]]]), 200)

            // Neither making the second gateway the only one nor removing the first may strand the floating IP.
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)/update_external_gateways", token: alice.token,
                                                     body: ["router": ["external_gateways": [["network_id": second]]]]), 409,
                               type: "RouterExternalGatewayInUseByFloatingIp")
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)/remove_external_gateways", token: alice.token,
                                                     body: ["router": ["external_gateways": [["network_id": .string(net.external)]]]]), 409,
                               type: "RouterExternalGatewayInUseByFloatingIp")
            let shown = try await api.neutron(.get, "/routers/\(id)", token: alice.token)
            XCTAssertEqual(shown.json["router"]?["external_gateways"]?.arrayValue?.map { $0["network_id"] }, [.string(net.external), second], shown.text)
            // The second one goes freely.
            let removed = try await api.neutron(.put, "/routers/\(id)/remove_external_gateways", token: alice.token,
                                                body: ["router": ["external_gateways": [["network_id": second]]]])
            XCTAssertEqual(removed.json["router"]?["external_gateways"]?.arrayValue?.count, 1, removed.text)
        }
    }

    func testBadBodiesAreNeutronsErrorsNot500s() async throws {
        try await onEachEngine { (cloud: TestCloud, api: API) in
            let admin = try await api.adminToken(cloud)
            let net = try await RoutingFixture.make(api, admin: admin, owner: admin)
            let router = try await api.neutronCreate("routers", "router", ["external_gateway_info": ["network_id": .string(net.external)]], token: admin)
            let id = router["id"]?.stringValue ?? ""
            let bodies: [JSON] = [
                "text", [:], ["router": "x"], ["router": ["external_gateways": [1]]], ["router": ["external_gateways": [["enable_snat": true]]]],
                ["router": ["external_gateways": [["network_id": .string(net.external), "external_fixed_ips": "x"]]]],
                ["router": ["external_gateways": [["network_id": .string(net.external), "external_fixed_ips": [["ip_address": "bogus"]]]]]],
                ["router": ["external_gateways": [["network_id": "missing"]]]], ["router": ["external_gateways": [], "name": "x"]],
            ]
            for action in ["add_external_gateways", "update_external_gateways", "remove_external_gateways"] {
                for body in bodies {
                    let reply = try await api.neutron(.put, "/routers/\(id)/\(action)", token: admin, body: body)
                    XCTAssertTrue([200, 400, 404, 409].contains(reply.status), "\(action) \(body): \(reply.status) \(reply.text)")
                    if reply.status != 200 { XCTAssertNotNil(reply.json["NeutronError"], reply.text) }
                }
            }
            assertNeutronError(try await api.neutron(.put, "/routers/\(Identifiers.uuid())/add_external_gateways", token: admin,
                                                     body: ["router": ["external_gateways": []]]), 404)
            for body: JSON in [["ndp_proxy": ["router_id": .string(id)]], ["ndp_proxy": ["router_id": .string(id), "port_id": "p", "ip_address": "bogus"]],
                               ["ndp_proxy": ["router_id": 5, "port_id": "p"]], ["ndp_proxy": ["router_id": .string(id), "port_id": .string(Identifiers.uuid())]],
                               ["ndp_proxy": ["router_id": .string(id), "port_id": "p", "extra": 1]]] {
                let reply = try await api.neutron(.post, "/ndp_proxies", token: admin, body: body)
                XCTAssertTrue([400, 404].contains(reply.status), "\(body): \(reply.status) \(reply.text)")
            }
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)", token: admin, body: ["router": ["enable_ndp_proxy": "maybe"]]), 400)
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)", token: admin, body: ["router": ["enable_ndp_proxy": true]]), 409,
                               type: "RouterGatewayNotValid")
            let filtered = try await api.neutron(.get, "/routers?enable_ndp_proxy=bogus", token: admin)
            assertNeutronError(filtered, 400)
        }
    }

    func testNDPProxiesNeedAnIPv6GatewayInTheInsidesAddressScope() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")
            // One IPv6 address scope for the outside and the inside, shared by the operator.
            let scope = try await api.neutronCreate("address-scopes", "address_scope", ["name": "v6", "ip_version": 6, "shared": true], token: admin)["id"] ?? .null
            let pool = try await api.neutronCreate("subnetpools", "subnetpool", ["prefixes": ["2001:db8::/48"], "default_prefixlen": 64, "shared": true,
                                                                                 "address_scope_id": scope], token: admin)["id"] ?? .null
            let external = try await api.neutronCreate("networks", "network", ["name": "public", "router:external": true], token: admin)["id"] ?? .null
            _ = try await api.neutronCreate("subnets", "subnet", ["network_id": external, "ip_version": 4, "cidr": "172.24.4.0/24"], token: admin)
            _ = try await api.neutronCreate("subnets", "subnet", ["network_id": external, "ip_version": 6, "subnetpool_id": pool], token: admin)
            let plain = try await api.neutronCreate("networks", "network", ["name": "public-v4", "router:external": true], token: admin)["id"] ?? .null
            _ = try await api.neutronCreate("subnets", "subnet", ["network_id": plain, "ip_version": 4, "cidr": "172.26.0.0/24"], token: admin)
            let inside = try await api.neutronCreate("networks", "network", ["name": "inside"], token: alice.token)["id"] ?? .null
            let insideSubnet = try await api.neutronCreate("subnets", "subnet", ["network_id": inside, "ip_version": 6, "subnetpool_id": pool,
                                                                                 "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"], token: alice.token)["id"] ?? .null

            // The switch needs a gateway with IPv6 in an address scope.
            assertNeutronError(try await api.neutron(.post, "/routers", token: alice.token, body: ["router": ["enable_ndp_proxy": true]]), 409,
                               type: "RouterGatewayNotValid")
            assertNeutronError(try await api.neutron(.post, "/routers", token: alice.token, body: ["router": [
                "enable_ndp_proxy": true, "external_gateway_info": ["network_id": plain]]]), 409, type: "RouterGatewayNotValid")
            let off = try await api.neutronCreate("routers", "router", ["external_gateway_info": ["network_id": external]], token: alice.token)
            XCTAssertEqual(off["enable_ndp_proxy"], false)
            let router = try await api.neutronCreate("routers", "router", ["name": "r", "enable_ndp_proxy": true, "external_gateway_info": ["network_id": external]],
                                                     token: alice.token)
            XCTAssertEqual(router["enable_ndp_proxy"], true, "\(router)")
            let id = router["id"]?.stringValue ?? ""

            let port = try await api.neutronCreate("ports", "port", ["network_id": inside], token: alice.token)
            let portID = port["id"]?.stringValue ?? ""
            let address = port["fixed_ips"]?.arrayValue?.first?["ip_address"]?.stringValue ?? ""
            let body: JSON = ["ndp_proxy": ["name": "web", "router_id": .string(id), "port_id": .string(portID)]]
            // Not yet on the router's subnet.
            assertNeutronError(try await api.neutron(.post, "/ndp_proxies", token: alice.token, body: body), 409, type: "PortUnreachableRouter")
            assertStatus(try await api.neutron(.put, "/routers/\(id)/add_router_interface", token: alice.token, body: ["subnet_id": insideSubnet]), 200)
            assertNeutronError(try await api.neutron(.post, "/ndp_proxies", token: alice.token, body: ["ndp_proxy": [
                "router_id": off["id"] ?? .null, "port_id": .string(portID)]]), 409, type: "PortUnreachableRouter")
            assertNeutronError(try await api.neutron(.post, "/ndp_proxies", token: alice.token, body: ["ndp_proxy": [
                "router_id": .string(id), "port_id": .string(portID), "ip_address": "2001:db8:ffff::1"]]), 400, type: "InvalidAddress")
            assertNeutronError(try await api.neutron(.post, "/ndp_proxies", token: bob.token, body: body), 404)

            let created = try await api.neutron(.post, "/ndp_proxies", token: alice.token, body: body)
            assertStatus(created, 201)
            let proxy = created.json["ndp_proxy"] ?? .null
            XCTAssertEqual(proxy["ip_address"]?.stringValue, address, created.text)
            XCTAssertEqual(proxy["project_id"]?.stringValue, alice.project)
            let proxyID = proxy["id"]?.stringValue ?? ""

            // The proxy keeps the router's gateway and the inside subnet's interface.
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)", token: alice.token, body: ["router": ["external_gateway_info": [:]]]), 409,
                               type: "RouterGatewayInUseByNDPProxy")
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)/remove_router_interface", token: alice.token, body: ["subnet_id": insideSubnet]),
                               409, type: "RouterInterfaceInUseByNDPProxy")
            // Only the name and description change.
            let renamed = try await api.neutron(.put, "/ndp_proxies/\(proxyID)", token: alice.token, body: ["ndp_proxy": ["name": "web2"]])
            XCTAssertEqual(renamed.json["ndp_proxy"]?["name"], "web2", renamed.text)
            assertNeutronError(try await api.neutron(.put, "/ndp_proxies/\(proxyID)", token: alice.token, body: ["ndp_proxy": ["port_id": .string(portID)]]), 400)
            let listed = try await api.neutron(.get, "/ndp_proxies?router_id=\(id)", token: alice.token)
            XCTAssertEqual(listed.json["ndp_proxies"]?.arrayValue?.count, 1, listed.text)
            let bobList = try await api.neutron(.get, "/ndp_proxies", token: bob.token)
            XCTAssertEqual(bobList.json["ndp_proxies"]?.arrayValue?.count, 0)
            assertNeutronError(try await api.neutron(.get, "/ndp_proxies/\(proxyID)", token: bob.token), 404, type: "NDPProxyNotFound")

            assertStatus(try await api.neutron(.delete, "/ndp_proxies/\(proxyID)", token: alice.token), 204)
            assertNeutronError(try await api.neutron(.get, "/ndp_proxies/\(proxyID)", token: alice.token), 404, type: "NDPProxyNotFound")
            // Without proxies the gateway may go, and the switch with it.
            let cleared = try await api.neutron(.put, "/routers/\(id)", token: alice.token, body: ["router": ["external_gateway_info": [:]]])
            XCTAssertEqual(cleared.json["router"]?["enable_ndp_proxy"], false, cleared.text)
        }
    }
}

func routerGatewayPorts(_ api: API, router: String, token: String) async throws -> [JSON] {
    let reply = try await api.neutron(.get, "/ports?device_id=\(router)&device_owner=network:router_gateway", token: token)
    return reply.json["ports"]?.arrayValue ?? []
}
