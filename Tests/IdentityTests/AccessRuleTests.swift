import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

/// Application credentials' access rules: stored, shared between a user's credentials, shown
/// on credentials and tokens, and enforced by every service's token middleware.
final class AccessRuleTests: XCTestCase {
    func testPathPatternsMatchAsKeystonemiddlewareDoes() {
        let cases: [(String, String, Bool)] = [
            ("/v2.1/servers", "/v2.1/servers", true),
            ("/v2.1/servers/", "/v2.1/servers", false),
            ("/v2.1/servers/abc", "/v2.1/servers/*", true),
            ("/v2.1/servers/", "/v2.1/servers/*", false),
            ("/v2.1/servers/abc/action", "/v2.1/servers/*", false),
            ("/v2.1/servers/abc/action", "/v2.1/servers/**", true),
            ("/v2.1/servers/", "/v2.1/servers/**", true),
            ("/v2.1/servers/abc/ips/net", "/v2.1/servers/{server_id}/ips/*", true),
            ("/v2.1/servers/abc/ips", "/v2.1/servers/{server_id}/ips/*", false),
            ("/v2/images/x/file", "/v2/images/*/file", true),
            ("/v2/images/x/y/file", "/v2/images/*/file", false),
            ("/v2/images/x/y/file", "/v2/images/**/file", true),
            ("/v3/users/a", "/v3/**", true),
            ("/v3", "/v3/**", false),
            ("/v2.0/networks", "/v2.0/network?", false),
        ]
        for (path, pattern, expected) in cases {
            XCTAssertEqual(AccessRule.pathMatches(path, pattern: pattern), expected, "\(path) against \(pattern)")
        }
    }

    /// The admin's user id and a credential of the admin's with `rules`; returns its id and a
    /// token it issued.
    private static func credential(_ api: API, admin: String, name: String, rules: JSON) async throws -> (user: String, id: String, token: String, body: JSON) {
        let check = try await api.call(.get, "/identity/v3/auth/tokens", token: admin, headers: ["X-Subject-Token": admin])
        let user = try XCTUnwrap(check.json["token"]?["user"]?["id"]?.stringValue)
        let created = try await api.call(.post, "/identity/v3/users/\(user)/application_credentials", token: admin,
                                         body: ["application_credential": ["name": .string(name), "access_rules": rules]])
        XCTAssertEqual(created.status, 201, created.text)
        let id = try XCTUnwrap(created.json["application_credential"]?["id"]?.stringValue)
        let secret = try XCTUnwrap(created.json["application_credential"]?["secret"]?.stringValue)
        let auth = try await api.call(.post, "/identity/v3/auth/tokens", body: [
            "auth": ["identity": ["methods": ["application_credential"], "application_credential": ["id": .string(id), "secret": .string(secret)]]]])
        XCTAssertEqual(auth.status, 201, auth.text)
        return (user, id, try XCTUnwrap(auth.subjectToken), auth.json)
    }

    func testEveryServiceAllowsOnlyWhatARuleMatches() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let made = try await Self.credential(api, admin: admin, name: "servers-only", rules: [
                ["service": "compute", "method": "GET", "path": "/v2.1/servers"],
                ["service": "image", "method": "GET", "path": "/v2/images/*"],
            ])
            let section = made.body["token"]?["application_credential"]
            XCTAssertEqual(section?["access_rules"]?.arrayValue?.count, 2)
            XCTAssertEqual(section?["access_rules"]?.arrayValue?.first?["path"]?.stringValue, "/v2.1/servers")
            let token = made.token

            let allowed = try await api.call(.get, "/compute/v2.1/servers", token: token)
            XCTAssertEqual(allowed.status, 200, allowed.text)
            // The same token on other paths, methods and services.
            for (method, path) in [(HTTPRequest.Method.get, "/compute/v2.1/servers/detail"), (.post, "/compute/v2.1/servers"),
                                   (.get, "/compute/v2.1/flavors"), (.get, "/image/v2/images"), (.get, "/networking/v2.0/networks"),
                                   (.get, "/identity/v3/users/\(made.user)"), (.get, "/placement/resource_providers")] {
                let refused = try await api.call(method, path, token: token, body: method == .post ? ["server": [:]] : nil)
                XCTAssertEqual(refused.status, 401, "\(method) \(path): \(refused.text)")
            }
            // `*` is one segment: an image id passes the middleware (and is then not found).
            let image = try await api.call(.get, "/image/v2/images/\(Identifiers.uuid())", token: token)
            XCTAssertEqual(image.status, 404, image.text)
            // Validating a token is always allowed on identity.
            let validated = try await api.call(.get, "/identity/v3/auth/tokens", token: token, headers: ["X-Subject-Token": token])
            XCTAssertEqual(validated.status, 200, validated.text)
            XCTAssertEqual(validated.json["token"]?["application_credential"]?["access_rules"]?.arrayValue?.count, 2)
            // The agents' APIs name no service type, so a rule-bound token never passes there.
            let agent = try await api.call(.get, "/compute-agent/v1/hosts/h1/messages", token: token)
            XCTAssertEqual(agent.status, 401, agent.text)
        }
    }

    func testRulesAreSharedListedAndProtectedWhileInUse() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let first = try await Self.credential(api, admin: admin, name: "one", rules: [
                ["service": "identity", "method": "GET", "path": "/v3/users/**"],
            ])
            let base = "/identity/v3/users/\(first.user)"
            let listed = try await api.call(.get, "\(base)/access_rules", token: admin)
            XCTAssertEqual(listed.status, 200, listed.text)
            let rules = try XCTUnwrap(listed.json["access_rules"]?.arrayValue)
            XCTAssertEqual(rules.count, 1)
            let ruleID = try XCTUnwrap(rules.first?["id"]?.stringValue)
            XCTAssertEqual(rules.first?["links"]?["self"]?.stringValue?.hasSuffix("/v3/users/\(first.user)/access_rules/\(ruleID)"), true)

            // The first credential's token may read users but not list projects.
            let user = try await api.call(.get, base, token: first.token)
            XCTAssertEqual(user.status, 200, user.text)
            assertKeystoneError(try await api.call(.get, "/identity/v3/projects", token: first.token), 401)

            // An identical rule, and a rule by id, reuse the stored one.
            let second = try await api.call(.post, "\(base)/application_credentials", token: admin, body: ["application_credential": [
                "name": "two", "access_rules": [["service": "identity", "method": "GET", "path": "/v3/users/**"]]]])
            XCTAssertEqual(second.json["application_credential"]?["access_rules"]?.arrayValue?.first?["id"]?.stringValue, ruleID)
            let third = try await api.call(.post, "\(base)/application_credentials", token: admin, body: ["application_credential": [
                "name": "three", "access_rules": [["id": .string(ruleID)]]]])
            XCTAssertEqual(third.status, 201, third.text)
            XCTAssertEqual(third.json["application_credential"]?["access_rules"]?.arrayValue?.first?["path"]?.stringValue, "/v3/users/**")
            let count = try await api.call(.get, "\(base)/access_rules", token: admin).json["access_rules"]?.arrayValue?.count
            XCTAssertEqual(count, 1)
            let shown = try await api.call(.get, "\(base)/application_credentials/\(first.id)", token: admin)
            XCTAssertEqual(shown.json["application_credential"]?["access_rules"]?.arrayValue?.first?["id"]?.stringValue, ruleID)

            // Filters, show, and a rule that does not exist.
            let filtered = try await api.call(.get, "\(base)/access_rules?service=compute", token: admin)
            XCTAssertEqual(filtered.json["access_rules"]?.arrayValue?.count, 0)
            let one = try await api.call(.get, "\(base)/access_rules/\(ruleID)", token: admin)
            XCTAssertEqual(one.json["access_rule"]?["method"]?.stringValue, "GET")
            assertKeystoneError(try await api.call(.get, "\(base)/access_rules/nope", token: admin), 404)

            // In use: 403 until every credential holding it is gone.
            assertKeystoneError(try await api.call(.delete, "\(base)/access_rules/\(ruleID)", token: admin), 403)
            for id in [first.id, try XCTUnwrap(second.json["application_credential"]?["id"]?.stringValue),
                       try XCTUnwrap(third.json["application_credential"]?["id"]?.stringValue)] {
                let deleted = try await api.call(.delete, "\(base)/application_credentials/\(id)", token: admin)
                XCTAssertEqual(deleted.status, 204, deleted.text)
            }
            let deleted = try await api.call(.delete, "\(base)/access_rules/\(ruleID)", token: admin)
            XCTAssertEqual(deleted.status, 204, deleted.text)
            assertKeystoneError(try await api.call(.get, "\(base)/access_rules/\(ruleID)", token: admin), 404)
        }
    }

    func testBadRulesAreRefused() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let check = try await api.call(.get, "/identity/v3/auth/tokens", token: admin, headers: ["X-Subject-Token": admin])
            let user = try XCTUnwrap(check.json["token"]?["user"]?["id"]?.stringValue)
            let bad: [JSON] = [
                ["service": "compute", "method": "FETCH", "path": "/v2.1/servers"],
                ["service": "compute", "method": "GET", "path": "v2.1/servers"],
                ["service": "com pute", "method": "GET", "path": "/v2.1/servers"],
                ["service": "compute", "method": "GET"],
                "GET /servers",
            ]
            for (n, rule) in bad.enumerated() {
                assertKeystoneError(try await api.call(.post, "/identity/v3/users/\(user)/application_credentials", token: admin, body: [
                    "application_credential": ["name": .string("bad-\(n)"), "access_rules": [rule]]]), 400)
            }
            // An id that is not one of the user's rules, with nothing to create it from.
            assertKeystoneError(try await api.call(.post, "/identity/v3/users/\(user)/application_credentials", token: admin, body: [
                "application_credential": ["name": "ghost", "access_rules": [["id": "0123abcd"]]]]), 404)
            // Nothing was stored by the refused requests.
            let listed = try await api.call(.get, "/identity/v3/users/\(user)/access_rules", token: admin)
            XCTAssertEqual(listed.json["access_rules"]?.arrayValue?.count, 0, listed.text)
            let creds = try await api.call(.get, "/identity/v3/users/\(user)/application_credentials", token: admin)
            XCTAssertEqual(creds.json["application_credentials"]?.arrayValue?.count, 0, creds.text)
        }
    }
    func testDeletingAUserDeletesTheirRulesAndCredentials() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let created = try await api.call(.post, "/identity/v3/users/\(alice.user)/application_credentials", token: alice.token, body: [
                "application_credential": ["name": "mine", "access_rules": [["service": "image", "method": "GET", "path": "/v2/images"]]]])
            XCTAssertEqual(created.status, 201, created.text)
            let deleted = try await api.call(.delete, "/identity/v3/users/\(alice.user)", token: admin)
            XCTAssertEqual(deleted.status, 204, deleted.text)
            let left = try await cloud.rawColumn("SELECT id FROM identity_access_rule")
            XCTAssertEqual(left, [])
        }
    }
}
