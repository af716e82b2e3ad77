import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

final class NetworkOperationsTests: XCTestCase {
    func testIPAvailabilityCountsPoolsAndAllocations() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let net = (try await api.neutronCreate("networks", "network", ["name": "counted"], token: alice.token))["id"]?.stringValue ?? ""
            let v4 = (try await api.neutronCreate("subnets", "subnet", ["network_id": .string(net), "ip_version": 4, "cidr": "10.40.0.0/24",
                                                                         "allocation_pools": [["start": "10.40.0.10", "end": "10.40.0.19"]]],
                                                  token: alice.token))["id"]?.stringValue ?? ""
            _ = try await api.neutronCreate("subnets", "subnet", ["network_id": .string(net), "ip_version": 6, "cidr": "fd00:40::/64"], token: alice.token)
            _ = try await api.neutronCreate("ports", "port", ["network_id": .string(net), "fixed_ips": [["subnet_id": .string(v4)]]], token: alice.token)

            assertNeutronError(try await api.neutron(.get, "/network-ip-availabilities/\(net)", token: alice.token), 403, type: "PolicyNotAuthorized")
            let shown = try await api.neutron(.get, "/network-ip-availabilities/\(net)", token: admin)
            assertStatus(shown, 200)
            let availability = try XCTUnwrap(shown.json["network_ip_availability"])
            XCTAssertEqual(availability["network_name"], "counted")
            XCTAssertEqual(availability["project_id"]?.stringValue, alice.project)
            XCTAssertEqual(availability["used_ips"], 1)
            let subnets = availability["subnet_ip_availability"]?.arrayValue ?? []
            XCTAssertEqual(subnets.count, 2, shown.text)
            XCTAssertEqual(subnets.first { $0["subnet_id"]?.stringValue == v4 }?["total_ips"], 10)
            XCTAssertEqual(subnets.first { $0["subnet_id"]?.stringValue == v4 }?["used_ips"], 1)
            // A /64's pool holds more addresses than an Int64 counts.
            guard case .double(let v6Total)? = subnets.first(where: { $0["ip_version"] == 6 })?["total_ips"] else { return XCTFail(shown.text) }
            XCTAssertGreaterThan(v6Total, 1.8e19)

            let v4Only = try await api.neutron(.get, "/network-ip-availabilities?ip_version=4&network_id=\(net)", token: admin)
            XCTAssertEqual(v4Only.json["network_ip_availabilities"]?.arrayValue?.first?["total_ips"], 10, v4Only.text)
            let byName = try await api.neutron(.get, "/network-ip-availabilities?network_name=counted", token: admin)
            XCTAssertEqual(byName.json["network_ip_availabilities"]?.arrayValue?.count, 1, byName.text)
            assertNeutronError(try await api.neutron(.get, "/network-ip-availabilities/\(Identifiers.uuid())", token: admin), 404, type: "NetworkNotFound")
        }
    }

    func testSecurityGroupTags() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")
            let group = (try await api.neutronCreate("security-groups", "security_group", ["name": "web"], token: alice.token))["id"]?.stringValue ?? ""
            assertStatus(try await api.neutron(.put, "/security-groups/\(group)/tags/blue", token: alice.token), 201)
            let replaced = try await api.neutron(.put, "/security-groups/\(group)/tags", token: alice.token, body: ["tags": ["red", "green"]])
            XCTAssertEqual(replaced.json["tags"], ["green", "red"], replaced.text)
            assertStatus(try await api.neutron(.get, "/security-groups/\(group)/tags/red", token: alice.token), 204)
            assertNeutronError(try await api.neutron(.get, "/security-groups/\(group)/tags/blue", token: alice.token), 404, type: "TagNotFound")
            assertNeutronError(try await api.neutron(.put, "/security-groups/\(group)/tags/x", token: bob.token), 404)
            assertNeutronError(try await api.neutron(.put, "/security-groups/\(group)/tags/a,b", token: alice.token), 400)
            let tagged = try await api.neutron(.get, "/security-groups?tags=red", token: alice.token)
            XCTAssertEqual(tagged.json["security_groups"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [group], tagged.text)
            XCTAssertEqual(tagged.json["security_groups"]?.arrayValue?.first?["revision_number"], 2)
            assertStatus(try await api.neutron(.delete, "/security-groups/\(group)/tags", token: alice.token), 204)
            let cleared = try await api.neutron(.get, "/security-groups/\(group)/tags", token: alice.token)
            XCTAssertEqual(cleared.json["tags"], [], cleared.text)
        }
    }

    func testFloatingIPPoolsAndSubnetPoolPrefixOperations() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let net = try await RoutingFixture.make(api, admin: admin, owner: alice.token)
            let pools = try await api.neutron(.get, "/floatingip_pools", token: alice.token)
            XCTAssertEqual(pools.json["floatingip_pools"], [["subnet_id": .string(net.externalSubnet), "subnet_name": "", "network_id": .string(net.external),
                                                             "cidr": "172.24.4.0/24", "project_id": pools.json["floatingip_pools"]?.arrayValue?.first?["project_id"] ?? .null,
                                                             "tenant_id": pools.json["floatingip_pools"]?.arrayValue?.first?["project_id"] ?? .null]], pools.text)

            let pool = (try await api.neutronCreate("subnetpools", "subnetpool", ["prefixes": ["10.60.0.0/24"], "default_prefixlen": 26], token: alice.token))["id"]?.stringValue ?? ""
            let added = try await api.neutron(.put, "/subnetpools/\(pool)/add_prefixes", token: alice.token, body: ["prefixes": ["10.61.0.0/24", "10.60.0.0/25"]])
            XCTAssertEqual(added.json["prefixes"], ["10.60.0.0/24", "10.61.0.0/24"], added.text)
            assertNeutronError(try await api.neutron(.put, "/subnetpools/\(pool)/add_prefixes", token: alice.token, body: ["prefixes": ["fd00::/64"]]), 400)
            _ = try await api.neutronCreate("subnets", "subnet", ["network_id": .string(net.network), "ip_version": 4, "subnetpool_id": .string(pool)], token: alice.token)
            assertNeutronError(try await api.neutron(.put, "/subnetpools/\(pool)/remove_prefixes", token: alice.token, body: ["prefixes": ["10.60.0.0/24"]]),
                               409, type: "SubnetPoolInUse")
            let removed = try await api.neutron(.put, "/subnetpools/\(pool)/remove_prefixes", token: alice.token, body: ["prefixes": ["10.61.0.0/24"]])
            XCTAssertEqual(removed.json["prefixes"], ["10.60.0.0/24"], removed.text)
        }
    }
}
