import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

final class SecurityGroupDefaultStatefulnessTests: XCTestCase {
    func testProjectAndSystemSettingsDecideNewGroupsStatefulness() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")
            let path = "/security-groups-default-statefulness", key = "security_group_default_statefulness"

            // Only the operator writes settings.
            assertNeutronError(try await api.neutron(.post, path, token: alice.token, body: [key: ["stateful": false]]), 403)
            assertNeutronError(try await api.neutron(.post, path, token: admin, body: [key: ["project_id": .string(alice.project)]]), 400)
            assertNeutronError(try await api.neutron(.post, path, token: admin, body: [key: ["stateful": "maybe", "project_id": .null]]), 400)

            let system = try await api.neutron(.post, path, token: admin, body: [key: ["stateful": false, "project_id": .null]])
            assertStatus(system, 201)
            XCTAssertEqual(system.json[key]?["project_id"], .null, system.text)
            XCTAssertEqual(system.json[key]?["stateful"], false)
            assertNeutronError(try await api.neutron(.post, path, token: admin, body: [key: ["stateful": true, "project_id": .null]]), 409)
            let forAlice = try await api.neutron(.post, path, token: admin, body: [key: ["stateful": true, "project_id": .string(alice.project)]])
            assertStatus(forAlice, 201)
            let aliceSetting = forAlice.json[key]?["id"]?.stringValue ?? ""

            // Alice's own setting wins; Bob falls back on the system-wide one; an explicit value wins over both.
            let aliceGroup = try await api.neutronCreate("security-groups", "security_group", ["name": "a"], token: alice.token)
            XCTAssertEqual(aliceGroup["stateful"], true, "\(aliceGroup)")
            let bobGroup = try await api.neutronCreate("security-groups", "security_group", ["name": "b"], token: bob.token)
            XCTAssertEqual(bobGroup["stateful"], false, "\(bobGroup)")
            let explicit = try await api.neutronCreate("security-groups", "security_group", ["name": "c", "stateful": true], token: bob.token)
            XCTAssertEqual(explicit["stateful"], true)

            // Projects read their own setting and the system-wide one, not others'.
            let bobList = try await api.neutron(.get, path, token: bob.token)
            XCTAssertEqual(bobList.json["security_groups_default_statefulness"]?.arrayValue?.count, 1, bobList.text)
            assertNeutronError(try await api.neutron(.get, "\(path)/\(aliceSetting)", token: bob.token), 404)
            assertStatus(try await api.neutron(.get, "\(path)/\(aliceSetting)", token: alice.token), 200)
            let filtered = try await api.neutron(.get, "\(path)?project_id=\(alice.project)", token: admin)
            XCTAssertEqual(filtered.json["security_groups_default_statefulness"]?.arrayValue?.count, 1, filtered.text)

            // Update and delete: admin only; with Alice's setting gone she gets the system-wide one.
            assertNeutronError(try await api.neutron(.put, "\(path)/\(aliceSetting)", token: alice.token, body: [key: ["stateful": false]]), 403)
            let updated = try await api.neutron(.put, "\(path)/\(aliceSetting)", token: admin, body: [key: ["stateful": false]])
            XCTAssertEqual(updated.json[key]?["stateful"], false, updated.text)
            assertNeutronError(try await api.neutron(.put, "\(path)/\(aliceSetting)", token: admin, body: [key: ["project_id": .null]]), 400)
            assertNeutronError(try await api.neutron(.delete, "\(path)/\(aliceSetting)", token: alice.token), 403)
            assertStatus(try await api.neutron(.delete, "\(path)/\(aliceSetting)", token: admin), 204)
            assertNeutronError(try await api.neutron(.get, "\(path)/\(aliceSetting)", token: admin), 404, type: "SecurityGroupDefaultStatefulnessNotFound")
            let later = try await api.neutronCreate("security-groups", "security_group", ["name": "d"], token: alice.token)
            XCTAssertEqual(later["stateful"], false)

            let extensions = try await api.neutron(.get, "/extensions/security-groups-default-statefulness", token: alice.token)
            assertStatus(extensions, 200)
        }
    }
}
