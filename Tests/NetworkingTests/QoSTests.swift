import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

final class QoSTests: XCTestCase {
    func testPoliciesRulesAndTheirPolicy() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")

            // Only admins make policies, for themselves or for a project.
            assertNeutronError(try await api.neutron(.post, "/qos/policies", token: alice.token, body: ["policy": ["name": "p"]]), 403, type: "PolicyNotAuthorized")
            let policy = try await api.neutronCreate("qos/policies", "policy", ["name": "gold", "project_id": .string(alice.project)], token: admin)
            let id = try XCTUnwrap(policy["id"]?.stringValue)
            XCTAssertEqual(policy["shared"], false)
            XCTAssertEqual(policy["is_default"], false)
            XCTAssertEqual(policy["rules"], [])
            XCTAssertEqual(policy["project_id"]?.stringValue, alice.project)
            assertStatus(try await api.neutron(.get, "/qos/policies/\(id)", token: alice.token), 200)
            assertNeutronError(try await api.neutron(.get, "/qos/policies/\(id)", token: bob.token), 404, type: "QosPolicyNotFound")
            assertNeutronError(try await api.neutron(.post, "/qos/policies", token: admin, body: ["policy": ["name": "p", "color": "red"]]), 400)

            // Rules: one per type and direction; Neutron's bounds and defaults.
            let limit = try await api.neutronCreate("qos/policies/\(id)/bandwidth_limit_rules", "bandwidth_limit_rule", ["max_kbps": 1000], token: admin)
            let limitID = try XCTUnwrap(limit["id"]?.stringValue)
            XCTAssertEqual(limit["max_burst_kbps"], 0)
            XCTAssertEqual(limit["direction"], "egress")
            assertNeutronError(try await api.neutron(.post, "/qos/policies/\(id)/bandwidth_limit_rules", token: admin,
                                                     body: ["bandwidth_limit_rule": ["max_kbps": 2000]]), 409, type: "QoSRulesConflict")
            _ = try await api.neutronCreate("qos/policies/\(id)/bandwidth_limit_rules", "bandwidth_limit_rule",
                                            ["max_kbps": 2000, "direction": "ingress"], token: admin)
            assertNeutronError(try await api.neutron(.post, "/qos/policies/\(id)/bandwidth_limit_rules", token: admin,
                                                     body: ["bandwidth_limit_rule": ["max_kbps": -1]]), 400)
            assertNeutronError(try await api.neutron(.post, "/qos/policies/\(id)/bandwidth_limit_rules", token: admin,
                                                     body: ["bandwidth_limit_rule": ["max_burst_kbps": 10]]), 400)
            assertNeutronError(try await api.neutron(.post, "/qos/policies/\(id)/dscp_marking_rules", token: admin,
                                                     body: ["dscp_marking_rule": ["dscp_mark": 13]]), 400)
            let dscp = try await api.neutronCreate("qos/policies/\(id)/dscp_marking_rules", "dscp_marking_rule", ["dscp_mark": 26], token: admin)
            XCTAssertNil(dscp["direction"])
            let pps = try await api.neutronCreate("qos/policies/\(id)/minimum_packet_rate_rules", "minimum_packet_rate_rule",
                                                  ["min_kpps": 100, "direction": "any"], token: admin)
            assertNeutronError(try await api.neutron(.post, "/qos/policies/\(id)/minimum_packet_rate_rules", token: admin,
                                                     body: ["minimum_packet_rate_rule": ["min_kpps": 10, "direction": "egress"]]), 409)
            XCTAssertEqual(pps["direction"], "any")
            assertNeutronError(try await api.neutron(.post, "/qos/policies/\(id)/bandwidth_limit_rules", token: alice.token,
                                                     body: ["bandwidth_limit_rule": ["max_kbps": 5, "direction": "ingress"]]), 403)

            let shown = try await api.neutron(.get, "/qos/policies/\(id)", token: alice.token)
            let rules = shown.json["policy"]?["rules"]?.arrayValue ?? []
            XCTAssertEqual(Set(rules.compactMap { $0["type"]?.stringValue }), ["bandwidth_limit", "dscp_marking", "minimum_packet_rate"], shown.text)
            XCTAssertGreaterThan(shown.json["policy"]?["revision_number"]?.intValue ?? 0, 0, "rules move the policy's revision")

            // Update nested and through the alias; a rule of another policy is not found.
            let updated = try await api.neutron(.put, "/qos/policies/\(id)/bandwidth_limit_rules/\(limitID)", token: admin,
                                                body: ["bandwidth_limit_rule": ["max_kbps": 3000]])
            XCTAssertEqual(updated.json["bandwidth_limit_rule"]?["max_kbps"], 3000, updated.text)
            assertNeutronError(try await api.neutron(.put, "/qos/policies/\(id)/bandwidth_limit_rules/\(limitID)", token: admin,
                                                     body: ["bandwidth_limit_rule": ["direction": "ingress"]]), 409, type: "QoSRulesConflict")
            let alias = try await api.neutron(.get, "/qos/alias-bandwidth-limit-rules/\(limitID)", token: alice.token)
            XCTAssertEqual(alias.json["bandwidth_limit_rule"]?["max_kbps"], 3000, alias.text)
            assertNeutronError(try await api.neutron(.get, "/qos/alias-bandwidth-limit-rules/\(limitID)", token: bob.token), 404, type: "QosRuleNotFound")
            assertNeutronError(try await api.neutron(.get, "/qos/alias-dscp-marking-rules/\(limitID)", token: admin), 404, type: "QosRuleNotFound")
            let other = try await api.neutronCreate("qos/policies", "policy", ["name": "silver"], token: admin)
            let otherID = try XCTUnwrap(other["id"]?.stringValue)
            // A page's links point where the list was asked for, not at /v2.0/<key>.
            let page = try await api.neutron(.get, "/qos/policies?limit=1", token: admin)
            let next = try XCTUnwrap(page.json["policies_links"]?.arrayValue?.first { $0["rel"] == "next" }?["href"]?.stringValue, page.text)
            XCTAssertTrue(next.contains("/v2.0/qos/policies?"), next)
            assertNeutronError(try await api.neutron(.get, "/qos/policies/\(otherID)/bandwidth_limit_rules/\(limitID)", token: admin), 404,
                               type: "QosRuleNotFound")
            let listed = try await api.neutron(.get, "/qos/policies/\(id)/bandwidth_limit_rules?direction=ingress", token: alice.token)
            XCTAssertEqual(listed.json["bandwidth_limit_rules"]?.arrayValue?.count, 1, listed.text)
            assertStatus(try await api.neutron(.delete, "/qos/alias-dscp-marking-rules/\(dscp["id"]?.stringValue ?? "")", token: admin), 204)
            assertNeutronError(try await api.neutron(.delete, "/qos/policies/\(id)/dscp_marking_rules/\(dscp["id"]?.stringValue ?? "")", token: admin), 404)

            // Rule types: none is enforced by a driver here; all_rules lists what the API takes.
            let types = try await api.neutron(.get, "/qos/rule-types", token: alice.token)
            XCTAssertEqual(types.json["rule_types"], [], types.text)
            let all = try await api.neutron(.get, "/qos/rule-types?all_rules=true", token: alice.token)
            XCTAssertEqual(all.json["rule_types"]?.arrayValue?.count, 5, all.text)
            let detail = try await api.neutron(.get, "/qos/rule-types/bandwidth_limit", token: alice.token)
            XCTAssertEqual(detail.json["rule_type"]?["drivers"], [], detail.text)
            assertStatus(try await api.neutron(.get, "/qos/rule-types/teleport", token: alice.token), 404)

            // Listing and filters; sharing makes a policy visible to all.
            let mine = try await api.neutron(.get, "/qos/policies?name=gold", token: admin)
            XCTAssertEqual(mine.json["policies"]?.arrayValue?.count, 1, mine.text)
            let reply11 = try await api.neutron(.get, "/qos/policies", token: bob.token)
            XCTAssertEqual(reply11.json["policies"], [])
            assertStatus(try await api.neutron(.put, "/qos/policies/\(otherID)", token: admin, body: ["policy": ["shared": true]]), 200)
            let reply12 = try await api.neutron(.get, "/qos/policies", token: bob.token)
            XCTAssertEqual(reply12.json["policies"]?.arrayValue?.count, 1)
            assertNeutronError(try await api.neutron(.put, "/qos/policies/\(otherID)", token: bob.token, body: ["policy": ["name": "x"]]), 403)

            // One default policy per project.
            assertStatus(try await api.neutron(.put, "/qos/policies/\(id)", token: admin, body: ["policy": ["is_default": true]]), 200)
            assertNeutronError(try await api.neutron(.post, "/qos/policies", token: admin, body: ["policy": [
                "name": "second", "is_default": true, "project_id": .string(alice.project)]]), 409, type: "QoSPolicyDefaultAlreadyExists")

            assertStatus(try await api.neutron(.delete, "/qos/policies/\(otherID)", token: admin), 204)
            assertNeutronError(try await api.neutron(.delete, "/qos/policies/\(otherID)", token: admin), 404, type: "QosPolicyNotFound")

            let extensions = try await api.neutron(.get, "/extensions", token: alice.token)
            let aliases = Set(extensions.json["extensions"]?.arrayValue?.compactMap { $0["alias"]?.stringValue } ?? [])
            XCTAssertTrue(aliases.isSuperset(of: ["qos", "qos-fip", "qos-gateway-ip", "qos-default", "qos-rules-alias"]), "\(aliases)")
        }
    }

    func testPolicyOnNetworksPortsFloatingIPsAndGateways() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")
            let policy = try await api.neutronCreate("qos/policies", "policy", ["name": "gold", "project_id": .string(alice.project)], token: admin)
            let id = try XCTUnwrap(policy["id"]?.stringValue)
            let hidden = try await api.neutronCreate("qos/policies", "policy", ["name": "admins"], token: admin)
            let hiddenID = try XCTUnwrap(hidden["id"]?.stringValue)

            // A network's policy, and a port's own and effective (its network's) policy.
            let net = try await RoutingFixture.make(api, admin: admin, owner: alice.token)
            let network = try await api.neutron(.put, "/networks/\(net.network)", token: alice.token, body: ["network": ["qos_policy_id": .string(id)]])
            XCTAssertEqual(network.json["network"]?["qos_policy_id"]?.stringValue, id, network.text)
            let port = try await api.neutronCreate("ports", "port", ["network_id": .string(net.network)], token: alice.token)
            let portID = try XCTUnwrap(port["id"]?.stringValue)
            XCTAssertEqual(port["qos_policy_id"], .null)
            XCTAssertEqual(port["qos_network_policy_id"]?.stringValue, id)
            let set = try await api.neutron(.put, "/ports/\(portID)", token: alice.token, body: ["port": ["qos_policy_id": .string(id)]])
            XCTAssertEqual(set.json["port"]?["qos_policy_id"]?.stringValue, id, set.text)
            // A policy the caller cannot see is not found, as Neutron.
            assertNeutronError(try await api.neutron(.put, "/ports/\(portID)", token: alice.token, body: ["port": ["qos_policy_id": .string(hiddenID)]]),
                               404, type: "QosPolicyNotFound")
            assertNeutronError(try await api.neutron(.post, "/ports", token: alice.token, body: ["port": [
                "network_id": .string(net.network), "qos_policy_id": "nope"]]), 404, type: "QosPolicyNotFound")

            // Floating IP and router gateway.
            let router = try await api.neutronCreate("routers", "router", ["name": "r", "external_gateway_info": [
                "network_id": .string(net.external), "qos_policy_id": .string(id)]], token: alice.token)
            let routerID = try XCTUnwrap(router["id"]?.stringValue)
            XCTAssertEqual(router["external_gateway_info"]?["qos_policy_id"]?.stringValue, id, "\(router)")
            let floating = try await api.neutronCreate("floatingips", "floatingip", ["floating_network_id": .string(net.external),
                                                                                     "qos_policy_id": .string(id)], token: alice.token)
            let floatingID = try XCTUnwrap(floating["id"]?.stringValue)
            XCTAssertEqual(floating["qos_policy_id"]?.stringValue, id)

            // In use: not deleted, and not unshared from under another project.
            assertNeutronError(try await api.neutron(.delete, "/qos/policies/\(id)", token: admin), 409, type: "QosPolicyInUse")
            assertStatus(try await api.neutron(.put, "/qos/policies/\(hiddenID)", token: admin, body: ["policy": ["shared": true]]), 200)
            let bobNet = try await api.neutronCreate("networks", "network", ["name": "b", "qos_policy_id": .string(hiddenID)], token: bob.token)
            XCTAssertEqual(bobNet["qos_policy_id"]?.stringValue, hiddenID)
            assertNeutronError(try await api.neutron(.put, "/qos/policies/\(hiddenID)", token: admin, body: ["policy": ["shared": false]]), 409,
                               type: "QosPolicyInUse")

            // Detaching everywhere frees it.
            assertStatus(try await api.neutron(.put, "/ports/\(portID)", token: alice.token, body: ["port": ["qos_policy_id": .null]]), 200)
            assertStatus(try await api.neutron(.put, "/networks/\(net.network)", token: alice.token, body: ["network": ["qos_policy_id": .null]]), 200)
            let unset = try await api.neutron(.put, "/floatingips/\(floatingID)", token: alice.token, body: ["floatingip": ["qos_policy_id": .null]])
            XCTAssertEqual(unset.json["floatingip"]?["qos_policy_id"], .null, unset.text)
            assertNeutronError(try await api.neutron(.delete, "/qos/policies/\(id)", token: admin), 409, type: "QosPolicyInUse")
            let cleared = try await api.neutron(.put, "/routers/\(routerID)", token: alice.token, body: ["router": ["external_gateway_info": [
                "network_id": .string(net.external), "qos_policy_id": .null]]])
            XCTAssertEqual(cleared.json["router"]?["external_gateway_info"]?["qos_policy_id"], .null, cleared.text)
            assertStatus(try await api.neutron(.delete, "/qos/policies/\(id)", token: admin), 204)

            // A project's default policy goes to its new networks; deleting the network frees it.
            let fallback = try await api.neutronCreate("qos/policies", "policy", ["name": "default", "is_default": true,
                                                                                 "project_id": .string(bob.project)], token: admin)
            let defaulted = try await api.neutronCreate("networks", "network", ["name": "d"], token: bob.token)
            XCTAssertEqual(defaulted["qos_policy_id"], fallback["id"])
            assertStatus(try await api.neutron(.delete, "/networks/\(defaulted["id"]?.stringValue ?? "")", token: bob.token), 204)
            assertStatus(try await api.neutron(.delete, "/qos/policies/\(fallback["id"]?.stringValue ?? "")", token: admin), 204)
        }
    }
}
