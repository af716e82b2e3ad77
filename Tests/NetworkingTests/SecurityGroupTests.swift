import Foundation
import NimbusCore
import NimbusTestSupport
import XCTest

final class SecurityGroupTests: XCTestCase {
    func testDefaultGroupIsCreatedOnceWithItsRulesEvenUnderConcurrentFirstLists() async throws {
        try await onEachEngine { cloud, api in
            let member = try await api.projectUser(admin: try await api.adminToken(cloud), name: "sg-first")
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<8 { group.addTask { try await api.neutron(.get, "/security-groups", token: member.token).status } }
                for try await status in group { XCTAssertEqual(status, 200) }
            }
            let listed = try await api.neutron(.get, "/security-groups", token: member.token)
            let groups = try XCTUnwrap(listed.json["security_groups"]?.arrayValue, listed.text)
            XCTAssertEqual(groups.count, 1, listed.text)
            let group = groups[0]
            let id = try XCTUnwrap(group["id"]?.stringValue)
            XCTAssertEqual(group["name"], "default")
            XCTAssertEqual(group["project_id"]?.stringValue, member.project)
            XCTAssertEqual(group["tenant_id"]?.stringValue, member.project)
            XCTAssertEqual(group["stateful"], true)
            XCTAssertEqual(group["shared"], false)
            let rules = try XCTUnwrap(group["security_group_rules"]?.arrayValue)
            XCTAssertEqual(Set(rules.map { "\($0["direction"]!.stringValue!) \($0["ethertype"]!.stringValue!) \($0["remote_group_id"]!.stringValue ?? "-")" }),
                           ["egress IPv4 -", "egress IPv6 -", "ingress IPv4 \(id)", "ingress IPv6 \(id)"])
            XCTAssertTrue(rules.allSatisfy { $0["protocol"] == .null && $0["remote_ip_prefix"] == .null })
            let ruleList = try await api.neutron(.get, "/security-group-rules?security_group_id=\(id)", token: member.token)
            XCTAssertEqual(ruleList.json["security_group_rules"]?.arrayValue?.count, 4, ruleList.text)
        }
    }

    func testCreateShowUpdateDeleteGroup() async throws {
        try await onEachEngine { cloud, api in
            let member = try await api.projectUser(admin: try await api.adminToken(cloud), name: "sg-crud")
            let created = try await api.neutron(.post, "/security-groups", token: member.token,
                                                body: ["security_group": ["name": "web", "description": "web servers"]])
            XCTAssertEqual(created.status, 201, created.text)
            let group = try XCTUnwrap(created.json["security_group"])
            let id = try XCTUnwrap(group["id"]?.stringValue)
            XCTAssertEqual(group["description"], "web servers")
            XCTAssertEqual(group["revision_number"], 0)
            let rules = try XCTUnwrap(group["security_group_rules"]?.arrayValue)
            XCTAssertEqual(rules.map { $0["direction"]?.stringValue }, ["egress", "egress"])
            XCTAssertEqual(Set(rules.compactMap { $0["ethertype"]?.stringValue }), ["IPv4", "IPv6"])

            let updated = try await api.neutron(.put, "/security-groups/\(id)", token: member.token,
                                                body: ["security_group": ["name": "www", "description": "renamed"]])
            XCTAssertEqual(updated.status, 200, updated.text)
            XCTAssertEqual(updated.json["security_group"]?["name"], "www")
            XCTAssertEqual(updated.json["security_group"]?["revision_number"], 1)
            let shown = try await api.neutron(.get, "/security-groups/\(id)?fields=name&fields=id", token: member.token)
            XCTAssertEqual(shown.json["security_group"], ["id": .string(id), "name": "www"], shown.text)
            let byName = try await api.neutron(.get, "/security-groups?name=www", token: member.token)
            XCTAssertEqual(byName.json["security_groups"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [id])

            assertNeutronError(try await api.neutron(.post, "/security-groups", token: member.token, body: ["security_group": ["name": "default"]]),
                               409, type: "SecurityGroupDefaultAlreadyExists")
            let deleted = try await api.neutron(.delete, "/security-groups/\(id)", token: member.token)
            XCTAssertEqual(deleted.status, 204, deleted.text)
            assertNeutronError(try await api.neutron(.get, "/security-groups/\(id)", token: member.token), 404, type: "SecurityGroupNotFound")
            let rulesLeft = try await api.neutron(.get, "/security-group-rules?security_group_id=\(id)", token: member.token)
            XCTAssertEqual(rulesLeft.json["security_group_rules"]?.arrayValue?.count, 0, rulesLeft.text)
        }
    }

    func testRulesAreCreatedNormalisedAndValidated() async throws {
        try await onEachEngine { cloud, api in
            let member = try await api.projectUser(admin: try await api.adminToken(cloud), name: "sg-rules")
            let group = try await api.neutron(.post, "/security-groups", token: member.token, body: ["security_group": ["name": "app"]])
            let id = try XCTUnwrap(group.json["security_group"]?["id"]?.stringValue, group.text)
            let other = try await api.neutron(.post, "/security-groups", token: member.token, body: ["security_group": ["name": "db"]])
            let otherID = try XCTUnwrap(other.json["security_group"]?["id"]?.stringValue, other.text)
            func rule(_ fields: [String: JSON]) -> JSON {
                ["security_group_rule": .object(fields.merging(["security_group_id": .string(id), "direction": "ingress"]) { given, _ in given })]
            }

            let icmp = try await api.neutron(.post, "/security-group-rules", token: member.token, body: rule(["protocol": "ICMP"]))
            XCTAssertEqual(icmp.status, 201, icmp.text)
            XCTAssertEqual(icmp.json["security_group_rule"]?["protocol"], "icmp")
            XCTAssertEqual(icmp.json["security_group_rule"]?["ethertype"], "IPv4")
            XCTAssertEqual(icmp.json["security_group_rule"]?["project_id"]?.stringValue, member.project)

            let ssh = try await api.neutron(.post, "/security-group-rules", token: member.token,
                                            body: rule(["protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.1.2.3/8"]))
            XCTAssertEqual(ssh.status, 201, ssh.text)
            let sshID = try XCTUnwrap(ssh.json["security_group_rule"]?["id"]?.stringValue)
            XCTAssertEqual(ssh.json["security_group_rule"]?["remote_ip_prefix"], "10.1.2.3/8")
            XCTAssertEqual(ssh.json["security_group_rule"]?["normalized_cidr"], "10.0.0.0/8")
            XCTAssertEqual(ssh.json["security_group_rule"]?["port_range_min"], 22)
            XCTAssertEqual(ssh.json["security_group_rule"]?["remote_address_group_id"], .null)

            let fromGroup = try await api.neutron(.post, "/security-group-rules", token: member.token,
                                                  body: rule(["protocol": "6", "ethertype": "IPv6", "remote_group_id": .string(otherID)]))
            XCTAssertEqual(fromGroup.status, 201, fromGroup.text)
            XCTAssertEqual(fromGroup.json["security_group_rule"]?["remote_group_id"]?.stringValue, otherID)
            let icmp6 = try await api.neutron(.post, "/security-group-rules", token: member.token, body: rule(["protocol": "icmp", "ethertype": "IPv6"]))
            XCTAssertEqual(icmp6.json["security_group_rule"]?["protocol"], "ipv6-icmp", icmp6.text)

            // The same rule again, also spelled differently, names the first.
            let duplicate = try await api.neutron(.post, "/security-group-rules", token: member.token,
                                                  body: rule(["protocol": "6", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.0.0.0/8"]))
            assertNeutronError(duplicate, 409, type: "SecurityGroupRuleExists")
            XCTAssertTrue(duplicate.json["NeutronError"]?["message"]?.stringValue?.contains(sshID) ?? false, duplicate.text)

            let invalid: [([String: JSON], String)] = [
                (["protocol": "tcp", "port_range_min": 80, "port_range_max": 79], "SecurityGroupInvalidPortRange"),
                (["protocol": "tcp", "port_range_min": 80, "port_range_max": 70000], "SecurityGroupInvalidPortValue"),
                (["port_range_min": 80, "port_range_max": 80], "SecurityGroupProtocolRequiredWithPorts"),
                (["protocol": "icmp", "port_range_min": 256], "SecurityGroupInvalidIcmpValue"),
                (["protocol": "gre", "port_range_min": 1, "port_range_max": 2], "SecurityGroupInvalidProtocolForPort"),
                (["protocol": "bogus"], "SecurityGroupRuleInvalidProtocol"),
                (["protocol": "300"], "SecurityGroupRuleInvalidProtocol"),
                (["ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"], "SecurityGroupRuleParameterConflict"),
                (["protocol": "ipv6-icmp"], "SecurityGroupEthertypeConflictWithProtocol"),
                (["remote_ip_prefix": "10.0.0.0/8", "remote_group_id": .string(otherID)], "SecurityGroupRemoteGroupAndRemoteIpPrefix"),
                (["remote_ip_prefix": "10.0.0.300/8"], "HTTPBadRequest"),
                (["direction": "sideways"], "HTTPBadRequest"),
            ]
            for (fields, type) in invalid {
                assertNeutronError(try await api.neutron(.post, "/security-group-rules", token: member.token, body: rule(fields)), 400, type: type)
            }

            let ruleShown = try await api.neutron(.get, "/security-group-rules/\(sshID)", token: member.token)
            XCTAssertEqual(ruleShown.status, 200, ruleShown.text)
            let ruleDeleted = try await api.neutron(.delete, "/security-group-rules/\(sshID)", token: member.token)
            XCTAssertEqual(ruleDeleted.status, 204, ruleDeleted.text)
            assertNeutronError(try await api.neutron(.get, "/security-group-rules/\(sshID)", token: member.token), 404, type: "SecurityGroupRuleNotFound")
            let shown = try await api.neutron(.get, "/security-groups/\(id)", token: member.token)
            XCTAssertEqual(shown.json["security_group"]?["security_group_rules"]?.arrayValue?.count, 5, shown.text)
            XCTAssertEqual(shown.json["security_group"]?["revision_number"], 5, shown.text)
        }
    }

    /// `{"security_group_rules": [...]}` (Ansible's openstack.cloud.security_group with rules):
    /// all created in one go, or none when any is refused.
    func testBulkRuleCreateIsAllOrNothing() async throws {
        try await onEachEngine { cloud, api in
            let member = try await api.projectUser(admin: try await api.adminToken(cloud), name: "sg-bulk")
            let created = try await api.neutron(.post, "/security-groups", token: member.token, body: ["security_group": ["name": "web"]])
            let id = try XCTUnwrap(created.json["security_group"]?["id"]?.stringValue, created.text)
            let other = try await api.neutron(.post, "/security-groups", token: member.token, body: ["security_group": ["name": "db"]])
            let otherID = try XCTUnwrap(other.json["security_group"]?["id"]?.stringValue, other.text)
            func rule(_ port: Int64, group: String? = nil) -> JSON {
                ["security_group_id": .string(group ?? id), "direction": "ingress", "protocol": "tcp", "port_range_min": .int(port),
                 "port_range_max": .int(port)]
            }
            func count() async throws -> Int {
                try await api.neutron(.get, "/security-group-rules?security_group_id=\(id)", token: member.token).json["security_group_rules"]?.arrayValue?.count ?? -1
            }
            let before = try await count()

            let bulk = try await api.neutron(.post, "/security-group-rules", token: member.token, body: ["security_group_rules": [rule(22), rule(80)]])
            XCTAssertEqual(bulk.status, 201, bulk.text)
            let made = bulk.json["security_group_rules"]?.arrayValue ?? []
            XCTAssertEqual(made.compactMap { $0["port_range_min"]?.intValue }, [22, 80])
            XCTAssertTrue(made.allSatisfy { $0["security_group_id"]?.stringValue == id && $0["project_id"]?.stringValue == member.project })
            var after = try await count()
            XCTAssertEqual(after, before + 2)

            // One bad rule, a duplicate in the request, an existing rule, two groups: nothing is made.
            for (rules, status, type) in [([rule(443), ["security_group_id": .string(id), "direction": "sideways"]], 400, nil),
                                          ([rule(443), rule(443)], 400, "DuplicateSecurityGroupRuleInPost"),
                                          ([rule(443), rule(22)], 409, "SecurityGroupRuleExists"),
                                          ([rule(443), rule(443, group: otherID)], 400, "SecurityGroupNotSingleGroupRules"),
                                          ([], 400, nil)] as [([JSON], Int, String?)] {
                let refused = try await api.neutron(.post, "/security-group-rules", token: member.token, body: ["security_group_rules": .array(rules)])
                XCTAssertEqual(refused.status, status, refused.text)
                if let type { XCTAssertEqual(refused.json["NeutronError"]?["type"]?.stringValue, type, refused.text) }
                after = try await count()
                XCTAssertEqual(after, before + 2, "nothing of a refused bulk create is kept")
            }
        }
    }

    func testAnotherProjectsGroupIsNotFound() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let owner = try await api.projectUser(admin: admin, name: "sg-owner")
            let stranger = try await api.projectUser(admin: admin, name: "sg-stranger")
            let theirs = try await api.neutron(.post, "/security-groups", token: owner.token, body: ["security_group": ["name": "private"]])
            let theirID = try XCTUnwrap(theirs.json["security_group"]?["id"]?.stringValue, theirs.text)
            let mine = try await api.neutron(.post, "/security-groups", token: stranger.token, body: ["security_group": ["name": "mine"]])
            let myID = try XCTUnwrap(mine.json["security_group"]?["id"]?.stringValue, mine.text)

            assertNeutronError(try await api.neutron(.get, "/security-groups/\(theirID)", token: stranger.token), 404, type: "SecurityGroupNotFound")
            assertNeutronError(try await api.neutron(.delete, "/security-groups/\(theirID)", token: stranger.token), 404, type: "SecurityGroupNotFound")
            assertNeutronError(try await api.neutron(.put, "/security-groups/\(theirID)", token: stranger.token, body: ["security_group": ["name": "x"]]),
                               404, type: "SecurityGroupNotFound")
            assertNeutronError(try await api.neutron(.post, "/security-group-rules", token: stranger.token, body: [
                "security_group_rule": ["security_group_id": .string(theirID), "direction": "ingress"]]), 404, type: "SecurityGroupNotFound")
            assertNeutronError(try await api.neutron(.post, "/security-group-rules", token: stranger.token, body: [
                "security_group_rule": ["security_group_id": .string(myID), "direction": "ingress", "remote_group_id": .string(theirID)]]),
                404, type: "SecurityGroupNotFound")
            // Nor can a port of theirs use it, on create or update.
            let network = try await api.neutronCreate("networks", "network", ["name": "n"], token: stranger.token)["id"] ?? ""
            assertNeutronError(try await api.neutron(.post, "/ports", token: stranger.token, body: [
                "port": ["network_id": network, "security_groups": [.string(theirID)]]]), 404, type: "SecurityGroupNotFound")
            let port = try await api.neutronCreate("ports", "port", ["network_id": network, "security_groups": [.string(myID)]], token: stranger.token)
            assertNeutronError(try await api.neutron(.put, "/ports/\(port["id"]?.stringValue ?? "")", token: stranger.token, body: [
                "port": ["security_groups": [.string(myID), .string(theirID)]]]), 404, type: "SecurityGroupNotFound")
            assertNeutronError(try await api.neutron(.post, "/ports", token: stranger.token, body: [
                "port": ["network_id": network, "security_groups": ["no-such-group"]]]), 404, type: "SecurityGroupNotFound")

            let listed = try await api.neutron(.get, "/security-groups", token: stranger.token)
            XCTAssertFalse(listed.json["security_groups"]?.arrayValue?.contains { $0["id"]?.stringValue == theirID } ?? true, listed.text)
            let rules = try await api.neutron(.get, "/security-group-rules", token: stranger.token)
            XCTAssertFalse(rules.json["security_group_rules"]?.arrayValue?.contains { $0["security_group_id"]?.stringValue == theirID } ?? true)
            // The admin sees every project's groups.
            let all = try await api.neutron(.get, "/security-groups", token: admin)
            XCTAssertTrue(all.json["security_groups"]?.arrayValue?.contains { $0["id"]?.stringValue == theirID } ?? false, all.text)
        }
    }

    func testOnlyAnAdminRemovesTheDefaultGroupAndNobodyRenamesIt() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let member = try await api.projectUser(admin: admin, name: "sg-default")
            let listed = try await api.neutron(.get, "/security-groups?name=default", token: member.token)
            let id = try XCTUnwrap(listed.json["security_groups"]?.arrayValue?.first?["id"]?.stringValue, listed.text)
            assertNeutronError(try await api.neutron(.delete, "/security-groups/\(id)", token: member.token), 409, type: "SecurityGroupCannotRemoveDefault")
            assertNeutronError(try await api.neutron(.put, "/security-groups/\(id)", token: member.token, body: ["security_group": ["name": "other"]]),
                               409, type: "SecurityGroupCannotUpdateDefault")
            let described = try await api.neutron(.put, "/security-groups/\(id)", token: member.token,
                                                 body: ["security_group": ["description": "still default"]])
            XCTAssertEqual(described.status, 200, described.text)
            let deletedByAdmin = try await api.neutron(.delete, "/security-groups/\(id)", token: admin)
            XCTAssertEqual(deletedByAdmin.status, 204, deletedByAdmin.text)
            // The project's next use brings a new default.
            let again = try await api.neutron(.get, "/security-groups?name=default", token: member.token)
            let newID = try XCTUnwrap(again.json["security_groups"]?.arrayValue?.first?["id"]?.stringValue, again.text)
            XCTAssertNotEqual(newID, id)
        }
    }

    func testQuotasHoldUnderConcurrentCreates() async throws {
        try await onEachEngine(settings: ["quotas": ["quota_security_group": "10", "quota_security_group_rule": "25"]]) { cloud, api in
            let member = try await api.projectUser(admin: try await api.adminToken(cloud), name: "sg-quota")
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<20 {
                    group.addTask {
                        try await api.neutron(.post, "/security-groups", token: member.token, body: ["security_group": ["name": .string("g\(index)")]]).status
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            // The default group counts: nine more fit.
            XCTAssertEqual(statuses.filter { $0 == 201 }.count, 9, "\(statuses)")
            XCTAssertEqual(statuses.filter { $0 == 409 }.count, 11, "\(statuses)")
            let over = try await api.neutron(.post, "/security-groups", token: member.token, body: ["security_group": ["name": "more"]])
            assertNeutronError(over, 409, type: "OverQuota")
            XCTAssertEqual(over.json["NeutronError"]?["message"], "Quota exceeded for resources: ['security_group'].")
            let listed = try await api.neutron(.get, "/security-groups", token: member.token)
            XCTAssertEqual(listed.json["security_groups"]?.arrayValue?.count, 10)

            // 4 default rules + 9 × 2 egress rules = 22 of 25: three more rules fit.
            let target = try XCTUnwrap(listed.json["security_groups"]?.arrayValue?.first { $0["name"] != "default" }?["id"])
            let ruleStatuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for port in 1...6 {
                    group.addTask {
                        try await api.neutron(.post, "/security-group-rules", token: member.token, body: ["security_group_rule": [
                            "security_group_id": target, "direction": "ingress", "protocol": "tcp",
                            "port_range_min": .int(Int64(port)), "port_range_max": .int(Int64(port))]]).status
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            XCTAssertEqual(ruleStatuses.sorted(), [201, 201, 201, 409, 409, 409])
        }
    }
}
