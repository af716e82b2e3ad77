import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

final class AddressGroupTests: XCTestCase {
    func testAddressGroupsKeepNormalisedAddresses() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")
            let group = try await api.neutronCreate("address-groups", "address_group", ["name": "office", "addresses": ["10.1.2.3", "192.168.7.9/24"]],
                                                    token: alice.token)
            let id = group["id"]?.stringValue ?? ""
            XCTAssertEqual(group["addresses"], ["10.1.2.3/32", "192.168.7.0/24"])
            XCTAssertEqual(group["project_id"]?.stringValue, alice.project)
            assertNeutronError(try await api.neutron(.post, "/address-groups", token: alice.token, body: ["address_group": ["addresses": ["nope"]]]), 400)
            assertNeutronError(try await api.neutron(.get, "/address-groups/\(id)", token: bob.token), 404, type: "AddressGroupNotFound")

            let added = try await api.neutron(.put, "/address-groups/\(id)/add_addresses", token: alice.token, body: ["address_group": ["addresses": ["fd00::1"]]])
            XCTAssertEqual(added.json["address_group"]?["addresses"], ["10.1.2.3/32", "192.168.7.0/24", "fd00::1/128"], added.text)
            assertNeutronError(try await api.neutron(.put, "/address-groups/\(id)/add_addresses", token: alice.token,
                                                     body: ["address_group": ["addresses": ["10.1.2.3/32"]]]), 400, type: "AddressesAlreadyExist")
            assertNeutronError(try await api.neutron(.put, "/address-groups/\(id)/remove_addresses", token: alice.token,
                                                     body: ["address_group": ["addresses": ["10.9.9.9"]]]), 404, type: "AddressesNotFound")
            let removed = try await api.neutron(.put, "/address-groups/\(id)/remove_addresses", token: alice.token,
                                                body: ["address_group": ["addresses": ["10.1.2.3"]]])
            XCTAssertEqual(removed.json["address_group"]?["addresses"], ["192.168.7.0/24", "fd00::1/128"], removed.text)
            let renamed = try await api.neutron(.put, "/address-groups/\(id)", token: alice.token, body: ["address_group": ["name": "hq", "description": "d"]])
            XCTAssertEqual(renamed.json["address_group"]?["name"], "hq", renamed.text)
            assertNeutronError(try await api.neutron(.put, "/address-groups/\(id)", token: alice.token, body: ["address_group": ["addresses": []]]), 400)
            let listed = try await api.neutron(.get, "/address-groups?name=hq", token: alice.token)
            XCTAssertEqual(listed.json["address_groups"]?.arrayValue?.count, 1, listed.text)
            assertNeutronError(try await api.neutron(.delete, "/address-groups/\(id)", token: bob.token), 404)
            assertStatus(try await api.neutron(.delete, "/address-groups/\(id)", token: alice.token), 204)
        }
    }
}
