import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

final class AuthenticationTests: XCTestCase {
    func testVersionDiscoveryNeedsNoToken() async throws {
        try await onEachEngine { _, api in
            let root = try await api.call(.get, "/identity")
            XCTAssertEqual(root.status, 300)
            XCTAssertEqual(root.json["versions"]?["values"]?.arrayValue?.first?["id"]?.stringValue, "v3.14")
            let v3 = try await api.call(.get, "/identity/v3")
            XCTAssertEqual(v3.status, 200)
            XCTAssertEqual(v3.json["version"]?["status"]?.stringValue, "stable")
            XCTAssertNotNil(v3.headers[HTTPField.Name("x-openstack-request-id")!]?.hasPrefix("req-"))
        }
    }

    func testPasswordTokenCarriesImpliedRolesAndCatalog() async throws {
        try await onEachEngine { cloud, api in
            let reply = try await api.call(.post, "/identity/v3/auth/tokens", body: API.passwordAuth(user: "admin", password: cloud.adminPassword, project: "admin"))
            XCTAssertEqual(reply.status, 201, reply.text)
            XCTAssertNotNil(reply.subjectToken)
            let token = try XCTUnwrap(reply.json["token"])
            XCTAssertEqual(token["project"]?["name"]?.stringValue, "admin")
            XCTAssertEqual(token["user"]?["domain"]?["id"]?.stringValue, "default")
            XCTAssertEqual(Set(token["roles"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []), ["admin", "manager", "member", "reader"])
            XCTAssertEqual(token["methods"], ["password"])
            let identity = token["catalog"]?.arrayValue?.first { $0["type"]?.stringValue == "identity" }
            XCTAssertEqual(identity?["endpoints"]?.arrayValue?.count, 3)
            XCTAssertEqual(token["audit_ids"]?.arrayValue?.count, 1)

            let nocatalog = try await api.call(.post, "/identity/v3/auth/tokens?nocatalog", body: API.passwordAuth(user: "admin", password: cloud.adminPassword, project: "admin"))
            XCTAssertNil(nocatalog.json["token"]?["catalog"])
        }
    }

    func testWrongPasswordUnknownUserAndBadScopeAre401() async throws {
        try await onEachEngine { cloud, api in
            assertKeystoneError(try await api.call(.post, "/identity/v3/auth/tokens", body: API.passwordAuth(user: "admin", password: "wrong")), 401)
            assertKeystoneError(try await api.call(.post, "/identity/v3/auth/tokens", body: API.passwordAuth(user: "nobody", password: "x")), 401)
            assertKeystoneError(try await api.call(.post, "/identity/v3/auth/tokens",
                                                   body: API.passwordAuth(user: "admin", password: cloud.adminPassword, project: "no-such-project")), 401)
        }
    }

    func testEveryOtherRouteNeedsAToken() async throws {
        try await onEachEngine { _, api in
            for path in ["/identity/v3/users", "/identity/v3/projects", "/identity/v3/auth/catalog", "/identity/v3/role_assignments"] {
                assertKeystoneError(try await api.call(.get, path), 401)
                assertKeystoneError(try await api.call(.get, path, token: "not-a-token"), 401)
            }
        }
    }

    func testTokenMethodRescopesAndKeepsExpiryAndAuditChain() async throws {
        try await onEachEngine { cloud, api in
            let unscoped = try await api.call(.post, "/identity/v3/auth/tokens",
                                              body: ["auth": ["identity": ["methods": ["password"], "password": ["user": ["id": .string(try await Self.adminID(api, cloud)), "password": .string(cloud.adminPassword)]]], "scope": "unscoped"]])
            XCTAssertEqual(unscoped.status, 201, unscoped.text)
            XCTAssertNil(unscoped.json["token"]?["roles"])
            let first = try XCTUnwrap(unscoped.subjectToken)
            let rescoped = try await api.call(.post, "/identity/v3/auth/tokens", body: [
                "auth": ["identity": ["methods": ["token"], "token": ["id": .string(first)]],
                         "scope": ["project": ["name": "admin", "domain": ["id": "default"]]]]])
            XCTAssertEqual(rescoped.status, 201, rescoped.text)
            XCTAssertEqual(rescoped.json["token"]?["expires_at"], unscoped.json["token"]?["expires_at"])
            XCTAssertEqual(rescoped.json["token"]?["audit_ids"]?.arrayValue?.last, unscoped.json["token"]?["audit_ids"]?.arrayValue?.first)
            XCTAssertEqual(Set(rescoped.json["token"]?["methods"]?.arrayValue?.compactMap(\.stringValue) ?? []), ["password", "token"])

            let system = try await api.call(.post, "/identity/v3/auth/tokens", body: [
                "auth": ["identity": ["methods": ["token"], "token": ["id": .string(first)]], "scope": ["system": ["all": true]]]])
            XCTAssertEqual(system.status, 201, system.text)
            XCTAssertEqual(system.json["token"]?["system"]?["all"], true)
        }
    }

    static func adminID(_ api: API, _ cloud: TestCloud) async throws -> String {
        let token = try await api.adminToken(cloud)
        let reply = try await api.call(.get, "/identity/v3/users?name=admin", token: token)
        return try XCTUnwrap(reply.json["users"]?.arrayValue?.first?["id"]?.stringValue)
    }

    func testValidateAndRevokeToken() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let other = try await api.adminToken(cloud)
            let check = try await api.call(.get, "/identity/v3/auth/tokens", token: admin, headers: ["X-Subject-Token": other])
            XCTAssertEqual(check.status, 200, check.text)
            XCTAssertEqual(check.subjectToken, other)
            let value1 = try await api.call(.head, "/identity/v3/auth/tokens", token: admin, headers: ["X-Subject-Token": other]).status
            XCTAssertEqual(value1, 200)

            let value2 = try await api.call(.delete, "/identity/v3/auth/tokens", token: admin, headers: ["X-Subject-Token": other]).status
            XCTAssertEqual(value2, 204)
            assertKeystoneError(try await api.call(.get, "/identity/v3/users", token: other), 401)
            assertKeystoneError(try await api.call(.get, "/identity/v3/auth/tokens", token: admin, headers: ["X-Subject-Token": other]), 404)
            // The caller's own token is untouched.
            let value3 = try await api.call(.get, "/identity/v3/users", token: admin).status
            XCTAssertEqual(value3, 200)
        }
    }

    func testRestartKeepsDataAndTokens() async throws {
        for engine in TestCloud.engines {
            let cloud = try await TestCloud.make(engine)
            let box = Box()
            try await cloud.run { api in
                box.token = try await api.adminToken(cloud)
                _ = try await api.create("projects", "project", ["name": "survivor"], token: box.token)
            }
            try await cloud.run { api in
                let reply = try await api.call(.get, "/identity/v3/projects?name=survivor", token: box.token)
                XCTAssertEqual(reply.status, 200, reply.text)
                XCTAssertEqual(reply.json["projects"]?.arrayValue?.count, 1)
            }
        }
    }

    final class Box: @unchecked Sendable { var token = "" }

    func testBootstrapWithANewAdminPasswordResetsIt() async throws {
        let cloud = try await TestCloud.make(.sqlite)
        let plane = try await cloud.start()
        try await plane.bootstrap(adminPassword: "rotated-pw")
        await plane.close()
        try await cloud.run { api in
            // `run` bootstraps with the harness password again, which must win once more.
            assertKeystoneError(try await api.call(.post, "/identity/v3/auth/tokens", body: API.passwordAuth(user: "admin", password: "rotated-pw")), 401)
            _ = try await api.adminToken(cloud)
        }
    }

    func testRevokedTokenCannotBeRescoped() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let victim = try await api.adminToken(cloud)
            let revoked = try await api.call(.delete, "/identity/v3/auth/tokens", token: admin, headers: ["X-Subject-Token": victim])
            XCTAssertEqual(revoked.status, 204)
            assertKeystoneError(try await api.call(.post, "/identity/v3/auth/tokens", body: [
                "auth": ["identity": ["methods": ["token"], "token": ["id": .string(victim)]], "scope": ["system": ["all": true]]]]), 401)
        }
    }

    func testMalformedAndOversizedBodies() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            assertKeystoneError(try await api.call(.post, "/identity/v3/users", token: admin, raw: "{\"user\": {"), 400)
            assertKeystoneError(try await api.call(.post, "/identity/v3/users", token: admin, body: ["user": ["name": 5]]), 400)
            assertKeystoneError(try await api.call(.post, "/identity/v3/users", token: admin, body: ["user": ["name": "ok", "enabled": "yes"]]), 400)
            assertKeystoneError(try await api.call(.post, "/identity/v3/users", token: admin, body: ["user": "x"]), 400)
            assertKeystoneError(try await api.call(.post, "/identity/v3/auth/tokens", raw: "[]"), 400)
            assertKeystoneError(try await api.call(.post, "/identity/v3/auth/tokens", body: ["auth": ["identity": ["methods": []]]]), 400)
            let big = String(repeating: "x", count: 200_000)
            assertKeystoneError(try await api.call(.post, "/identity/v3/users", token: admin, body: ["user": ["name": .string(big)]]), 413)
            assertKeystoneError(try await api.call(.post, "/identity/v3/users", token: admin, body: ["user": ["name": .string(String(repeating: "y", count: 300))]]), 400)
        }
    }
}
