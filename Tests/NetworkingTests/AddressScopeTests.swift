import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

final class AddressScopeTests: XCTestCase {
    func testScopesHoldPoolsWithDistinctPrefixes() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")
            let scope = try await api.neutronCreate("address-scopes", "address_scope", ["name": "corp", "ip_version": 4], token: alice.token)
            let id = scope["id"]?.stringValue ?? ""
            XCTAssertEqual(scope["shared"], false)
            XCTAssertEqual(scope["project_id"]?.stringValue, alice.project)
            assertNeutronError(try await api.neutron(.post, "/address-scopes", token: alice.token, body: ["address_scope": ["name": "x", "ip_version": 5]]), 400)
            assertNeutronError(try await api.neutron(.post, "/address-scopes", token: alice.token, body: ["address_scope": ["ip_version": 4, "shared": true]]), 403)
            assertNeutronError(try await api.neutron(.get, "/address-scopes/\(id)", token: bob.token), 404, type: "AddressScopeNotFound")

            let pool = try await api.neutronCreate("subnetpools", "subnetpool", ["prefixes": ["10.80.0.0/16"], "default_prefixlen": 24,
                                                                                 "address_scope_id": .string(id)], token: alice.token)
            XCTAssertEqual(pool["address_scope_id"]?.stringValue, id)
            assertNeutronError(try await api.neutron(.post, "/subnetpools", token: alice.token, body: ["subnetpool": [
                "prefixes": ["10.80.128.0/20"], "address_scope_id": .string(id)]]), 409, type: "AddressScopePrefixConflict")
            assertNeutronError(try await api.neutron(.post, "/subnetpools", token: alice.token, body: ["subnetpool": [
                "prefixes": ["fd00:80::/48"], "address_scope_id": .string(id)]]), 400, type: "IllegalSubnetPoolIpVersionAssociationToAddressScope")
            assertNeutronError(try await api.neutron(.post, "/subnetpools", token: bob.token, body: ["subnetpool": [
                "prefixes": ["10.90.0.0/16"], "address_scope_id": .string(id)]]), 404, type: "AddressScopeNotFound")
            // A pool joining later is checked too; the network shows its subnets' scope.
            let other = try await api.neutronCreate("subnetpools", "subnetpool", ["prefixes": ["10.80.1.0/24"]], token: alice.token)
            assertNeutronError(try await api.neutron(.put, "/subnetpools/\(other["id"]?.stringValue ?? "")", token: alice.token,
                                                     body: ["subnetpool": ["address_scope_id": .string(id)]]), 409, type: "AddressScopePrefixConflict")
            let net = try await api.neutronCreate("networks", "network", [:], token: alice.token)
            _ = try await api.neutronCreate("subnets", "subnet", ["network_id": net["id"] ?? .null, "ip_version": 4,
                                                                  "subnetpool_id": pool["id"] ?? .null], token: alice.token)
            let shown = try await api.neutron(.get, "/networks/\(net["id"]?.stringValue ?? "")", token: alice.token)
            XCTAssertEqual(shown.json["network"]?["ipv4_address_scope"]?.stringValue, id, shown.text)

            assertNeutronError(try await api.neutron(.delete, "/address-scopes/\(id)", token: alice.token), 409, type: "AddressScopeInUse")
            let renamed = try await api.neutron(.put, "/address-scopes/\(id)", token: alice.token, body: ["address_scope": ["name": "corp2"]])
            XCTAssertEqual(renamed.json["address_scope"]?["name"], "corp2", renamed.text)
            assertStatus(try await api.neutron(.put, "/address-scopes/\(id)", token: admin, body: ["address_scope": ["shared": true]]), 200)
            assertStatus(try await api.neutron(.get, "/address-scopes/\(id)", token: bob.token), 200)
            assertNeutronError(try await api.neutron(.put, "/address-scopes/\(id)", token: admin, body: ["address_scope": ["shared": false]]),
                               400, type: "AddressScopeUpdateError")
            let free = try await api.neutronCreate("address-scopes", "address_scope", ["ip_version": 6], token: alice.token)
            assertStatus(try await api.neutron(.delete, "/address-scopes/\(free["id"]?.stringValue ?? "")", token: alice.token), 204)
        }
    }
}
