import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

final class ResourceTests: XCTestCase {
    func testDomainProjectUserGroupRoleLifecycle() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let domain = try await api.create("domains", "domain", ["name": "acme", "description": "d"], token: admin)
            assertKeystoneError(try await api.call(.post, "/identity/v3/domains", token: admin, body: ["domain": ["name": "acme"]]), 409)
            let project = try await api.create("projects", "project", ["name": "web", "domain_id": .string(domain), "tags": ["a", "b"]], token: admin)
            let child = try await api.create("projects", "project", ["name": "web-child", "parent_id": .string(project)], token: admin)
            let shown = try await api.call(.get, "/identity/v3/projects/\(child)", token: admin)
            XCTAssertEqual(shown.json["project"]?["parent_id"]?.stringValue, project)
            XCTAssertEqual(shown.json["project"]?["domain_id"]?.stringValue, domain)
            XCTAssertEqual(shown.json["project"]?["is_domain"], false)
            let value1 = try await api.call(.get, "/identity/v3/projects?tags=a", token: admin).json["projects"]?.arrayValue?.count
            XCTAssertEqual(value1, 1)
            assertKeystoneError(try await api.call(.delete, "/identity/v3/projects/\(project)", token: admin), 403)

            let user = try await api.create("users", "user", ["name": "u1", "domain_id": .string(domain), "email": "u1@example.org"], token: admin)
            let fetched = try await api.call(.get, "/identity/v3/users/\(user)", token: admin)
            XCTAssertEqual(fetched.json["user"]?["email"]?.stringValue, "u1@example.org")
            XCTAssertNil(fetched.json["user"]?["password"])
            let value2 = try await api.call(.patch, "/identity/v3/users/\(user)", token: admin, body: ["user": ["description": "hi"]]).json["user"]?["description"]?.stringValue
            XCTAssertEqual(value2, "hi")
            let value3 = try await api.call(.get, "/identity/v3/users?domain_id=\(domain)", token: admin).json["users"]?.arrayValue?.count
            XCTAssertEqual(value3, 1)

            let group = try await api.create("groups", "group", ["name": "g1", "domain_id": .string(domain)], token: admin)
            let value4 = try await api.call(.put, "/identity/v3/groups/\(group)/users/\(user)", token: admin).status
            XCTAssertEqual(value4, 204)
            let value5 = try await api.call(.head, "/identity/v3/groups/\(group)/users/\(user)", token: admin).status
            XCTAssertEqual(value5, 204)
            let value6 = try await api.call(.get, "/identity/v3/users/\(user)/groups", token: admin).json["groups"]?.arrayValue?.count
            XCTAssertEqual(value6, 1)

            let role = try await api.create("roles", "role", ["name": "observer"], token: admin)
            let value7 = try await api.call(.put, "/identity/v3/domains/\(domain)/groups/\(group)/roles/\(role)", token: admin).status
            XCTAssertEqual(value7, 204)
            let value8 = try await api.call(.get, "/identity/v3/domains/\(domain)/groups/\(group)/roles", token: admin).json["roles"]?.arrayValue?.count
            XCTAssertEqual(value8, 1)
            assertKeystoneError(try await api.call(.put, "/identity/v3/projects/\(project)/users/\(user)/roles/nope", token: admin), 404)

            assertKeystoneError(try await api.call(.delete, "/identity/v3/domains/\(domain)", token: admin), 403)
            let value9 = try await api.call(.patch, "/identity/v3/domains/\(domain)", token: admin, body: ["domain": ["enabled": false]]).status
            XCTAssertEqual(value9, 200)
            let value10 = try await api.call(.delete, "/identity/v3/domains/\(domain)", token: admin).status
            XCTAssertEqual(value10, 204)
            assertKeystoneError(try await api.call(.get, "/identity/v3/users/\(user)", token: admin), 404)
            assertKeystoneError(try await api.call(.get, "/identity/v3/projects/\(child)", token: admin), 404)
            let value11 = try await api.call(.delete, "/identity/v3/roles/\(role)", token: admin).status
            XCTAssertEqual(value11, 204)
        }
    }

    func testImpliedRolesAndEffectiveAssignments() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let inferences = try await api.call(.get, "/identity/v3/role_inferences", token: admin)
            XCTAssertEqual(inferences.json["role_inferences"]?.arrayValue?.count, 3, inferences.text)
            let lead = try await api.create("roles", "role", ["name": "lead"], token: admin)
            let member = try await api.roleID("member", token: admin)
            let created = try await api.call(.put, "/identity/v3/roles/\(lead)/implies/\(member)", token: admin)
            XCTAssertEqual(created.status, 201, created.text)
            XCTAssertEqual(created.json["role_inference"]?["implies"]?["id"]?.stringValue, member)
            // member ⇒ reader ⇒ … cannot lead back to lead.
            let reader = try await api.roleID("reader", token: admin)
            assertKeystoneError(try await api.call(.put, "/identity/v3/roles/\(reader)/implies/\(lead)", token: admin), 403)

            let user = try await api.create("users", "user", ["name": "dave", "password": "pw"], token: admin)
            let project = try await api.create("projects", "project", ["name": "ops"], token: admin)
            let value12 = try await api.call(.put, "/identity/v3/projects/\(project)/users/\(user)/roles/\(lead)", token: admin).status
            XCTAssertEqual(value12, 204)
            let rows = try await api.call(.get, "/identity/v3/role_assignments?effective&include_names&scope.project.id=\(project)", token: admin)
                .json["role_assignments"]?.arrayValue ?? []
            XCTAssertEqual(Set(rows.compactMap { $0["role"]?["name"]?.stringValue }), ["lead", "member", "reader"])
            XCTAssertTrue(rows.allSatisfy { $0["user"]?["name"]?.stringValue == "dave" })
            let token = try await api.token(user: "dave", password: "pw", project: "ops")
            let check = try await api.call(.get, "/identity/v3/auth/tokens", token: admin, headers: ["X-Subject-Token": token])
            XCTAssertEqual(Set(check.json["token"]?["roles"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []), ["lead", "member", "reader"])
            let value13 = try await api.call(.delete, "/identity/v3/roles/\(lead)/implies/\(member)", token: admin).status
            XCTAssertEqual(value13, 204)
            let after = try await api.call(.get, "/identity/v3/auth/tokens", token: admin, headers: ["X-Subject-Token": token])
            XCTAssertEqual(after.json["token"]?["roles"]?.arrayValue?.compactMap { $0["name"]?.stringValue }, ["lead"])
        }
    }

    func testRegionsServicesEndpoints() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let region = try await api.call(.post, "/identity/v3/regions", token: admin, body: ["region": ["id": "RegionTwo", "description": "second"]])
            XCTAssertEqual(region.status, 201, region.text)
            let service = try await api.create("services", "service", ["type": "compute", "name": "nova"], token: admin)
            let endpoint = try await api.create("endpoints", "endpoint", ["service_id": .string(service), "interface": "public",
                                                                         "url": "http://example.test/compute", "region_id": "RegionTwo"], token: admin)
            assertKeystoneError(try await api.call(.post, "/identity/v3/endpoints", token: admin,
                                                   body: ["endpoint": ["service_id": .string(service), "interface": "sideways", "url": "http://x"]]), 400)
            let token = try await api.adminToken(cloud)
            let catalog = try await api.call(.get, "/identity/v3/auth/catalog", token: token)
            XCTAssertTrue(catalog.json["catalog"]?.arrayValue?.contains { $0["name"]?.stringValue == "nova" } ?? false, catalog.text)
            assertKeystoneError(try await api.call(.delete, "/identity/v3/regions/RegionTwo", token: admin), 403)
            let value14 = try await api.call(.delete, "/identity/v3/endpoints/\(endpoint)", token: admin).status
            XCTAssertEqual(value14, 204)
            let value15 = try await api.call(.delete, "/identity/v3/services/\(service)", token: admin).status
            XCTAssertEqual(value15, 204)
            let value16 = try await api.call(.delete, "/identity/v3/regions/RegionTwo", token: admin).status
            XCTAssertEqual(value16, 204)
        }
    }

    func testDomainRolesOnlyCarryImplications() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let domainRole = try await api.create("roles", "role", ["name": "d-role", "domain_id": "default"], token: admin)
            let project = try await api.create("projects", "project", ["name": "dr"], token: admin)
            let user = try await api.create("users", "user", ["name": "erin", "password": "pw"], token: admin)
            let granted = try await api.call(.put, "/identity/v3/projects/\(project)/users/\(user)/roles/\(domainRole)", token: admin)
            XCTAssertEqual(granted.status, 204)
            let effective = try await api.call(.get, "/identity/v3/role_assignments?effective&scope.project.id=\(project)&user.id=\(user)", token: admin)
            XCTAssertEqual(effective.json["role_assignments"]?.arrayValue?.count, 0, effective.text)
            assertKeystoneError(try await api.call(.post, "/identity/v3/auth/tokens", body: API.passwordAuth(user: "erin", password: "pw", project: "dr")), 401)
            let reader = try await api.roleID("reader", token: admin)
            let implied = try await api.call(.put, "/identity/v3/roles/\(domainRole)/implies/\(reader)", token: admin)
            XCTAssertEqual(implied.status, 201, implied.text)
            let token = try await api.token(user: "erin", password: "pw", project: "dr")
            let check = try await api.call(.get, "/identity/v3/auth/tokens", token: admin, headers: ["X-Subject-Token": token])
            XCTAssertEqual(check.json["token"]?["roles"]?.arrayValue?.compactMap { $0["name"]?.stringValue }, ["reader"])
        }
    }

    func testLegacyEndpointRegionIsCreatedAndExpiryIsEchoed() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let service = try await api.create("services", "service", ["type": "object-store"], token: admin)
            let endpoint = try await api.call(.post, "/identity/v3/endpoints", token: admin, body: ["endpoint": [
                "service_id": .string(service), "interface": "public", "url": "http://x.test/", "region": "Legacy"]])
            XCTAssertEqual(endpoint.status, 201, endpoint.text)
            XCTAssertEqual(endpoint.json["endpoint"]?["region_id"]?.stringValue, "Legacy")
            let region = try await api.call(.get, "/identity/v3/regions/Legacy", token: admin)
            XCTAssertEqual(region.status, 200)
            assertKeystoneError(try await api.call(.post, "/identity/v3/endpoints", token: admin, body: ["endpoint": [
                "service_id": .string(service), "interface": "public", "url": "http://x.test/", "region_id": "Missing"]]), 400)

            let me = try await api.call(.get, "/identity/v3/auth/tokens", token: admin, headers: ["X-Subject-Token": admin])
            let userID = me.json["token"]?["user"]?["id"]?.stringValue ?? ""
            let created = try await api.call(.post, "/identity/v3/users/\(userID)/application_credentials", token: admin,
                                             body: ["application_credential": ["name": "exp", "expires_at": "2099-01-02T03:04:05.123456"]])
            XCTAssertEqual(created.json["application_credential"]?["expires_at"]?.stringValue, "2099-01-02T03:04:05.123456", created.text)
        }
    }

    func testCredentialsAreEncryptedAtRestAndScopedToTheirOwner() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let blob = "{\"access\": \"AKIA-alice\", \"secret\": \"very-secret\"}"
            let created = try await api.call(.post, "/identity/v3/credentials", token: alice.token, body: ["credential": [
                "user_id": .string(alice.user), "project_id": .string(alice.project), "type": "ec2", "blob": .string(blob)]])
            XCTAssertEqual(created.status, 201, created.text)
            let id = try XCTUnwrap(created.json["credential"]?["id"]?.stringValue)
            XCTAssertEqual(id.count, 64, "ec2 credentials are addressed by the SHA-256 of the access key")
            let value101 = try await api.call(.get, "/identity/v3/credentials/\(id)", token: alice.token).json["credential"]?["blob"]?.stringValue
            XCTAssertEqual(value101, blob)
            let bob = try await api.projectUser(admin: admin, name: "bob")
            assertKeystoneError(try await api.call(.get, "/identity/v3/credentials/\(id)", token: bob.token), 403)
            let value102 = try await api.call(.get, "/identity/v3/credentials", token: bob.token).json["credentials"]?.arrayValue?.count
            XCTAssertEqual(value102, 0)
            let value103 = try await api.call(.get, "/identity/v3/credentials", token: admin).json["credentials"]?.arrayValue?.count
            XCTAssertEqual(value103, 1)
            // Nothing readable in the database.
            let raw = try await cloud.rawColumn("SELECT blob FROM identity_credential")
            XCTAssertFalse(raw.contains("very-secret"))
            let value104 = try await api.call(.delete, "/identity/v3/credentials/\(id)", token: alice.token).status
            XCTAssertEqual(value104, 204)

            let policy = try await api.create("policies", "policy", ["type": "application/json", "blob": "{}"], token: admin)
            let value105 = try await api.call(.patch, "/identity/v3/policies/\(policy)", token: admin, body: ["policy": ["blob": "{\"a\": 1}"]]).status
            XCTAssertEqual(value105, 200)
            assertKeystoneError(try await api.call(.get, "/identity/v3/policies", token: alice.token), 403)
            let value106 = try await api.call(.delete, "/identity/v3/policies/\(policy)", token: admin).status
            XCTAssertEqual(value106, 204)
        }
    }

    func testProjectsActingAsDomains() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let created = try await api.call(.post, "/identity/v3/projects", token: admin, body: ["project": ["name": "as-domain", "is_domain": true, "domain_id": nil]])
            XCTAssertEqual(created.status, 201, created.text)
            XCTAssertEqual(created.json["project"]?["is_domain"], true)
            XCTAssertEqual(created.json["project"]?["domain_id"], .null)
            let id = try XCTUnwrap(created.json["project"]?["id"]?.stringValue)
            let value107 = try await api.call(.get, "/identity/v3/domains/\(id)", token: admin).status
            XCTAssertEqual(value107, 200)
            let listed = try await api.call(.get, "/identity/v3/projects?is_domain=true", token: admin).json["projects"]?.arrayValue ?? []
            XCTAssertTrue(listed.contains { $0["id"]?.stringValue == id })
            let value108 = try await api.call(.get, "/identity/v3/projects", token: admin).json["projects"]?.arrayValue?.contains { $0["id"]?.stringValue == id } ?? true
            XCTAssertFalse(value108)
            let value109 = try await api.call(.patch, "/identity/v3/projects/\(id)", token: admin, body: ["project": ["enabled": false]]).status
            XCTAssertEqual(value109, 200)
            let value110 = try await api.call(.delete, "/identity/v3/projects/\(id)", token: admin).status
            XCTAssertEqual(value110, 204)
            assertKeystoneError(try await api.call(.get, "/identity/v3/domains/\(id)", token: admin), 404)
        }
    }

    func testEndpointGroups() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let created = try await api.call(.post, "/identity/v3/OS-EP-FILTER/endpoint_groups", token: admin,
                                             body: ["endpoint_group": ["name": "eg", "filters": ["interface": "public"]]])
            XCTAssertEqual(created.status, 201, created.text)
            let id = try XCTUnwrap(created.json["endpoint_group"]?["id"]?.stringValue)
            let head = try await api.call(.head, "/identity/v3/OS-EP-FILTER/endpoint_groups/\(id)", token: admin)
            XCTAssertEqual(head.status, 200)
            assertKeystoneError(try await api.call(.post, "/identity/v3/OS-EP-FILTER/endpoint_groups", token: admin,
                                                   body: ["endpoint_group": ["name": "bad", "filters": ["color": "red"]]]), 400)
            let patched = try await api.call(.patch, "/identity/v3/OS-EP-FILTER/endpoint_groups/\(id)", token: admin, body: ["endpoint_group": ["name": "eg2"]])
            XCTAssertEqual(patched.json["endpoint_group"]?["name"]?.stringValue, "eg2")
            let deleted = try await api.call(.delete, "/identity/v3/OS-EP-FILTER/endpoint_groups/\(id)", token: admin)
            XCTAssertEqual(deleted.status, 204)
        }
    }
}
