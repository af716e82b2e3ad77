import Foundation
import HostAPI
import HTTPTypes
import Networking
import NimbusCore
import NimbusTestSupport
import XCTest

final class SegmentTests: XCTestCase {
    func testSegmentsAreAddedRenamedAndDeletedByAdmins() async throws {
        try await onEachEngine(settings: ["ml2_type_vlan": ["network_vlan_ranges": "physnet1:100:102"]]) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let net = try await api.neutronCreate("networks", "network", ["provider:network_type": "vlan", "provider:physical_network": "physnet1",
                                                                          "provider:segmentation_id": 100], token: admin)
            let networkID = try XCTUnwrap(net["id"]?.stringValue)
            func create(_ fields: JSON, token: String? = nil) async throws -> API.Reply {
                try await api.neutron(.post, "/segments", token: token ?? admin, body: ["segment": fields])
            }

            // No id named: the lowest free one of the type's ranges.
            let added = try await create(["network_id": .string(networkID), "network_type": "vlan", "physical_network": "physnet1", "name": "seg-b"])
            assertStatus(added, 201)
            let segment = try XCTUnwrap(added.json["segment"])
            XCTAssertEqual(segment["segmentation_id"], 101)
            XCTAssertEqual(segment["name"], "seg-b")
            XCTAssertEqual(segment["network_id"]?.stringValue, networkID)
            let segmentID = try XCTUnwrap(segment["id"]?.stringValue)

            // Two segments: the network shows them as `segments`, without provider:*.
            let shown = try await api.neutron(.get, "/networks/\(networkID)", token: admin)
            XCTAssertEqual(shown.json["network"]?["segments"], [
                ["provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 100],
                ["provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 101]], shown.text)
            XCTAssertNil(shown.json["network"]?["provider:network_type"])
            let listed = try await api.neutron(.get, "/segments?network_id=\(networkID)&sort_key=segmentation_id", token: admin)
            XCTAssertEqual(listed.json["segments"]?.arrayValue?.compactMap { $0["segmentation_id"]?.intValue }, [100, 101], listed.text)

            assertNeutronError(try await create(["network_id": .string(networkID), "network_type": "vlan", "physical_network": "physnet1",
                                                 "segmentation_id": 101]), 409, type: "VlanIdInUse")
            assertNeutronError(try await create(["network_id": "00000000-0000-0000-0000-000000000000", "network_type": "vlan",
                                                 "physical_network": "physnet1"]), 404, type: "NetworkNotFound")
            assertNeutronError(try await create(["network_id": .string(networkID), "network_type": "vlan", "physical_network": "physnet9"]), 400)
            assertNeutronError(try await create(["network_id": .string(networkID), "network_type": "bogus"]), 400)
            assertNeutronError(try await create(["network_id": .string(networkID)]), 400)
            assertNeutronError(try await create(["network_id": .string(networkID), "network_type": "vlan", "colour": "red"]), 400)
            // The network's MTU (1500) is more than a VXLAN segment carries.
            assertNeutronError(try await create(["network_id": .string(networkID), "network_type": "vxlan"]), 400, type: "InvalidInput")
            assertNeutronError(try await create(["network_id": .string(networkID), "network_type": "vlan", "physical_network": "physnet1"],
                                                token: alice.token), 403, type: "PolicyNotAuthorized")

            let renamed = try await api.neutron(.put, "/segments/\(segmentID)", token: admin, body: ["segment": ["name": "renamed", "description": "d"]])
            assertStatus(renamed, 200)
            XCTAssertEqual(renamed.json["segment"]?["name"], "renamed")
            XCTAssertEqual(renamed.json["segment"]?["description"], "d")
            XCTAssertEqual(renamed.json["segment"]?["revision_number"], 1)
            assertNeutronError(try await api.neutron(.put, "/segments/\(segmentID)", token: admin, body: ["segment": ["segmentation_id": 102]]), 400)
            assertNeutronError(try await api.neutron(.put, "/segments/\(segmentID)", token: alice.token, body: ["segment": ["name": "x"]]), 403)

            // The segment ports bind to stays while the network has ports; another one goes, freeing its id.
            let first = try XCTUnwrap(listed.json["segments"]?.arrayValue?.first?["id"]?.stringValue)
            _ = try await api.neutronCreate("ports", "port", ["network_id": .string(networkID)], token: admin)
            assertNeutronError(try await api.neutron(.delete, "/segments/\(first)", token: admin), 409, type: "SegmentInUse")
            assertNeutronError(try await api.neutron(.delete, "/segments/\(segmentID)", token: alice.token), 403)
            assertStatus(try await api.neutron(.delete, "/segments/\(segmentID)", token: admin), 204)
            assertNeutronError(try await api.neutron(.get, "/segments/\(segmentID)", token: admin), 404, type: "SegmentNotFound")
            let single = try await api.neutron(.get, "/networks/\(networkID)", token: admin)
            XCTAssertNil(single.json["network"]?["segments"])
            XCTAssertEqual(single.json["network"]?["provider:segmentation_id"], 100)
            let again = try await create(["network_id": .string(networkID), "network_type": "vlan", "physical_network": "physnet1",
                                          "segmentation_id": 101])
            assertStatus(again, 201)

            let extensions = try await api.neutron(.get, "/extensions", token: admin)
            let aliases = extensions.json["extensions"]?.arrayValue?.compactMap { $0["alias"]?.stringValue } ?? []
            for alias in ["segment", "network-segment-range", "multi-provider"] { XCTAssertTrue(aliases.contains(alias), extensions.text) }
        }
    }

    /// A multi-provider create lists its segments; each is claimed as a provider segment.
    func testMultiProviderNetworks() async throws {
        try await onEachEngine(settings: ["ml2_type_vlan": ["network_vlan_ranges": "physnet1:100:102"]]) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let vlan: JSON = ["provider:network_type": "vlan", "provider:physical_network": "physnet1"]
            let vxlan: JSON = ["provider:network_type": "vxlan", "provider:segmentation_id": 77]
            let net = try await api.neutronCreate("networks", "network", ["name": "multi", "segments": [vlan, vlan, vxlan]], token: admin)
            XCTAssertEqual(net["segments"], [
                ["provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 100],
                ["provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 101],
                ["provider:network_type": "vxlan", "provider:physical_network": .null, "provider:segmentation_id": 77]], "\(net)")
            XCTAssertEqual(net["mtu"], 1450)  // what the VXLAN segment carries
            let id = try XCTUnwrap(net["id"]?.stringValue)
            let listed = try await api.neutron(.get, "/segments?network_id=\(id)", token: admin)
            XCTAssertEqual(listed.json["segments"]?.arrayValue?.count, 3, listed.text)

            func create(_ fields: JSON, token: String? = nil) async throws -> API.Reply {
                try await api.neutron(.post, "/networks", token: token ?? admin, body: ["network": fields])
            }
            assertNeutronError(try await create(["segments": [vxlan]]), 409, type: "TunnelIdInUse")
            assertNeutronError(try await create(["segments": [["provider:network_type": "vxlan", "provider:segmentation_id": 78],
                                                              ["provider:network_type": "vxlan", "provider:segmentation_id": 78]]]),
                               400, type: "SegmentsContainDuplicateEntry")
            assertNeutronError(try await create(["segments": [vlan], "provider:network_type": "vlan"]), 400, type: "InvalidInput")
            assertNeutronError(try await create(["segments": [["provider:network_type": "vlan", "provider:physical_network": "physnet9"]]]), 400)
            assertNeutronError(try await create(["segments": ["vlan"]]), 400)
            assertNeutronError(try await create(["segments": [["network_type": "vlan"]]]), 400)
            assertNeutronError(try await create(["segments": [vlan]], token: alice.token), 403, type: "PolicyNotAuthorized")
            assertNeutronError(try await api.neutron(.put, "/networks/\(id)", token: admin, body: ["network": ["segments": [vxlan]]]), 400)
            // The failed creates claimed nothing: the last VLAN id is still free.
            let single = try await api.neutronCreate("networks", "network", ["segments": [vlan]], token: admin)
            XCTAssertEqual(single["provider:segmentation_id"], 102, "\(single)")
            XCTAssertNil(single["segments"])
        }
    }

    /// Ports bind to a network's first segment, and that is the one a host's dataplane wires;
    /// a network with no segment binds no port and is wired nowhere.
    func testTheDataplaneWiresTheFirstSegment() async throws {
        try await onEachEngine(settings: ["ml2_type_vlan": ["network_vlan_ranges": "physnet1:100:102"]]) { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            try await plane.network.applyNetworkReport(NetworkAgentReport(host: "lb-1", tunnelingIP: "10.250.0.1"))
            let multi = try await api.neutronCreate("networks", "network", ["segments": [
                ["provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 101],
                ["provider:network_type": "vxlan", "provider:segmentation_id": 9]]], token: admin)
            let bare = try await api.neutronCreate("networks", "network", ["name": "bare"], token: admin)
            let bareSegment = try await api.neutron(.get, "/segments?network_id=\(bare["id"]?.stringValue ?? "")", token: admin)
            assertStatus(try await api.neutron(.delete, "/segments/\(bareSegment.json["segments"]?.arrayValue?.first?["id"]?.stringValue ?? "")", token: admin), 204)
            for (network, vifType) in [(multi, "other"), (bare, "binding_failed")] {
                let port = try await api.neutronCreate("ports", "port", ["network_id": network["id"] ?? .null, "device_owner": "compute:nova",
                                                                         "device_id": .string(UUID().uuidString.lowercased())], token: admin)
                let bound = try await api.neutron(.put, "/ports/\(port["id"]?.stringValue ?? "")", token: admin,
                                                  body: ["port": ["binding:host_id": "lb-1"]])
                XCTAssertEqual(bound.json["port"]?["binding:vif_type"], .string(vifType), bound.text)
            }
            let state = try await plane.network.hostNetworkState(host: "lb-1")
            XCTAssertEqual(state.networks.map(\.id), [multi["id"]?.stringValue].compactMap { $0 })
            XCTAssertEqual(state.networks.first?.networkType, "vlan")
            XCTAssertEqual(state.networks.first?.physicalNetwork, "physnet1")
            XCTAssertEqual(state.networks.first?.segmentationID, 101)
        }
    }

    /// A network whose segments are all gone has none to bind its ports to.
    func testNetworkWithoutSegmentsShowsNoProvider() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let net = try await api.neutronCreate("networks", "network", ["name": "n"], token: admin)
            let networkID = try XCTUnwrap(net["id"]?.stringValue)
            let listed = try await api.neutron(.get, "/segments?network_id=\(networkID)", token: admin)
            let segmentID = try XCTUnwrap(listed.json["segments"]?.arrayValue?.first?["id"]?.stringValue, listed.text)
            assertStatus(try await api.neutron(.delete, "/segments/\(segmentID)", token: admin), 204)
            let shown = try await api.neutron(.get, "/networks/\(networkID)", token: admin)
            XCTAssertEqual(shown.json["network"]?["provider:network_type"], .null, shown.text)
            // Its id is free again: the next network takes it.
            let next = try await api.neutronCreate("networks", "network", ["name": "m"], token: admin)
            let nextShown = try await api.neutron(.get, "/networks/\(next["id"]?.stringValue ?? "")", token: admin)
            XCTAssertEqual(nextShown.json["network"]?["provider:segmentation_id"], net["provider:segmentation_id"])
        }
    }
}
