import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

/// An external network with one subnet, as an operator makes it, and a project network with
/// one subnet: what routers and floating IPs join.
struct RoutingFixture {
    let external: String
    let externalSubnet: String
    let network: String
    let subnet: String

    static func make(_ api: API, admin: String, owner: String, externalCIDR: String = "172.24.4.0/24", cidr: String = "10.0.0.0/24") async throws -> RoutingFixture {
        let external = try await api.neutronCreate("networks", "network", ["name": "public", "router:external": true], token: admin)["id"]?.stringValue ?? ""
        let externalSubnet = try await api.neutronCreate("subnets", "subnet", ["network_id": .string(external), "ip_version": 4,
                                                                               "cidr": .string(externalCIDR)], token: admin)["id"]?.stringValue ?? ""
        let network = try await api.neutronCreate("networks", "network", ["name": "private"], token: owner)["id"]?.stringValue ?? ""
        let subnet = try await api.neutronCreate("subnets", "subnet", ["network_id": .string(network), "ip_version": 4, "cidr": .string(cidr)],
                                                 token: owner)["id"]?.stringValue ?? ""
        return RoutingFixture(external: external, externalSubnet: externalSubnet, network: network, subnet: subnet)
    }
}

final class RouterTests: XCTestCase {
    func testRouterGatewayInterfacesRoutesAndWhatTheyKeepInUse() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")
            let net = try await RoutingFixture.make(api, admin: admin, owner: alice.token)

            // A gateway on the external network: an address from its subnet, SNAT on by default.
            let router = try await api.neutronCreate("routers", "router", ["name": "r1", "external_gateway_info": ["network_id": .string(net.external)]],
                                                     token: alice.token)
            let id = try XCTUnwrap(router["id"]?.stringValue)
            XCTAssertEqual(router["status"], "ACTIVE")
            XCTAssertEqual(router["project_id"]?.stringValue, alice.project)
            XCTAssertEqual(router["external_gateway_info"]?["enable_snat"], true)
            let gatewayIPs = router["external_gateway_info"]?["external_fixed_ips"]?.arrayValue ?? []
            XCTAssertEqual(gatewayIPs.count, 1, "\(router)")
            XCTAssertEqual(gatewayIPs.first?["subnet_id"]?.stringValue, net.externalSubnet)
            XCTAssertNil(router["distributed"], "distributed is admin-only to see")
            assertNeutronError(try await api.neutron(.get, "/routers/\(id)", token: bob.token), 404, type: "RouterNotFound")

            // SNAT off is the operator's call; so is choosing the gateway's address.
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)", token: alice.token, body: ["router": [
                "external_gateway_info": ["network_id": .string(net.external), "enable_snat": false]]]), 403, type: "PolicyNotAuthorized")
            let noSNAT = try await api.neutron(.put, "/routers/\(id)", token: admin, body: ["router": [
                "external_gateway_info": ["network_id": .string(net.external), "enable_snat": false]]])
            XCTAssertEqual(noSNAT.json["router"]?["external_gateway_info"]?["enable_snat"], false, noSNAT.text)
            XCTAssertEqual(noSNAT.json["router"]?["external_gateway_info"]?["external_fixed_ips"], .array(gatewayIPs), "the same gateway port stays")
            // Only an external network can be a gateway.
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)", token: alice.token, body: ["router": [
                "external_gateway_info": ["network_id": .string(net.network)]]]), 400)

            // An interface by subnet takes the subnet's gateway address.
            let added = try await api.neutron(.put, "/routers/\(id)/add_router_interface", token: alice.token, body: ["subnet_id": .string(net.subnet)])
            assertStatus(added, 200)
            XCTAssertEqual(added.json["subnet_id"]?.stringValue, net.subnet)
            XCTAssertEqual(added.json["network_id"]?.stringValue, net.network)
            let interfacePort = try XCTUnwrap(added.json["port_id"]?.stringValue)
            let port = try await api.neutron(.get, "/ports/\(interfacePort)", token: alice.token)
            XCTAssertEqual(port.json["port"]?["device_owner"], "network:router_interface")
            XCTAssertEqual(port.json["port"]?["device_id"]?.stringValue, id)
            XCTAssertEqual(port.json["port"]?["fixed_ips"]?.arrayValue?.first?["ip_address"], "10.0.0.1")
            let listed = try await api.neutron(.get, "/ports?device_id=\(id)", token: admin)
            XCTAssertEqual(listed.json["ports"]?.arrayValue?.count, 2, "gateway and interface")
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)/add_router_interface", token: alice.token,
                                                     body: ["subnet_id": .string(net.subnet)]), 400)
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)/add_router_interface", token: alice.token, body: [:]), 400)
            // Another network with an overlapping range cannot join the same router.
            let other = try await api.neutronCreate("networks", "network", ["name": "other"], token: alice.token)["id"]?.stringValue ?? ""
            let overlapping = try await api.neutronCreate("subnets", "subnet", ["network_id": .string(other), "ip_version": 4, "cidr": "10.0.0.0/25"],
                                                          token: alice.token)["id"]?.stringValue ?? ""
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)/add_router_interface", token: alice.token,
                                                     body: ["subnet_id": .string(overlapping)]), 400)
            // By port: an unused port of the project is taken over as it is.
            let deleted = try await api.neutron(.delete, "/subnets/\(overlapping)", token: alice.token)
            assertStatus(deleted, 204)
            _ = try await api.neutronCreate("subnets", "subnet", ["network_id": .string(other), "ip_version": 4, "cidr": "10.1.0.0/24"], token: alice.token)
            let own = try await api.neutronCreate("ports", "port", ["network_id": .string(other)], token: alice.token)
            let ownID = own["id"]?.stringValue ?? ""
            let byPort = try await api.neutron(.put, "/routers/\(id)/add_router_interface", token: alice.token, body: ["port_id": .string(ownID)])
            assertStatus(byPort, 200)
            XCTAssertEqual(byPort.json["port_id"]?.stringValue, ownID)
            XCTAssertEqual(byPort.json["network_id"]?.stringValue, other)
            let bobPort = try await api.neutronCreate("ports", "port", ["network_id": .string(other)], token: admin)
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)/add_router_interface", token: bob.token,
                                                     body: ["port_id": bobPort["id"] ?? ""]), 404, type: "RouterNotFound")

            // What the router holds stays: its subnets, networks, ports, and the router itself.
            assertNeutronError(try await api.neutron(.delete, "/subnets/\(net.subnet)", token: alice.token), 409, type: "SubnetInUse")
            assertNeutronError(try await api.neutron(.delete, "/networks/\(net.network)", token: alice.token), 409, type: "NetworkInUse")
            assertNeutronError(try await api.neutron(.delete, "/networks/\(net.external)", token: admin), 409, type: "NetworkInUse")
            assertNeutronError(try await api.neutron(.delete, "/ports/\(interfacePort)", token: alice.token), 409, type: "L3PortInUse")
            assertNeutronError(try await api.neutron(.delete, "/routers/\(id)", token: alice.token), 409, type: "RouterInUse")
            assertNeutronError(try await api.neutron(.put, "/networks/\(net.external)", token: admin, body: ["network": ["router:external": false]]),
                               409, type: "ExternalNetworkInUse")

            // Static routes: the next hop must be on a subnet the router is attached to.
            let routed = try await api.neutron(.put, "/routers/\(id)", token: alice.token, body: ["router": [
                "routes": [["destination": "192.168.10.0/24", "nexthop": "10.0.0.5"]]]])
            XCTAssertEqual(routed.json["router"]?["routes"], [["destination": "192.168.10.0/24", "nexthop": "10.0.0.5"]], routed.text)
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)", token: alice.token, body: ["router": [
                "routes": [["destination": "192.168.11.0/24", "nexthop": "10.77.0.5"]]]]), 400, type: "InvalidRoutes")
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)", token: alice.token, body: ["router": [
                "routes": [["destination": "192.168.11.0/24", "nexthop": "10.0.0.1"]]]]), 400, type: "InvalidRoutes")
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)", token: alice.token, body: ["router": [
                "routes": [["destination": "not-a-cidr", "nexthop": "10.0.0.5"]]]]), 400, type: "InvalidInput")
            let more = try await api.neutron(.put, "/routers/\(id)/add_extraroutes", token: alice.token, body: ["router": [
                "routes": [["destination": "192.168.12.0/24", "nexthop": "10.1.0.9"], ["destination": "192.168.10.0/24", "nexthop": "10.0.0.5"]]]])
            XCTAssertEqual(more.json["router"]?["routes"]?.arrayValue?.count, 2, more.text)
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)/remove_router_interface", token: alice.token,
                                                     body: ["subnet_id": .string(net.subnet)]), 409, type: "RouterInterfaceInUseByRoute")
            let fewer = try await api.neutron(.put, "/routers/\(id)/remove_extraroutes", token: alice.token, body: ["router": [
                "routes": [["destination": "192.168.10.0/24", "nexthop": "10.0.0.5"]]]])
            XCTAssertEqual(fewer.json["router"]?["routes"], [["destination": "192.168.12.0/24", "nexthop": "10.1.0.9"]], fewer.text)

            // Taking the interfaces off: by subnet the router's port goes; by port the port goes too.
            let removed = try await api.neutron(.put, "/routers/\(id)/remove_router_interface", token: alice.token, body: ["subnet_id": .string(net.subnet)])
            assertStatus(removed, 200)
            XCTAssertEqual(removed.json["port_id"]?.stringValue, interfacePort)
            assertStatus(try await api.neutron(.get, "/ports/\(interfacePort)", token: admin), 404)
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)/remove_router_interface", token: alice.token,
                                                     body: ["subnet_id": .string(net.subnet)]), 404, type: "RouterInterfaceNotFoundForSubnet")
            assertNeutronError(try await api.neutron(.put, "/routers/\(id)/remove_router_interface", token: alice.token,
                                                     body: ["port_id": .string(ownID)]), 409, type: "RouterInterfaceInUseByRoute")
            assertStatus(try await api.neutron(.put, "/routers/\(id)", token: alice.token, body: ["router": ["routes": []]]), 200)
            assertStatus(try await api.neutron(.put, "/routers/\(id)/remove_router_interface", token: alice.token, body: ["port_id": .string(ownID)]), 200)

            // Clearing the gateway frees its address; then the router goes, and the networks with it.
            let cleared = try await api.neutron(.put, "/routers/\(id)", token: alice.token, body: ["router": ["external_gateway_info": [:]]])
            XCTAssertEqual(cleared.json["router"]?["external_gateway_info"], .null, cleared.text)
            let left = try await api.neutron(.get, "/ports?device_id=\(id)", token: admin)
            XCTAssertEqual(left.json["ports"]?.arrayValue?.count, 0)
            assertStatus(try await api.neutron(.delete, "/routers/\(id)", token: alice.token), 204)
            assertStatus(try await api.neutron(.delete, "/networks/\(net.network)", token: alice.token), 204)
            assertStatus(try await api.neutron(.delete, "/networks/\(net.external)", token: admin), 204)
        }
    }

    func testRouterQuotaAndGatewayWithoutAddresses() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            assertStatus(try await api.neutron(.put, "/quotas/\(alice.project)", token: admin, body: ["quota": ["router": 1]]), 200)
            _ = try await api.neutronCreate("routers", "router", ["name": "one"], token: alice.token)
            assertNeutronError(try await api.neutron(.post, "/routers", token: alice.token, body: ["router": ["name": "two"]]), 409, type: "OverQuota")
            let details = try await api.neutron(.get, "/quotas/\(alice.project)/details", token: alice.token)
            XCTAssertEqual(details.json["quota"]?["router"]?["used"], 1, details.text)
            // An external network without a subnet has no address to give a gateway; nothing is left behind.
            let bare = try await api.neutronCreate("networks", "network", ["router:external": true], token: admin)["id"]?.stringValue ?? ""
            assertNeutronError(try await api.neutron(.post, "/routers", token: admin, body: ["router": ["external_gateway_info": ["network_id": .string(bare)]]]),
                               400, type: "ExternalIpAddressExhausted")
            let ports = try await api.neutron(.get, "/ports?network_id=\(bare)", token: admin)
            XCTAssertEqual(ports.json["ports"]?.arrayValue?.count, 0)
            assertNeutronError(try await api.neutron(.post, "/routers", token: alice.token, body: ["router": ["colour": "red"]]), 400)

            // Floating IPs that are only allocated go with their external network.
            _ = try await api.neutronCreate("subnets", "subnet", ["network_id": .string(bare), "ip_version": 4, "cidr": "172.25.0.0/28"], token: admin)
            let floating = try await api.neutronCreate("floatingips", "floatingip", ["floating_network_id": .string(bare)], token: alice.token)
            assertStatus(try await api.neutron(.delete, "/networks/\(bare)", token: admin), 204)
            assertNeutronError(try await api.neutron(.get, "/floatingips/\(floating["id"]?.stringValue ?? "")", token: admin), 404, type: "FloatingIPNotFound")
        }
    }

    func testFloatingIPsAssociateThroughARouterAndFollowTheirPort() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")
            let net = try await RoutingFixture.make(api, admin: admin, owner: alice.token)
            let port = try await api.neutronCreate("ports", "port", ["network_id": .string(net.network), "device_id": "vm-1"], token: alice.token)
            let portID = port["id"]?.stringValue ?? ""
            let fixed = port["fixed_ips"]?.arrayValue?.first?["ip_address"]?.stringValue ?? ""

            // Allocated but not associated.
            let floating = try await api.neutronCreate("floatingips", "floatingip", ["floating_network_id": .string(net.external)], token: alice.token)
            let id = try XCTUnwrap(floating["id"]?.stringValue)
            XCTAssertEqual(floating["status"], "DOWN")
            XCTAssertEqual(floating["port_id"], .null)
            XCTAssertEqual(floating["router_id"], .null)
            XCTAssertTrue(floating["floating_ip_address"]?.stringValue?.hasPrefix("172.24.4.") == true, "\(floating)")
            XCTAssertNil(floating["name"])
            assertNeutronError(try await api.neutron(.get, "/floatingips/\(id)", token: bob.token), 404, type: "FloatingIPNotFound")

            // No router joins the port's subnet to the external network yet.
            assertNeutronError(try await api.neutron(.put, "/floatingips/\(id)", token: alice.token, body: ["floatingip": ["port_id": .string(portID)]]),
                               404, type: "ExternalGatewayForFloatingIPNotFound")
            let router = try await api.neutronCreate("routers", "router", ["external_gateway_info": ["network_id": .string(net.external)]], token: alice.token)
            let routerID = router["id"]?.stringValue ?? ""
            assertStatus(try await api.neutron(.put, "/routers/\(routerID)/add_router_interface", token: alice.token, body: ["subnet_id": .string(net.subnet)]), 200)

            let associated = try await api.neutron(.put, "/floatingips/\(id)", token: alice.token, body: ["floatingip": ["port_id": .string(portID)]])
            assertStatus(associated, 200)
            XCTAssertEqual(associated.json["floatingip"]?["fixed_ip_address"]?.stringValue, fixed)
            XCTAssertEqual(associated.json["floatingip"]?["router_id"]?.stringValue, routerID)
            XCTAssertEqual(associated.json["floatingip"]?["status"], "ACTIVE")
            XCTAssertEqual(associated.json["floatingip"]?["port_details"]?["device_id"], "vm-1")
            let filtered = try await api.neutron(.get, "/floatingips?port_id=\(portID)", token: alice.token)
            XCTAssertEqual(filtered.json["floatingips"]?.arrayValue?.count, 1)

            // One floating IP per fixed address; another project's port is not there to take.
            let second = try await api.neutronCreate("floatingips", "floatingip", ["floating_network_id": .string(net.external)], token: alice.token)
            assertNeutronError(try await api.neutron(.put, "/floatingips/\(second["id"]?.stringValue ?? "")", token: alice.token,
                                                     body: ["floatingip": ["port_id": .string(portID)]]), 409, type: "FloatingIPPortAlreadyAssociated")
            let bobs = try await api.neutronCreate("floatingips", "floatingip", ["floating_network_id": .string(net.external)], token: bob.token)
            assertNeutronError(try await api.neutron(.put, "/floatingips/\(bobs["id"]?.stringValue ?? "")", token: bob.token,
                                                     body: ["floatingip": ["port_id": .string(portID)]]), 404, type: "PortNotFound")
            assertNeutronError(try await api.neutron(.put, "/floatingips/\(id)", token: alice.token,
                                                     body: ["floatingip": ["port_id": .string(portID), "fixed_ip_address": "10.0.0.250"]]), 400)

            // What the association needs stays: the router's interface and its gateway.
            assertNeutronError(try await api.neutron(.put, "/routers/\(routerID)/remove_router_interface", token: alice.token,
                                                     body: ["subnet_id": .string(net.subnet)]), 409, type: "RouterInterfaceInUseByFloatingIP")
            assertNeutronError(try await api.neutron(.put, "/routers/\(routerID)", token: alice.token, body: ["router": ["external_gateway_info": .null]]),
                               409, type: "RouterExternalGatewayInUseByFloatingIp")
            assertNeutronError(try await api.neutron(.delete, "/ports/\(associated.json["floatingip"]?["id"]?.stringValue ?? "")", token: admin), 404)

            // Disassociate; associate again; deleting the port disassociates.
            let off = try await api.neutron(.put, "/floatingips/\(id)", token: alice.token, body: ["floatingip": ["port_id": .null]])
            XCTAssertEqual(off.json["floatingip"]?["port_id"], .null, off.text)
            XCTAssertEqual(off.json["floatingip"]?["status"], "DOWN")
            assertStatus(try await api.neutron(.put, "/floatingips/\(id)", token: alice.token, body: ["floatingip": ["port_id": .string(portID)]]), 200)
            assertStatus(try await api.neutron(.delete, "/ports/\(portID)", token: alice.token), 204)
            let orphan = try await api.neutron(.get, "/floatingips/\(id)", token: alice.token)
            XCTAssertEqual(orphan.json["floatingip"]?["port_id"], .null, orphan.text)
            XCTAssertEqual(orphan.json["floatingip"]?["router_id"], .null)

            // Bad requests: a network that is not external, an address chosen by a non-admin.
            assertNeutronError(try await api.neutron(.post, "/floatingips", token: alice.token, body: ["floatingip": ["floating_network_id": .string(net.network)]]), 400)
            assertNeutronError(try await api.neutron(.post, "/floatingips", token: alice.token, body: ["floatingip": [
                "floating_network_id": .string(net.external), "floating_ip_address": "172.24.4.99"]]), 403, type: "PolicyNotAuthorized")
            let chosen = try await api.neutronCreate("floatingips", "floatingip", ["floating_network_id": .string(net.external), "floating_ip_address": "172.24.4.99"],
                                                     token: admin)
            XCTAssertEqual(chosen["floating_ip_address"], "172.24.4.99")
            assertNeutronError(try await api.neutron(.post, "/floatingips", token: admin, body: ["floatingip": [
                "floating_network_id": .string(net.external), "floating_ip_address": "172.24.4.99"]]), 409, type: "IpAddressAlreadyAllocated")

            // Deleting a floating IP gives its address back.
            let address = chosen["floating_ip_address"]?.stringValue ?? ""
            assertStatus(try await api.neutron(.delete, "/floatingips/\(chosen["id"]?.stringValue ?? "")", token: admin), 204)
            let again = try await api.neutronCreate("floatingips", "floatingip", ["floating_network_id": .string(net.external), "floating_ip_address": .string(address)],
                                                    token: admin)
            XCTAssertEqual(again["floating_ip_address"]?.stringValue, address)
        }
    }

    func testConcurrentAssociationsOfOneAddressLeaveOneFloatingIP() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let net = try await RoutingFixture.make(api, admin: admin, owner: admin)
            let router = try await api.neutronCreate("routers", "router", ["external_gateway_info": ["network_id": .string(net.external)]], token: admin)
            assertStatus(try await api.neutron(.put, "/routers/\(router["id"]?.stringValue ?? "")/add_router_interface", token: admin,
                                               body: ["subnet_id": .string(net.subnet)]), 200)
            let port = try await api.neutronCreate("ports", "port", ["network_id": .string(net.network)], token: admin)["id"]?.stringValue ?? ""
            var floating: [String] = []
            for _ in 0..<12 {
                floating.append(try await api.neutronCreate("floatingips", "floatingip", ["floating_network_id": .string(net.external)], token: admin)["id"]?.stringValue ?? "")
            }
            let ids = floating
            let results = try await withThrowingTaskGroup(of: API.Reply.self) { group in
                for id in ids {
                    group.addTask { try await api.neutron(.put, "/floatingips/\(id)", token: admin, body: ["floatingip": ["port_id": .string(port)]]) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            XCTAssertEqual(results.filter { $0.status == 200 }.count, 1)
            for failure in results where failure.status != 200 { assertNeutronError(failure, 409, type: "FloatingIPPortAlreadyAssociated") }
            let listed = try await api.neutron(.get, "/floatingips?port_id=\(port)", token: admin)
            XCTAssertEqual(listed.json["floatingips"]?.arrayValue?.count, 1)
            let addresses = try await api.neutron(.get, "/floatingips", token: admin).json["floatingips"]?.arrayValue?.compactMap { $0["floating_ip_address"]?.stringValue } ?? []
            XCTAssertEqual(Set(addresses).count, 12, "every floating IP has its own address")
        }
    }
}

final class AutoAllocatedTopologyTests: XCTestCase {
    func testAProjectGetsOneTopologyOnceTheDefaultsExist() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")
            let path = "/auto-allocated-topology/\(alice.project)"
            assertNeutronError(try await api.neutron(.get, path + "?fields=dry-run", token: alice.token), 409, type: "AutoAllocationFailure")
            let external = try await api.neutronCreate("networks", "network", ["name": "public", "router:external": true, "is_default": true], token: admin)
            _ = try await api.neutronCreate("subnets", "subnet", ["network_id": external["id"] ?? "", "ip_version": 4, "cidr": "172.26.0.0/24"], token: admin)
            let missingPool = try await api.neutron(.get, path + "?fields=dry-run", token: alice.token)
            assertNeutronError(missingPool, 409, type: "AutoAllocationFailure")
            XCTAssertTrue(missingPool.text.contains("subnetpools"), missingPool.text)
            _ = try await api.neutronCreate("subnetpools", "subnetpool", ["name": "default-v4", "prefixes": ["10.128.0.0/16"], "default_prefixlen": 26,
                                                                          "is_default": true, "shared": true], token: admin)
            let dry = try await api.neutron(.get, path + "?fields=dry-run", token: alice.token)
            XCTAssertEqual(dry.json["auto_allocated_topology"]?["id"], "dry-run=pass", dry.text)
            let ports = try await api.neutron(.get, "/ports", token: admin)
            XCTAssertEqual(ports.json["ports"]?.arrayValue?.count, 0, "a dry run makes nothing")

            let made = try await api.neutron(.get, path, token: alice.token)
            let network = try XCTUnwrap(made.json["auto_allocated_topology"]?["id"]?.stringValue, made.text)
            XCTAssertEqual(made.json["auto_allocated_topology"]?["project_id"]?.stringValue, alice.project)
            let shown = try await api.neutron(.get, "/networks/\(network)", token: alice.token)
            XCTAssertEqual(shown.json["network"]?["project_id"]?.stringValue, alice.project)
            XCTAssertEqual(shown.json["network"]?["subnets"]?.arrayValue?.count, 1)
            let routers = try await api.neutron(.get, "/routers", token: alice.token).json["routers"]?.arrayValue ?? []
            XCTAssertEqual(routers.count, 1)
            XCTAssertEqual(routers.first?["external_gateway_info"]?["network_id"], external["id"])
            let interface = try await api.neutron(.get, "/ports?device_owner=network:router_interface", token: alice.token)
            XCTAssertEqual(interface.json["ports"]?.arrayValue?.first?["network_id"]?.stringValue, network, interface.text)
            let again = try await api.neutron(.get, path, token: alice.token)
            XCTAssertEqual(again.json["auto_allocated_topology"]?["id"]?.stringValue, network)
            assertNeutronError(try await api.neutron(.get, path, token: bob.token), 403, type: "PolicyNotAuthorized")

            // Concurrent first asks of another project end with one topology.
            let bobPath = "/auto-allocated-topology/\(bob.project)"
            let answers = try await withThrowingTaskGroup(of: API.Reply.self) { group in
                for _ in 0..<8 { group.addTask { try await api.neutron(.get, bobPath, token: bob.token) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            XCTAssertEqual(Set(answers.compactMap { $0.json["auto_allocated_topology"]?["id"]?.stringValue }).count, 1, answers.map(\.text).joined())
            let bobsNetworks = try await api.neutron(.get, "/networks?name=auto_allocated_network", token: bob.token)
            XCTAssertEqual(bobsNetworks.json["networks"]?.arrayValue?.count, 1)

            assertStatus(try await api.neutron(.delete, path, token: alice.token), 204)
            assertStatus(try await api.neutron(.get, "/networks/\(network)", token: alice.token), 404)
            let none = try await api.neutron(.get, "/routers", token: alice.token)
            XCTAssertEqual(none.json["routers"]?.arrayValue?.count, 0)
            assertNeutronError(try await api.neutron(.delete, path, token: alice.token), 404)
        }
    }
}
