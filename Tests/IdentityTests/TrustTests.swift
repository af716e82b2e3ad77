import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

/// OS-TRUST trusts and trust-scoped tokens, driven through the real router.
final class TrustTests: XCTestCase {
    struct Parties {
        let admin: String
        let project: String
        let trustor: String
        let trustorToken: String
        let trustee: String
        let reader: String
        let member: String
    }

    /// A trustor holding member and reader on its project, and a trustee with no role there.
    static func parties(_ cloud: TestCloud, _ api: API) async throws -> Parties {
        let admin = try await api.adminToken(cloud)
        let alice = try await api.projectUser(admin: admin, name: "alice")
        let reader = try await api.roleID("reader", token: admin)
        let granted = try await api.call(.put, "/identity/v3/projects/\(alice.project)/users/\(alice.user)/roles/\(reader)", token: admin)
        XCTAssertEqual(granted.status, 204, granted.text)
        let aliceToken = try await api.token(user: "alice", password: "pw-alice", project: "p-alice")
        let bob = try await api.create("users", "user", ["name": "bob", "password": "pw-bob"], token: admin)
        return Parties(admin: admin, project: alice.project, trustor: alice.user, trustorToken: aliceToken, trustee: bob, reader: reader,
                       member: try await api.roleID("member", token: admin))
    }

    static func trustBody(_ p: Parties, impersonation: Bool = false, extra: [String: JSON] = [:]) -> JSON {
        var trust: [String: JSON] = ["trustor_user_id": .string(p.trustor), "trustee_user_id": .string(p.trustee), "project_id": .string(p.project),
                                     "impersonation": .bool(impersonation), "roles": [["name": "reader"]]]
        for (k, v) in extra { trust[k] = v }
        return ["trust": .object(trust)]
    }

    static func createTrust(_ api: API, _ p: Parties, impersonation: Bool = false, extra: [String: JSON] = [:],
                     token: String? = nil, file: StaticString = #filePath, line: UInt = #line) async throws -> String {
        let reply = try await api.call(.post, "/identity/v3/OS-TRUST/trusts", token: token ?? p.trustorToken,
                                       body: trustBody(p, impersonation: impersonation, extra: extra))
        XCTAssertEqual(reply.status, 201, reply.text, file: file, line: line)
        return try XCTUnwrap(reply.json["trust"]?["id"]?.stringValue, reply.text, file: file, line: line)
    }

    static func trustAuth(user: String, password: String, trust: String) -> JSON {
        ["auth": ["identity": ["methods": ["password"], "password": ["user": ["name": .string(user), "domain": ["name": "Default"],
                                                                             "password": .string(password)]]],
                  "scope": ["OS-TRUST:trust": ["id": .string(trust)]]]]
    }

    func testCreateShowListRolesAndDelete() async throws {
        try await onEachEngine { cloud, api in
            let p = try await Self.parties(cloud, api)
            let expires = Timestamps.iso8601(Date().addingTimeInterval(3600))
            let created = try await api.call(.post, "/identity/v3/OS-TRUST/trusts", token: p.trustorToken,
                                             body: Self.trustBody(p, extra: ["expires_at": .string(expires)]))
            XCTAssertEqual(created.status, 201, created.text)
            let trust = created.json["trust"]
            let id = try XCTUnwrap(trust?["id"]?.stringValue)
            XCTAssertEqual(trust?["trustor_user_id"]?.stringValue, p.trustor)
            XCTAssertEqual(trust?["trustee_user_id"]?.stringValue, p.trustee)
            XCTAssertEqual(trust?["project_id"]?.stringValue, p.project)
            XCTAssertEqual(trust?["impersonation"], false)
            XCTAssertEqual(trust?["expires_at"]?.stringValue, String(expires.dropLast()) + ".000000Z")
            XCTAssertEqual(trust?["remaining_uses"], .null)
            XCTAssertEqual(trust?["redelegation_count"], 0)
            XCTAssertEqual(trust?["roles"]?.arrayValue?.map { $0["id"]?.stringValue }, [p.reader])
            XCTAssertTrue(trust?["links"]?["self"]?.stringValue?.hasSuffix("/v3/OS-TRUST/trusts/\(id)") == true)

            // Trustor and trustee read it; a stranger does not.
            let bobToken = try await api.token(user: "bob", password: "pw-bob", project: nil)
            let carol = try await api.projectUser(admin: p.admin, name: "carol")
            let shownByTrustee = try await api.call(.get, "/identity/v3/OS-TRUST/trusts/\(id)", token: bobToken)
            XCTAssertEqual(shownByTrustee.status, 200, shownByTrustee.text)
            XCTAssertEqual(shownByTrustee.json["trust"]?["roles"]?.arrayValue?.first?["name"]?.stringValue, "reader")
            assertKeystoneError(try await api.call(.get, "/identity/v3/OS-TRUST/trusts/\(id)", token: carol.token), 403)

            // Roles: only the delegated one.
            let roles = try await api.call(.get, "/identity/v3/OS-TRUST/trusts/\(id)/roles", token: p.trustorToken)
            XCTAssertEqual(roles.json["roles"]?.arrayValue?.map { $0["id"]?.stringValue }, [p.reader], roles.text)
            let role = try await api.call(.get, "/identity/v3/OS-TRUST/trusts/\(id)/roles/\(p.reader)", token: p.trustorToken)
            XCTAssertEqual(role.json["role"]?["name"]?.stringValue, "reader", role.text)
            let status1 = try await api.call(.head, "/identity/v3/OS-TRUST/trusts/\(id)/roles/\(p.reader)", token: p.trustorToken).status
            XCTAssertEqual(status1, 200)
            assertKeystoneError(try await api.call(.get, "/identity/v3/OS-TRUST/trusts/\(id)/roles/\(p.member)", token: p.trustorToken), 404)
            let status2 = try await api.call(.head, "/identity/v3/OS-TRUST/trusts/\(id)/roles/\(p.member)", token: p.trustorToken).status
            XCTAssertEqual(status2, 404)

            // Lists: by trustor, by trustee, everything for an administrator only.
            let mine = try await api.call(.get, "/identity/v3/OS-TRUST/trusts?trustor_user_id=\(p.trustor)", token: p.trustorToken)
            XCTAssertEqual(mine.json["trusts"]?.arrayValue?.map { $0["id"]?.stringValue }, [id], mine.text)
            XCTAssertNil(mine.json["trusts"]?.arrayValue?.first?["roles"])
            let theirs = try await api.call(.get, "/identity/v3/OS-TRUST/trusts?trustee_user_id=\(p.trustee)", token: bobToken)
            XCTAssertEqual(theirs.json["trusts"]?.arrayValue?.count, 1, theirs.text)
            assertKeystoneError(try await api.call(.get, "/identity/v3/OS-TRUST/trusts?trustor_user_id=\(p.trustor)", token: bobToken), 403)
            assertKeystoneError(try await api.call(.get, "/identity/v3/OS-TRUST/trusts", token: p.trustorToken), 403)
            let all = try await api.call(.get, "/identity/v3/OS-TRUST/trusts", token: p.admin)
            XCTAssertEqual(all.json["trusts"]?.arrayValue?.count, 1, all.text)

            // Only the trustor (or an administrator) deletes.
            assertKeystoneError(try await api.call(.delete, "/identity/v3/OS-TRUST/trusts/\(id)", token: bobToken), 403)
            let status3 = try await api.call(.delete, "/identity/v3/OS-TRUST/trusts/\(id)", token: p.trustorToken).status
            XCTAssertEqual(status3, 204)
            assertKeystoneError(try await api.call(.get, "/identity/v3/OS-TRUST/trusts/\(id)", token: p.trustorToken), 404)
            assertKeystoneError(try await api.call(.delete, "/identity/v3/OS-TRUST/trusts/\(id)", token: p.trustorToken), 404)
        }
    }

    func testBadRequestsAnswerKeystonesErrors() async throws {
        try await onEachEngine { cloud, api in
            let p = try await Self.parties(cloud, api)
            let path = "/identity/v3/OS-TRUST/trusts"
            assertKeystoneError(try await api.call(.post, path, token: p.trustorToken, body: Self.trustBody(p, extra: ["expires_at": "bad.123Z"])), 400)
            assertKeystoneError(try await api.call(.post, path, token: p.trustorToken,
                                                   body: Self.trustBody(p, extra: ["expires_at": "2000-01-01T00:00:00Z"])), 400)
            assertKeystoneError(try await api.call(.post, path, token: p.trustorToken, body: Self.trustBody(p, extra: ["remaining_uses": 0])), 400)
            assertKeystoneError(try await api.call(.post, path, token: p.trustorToken, body: Self.trustBody(p, extra: ["impersonation": nil])), 400)
            assertKeystoneError(try await api.call(.post, path, token: p.trustorToken, body: Self.trustBody(p, extra: ["roles": [["id": 7]]])), 400)
            assertKeystoneError(try await api.call(.post, path, token: p.trustorToken, body: Self.trustBody(p, extra: ["roles": []])), 403)
            // Another user's trust, a role the trustor lacks, an unknown trustee or role name.
            assertKeystoneError(try await api.call(.post, path, token: p.admin, body: Self.trustBody(p)), 403)
            assertKeystoneError(try await api.call(.post, path, token: p.trustorToken, body: Self.trustBody(p, extra: ["roles": [["name": "admin"]]])), 404)
            assertKeystoneError(try await api.call(.post, path, token: p.trustorToken, body: Self.trustBody(p, extra: ["trustee_user_id": "nobody"])), 404)
            assertKeystoneError(try await api.call(.post, path, token: p.trustorToken, body: Self.trustBody(p, extra: ["roles": [["name": "no-such"]]])), 404)
            assertKeystoneError(try await api.call(.post, path, token: p.trustorToken, body: ["trust": "x"]), 400)
            // Scope with two kinds, or a trust that does not exist.
            var auth = Self.trustAuth(user: "bob", password: "pw-bob", trust: "missing")
            assertKeystoneError(try await api.call(.post, "/identity/v3/auth/tokens", body: auth), 401)
            if case .object(var outer) = auth, case .object(var inner)? = outer["auth"], case .object(var scope)? = inner["scope"] {
                scope["project"] = ["id": .string(p.project)]
                inner["scope"] = .object(scope)
                outer["auth"] = .object(inner)
                auth = .object(outer)
            }
            assertKeystoneError(try await api.call(.post, "/identity/v3/auth/tokens", body: auth), 400)
        }
    }

    func testTrustScopedTokenCarriesTheTrustsRolesAndDiesWithIt() async throws {
        try await onEachEngine { cloud, api in
            let p = try await Self.parties(cloud, api)
            let id = try await Self.createTrust(api, p)
            let issued = try await api.call(.post, "/identity/v3/auth/tokens", body: Self.trustAuth(user: "bob", password: "pw-bob", trust: id))
            XCTAssertEqual(issued.status, 201, issued.text)
            let body = issued.json["token"]
            XCTAssertEqual(body?["OS-TRUST:trust"]?["id"]?.stringValue, id)
            XCTAssertEqual(body?["OS-TRUST:trust"]?["impersonation"], false)
            XCTAssertEqual(body?["OS-TRUST:trust"]?["trustor_user"]?["id"]?.stringValue, p.trustor)
            XCTAssertEqual(body?["OS-TRUST:trust"]?["trustee_user"]?["id"]?.stringValue, p.trustee)
            XCTAssertEqual(body?["user"]?["id"]?.stringValue, p.trustee)
            XCTAssertEqual(body?["project"]?["id"]?.stringValue, p.project)
            XCTAssertEqual(body?["roles"]?.arrayValue?.compactMap { $0["name"]?.stringValue }, ["reader"], issued.text)
            let token = try XCTUnwrap(issued.subjectToken)

            // Validated by an administrator, with the same trust section; usable by the trustee.
            let checked = try await api.call(.get, "/identity/v3/auth/tokens", token: p.admin, headers: ["X-Subject-Token": token])
            XCTAssertEqual(checked.json["token"]?["OS-TRUST:trust"]?["id"]?.stringValue, id, checked.text)
            let status4 = try await api.call(.get, "/identity/v3/users/\(p.trustee)", token: token).status
            XCTAssertEqual(status4, 200)

            // A trust-scoped token cannot make another token; the trustor cannot consume the trust.
            assertKeystoneError(try await api.call(.post, "/identity/v3/auth/tokens", body: [
                "auth": ["identity": ["methods": ["token"], "token": ["id": .string(token)]], "scope": ["project": ["id": .string(p.project)]]]]), 403)
            assertKeystoneError(try await api.call(.post, "/identity/v3/auth/tokens", body: Self.trustAuth(user: "alice", password: "pw-alice", trust: id)), 403)

            // The trustor losing the delegated role (held directly and through member) ends the token.
            for role in [p.reader, p.member] {
                let removed = try await api.call(.delete, "/identity/v3/projects/\(p.project)/users/\(p.trustor)/roles/\(role)", token: p.admin).status
                XCTAssertEqual(removed, 204)
            }
            assertKeystoneError(try await api.call(.get, "/identity/v3/users/\(p.trustee)", token: token), 401)
            assertKeystoneError(try await api.call(.post, "/identity/v3/auth/tokens", body: Self.trustAuth(user: "bob", password: "pw-bob", trust: id)), 403)
            for role in [p.reader, p.member] {
                let granted = try await api.call(.put, "/identity/v3/projects/\(p.project)/users/\(p.trustor)/roles/\(role)", token: p.admin).status
                XCTAssertEqual(granted, 204)
            }
            // Removing the assignments revoked the trustor's own token too.
            let trustorToken = try await api.token(user: "alice", password: "pw-alice", project: "p-alice")

            // Deleting the trust revokes its tokens.
            let again = try await api.call(.post, "/identity/v3/auth/tokens", body: Self.trustAuth(user: "bob", password: "pw-bob", trust: id))
            let second = try XCTUnwrap(again.subjectToken, again.text)
            let status7 = try await api.call(.get, "/identity/v3/users/\(p.trustee)", token: second).status
            XCTAssertEqual(status7, 200)
            let status8 = try await api.call(.delete, "/identity/v3/OS-TRUST/trusts/\(id)", token: trustorToken).status
            XCTAssertEqual(status8, 204)
            assertKeystoneError(try await api.call(.get, "/identity/v3/users/\(p.trustee)", token: second), 401)
            assertKeystoneError(try await api.call(.get, "/identity/v3/auth/tokens", token: p.admin, headers: ["X-Subject-Token": second]), 404)
        }
    }

    func testImpersonationRemainingUsesAndExpiry() async throws {
        try await onEachEngine { cloud, api in
            let p = try await Self.parties(cloud, api)
            // Impersonation: the token is the trustor's, and reads what the trustor may.
            let impersonating = try await Self.createTrust(api, p, impersonation: true, extra: ["remaining_uses": 1])
            let issued = try await api.call(.post, "/identity/v3/auth/tokens", body: Self.trustAuth(user: "bob", password: "pw-bob", trust: impersonating))
            XCTAssertEqual(issued.status, 201, issued.text)
            XCTAssertEqual(issued.json["token"]?["user"]?["id"]?.stringValue, p.trustor, issued.text)
            XCTAssertEqual(issued.json["token"]?["OS-TRUST:trust"]?["impersonation"], true)
            let token = try XCTUnwrap(issued.subjectToken)
            let status9 = try await api.call(.get, "/identity/v3/users/\(p.trustor)", token: token).status
            XCTAssertEqual(status9, 200)
            // Its one use is spent: the trust is gone for new tokens and for the API.
            assertKeystoneError(try await api.call(.post, "/identity/v3/auth/tokens",
                                                   body: Self.trustAuth(user: "bob", password: "pw-bob", trust: impersonating)), 401)
            assertKeystoneError(try await api.call(.get, "/identity/v3/OS-TRUST/trusts/\(impersonating)", token: p.trustorToken), 404)

            // Expiry: the token ends with the trust.
            let expires = Timestamps.keystone(Date().addingTimeInterval(2))
            let short = try await Self.createTrust(api, p, extra: ["expires_at": .string(expires)])
            let shortReply = try await api.call(.post, "/identity/v3/auth/tokens", body: Self.trustAuth(user: "bob", password: "pw-bob", trust: short))
            let shortToken = try XCTUnwrap(shortReply.subjectToken, shortReply.text)
            XCTAssertEqual(shortReply.json["token"]?["expires_at"]?.stringValue, expires, "the token does not outlive the trust")
            let status10 = try await api.call(.get, "/identity/v3/users/\(p.trustee)", token: shortToken).status
            XCTAssertEqual(status10, 200)
            try await Task.sleep(nanoseconds: 2_500_000_000)
            assertKeystoneError(try await api.call(.get, "/identity/v3/users/\(p.trustee)", token: shortToken), 401)
            assertKeystoneError(try await api.call(.get, "/identity/v3/OS-TRUST/trusts/\(short)", token: p.trustorToken), 404)
            assertKeystoneError(try await api.call(.post, "/identity/v3/auth/tokens", body: Self.trustAuth(user: "bob", password: "pw-bob", trust: short)), 401)
        }
    }

    func testRedelegationAndCascadingDelete() async throws {
        try await onEachEngine { cloud, api in
            let p = try await Self.parties(cloud, api)
            let dave = try await api.create("users", "user", ["name": "dave", "password": "pw-dave"], token: p.admin)
            let root = try await Self.createTrust(api, p, extra: ["allow_redelegation": true])
            let shown = try await api.call(.get, "/identity/v3/OS-TRUST/trusts/\(root)", token: p.trustorToken)
            XCTAssertEqual(shown.json["trust"]?["redelegation_count"], 3, shown.text)
            let reply13 = try await api.call(.post, "/identity/v3/auth/tokens",
                                                            body: Self.trustAuth(user: "bob", password: "pw-bob", trust: root))
            let bobTrust = try XCTUnwrap(reply13.subjectToken, reply13.text)
            // Bob passes the trust on to dave, with no more than he was given.
            var body: [String: JSON] = ["trustor_user_id": .string(p.trustee), "trustee_user_id": .string(dave), "project_id": .string(p.project),
                                        "impersonation": false, "roles": [["name": "reader"]], "allow_redelegation": true]
            let redelegated = try await api.call(.post, "/identity/v3/OS-TRUST/trusts", token: bobTrust, body: ["trust": .object(body)])
            XCTAssertEqual(redelegated.status, 201, redelegated.text)
            XCTAssertEqual(redelegated.json["trust"]?["redelegated_trust_id"]?.stringValue, root)
            XCTAssertEqual(redelegated.json["trust"]?["redelegation_count"], 2)
            let child = try XCTUnwrap(redelegated.json["trust"]?["id"]?.stringValue)
            body["impersonation"] = true
            assertKeystoneError(try await api.call(.post, "/identity/v3/OS-TRUST/trusts", token: bobTrust, body: ["trust": .object(body)]), 403)
            body["impersonation"] = false
            body["roles"] = [["name": "member"]]
            assertKeystoneError(try await api.call(.post, "/identity/v3/OS-TRUST/trusts", token: bobTrust, body: ["trust": .object(body)]), 403)
            let daveToken = try await api.call(.post, "/identity/v3/auth/tokens", body: Self.trustAuth(user: "dave", password: "pw-dave", trust: child))
            XCTAssertEqual(daveToken.status, 201, daveToken.text)
            XCTAssertEqual(daveToken.json["token"]?["roles"]?.arrayValue?.compactMap { $0["name"]?.stringValue }, ["reader"])

            // A trust that does not allow redelegation cannot be passed on.
            let plain = try await Self.createTrust(api, p)
            let reply14 = try await api.call(.post, "/identity/v3/auth/tokens",
                                                              body: Self.trustAuth(user: "bob", password: "pw-bob", trust: plain))
            let plainToken = try XCTUnwrap(reply14.subjectToken, reply14.text)
            body["roles"] = [["name": "reader"]]
            body["allow_redelegation"] = false
            assertKeystoneError(try await api.call(.post, "/identity/v3/OS-TRUST/trusts", token: plainToken, body: ["trust": .object(body)]), 403)

            // Deleting the root deletes what was redelegated from it, and revokes its tokens.
            let status11 = try await api.call(.delete, "/identity/v3/OS-TRUST/trusts/\(root)", token: p.trustorToken).status
            XCTAssertEqual(status11, 204)
            assertKeystoneError(try await api.call(.get, "/identity/v3/OS-TRUST/trusts/\(child)", token: p.admin), 404)
            assertKeystoneError(try await api.call(.get, "/identity/v3/users/\(dave)", token: try XCTUnwrap(daveToken.subjectToken)), 401)

            // Deleting the trustee deletes the trusts it holds.
            let status12 = try await api.call(.delete, "/identity/v3/users/\(p.trustee)", token: p.admin).status
            XCTAssertEqual(status12, 204)
            assertKeystoneError(try await api.call(.get, "/identity/v3/OS-TRUST/trusts/\(plain)", token: p.admin), 404)
        }
    }

    /// An EC2 credential made with a trust-scoped token carries the trust: its signatures get
    /// trust-scoped tokens, which end with the trust.
    func testEC2CredentialMadeThroughATrust() async throws {
        try await onEachEngine { cloud, api in
            let p = try await Self.parties(cloud, api)
            let id = try await Self.createTrust(api, p)
            let issued = try await api.call(.post, "/identity/v3/auth/tokens", body: Self.trustAuth(user: "bob", password: "pw-bob", trust: id))
            let trustToken = try XCTUnwrap(issued.subjectToken, issued.text)
            let path = "/identity/v3/users/\(p.trustee)/credentials/OS-EC2"
            let created = try await api.call(.post, path, token: trustToken, body: ["tenant_id": .string(p.project)])
            XCTAssertEqual(created.status, 201, created.text)
            XCTAssertEqual(created.json["credential"]?["trust_id"]?.stringValue, id)
            let access = try XCTUnwrap(created.json["credential"]?["access"]?.stringValue)
            let secret = try XCTUnwrap(created.json["credential"]?["secret"]?.stringValue)
            // A delegated token reaches only its own project's EC2 credentials.
            let elsewhere = try await api.create("projects", "project", ["name": "elsewhere"], token: p.admin)
            assertKeystoneError(try await api.call(.post, path, token: trustToken, body: ["tenant_id": .string(elsewhere)]), 403)

            let ec2 = try await api.call(.post, "/identity/v3/ec2tokens", token: p.admin,
                                         body: try EC2CredentialTests.signedV2(access: access, secret: secret, host: "h"))
            XCTAssertEqual(ec2.status, 200, ec2.text)
            XCTAssertEqual(ec2.json["token"]?["OS-TRUST:trust"]?["id"]?.stringValue, id, ec2.text)
            XCTAssertEqual(ec2.json["token"]?["roles"]?.arrayValue?.compactMap { $0["name"]?.stringValue }, ["reader"])
            let ec2Token = try XCTUnwrap(ec2.subjectToken)

            let deleted = try await api.call(.delete, "/identity/v3/OS-TRUST/trusts/\(id)", token: p.trustorToken).status
            XCTAssertEqual(deleted, 204)
            assertKeystoneError(try await api.call(.get, "/identity/v3/users/\(p.trustee)", token: ec2Token), 401)
            assertKeystoneError(try await api.call(.post, "/identity/v3/ec2tokens", token: p.admin,
                                                   body: try EC2CredentialTests.signedV2(access: access, secret: secret, host: "h")), 401)
        }
    }
}
