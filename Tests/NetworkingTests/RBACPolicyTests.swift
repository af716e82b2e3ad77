import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

final class RBACPolicyTests: XCTestCase {
    func testSharingANetworkWithOneProject() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")
            let carol = try await api.projectUser(admin: admin, name: "carol")
            let extensions = try await api.neutron(.get, "/extensions/rbac-policies", token: alice.token)
            assertStatus(extensions, 200)

            let net = (try await api.neutronCreate("networks", "network", ["name": "alices"], token: alice.token))["id"]?.stringValue ?? ""
            _ = try await api.neutronCreate("subnets", "subnet", ["network_id": .string(net), "ip_version": 4, "cidr": "10.9.0.0/24"], token: alice.token)
            assertNeutronError(try await api.neutron(.get, "/networks/\(net)", token: bob.token), 404, type: "NetworkNotFound")

            // Only the owner shares; only an admin shares with everyone; actions follow the type.
            let share: JSON = ["rbac_policy": ["object_type": "network", "object_id": .string(net), "action": "access_as_shared", "target_tenant": .string(bob.project)]]
            assertNeutronError(try await api.neutron(.post, "/rbac-policies", token: bob.token, body: share), 404, type: "NetworkNotFound")
            assertNeutronError(try await api.neutron(.post, "/rbac-policies", token: alice.token, body: ["rbac_policy": [
                "object_type": "network", "object_id": .string(net), "action": "access_as_shared", "target_tenant": "*"]]), 403, type: "PolicyNotAuthorized")
            assertNeutronError(try await api.neutron(.post, "/rbac-policies", token: alice.token, body: ["rbac_policy": [
                "object_type": "network", "object_id": .string(net), "action": "access_as_everything", "target_tenant": .string(bob.project)]]),
                               400, type: "InvalidActionForType")
            assertNeutronError(try await api.neutron(.post, "/rbac-policies", token: alice.token, body: ["rbac_policy": [
                "object_type": "router", "object_id": .string(net), "action": "access_as_shared", "target_tenant": .string(bob.project)]]),
                               400, type: "InvalidInput")

            let created = try await api.neutron(.post, "/rbac-policies", token: alice.token, body: share)
            assertStatus(created, 201)
            let policy = try XCTUnwrap(created.json["rbac_policy"]?["id"]?.stringValue)
            XCTAssertEqual(created.json["rbac_policy"]?["target_tenant"]?.stringValue, bob.project)
            XCTAssertEqual(created.json["rbac_policy"]?["project_id"]?.stringValue, alice.project)
            assertNeutronError(try await api.neutron(.post, "/rbac-policies", token: alice.token, body: share), 409, type: "DuplicateRbacPolicy")

            // Bob sees the network (shared, for him) and its subnet, and plugs into it; Carol does not.
            let seen = try await api.neutron(.get, "/networks?shared=true", token: bob.token)
            XCTAssertEqual(seen.json["networks"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [net], seen.text)
            let reply1 = try await api.neutron(.get, "/networks/\(net)", token: alice.token)
            XCTAssertEqual(reply1.json["network"]?["shared"], false,
                           "the owner is not a target of the policy")
            let reply2 = try await api.neutron(.get, "/subnets?network_id=\(net)", token: bob.token)
            XCTAssertEqual(reply2.json["subnets"]?.arrayValue?.count, 1)
            let port = try await api.neutronCreate("ports", "port", ["network_id": .string(net)], token: bob.token)
            assertNeutronError(try await api.neutron(.get, "/networks/\(net)", token: carol.token), 404)
            assertNeutronError(try await api.neutron(.post, "/ports", token: carol.token, body: ["port": ["network_id": .string(net)]]), 404)
            assertNeutronError(try await api.neutron(.post, "/subnets", token: bob.token, body: ["subnet": [
                "network_id": .string(net), "ip_version": 4, "cidr": "10.10.0.0/24"]]), 403)

            // Policies are their owner's to see; the target's port keeps the policy in use.
            let reply3 = try await api.neutron(.get, "/rbac-policies", token: bob.token)
            XCTAssertEqual(reply3.json["rbac_policies"]?.arrayValue?.count, 0)
            let listed = try await api.neutron(.get, "/rbac-policies?object_id=\(net)&fields=id&fields=target_tenant", token: alice.token)
            XCTAssertEqual(listed.json["rbac_policies"], [["id": .string(policy), "target_tenant": .string(bob.project)]], listed.text)
            assertNeutronError(try await api.neutron(.get, "/rbac-policies/\(policy)", token: bob.token), 404, type: "RbacPolicyNotFound")
            assertNeutronError(try await api.neutron(.delete, "/rbac-policies/\(policy)", token: alice.token), 409, type: "RbacPolicyInUse")
            assertNeutronError(try await api.neutron(.put, "/rbac-policies/\(policy)", token: alice.token,
                                                     body: ["rbac_policy": ["target_tenant": .string(carol.project)]]), 409, type: "RbacPolicyInUse")
            assertNeutronError(try await api.neutron(.put, "/rbac-policies/\(policy)", token: alice.token,
                                                     body: ["rbac_policy": ["action": "access_as_external"]]), 400)
            assertStatus(try await api.neutron(.delete, "/ports/\(port["id"]?.stringValue ?? "")", token: bob.token), 204)

            // Retargeted, it moves the network from Bob to Carol; deleted, the network is Alice's alone.
            let moved = try await api.neutron(.put, "/rbac-policies/\(policy)", token: alice.token, body: ["rbac_policy": ["target_tenant": .string(carol.project)]])
            XCTAssertEqual(moved.json["rbac_policy"]?["target_tenant"]?.stringValue, carol.project, moved.text)
            assertNeutronError(try await api.neutron(.get, "/networks/\(net)", token: bob.token), 404)
            assertStatus(try await api.neutron(.get, "/networks/\(net)", token: carol.token), 200)
            assertStatus(try await api.neutron(.delete, "/rbac-policies/\(policy)", token: alice.token), 204)
            assertNeutronError(try await api.neutron(.get, "/networks/\(net)", token: carol.token), 404)
            assertNeutronError(try await api.neutron(.get, "/rbac-policies/\(policy)", token: alice.token), 404, type: "RbacPolicyNotFound")
        }
    }

    func testSharedIsTheWildcardPolicy() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let bob = try await api.projectUser(admin: admin, name: "bob")
            let net = (try await api.neutronCreate("networks", "network", ["shared": true], token: admin))["id"]?.stringValue ?? ""
            let policies = try await api.neutron(.get, "/rbac-policies?object_id=\(net)", token: admin)
            XCTAssertEqual(policies.json["rbac_policies"]?.arrayValue?.map { $0["target_tenant"] }, ["*"], policies.text)
            XCTAssertEqual(policies.json["rbac_policies"]?.arrayValue?.first?["action"], "access_as_shared")
            let wildcard = try XCTUnwrap(policies.json["rbac_policies"]?.arrayValue?.first?["id"]?.stringValue)

            _ = try await api.neutronCreate("ports", "port", ["network_id": .string(net)], token: bob.token)
            assertNeutronError(try await api.neutron(.delete, "/rbac-policies/\(wildcard)", token: admin), 409, type: "RbacPolicyInUse")
            // A policy for Bob himself covers his port, so the wildcard can go, and `shared` with it.
            assertStatus(try await api.neutron(.post, "/rbac-policies", token: admin, body: ["rbac_policy": [
                "object_type": "network", "object_id": .string(net), "action": "access_as_shared", "target_tenant": .string(bob.project)]]), 201)
            assertStatus(try await api.neutron(.delete, "/rbac-policies/\(wildcard)", token: admin), 204)
            let reply4 = try await api.neutron(.get, "/networks/\(net)", token: admin)
            XCTAssertEqual(reply4.json["network"]?["shared"], false)
            let reply5 = try await api.neutron(.get, "/networks/\(net)", token: bob.token)
            XCTAssertEqual(reply5.json["network"]?["shared"], true)

            // Setting shared makes the wildcard again; external networks get theirs.
            assertStatus(try await api.neutron(.put, "/networks/\(net)", token: admin, body: ["network": ["shared": true]]), 200)
            let again = try await api.neutron(.get, "/rbac-policies?object_id=\(net)&target_tenant=*", token: admin)
            XCTAssertEqual(again.json["rbac_policies"]?.arrayValue?.count, 1, again.text)
            let external = (try await api.neutronCreate("networks", "network", ["router:external": true], token: admin))["id"]?.stringValue ?? ""
            let externals = try await api.neutron(.get, "/rbac-policies?object_id=\(external)", token: admin)
            XCTAssertEqual(externals.json["rbac_policies"]?.arrayValue?.map { $0["action"] }, ["access_as_external"], externals.text)
            assertStatus(try await api.neutron(.get, "/networks/\(external)", token: bob.token), 200)
            assertStatus(try await api.neutron(.delete, "/rbac-policies/\(externals.json["rbac_policies"]?.arrayValue?.first?["id"]?.stringValue ?? "")", token: admin), 204)
            assertNeutronError(try await api.neutron(.get, "/networks/\(external)", token: bob.token), 404)
            // Deleting the network deletes its policies.
            assertStatus(try await api.neutron(.delete, "/networks/\(external)", token: admin), 204)
            let reply6 = try await api.neutron(.get, "/rbac-policies?object_id=\(external)", token: admin)
            XCTAssertEqual(reply6.json["rbac_policies"]?.arrayValue?.count, 0)
        }
    }

    func testSharingASecurityGroup() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")
            let group = (try await api.neutronCreate("security-groups", "security_group", ["name": "shared-web"], token: alice.token))["id"]?.stringValue ?? ""
            let net = (try await api.neutronCreate("networks", "network", [:], token: bob.token))["id"]?.stringValue ?? ""
            _ = try await api.neutronCreate("subnets", "subnet", ["network_id": .string(net), "ip_version": 4, "cidr": "10.11.0.0/24"], token: bob.token)
            assertNeutronError(try await api.neutron(.post, "/ports", token: bob.token, body: ["port": ["network_id": .string(net), "security_groups": [.string(group)]]]),
                               404, type: "SecurityGroupNotFound")
            assertNeutronError(try await api.neutron(.post, "/rbac-policies", token: alice.token, body: ["rbac_policy": [
                "object_type": "security_group", "object_id": .string(group), "action": "access_as_external", "target_tenant": .string(bob.project)]]),
                               400, type: "InvalidActionForType")
            let created = try await api.neutron(.post, "/rbac-policies", token: alice.token, body: ["rbac_policy": [
                "object_type": "security_group", "object_id": .string(group), "action": "access_as_shared", "target_tenant": .string(bob.project)]])
            assertStatus(created, 201)
            let policy = created.json["rbac_policy"]?["id"]?.stringValue ?? ""

            let seen = try await api.neutron(.get, "/security-groups/\(group)", token: bob.token)
            XCTAssertEqual(seen.json["security_group"]?["shared"], true, seen.text)
            let port = try await api.neutronCreate("ports", "port", ["network_id": .string(net), "security_groups": [.string(group)]], token: bob.token)
            XCTAssertEqual(port["security_groups"], [.string(group)])
            assertNeutronError(try await api.neutron(.put, "/security-groups/\(group)", token: bob.token, body: ["security_group": ["name": "mine"]]), 403)
            assertNeutronError(try await api.neutron(.delete, "/rbac-policies/\(policy)", token: alice.token), 409, type: "RbacPolicyInUse")
            assertStatus(try await api.neutron(.delete, "/ports/\(port["id"]?.stringValue ?? "")", token: bob.token), 204)
            assertStatus(try await api.neutron(.delete, "/rbac-policies/\(policy)", token: alice.token), 204)
            assertNeutronError(try await api.neutron(.get, "/security-groups/\(group)", token: bob.token), 404)
        }
    }
}
