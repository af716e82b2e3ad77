import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

final class AuthorizationTests: XCTestCase {
    func testMemberCannotCreateUsersButAdminCan() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            assertKeystoneError(try await api.call(.post, "/identity/v3/users", token: alice.token, body: ["user": ["name": "mallory"]]), 403)
            let value2 = try await api.call(.post, "/identity/v3/users", token: admin, body: ["user": ["name": "bob"]]).status
            XCTAssertEqual(value2, 201)
            // A member still reads itself and its project.
            let value3 = try await api.call(.get, "/identity/v3/users/\(alice.user)", token: alice.token).status
            XCTAssertEqual(value3, 200)
            let value4 = try await api.call(.get, "/identity/v3/projects/\(alice.project)", token: alice.token).status
            XCTAssertEqual(value4, 200)
            assertKeystoneError(try await api.call(.get, "/identity/v3/users", token: alice.token), 403)
        }
    }

    func testRemovingTheRoleRevokesAtOnce() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let value5 = try await api.call(.get, "/identity/v3/users/\(alice.user)", token: alice.token).status
            XCTAssertEqual(value5, 200)
            let member = try await api.roleID("member", token: admin)
            let value6 = try await api.call(.delete, "/identity/v3/projects/\(alice.project)/users/\(alice.user)/roles/\(member)", token: admin).status
            XCTAssertEqual(value6, 204)
            assertKeystoneError(try await api.call(.get, "/identity/v3/users/\(alice.user)", token: alice.token), 401)
            assertKeystoneError(try await api.call(.post, "/identity/v3/auth/tokens", body: API.passwordAuth(user: "alice", password: "pw-alice", project: "p-alice")), 401)
        }
    }

    func testGroupRolesApplyAndLeavingTheGroupRevokes() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let project = try await api.create("projects", "project", ["name": "shared"], token: admin)
            let group = try await api.create("groups", "group", ["name": "devs"], token: admin)
            let user = try await api.create("users", "user", ["name": "carol", "password": "pw"], token: admin)
            let reader = try await api.roleID("reader", token: admin)
            let value7 = try await api.call(.put, "/identity/v3/projects/\(project)/groups/\(group)/roles/\(reader)", token: admin).status
            XCTAssertEqual(value7, 204)
            let value8 = try await api.call(.put, "/identity/v3/groups/\(group)/users/\(user)", token: admin).status
            XCTAssertEqual(value8, 204)
            let token = try await api.token(user: "carol", password: "pw", project: "shared")
            let effective = try await api.call(.get, "/identity/v3/role_assignments?effective&include_names&user.id=\(user)", token: admin)
            let rows = effective.json["role_assignments"]?.arrayValue ?? []
            XCTAssertEqual(rows.count, 1, effective.text)
            XCTAssertEqual(rows.first?["role"]?["name"]?.stringValue, "reader")
            XCTAssertNotNil(rows.first?["links"]?["membership"])
            XCTAssertEqual(rows.first?["scope"]?["project"]?["name"]?.stringValue, "shared")

            let value9 = try await api.call(.delete, "/identity/v3/groups/\(group)/users/\(user)", token: admin).status
            XCTAssertEqual(value9, 204)
            assertKeystoneError(try await api.call(.get, "/identity/v3/users/\(user)", token: token), 401)
        }
    }

    func testDisablingUserOrProjectAndChangingPasswordRevoke() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let value10 = try await api.call(.patch, "/identity/v3/projects/\(alice.project)", token: admin, body: ["project": ["enabled": false]]).status
            XCTAssertEqual(value10, 200)
            assertKeystoneError(try await api.call(.get, "/identity/v3/users/\(alice.user)", token: alice.token), 401)
            let value11 = try await api.call(.patch, "/identity/v3/projects/\(alice.project)", token: admin, body: ["project": ["enabled": true]]).status
            XCTAssertEqual(value11, 200)

            let fresh = try await api.token(user: "alice", password: "pw-alice", project: "p-alice")
            let wrongOriginal = try await api.call(.post, "/identity/v3/users/\(alice.user)/password", token: fresh,
                                                   body: ["user": ["original_password": "wrong", "password": "new-pw"]])
            assertKeystoneError(wrongOriginal, 401)
            let changed = try await api.call(.post, "/identity/v3/users/\(alice.user)/password", token: fresh,
                                             body: ["user": ["original_password": "pw-alice", "password": "new-pw"]])
            XCTAssertEqual(changed.status, 204, changed.text)
            assertKeystoneError(try await api.call(.get, "/identity/v3/users/\(alice.user)", token: fresh), 401)
            let renewed = try await api.token(user: "alice", password: "new-pw", project: "p-alice")
            assertKeystoneError(try await api.call(.post, "/identity/v3/auth/tokens", body: API.passwordAuth(user: "alice", password: "pw-alice", project: "p-alice")), 401)

            let value12 = try await api.call(.patch, "/identity/v3/users/\(alice.user)", token: admin, body: ["user": ["enabled": false]]).status
            XCTAssertEqual(value12, 200)
            assertKeystoneError(try await api.call(.get, "/identity/v3/users/\(alice.user)", token: renewed), 401)
        }
    }

    func testApplicationCredentialAuthenticatesWithItsRolesOnly() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let selfCheck = try await api.call(.get, "/identity/v3/auth/tokens", token: admin, headers: ["X-Subject-Token": admin])
            let adminUser = try XCTUnwrap(selfCheck.json["token"]?["user"]?["id"]?.stringValue)
            let created = try await api.call(.post, "/identity/v3/users/\(adminUser)/application_credentials", token: admin,
                                             body: ["application_credential": ["name": "ci", "roles": [["name": "reader"]]]])
            XCTAssertEqual(created.status, 201, created.text)
            let id = try XCTUnwrap(created.json["application_credential"]?["id"]?.stringValue)
            let secret = try XCTUnwrap(created.json["application_credential"]?["secret"]?.stringValue)
            let auth = try await api.call(.post, "/identity/v3/auth/tokens", body: [
                "auth": ["identity": ["methods": ["application_credential"], "application_credential": ["id": .string(id), "secret": .string(secret)]]]])
            XCTAssertEqual(auth.status, 201, auth.text)
            XCTAssertEqual(auth.json["token"]?["roles"]?.arrayValue?.compactMap { $0["name"]?.stringValue }, ["reader"])
            XCTAssertEqual(auth.json["token"]?["application_credential"]?["restricted"], true)
            let appToken = try XCTUnwrap(auth.subjectToken)
            // reader cannot administer even though the creator is admin.
            assertKeystoneError(try await api.call(.post, "/identity/v3/users", token: appToken, body: ["user": ["name": "x"]]), 403)
            assertKeystoneError(try await api.call(.post, "/identity/v3/auth/tokens", body: [
                "auth": ["identity": ["methods": ["application_credential"], "application_credential": ["id": .string(id), "secret": "wrong"]]]]), 401)
            // A role the creator lacks is refused.
            let other = try await api.create("roles", "role", ["name": "auditor"], token: admin)
            assertKeystoneError(try await api.call(.post, "/identity/v3/users/\(adminUser)/application_credentials", token: admin,
                                                   body: ["application_credential": ["name": "ci2", "roles": [["id": .string(other)]]]]), 403)
            let value13 = try await api.call(.delete, "/identity/v3/users/\(adminUser)/application_credentials/\(id)", token: admin).status
            XCTAssertEqual(value13, 204)
            assertKeystoneError(try await api.call(.get, "/identity/v3/auth/catalog", token: appToken), 401)
        }
    }

    func testPolicyFileOverridesDefaults() async throws {
        let cloud = try await TestCloud.make(.sqlite)
        try "\"identity:list_users\": \"role:reader\"\n".write(toFile: "\(cloud.dataDir)/policy.yaml", atomically: true, encoding: .utf8)
        try await cloud.run { api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let value14 = try await api.call(.get, "/identity/v3/users", token: alice.token).status
            XCTAssertEqual(value14, 200)
        }
    }

    func testConcurrentCreatesOfOneNameYieldOneUser() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<8 {
                    group.addTask { try await api.call(.post, "/identity/v3/users", token: admin, body: ["user": ["name": "dup"]]).status }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            XCTAssertEqual(statuses.filter { $0 == 201 }.count, 1, "\(statuses)")
            XCTAssertEqual(statuses.filter { $0 == 409 }.count, 7, "\(statuses)")
        }
    }

    func testNoRouteAnswers500() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let bodies: [String?] = [nil, "", "{", "[]", "null", "{\"user\": null}", "{\"project\": {\"name\": []}}", "{\"role\": {\"name\": \"\"}}",
                                     "{\"auth\": {\"identity\": {\"methods\": [\"password\"], \"password\": {\"user\": {}}}}}", "\u{0}\u{1}",
                                     "{\"trust\": {\"trustor_user_id\": 1, \"roles\": [[]]}}", "{\"tenant_id\": []}",
                                     "{\"credentials\": {\"access\": \"x\", \"params\": [], \"headers\": {\"a\": {}}}}"]
            let paths = ["/identity/v3/users", "/identity/v3/users/nope", "/identity/v3/projects/nope", "/identity/v3/domains/nope",
                         "/identity/v3/groups/nope/users/nope", "/identity/v3/roles/nope/implies/nope", "/identity/v3/projects/x/users/y/roles/z",
                         "/identity/v3/regions/x", "/identity/v3/endpoints/x", "/identity/v3/services/x", "/identity/v3/auth/tokens",
                         "/identity/v3/users/x/application_credentials", "/identity/v3/role_assignments?effective&group.id=1", "/identity/v3/nonexistent",
                         "/identity/v3/system/users/x/roles/y", "/identity/v3/OS-INHERIT/domains/d/users/u/roles/r/inherited_to_projects",
                         "/identity/v3/OS-TRUST/trusts", "/identity/v3/OS-TRUST/trusts/x", "/identity/v3/OS-TRUST/trusts/x/roles/y",
                         "/identity/v3/users/x/credentials/OS-EC2", "/identity/v3/users/x/credentials/OS-EC2/y", "/identity/v3/ec2tokens", "/identity/v3/s3tokens",
                         "/identity/v3/credentials"]
            for path in paths {
                for method in [HTTPRequest.Method.get, .post, .put, .patch, .delete, .head] {
                    for body in bodies {
                        let reply = try await api.call(method, path, token: admin, raw: body)
                        XCTAssertLessThan(reply.status, 500, "\(method) \(path) \(body ?? "-") -> \(reply.status) \(reply.text)")
                    }
                }
            }
        }
    }
}
