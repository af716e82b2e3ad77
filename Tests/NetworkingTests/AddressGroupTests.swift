import Foundation
import HostAPI
import HTTPTypes
import Networking
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

    func testRulesWithARemoteAddressGroupMatchItsCIDRsOnTheHosts() async throws {
        try await onEachEngine { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")
            try await plane.network.applyNetworkReport(NetworkAgentReport(host: "net-a", tunnelingIP: "10.250.0.1"))
            let addresses = try await api.neutronCreate("address-groups", "address_group", ["addresses": ["10.5.0.0/16", "fd00:5::/64"]], token: alice.token)
            let addressID = addresses["id"]?.stringValue ?? ""
            let group = (try await api.neutronCreate("security-groups", "security_group", ["name": "db"], token: alice.token))["id"]?.stringValue ?? ""
            let rule = try await api.neutronCreate("security-group-rules", "security_group_rule", [
                "security_group_id": .string(group), "direction": "ingress", "protocol": "tcp", "port_range_min": 5432, "port_range_max": 5432,
                "remote_address_group_id": .string(addressID)], token: alice.token)
            XCTAssertEqual(rule["remote_address_group_id"]?.stringValue, addressID)
            assertNeutronError(try await api.neutron(.post, "/security-group-rules", token: alice.token, body: ["security_group_rule": [
                "security_group_id": .string(group), "direction": "ingress", "remote_ip_prefix": "10.0.0.0/8",
                "remote_address_group_id": .string(addressID)]]), 400, type: "SecurityGroupMultipleRemoteEntites")
            let bobs = (try await api.neutronCreate("security-groups", "security_group", ["name": "other"], token: bob.token))["id"]?.stringValue ?? ""
            assertNeutronError(try await api.neutron(.post, "/security-group-rules", token: bob.token, body: ["security_group_rule": [
                "security_group_id": .string(bobs), "direction": "ingress", "remote_address_group_id": .string(addressID)]]), 404, type: "AddressGroupNotFound")
            assertNeutronError(try await api.neutron(.delete, "/address-groups/\(addressID)", token: alice.token), 409, type: "AddressGroupInUse")

            let net = (try await api.neutronCreate("networks", "network", [:], token: alice.token))["id"]?.stringValue ?? ""
            _ = try await api.neutronCreate("subnets", "subnet", ["network_id": .string(net), "ip_version": 4, "cidr": "10.77.0.0/24"], token: alice.token)
            _ = try await api.neutronCreate("ports", "port", ["network_id": .string(net), "security_groups": [.string(group)], "device_owner": "compute:nova",
                                                              "binding:host_id": "net-a", "project_id": .string(alice.project)], token: admin)
            func ingress() async throws -> [HostNetworkState.Rule] {
                let state = try await plane.network.hostNetworkState(host: "net-a")
                return state.securityGroups.first { $0.id == group }?.rules.filter { $0.direction == "ingress" } ?? []
            }
            let rules = try await ingress()
            XCTAssertEqual(rules.map(\.remoteIPPrefix), ["10.5.0.0/16"], "\(rules)")
            XCTAssertEqual(rules.first?.portRangeMin, 5432)
            // The host follows the group's addresses; emptied, the rule lets nothing in.
            assertStatus(try await api.neutron(.put, "/address-groups/\(addressID)/add_addresses", token: alice.token,
                                               body: ["address_group": ["addresses": ["192.168.9.0/24"]]]), 200)
            let grown = try await ingress()
            XCTAssertEqual(grown.map(\.remoteIPPrefix), ["10.5.0.0/16", "192.168.9.0/24"])
            assertStatus(try await api.neutron(.put, "/address-groups/\(addressID)/remove_addresses", token: alice.token,
                                               body: ["address_group": ["addresses": ["10.5.0.0/16", "192.168.9.0/24", "fd00:5::/64"]]]), 200)
            let emptied = try await ingress()
            XCTAssertEqual(emptied, [])
        }
    }
}
