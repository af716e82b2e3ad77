import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

final class SegmentRangeTests: XCTestCase {
    static let settings = ["ml2_type_vxlan": ["vni_ranges": "1:5"], "ml2_type_vlan": ["network_vlan_ranges": "physnet1:100:109"]]

    /// The admin's view of a network's segmentation id.
    static func segmentationID(_ api: API, _ network: JSON?, admin: String) async throws -> Int64? {
        let shown = try await api.neutron(.get, "/networks/\(network?["id"]?.stringValue ?? "")", token: admin)
        return shown.json["network"]?["provider:segmentation_id"]?.intValue
    }

    func testDefaultRangesComeFromML2AndAreReadOnly() async throws {
        try await onEachEngine(settings: Self.settings) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let listed = try await api.neutron(.get, "/network_segment_ranges", token: admin)
            assertStatus(listed, 200)
            let ranges = listed.json["network_segment_ranges"]?.arrayValue ?? []
            let vxlan = try XCTUnwrap(ranges.first { $0["network_type"] == "vxlan" }, listed.text)
            XCTAssertEqual(vxlan["default"], true)
            XCTAssertEqual(vxlan["shared"], true)
            XCTAssertEqual(vxlan["project_id"], .null)
            XCTAssertEqual(vxlan["physical_network"], .null)
            XCTAssertEqual(vxlan["minimum"], 1)
            XCTAssertEqual(vxlan["maximum"], 5)
            XCTAssertEqual(vxlan["available"], [1, 2, 3, 4, 5])
            XCTAssertEqual(vxlan["used"], [:])
            let vlan = try XCTUnwrap(ranges.first { $0["network_type"] == "vlan" }, listed.text)
            XCTAssertEqual(vlan["physical_network"], "physnet1")
            XCTAssertEqual(vlan["minimum"], 100)
            XCTAssertEqual(vlan["maximum"], 109)

            let filtered = try await api.neutron(.get, "/network_segment_ranges?network_type=vlan&physical_network=physnet1", token: admin)
            XCTAssertEqual(filtered.json["network_segment_ranges"]?.arrayValue?.compactMap { $0["id"] }, [vlan["id"]].compactMap { $0 })

            // A tenant network's id shows as used, by its project.
            let net = try await api.neutronCreate("networks", "network", ["name": "n"], token: alice.token)
            let id = try XCTUnwrap(vxlan["id"]?.stringValue)
            let shown = try await api.neutron(.get, "/network_segment_ranges/\(id)", token: admin)
            XCTAssertEqual(shown.json["network_segment_range"]?["used"], ["1": .string(alice.project)], shown.text)
            XCTAssertEqual(shown.json["network_segment_range"]?["available"], [2, 3, 4, 5])
            let id1 = try await Self.segmentationID(api, net, admin: admin)
            XCTAssertEqual(id1, 1)

            assertNeutronError(try await api.neutron(.put, "/network_segment_ranges/\(id)", token: admin,
                                                     body: ["network_segment_range": ["name": "x"]]), 400, type: "NetworkSegmentRangeDefaultReadOnly")
            assertNeutronError(try await api.neutron(.delete, "/network_segment_ranges/\(id)", token: admin), 400, type: "NetworkSegmentRangeDefaultReadOnly")
            assertNeutronError(try await api.neutron(.put, "/network_segment_ranges/\(id)/tags/t", token: admin), 400, type: "NetworkSegmentRangeDefaultReadOnly")
            assertNeutronError(try await api.neutron(.get, "/network_segment_ranges", token: alice.token), 403, type: "PolicyNotAuthorized")
            assertNeutronError(try await api.neutron(.post, "/network_segment_ranges", token: alice.token, body: ["network_segment_range": [
                "network_type": "vxlan", "minimum": 10, "maximum": 20]]), 403)
            assertNeutronError(try await api.neutron(.get, "/network_segment_ranges/\(UUID().uuidString.lowercased())", token: admin), 404,
                               type: "NetworkSegmentRangeNotFound")
        }
    }

    func testProjectRangeGivesItsProjectsNetworksTheirIdsFirst() async throws {
        try await onEachEngine(settings: ["ml2_type_vxlan": ["vni_ranges": "1:100"]]) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")
            let range = try await api.neutronCreate("network_segment_ranges", "network_segment_range", [
                "name": "alice-vnis", "network_type": "vxlan", "minimum": 50, "maximum": 60, "shared": false,
                "project_id": .string(alice.project), "physical_network": "ignored", "tags": ["t1"]], token: admin)
            XCTAssertEqual(range["default"], false)
            XCTAssertEqual(range["shared"], false)
            XCTAssertEqual(range["project_id"]?.stringValue, alice.project)
            XCTAssertEqual(range["physical_network"], .null)
            XCTAssertEqual(range["tags"], ["t1"])
            XCTAssertEqual(range["revision_number"], 0)
            XCTAssertEqual(range["available"]?.arrayValue?.count, 11)
            let id = try XCTUnwrap(range["id"]?.stringValue)

            let aliceNet = try await api.neutronCreate("networks", "network", ["name": "a"], token: alice.token)
            let bobNet = try await api.neutronCreate("networks", "network", ["name": "b"], token: bob.token)
            let id2 = try await Self.segmentationID(api, aliceNet, admin: admin)
            XCTAssertEqual(id2, 50)
            let id3 = try await Self.segmentationID(api, bobNet, admin: admin)
            XCTAssertEqual(id3, 1)
            let shown = try await api.neutron(.get, "/network_segment_ranges/\(id)", token: admin)
            XCTAssertEqual(shown.json["network_segment_range"]?["used"], ["50": .string(alice.project)], shown.text)
            XCTAssertEqual(shown.json["network_segment_range"]?["available"]?.arrayValue?.first, 51)

            // Overlapping another non-default range is refused; carving from the default one is not.
            assertNeutronError(try await api.neutron(.post, "/network_segment_ranges", token: admin, body: ["network_segment_range": [
                "network_type": "vxlan", "minimum": 60, "maximum": 70]]), 409, type: "NetworkSegmentRangeOverlaps")
            let sharedRange = try await api.neutronCreate("network_segment_ranges", "network_segment_range", [
                "network_type": "vxlan", "minimum": 61, "maximum": 70], token: admin)
            XCTAssertEqual(sharedRange["shared"], true)
            XCTAssertEqual(sharedRange["project_id"], .null)

            // Held ids keep the range: it cannot lose them, nor go.
            assertNeutronError(try await api.neutron(.put, "/network_segment_ranges/\(id)", token: admin,
                                                     body: ["network_segment_range": ["minimum": 51]]), 409, type: "NetworkSegmentRangeReferencedByProject")
            assertNeutronError(try await api.neutron(.delete, "/network_segment_ranges/\(id)", token: admin), 409,
                               type: "NetworkSegmentRangeReferencedByProject")
            assertNeutronError(try await api.neutron(.put, "/network_segment_ranges/\(id)", token: admin,
                                                     body: ["network_segment_range": ["maximum": 61]]), 409, type: "NetworkSegmentRangeOverlaps")
            let grown = try await api.neutron(.put, "/network_segment_ranges/\(id)", token: admin,
                                              body: ["network_segment_range": ["minimum": "45", "name": "wider"]])
            assertStatus(grown, 200)
            XCTAssertEqual(grown.json["network_segment_range"]?["minimum"], 45)
            XCTAssertEqual(grown.json["network_segment_range"]?["name"], "wider")
            XCTAssertEqual(grown.json["network_segment_range"]?["revision_number"], 1)
            assertNeutronError(try await api.neutron(.put, "/network_segment_ranges/\(id)", token: admin,
                                                     body: ["network_segment_range": ["shared": true]]), 400)

            assertStatus(try await api.neutron(.put, "/network_segment_ranges/\(id)/tags/t2", token: admin), 201)
            let tagged = try await api.neutron(.get, "/network_segment_ranges?tags=t1,t2", token: admin)
            XCTAssertEqual(tagged.json["network_segment_ranges"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [id], tagged.text)
            let list = try await api.neutron(.get, "/network_segment_ranges?default=false&shared=false", token: admin)
            XCTAssertEqual(list.json["network_segment_ranges"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [id], list.text)
            let byProject = try await api.neutron(.get, "/network_segment_ranges?project_id=\(alice.project)&fields=id&fields=name", token: admin)
            XCTAssertEqual(byProject.json["network_segment_ranges"], [["id": .string(id), "name": "wider"]], byProject.text)

            assertStatus(try await api.neutron(.delete, "/networks/\(aliceNet["id"]?.stringValue ?? "")", token: alice.token), 204)
            assertStatus(try await api.neutron(.delete, "/network_segment_ranges/\(id)", token: admin), 204)
            assertNeutronError(try await api.neutron(.get, "/network_segment_ranges/\(id)", token: admin), 404)
        }
    }

    /// Other projects' private ranges are fenced off the shared ones: when only they are left,
    /// a project's network finds no id.
    func testOtherProjectsRangesAreFencedOff() async throws {
        try await onEachEngine(settings: ["ml2_type_vxlan": ["vni_ranges": "1:5"]]) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")
            _ = try await api.neutronCreate("network_segment_ranges", "network_segment_range", [
                "network_type": "vxlan", "minimum": 1, "maximum": 3, "shared": false, "project_id": .string(alice.project)], token: admin)
            let first = try await api.neutronCreate("networks", "network", ["name": "b1"], token: bob.token)
            let second = try await api.neutronCreate("networks", "network", ["name": "b2"], token: bob.token)
            let id4 = try await Self.segmentationID(api, first, admin: admin)
            XCTAssertEqual(id4, 4)
            let id5 = try await Self.segmentationID(api, second, admin: admin)
            XCTAssertEqual(id5, 5)
            assertNeutronError(try await api.neutron(.post, "/networks", token: bob.token, body: ["network": ["name": "b3"]]), 503, type: "NoNetworkAvailable")
            let aliceNet = try await api.neutronCreate("networks", "network", ["name": "a1"], token: alice.token)
            let id6 = try await Self.segmentationID(api, aliceNet, admin: admin)
            XCTAssertEqual(id6, 1)
        }
    }

    func testRangeValidation() async throws {
        try await onEachEngine(settings: Self.settings) { cloud, api in
            let admin = try await api.adminToken(cloud)
            func create(_ fields: JSON) async throws -> API.Reply {
                try await api.neutron(.post, "/network_segment_ranges", token: admin, body: ["network_segment_range": fields])
            }
            assertNeutronError(try await create(["network_type": "vlan", "minimum": 1, "maximum": 5]), 400, type: "BadRequest")
            assertNeutronError(try await create(["network_type": "vlan", "physical_network": "physnet1", "minimum": 0, "maximum": 5]), 400,
                               type: "NetworkVlanRangeError")
            assertNeutronError(try await create(["network_type": "vlan", "physical_network": "physnet1", "minimum": 9, "maximum": 5]), 400,
                               type: "NetworkVlanRangeError")
            assertNeutronError(try await create(["network_type": "vxlan", "minimum": 1, "maximum": 16_777_216]), 400, type: "NetworkTunnelRangeError")
            assertNeutronError(try await create(["network_type": "geneve", "minimum": 1, "maximum": 5]), 400, type: "NetworkSegmentRangeNetTypeNotSupported")
            assertNeutronError(try await create(["network_type": "flat", "minimum": 1, "maximum": 5]), 400, type: "NetworkSegmentRangeNetTypeNotSupported")
            assertNeutronError(try await create(["network_type": "vxlan", "maximum": 5]), 400)
            assertNeutronError(try await create(["network_type": "vxlan", "minimum": "x", "maximum": 5]), 400)
            assertNeutronError(try await create(["network_type": "vxlan", "minimum": -1, "maximum": 5]), 400)
            assertNeutronError(try await create(["network_type": "vxlan", "minimum": 1, "maximum": 5, "default": true]), 400)
            let vlan = try await api.neutronCreate("network_segment_ranges", "network_segment_range", [
                "network_type": "vlan", "physical_network": "physnet2", "minimum": 10, "maximum": 20], token: admin)
            XCTAssertEqual(vlan["physical_network"], "physnet2")
            // Same ids on another physical network do not overlap.
            _ = try await api.neutronCreate("network_segment_ranges", "network_segment_range", [
                "network_type": "vlan", "physical_network": "physnet3", "minimum": 10, "maximum": 20], token: admin)
        }
    }
}
