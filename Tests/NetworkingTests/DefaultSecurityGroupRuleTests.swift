import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

final class DefaultSecurityGroupRuleTests: XCTestCase {
    func testTemplatesMakeNewGroupsRules() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let seeded = try await api.neutron(.get, "/default-security-group-rules", token: alice.token)
            let templates = seeded.json["default_security_group_rules"]?.arrayValue ?? []
            XCTAssertEqual(templates.count, 4, seeded.text)
            XCTAssertEqual(templates.filter { $0["remote_group_id"] == "PARENT" }.map { $0["used_in_non_default_sg"] }, [false, false])

            let ssh: JSON = ["default_security_group_rule": ["direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
                                                            "remote_ip_prefix": "0.0.0.0/0", "used_in_default_sg": false]]
            assertNeutronError(try await api.neutron(.post, "/default-security-group-rules", token: alice.token, body: ssh), 403)
            let created = try await api.neutron(.post, "/default-security-group-rules", token: admin, body: ssh)
            assertStatus(created, 201)
            XCTAssertEqual(created.json["default_security_group_rule"]?["used_in_non_default_sg"], true, created.text)
            assertNeutronError(try await api.neutron(.post, "/default-security-group-rules", token: admin, body: ssh), 409, type: "DefaultSecurityGroupRuleExists")
            assertNeutronError(try await api.neutron(.post, "/default-security-group-rules", token: admin, body: ["default_security_group_rule": [
                "direction": "ingress", "remote_group_id": .string(Identifiers.uuid())]]), 400)

            // A new group gets the egress rules and the SSH rule; the project's default group not the SSH one.
            let group = try await api.neutronCreate("security-groups", "security_group", ["name": "web"], token: alice.token)
            let rules = group["security_group_rules"]?.arrayValue ?? []
            XCTAssertEqual(rules.count, 3, "\(group)")
            XCTAssertEqual(rules.filter { $0["port_range_min"] == 22 }.count, 1)
            let defaults = try await api.neutron(.get, "/security-groups?name=default", token: alice.token)
            let defaultRules = defaults.json["security_groups"]?.arrayValue?.first?["security_group_rules"]?.arrayValue ?? []
            XCTAssertEqual(defaultRules.count, 4, defaults.text)
            let defaultID = defaults.json["security_groups"]?.arrayValue?.first?["id"]
            XCTAssertEqual(defaultRules.filter { $0["direction"] == "ingress" }.map { $0["remote_group_id"] }, [defaultID, defaultID])

            let id = created.json["default_security_group_rule"]?["id"]?.stringValue ?? ""
            assertStatus(try await api.neutron(.delete, "/default-security-group-rules/\(id)", token: admin), 204)
            assertNeutronError(try await api.neutron(.get, "/default-security-group-rules/\(id)", token: admin), 404, type: "DefaultSecurityGroupRuleNotFound")
        }
    }
}
