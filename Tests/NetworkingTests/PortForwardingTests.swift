import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

final class PortForwardingTests: XCTestCase {
    func testPortForwardingsOfAFloatingIP() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")
            let net = try await RoutingFixture.make(api, admin: admin, owner: alice.token)
            let floating = try await api.neutronCreate("floatingips", "floatingip", ["floating_network_id": .string(net.external)], token: alice.token)
            let fip = try XCTUnwrap(floating["id"]?.stringValue)
            let server = try await api.neutronCreate("ports", "port", ["network_id": .string(net.network)], token: alice.token)
            let serverID = try XCTUnwrap(server["id"]?.stringValue)
            let address = try XCTUnwrap(server["fixed_ips"]?.arrayValue?.first?["ip_address"])
            let forwardings = "/floatingips/\(fip)/port_forwardings"
            let forward: JSON = ["internal_port_id": .string(serverID), "internal_ip_address": address, "internal_port": 22,
                                 "external_port": 2222, "protocol": "tcp"]

            // No router joins the port's subnet to the floating IP's network yet.
            assertNeutronError(try await api.neutron(.post, forwardings, token: alice.token, body: ["port_forwarding": forward]), 400)
            let router = try await api.neutronCreate("routers", "router", ["external_gateway_info": ["network_id": .string(net.external)]], token: alice.token)
            let routerID = try XCTUnwrap(router["id"]?.stringValue)
            assertStatus(try await api.neutron(.put, "/routers/\(routerID)/add_router_interface", token: alice.token,
                                               body: ["subnet_id": .string(net.subnet)]), 200)

            let created = try await api.neutronCreate(String(forwardings.dropFirst()), "port_forwarding", forward, token: alice.token)
            let id = try XCTUnwrap(created["id"]?.stringValue)
            XCTAssertEqual(created["external_port"], 2222)
            XCTAssertEqual(created["internal_ip_address"], address)
            let fipNow = try await api.neutron(.get, "/floatingips/\(fip)", token: alice.token)
            XCTAssertEqual(fipNow.json["floatingip"]?["router_id"]?.stringValue, routerID, fipNow.text)

            // The same external port and protocol once; another protocol is another forwarding.
            var duplicate = forward.objectValue ?? [:]
            duplicate["internal_port"] = 23
            assertNeutronError(try await api.neutron(.post, forwardings, token: alice.token, body: ["port_forwarding": .object(duplicate)]), 400)
            duplicate["protocol"] = "udp"
            assertStatus(try await api.neutron(.post, forwardings, token: alice.token, body: ["port_forwarding": .object(duplicate)]), 201)
            duplicate["protocol"] = "icmp"
            duplicate["external_port"] = 2000
            assertNeutronError(try await api.neutron(.post, forwardings, token: alice.token, body: ["port_forwarding": .object(duplicate)]), 400)
            duplicate["protocol"] = "tcp"
            duplicate["internal_ip_address"] = "10.0.0.250"
            assertNeutronError(try await api.neutron(.post, forwardings, token: alice.token, body: ["port_forwarding": .object(duplicate)]), 400)
            duplicate["external_port"] = 70000
            assertNeutronError(try await api.neutron(.post, forwardings, token: alice.token, body: ["port_forwarding": .object(duplicate)]), 400)

            // Listing with filters, showing, and other projects.
            let listed = try await api.neutron(.get, forwardings + "?protocol=udp", token: alice.token)
            XCTAssertEqual(listed.json["port_forwardings"]?.arrayValue?.count, 1, listed.text)
            assertNeutronError(try await api.neutron(.get, forwardings, token: bob.token), 404, type: "FloatingIPNotFound")
            assertNeutronError(try await api.neutron(.get, forwardings + "/nope", token: alice.token), 404, type: "PortForwardingNotFound")
            let updated = try await api.neutron(.put, forwardings + "/\(id)", token: alice.token, body: ["port_forwarding": ["external_port": 2223, "description": "ssh"]])
            XCTAssertEqual(updated.json["port_forwarding"]?["external_port"], 2223, updated.text)
            XCTAssertEqual(updated.json["port_forwarding"]?["description"], "ssh")

            // A floating IP forwarding ports is not NATed whole to a port, nor the reverse.
            assertNeutronError(try await api.neutron(.put, "/floatingips/\(fip)", token: alice.token, body: ["floatingip": ["port_id": .string(serverID)]]),
                               409, type: "FipInUseByPortForwarding")
            let whole = try await api.neutronCreate("floatingips", "floatingip", ["floating_network_id": .string(net.external),
                                                                                  "port_id": .string(serverID)], token: alice.token)
            assertNeutronError(try await api.neutron(.post, "/floatingips/\(whole["id"]?.stringValue ?? "")/port_forwardings", token: alice.token,
                                                     body: ["port_forwarding": forward]), 409, type: "FloatingIPPortAlreadyAssociated")

            // Deleting the last forwarding takes the floating IP off the router.
            for item in try await api.neutron(.get, forwardings, token: alice.token).json["port_forwardings"]?.arrayValue ?? [] {
                assertStatus(try await api.neutron(.delete, forwardings + "/\(item["id"]?.stringValue ?? "")", token: alice.token), 204)
            }
            assertNeutronError(try await api.neutron(.delete, forwardings + "/\(id)", token: alice.token), 404, type: "PortForwardingNotFound")
            let reply10 = try await api.neutron(.get, "/floatingips/\(fip)", token: alice.token)
            XCTAssertEqual(reply10.json["floatingip"]?["router_id"], .null)
        }
    }
}
