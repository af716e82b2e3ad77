import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

final class TrunkTests: XCTestCase {
    func testTrunksSubportsAndThePortsTheyHold() async throws {
        try await onEachEngine(settings: ["ml2_type_vlan": ["network_vlan_ranges": "physnet1:100:199"]]) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")
            let net = try await RoutingFixture.make(api, admin: admin, owner: alice.token)
            func port(_ network: String = net.network) async throws -> String {
                try await api.neutronCreate("ports", "port", ["network_id": .string(network)], token: alice.token)["id"]?.stringValue ?? ""
            }
            let parent = try await port(), child1 = try await port(), child2 = try await port(), child3 = try await port()

            let trunk = try await api.neutronCreate("trunks", "trunk", ["name": "t", "port_id": .string(parent), "sub_ports": [
                ["port_id": .string(child1), "segmentation_type": "vlan", "segmentation_id": 101]]], token: alice.token)
            let id = try XCTUnwrap(trunk["id"]?.stringValue)
            XCTAssertEqual(trunk["status"], "DOWN", "the parent is not bound")
            XCTAssertEqual(trunk["admin_state_up"], true)
            XCTAssertEqual(trunk["sub_ports"], [["port_id": .string(child1), "segmentation_type": "vlan", "segmentation_id": 101]])
            assertNeutronError(try await api.neutron(.get, "/trunks/\(id)", token: bob.token), 404, type: "TrunkNotFound")

            // The parent shows its trunk; the sub-port is the trunk's device.
            let shownParent = try await api.neutron(.get, "/ports/\(parent)", token: alice.token)
            XCTAssertEqual(shownParent.json["port"]?["trunk_details"]?["trunk_id"]?.stringValue, id, shownParent.text)
            XCTAssertNotNil(shownParent.json["port"]?["trunk_details"]?["sub_ports"]?.arrayValue?.first?["mac_address"]?.stringValue)
            let shownChild = try await api.neutron(.get, "/ports/\(child1)", token: alice.token)
            XCTAssertEqual(shownChild.json["port"]?["device_owner"], "trunk:subport")
            XCTAssertEqual(shownChild.json["port"]?["device_id"]?.stringValue, id)

            // Ports in use: a parent once, a sub-port once, never both; VLAN ids once per trunk.
            assertNeutronError(try await api.neutron(.post, "/trunks", token: alice.token, body: ["trunk": ["port_id": .string(parent)]]), 409,
                               type: "TrunkPortInUse")
            assertNeutronError(try await api.neutron(.post, "/trunks", token: alice.token, body: ["trunk": ["port_id": .string(child1)]]), 409,
                               type: "PortInUseAsSubPort")
            assertNeutronError(try await api.neutron(.put, "/trunks/\(id)/add_subports", token: alice.token, body: ["sub_ports": [
                ["port_id": .string(child2), "segmentation_type": "vlan", "segmentation_id": 101]]]), 409, type: "DuplicateSubPort")
            assertNeutronError(try await api.neutron(.put, "/trunks/\(id)/add_subports", token: alice.token, body: ["sub_ports": [
                ["port_id": .string(parent), "segmentation_type": "vlan", "segmentation_id": 102]]]), 409, type: "PortInUseAsTrunkParent")
            assertNeutronError(try await api.neutron(.put, "/trunks/\(id)/add_subports", token: alice.token, body: ["sub_ports": [
                ["port_id": .string(child2), "segmentation_type": "vlan", "segmentation_id": 4095]]]), 400)
            assertNeutronError(try await api.neutron(.put, "/trunks/\(id)/add_subports", token: alice.token, body: ["sub_ports": [
                ["port_id": .string(child2), "segmentation_type": "vxlan", "segmentation_id": 5]]]), 400)
            assertNeutronError(try await api.neutron(.delete, "/ports/\(parent)", token: alice.token), 409, type: "PortInUseAsTrunkParent")
            assertNeutronError(try await api.neutron(.delete, "/ports/\(child1)", token: alice.token), 409, type: "PortInUseAsSubPort")

            // inherit takes the VLAN id of the sub-port's network.
            let vlanNet = try await api.neutronCreate("networks", "network", ["name": "v", "provider:network_type": "vlan",
                                                                              "provider:physical_network": "physnet1", "provider:segmentation_id": 150], token: admin)
            _ = try await api.neutronCreate("subnets", "subnet", ["network_id": vlanNet["id"] ?? "", "ip_version": 4, "cidr": "10.9.0.0/24"], token: admin)
            let vlanPort = try await api.neutronCreate("ports", "port", ["network_id": vlanNet["id"] ?? "", "project_id": .string(alice.project)],
                                                       token: admin)["id"]?.stringValue ?? ""
            let added = try await api.neutron(.put, "/trunks/\(id)/add_subports", token: alice.token, body: ["sub_ports": [
                ["port_id": .string(child2), "segmentation_type": "vlan", "segmentation_id": 102],
                ["port_id": .string(vlanPort), "segmentation_type": "inherit"]]])
            assertStatus(added, 200)
            XCTAssertEqual(added.json["id"]?.stringValue, id, "the trunk itself, unwrapped")
            let subports = added.json["sub_ports"]?.arrayValue ?? []
            XCTAssertEqual(subports.count, 3, added.text)
            XCTAssertEqual(subports.last?["segmentation_id"], 150)
            let got = try await api.neutron(.get, "/trunks/\(id)/get_subports", token: alice.token)
            XCTAssertEqual(got.json["sub_ports"]?.arrayValue?.count, 3, got.text)

            // Removing: unknown sub-ports are 404; removed ones are free again.
            assertNeutronError(try await api.neutron(.put, "/trunks/\(id)/remove_subports", token: alice.token, body: ["sub_ports": [
                ["port_id": .string(child3)]]]), 404, type: "SubPortNotFound")
            let removed = try await api.neutron(.put, "/trunks/\(id)/remove_subports", token: alice.token, body: ["sub_ports": [["port_id": .string(child2)]]])
            XCTAssertEqual(removed.json["sub_ports"]?.arrayValue?.count, 2, removed.text)
            let reply13 = try await api.neutron(.get, "/ports/\(child2)", token: alice.token)
            XCTAssertEqual(reply13.json["port"]?["device_owner"], "")
            assertStatus(try await api.neutron(.delete, "/ports/\(child2)", token: alice.token), 204)

            // A disabled trunk cannot be managed.
            let disabled = try await api.neutron(.put, "/trunks/\(id)", token: alice.token, body: ["trunk": ["admin_state_up": false, "name": "t2"]])
            XCTAssertEqual(disabled.json["trunk"]?["name"], "t2", disabled.text)
            assertNeutronError(try await api.neutron(.put, "/trunks/\(id)/add_subports", token: alice.token, body: ["sub_ports": [
                ["port_id": .string(child3), "segmentation_type": "vlan", "segmentation_id": 103]]]), 409, type: "TrunkDisabled")
            assertNeutronError(try await api.neutron(.delete, "/trunks/\(id)", token: alice.token), 409, type: "TrunkDisabled")
            assertStatus(try await api.neutron(.put, "/trunks/\(id)", token: alice.token, body: ["trunk": ["admin_state_up": true]]), 200)

            let listed = try await api.neutron(.get, "/trunks?name=t2", token: alice.token)
            XCTAssertEqual(listed.json["trunks"]?.arrayValue?.count, 1, listed.text)
            let reply14 = try await api.neutron(.get, "/trunks", token: bob.token)
            XCTAssertEqual(reply14.json["trunks"], [])
            assertNeutronError(try await api.neutron(.post, "/trunks", token: alice.token, body: ["trunk": ["port_id": "missing"]]), 404, type: "PortNotFound")
            assertNeutronError(try await api.neutron(.post, "/trunks", token: alice.token, body: ["trunk": ["name": "no-port"]]), 400)

            // Deleting the trunk frees its ports.
            assertStatus(try await api.neutron(.delete, "/trunks/\(id)", token: alice.token), 204)
            let reply15 = try await api.neutron(.get, "/ports/\(parent)", token: alice.token)
            XCTAssertNil(reply15.json["port"]?["trunk_details"])
            assertStatus(try await api.neutron(.delete, "/ports/\(child1)", token: alice.token), 204)
            assertStatus(try await api.neutron(.delete, "/ports/\(parent)", token: alice.token), 204)
        }
    }
}
