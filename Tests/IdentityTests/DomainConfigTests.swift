import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

/// Per-domain configuration: Keystone's `identity` and `ldap` options, stored per domain.
final class DomainConfigTests: XCTestCase {
    static let custom: JSON = ["identity": ["driver": "ldap"],
                               "ldap": ["url": "ldap://myldap.com:389/", "user_tree_dn": "ou=Users,dc=example,dc=org"]]

    func testCreateShowUpdateAndDeleteAsKeystoneDoes() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let domain = try await api.create("domains", "domain", ["name": "ldap-users"], token: admin)
            let base = "/identity/v3/domains/\(domain)/config"
            assertKeystoneError(try await api.call(.get, base, token: admin), 404)

            let created = try await api.call(.put, base, token: admin, body: ["config": Self.custom])
            XCTAssertEqual(created.status, 201, created.text)
            XCTAssertEqual(created.json["config"], Self.custom)
            // A second PUT replaces the whole configuration and answers 200.
            let replaced = try await api.call(.put, base, token: admin, body: ["config": ["identity": ["driver": "sql"]]])
            XCTAssertEqual(replaced.status, 200, replaced.text)
            XCTAssertEqual(replaced.json["config"], ["identity": ["driver": "sql"]])
            _ = try await api.call(.put, base, token: admin, body: ["config": Self.custom])

            let group = try await api.call(.get, "\(base)/ldap", token: admin)
            XCTAssertEqual(group.json["config"], ["ldap": Self.custom["ldap"]!])
            let option = try await api.call(.get, "\(base)/ldap/url", token: admin)
            XCTAssertEqual(option.json["config"], ["url": "ldap://myldap.com:389/"])
            assertKeystoneError(try await api.call(.get, "\(base)/ldap/user_filter", token: admin), 404)

            // PATCH of the whole config merges; of a group or option, only an existing one.
            let patched = try await api.call(.patch, base, token: admin, body: ["config": ["ldap": ["url": "ldap://other/"]]])
            XCTAssertEqual(patched.json["config"]?["ldap"]?["url"], "ldap://other/")
            XCTAssertEqual(patched.json["config"]?["ldap"]?["user_tree_dn"], "ou=Users,dc=example,dc=org")
            let grouped = try await api.call(.patch, "\(base)/identity", token: admin,
                                             body: ["config": ["identity": ["driver": "d2", "list_limit": 42]]])
            XCTAssertEqual(grouped.status, 200, grouped.text)
            XCTAssertEqual(grouped.json["config"]?["identity"], ["driver": "d2", "list_limit": 42])
            let one = try await api.call(.patch, "\(base)/identity/driver", token: admin, body: ["config": ["driver": "d3"]])
            XCTAssertEqual(one.json["config"]?["identity"]?["driver"], "d3")
            assertKeystoneError(try await api.call(.patch, "\(base)/identity/driver", token: admin,
                                                   body: ["config": ["list_limit": 1]]), 403)
            assertKeystoneError(try await api.call(.patch, "\(base)/ldap/user_filter", token: admin,
                                                   body: ["config": ["user_filter": "(x)"]]), 404)

            // The LDAP password is stored but never shown.
            let secret = try await api.call(.patch, base, token: admin, body: ["config": ["ldap": ["password": "s3cret"]]])
            XCTAssertNil(secret.json["config"]?["ldap"]?["password"])
            let reply1 = try await api.call(.get, base, token: admin)
            XCTAssertFalse(reply1.text.contains("s3cret"))
            assertKeystoneError(try await api.call(.get, "\(base)/ldap/password", token: admin), 404)

            // Deleting an option, a group, everything.
            let reply2 = try await api.call(.delete, "\(base)/identity/driver", token: admin)
            XCTAssertEqual(reply2.status, 204)
            assertKeystoneError(try await api.call(.get, "\(base)/identity/driver", token: admin), 404)
            assertKeystoneError(try await api.call(.delete, "\(base)/identity/driver", token: admin), 404)
            let reply3 = try await api.call(.delete, "\(base)/identity", token: admin)
            XCTAssertEqual(reply3.status, 204)
            assertKeystoneError(try await api.call(.get, "\(base)/identity", token: admin), 404)
            let reply4 = try await api.call(.delete, base, token: admin)
            XCTAssertEqual(reply4.status, 204)
            assertKeystoneError(try await api.call(.get, base, token: admin), 404)
        }
    }

    func testOnlyIdentityAndLDAPOptionsAreAccepted() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let domain = try await api.create("domains", "domain", ["name": "strict"], token: admin)
            let base = "/identity/v3/domains/\(domain)/config"
            for body: JSON in [["config": ["nova": ["x": 1]]], ["config": ["ldap": ["no_such_option": 1]]], ["config": [:]],
                               ["config": ["ldap": [:]]], ["config": ["ldap": "url"]], ["other": 1]] {
                assertKeystoneError(try await api.call(.put, base, token: admin, body: body), 403)
            }
            assertKeystoneError(try await api.call(.get, "\(base)/nova", token: admin), 403)
            assertKeystoneError(try await api.call(.put, "/identity/v3/domains/nope/config", token: admin, body: ["config": Self.custom]), 404)
            // Members may not read or write configuration.
            let alice = try await api.projectUser(admin: admin, name: "alice")
            assertKeystoneError(try await api.call(.put, base, token: alice.token, body: ["config": Self.custom]), 403)
            assertKeystoneError(try await api.call(.get, "/identity/v3/domains/config/default", token: alice.token), 403)
            // Deleting the domain deletes its configuration.
            _ = try await api.call(.put, base, token: admin, body: ["config": Self.custom])
            _ = try await api.call(.patch, "/identity/v3/domains/\(domain)", token: admin, body: ["domain": ["enabled": false]])
            let reply5 = try await api.call(.delete, "/identity/v3/domains/\(domain)", token: admin)
            XCTAssertEqual(reply5.status, 204)
            let reply6 = try await cloud.rawColumn("SELECT domain_id FROM identity_domain_config")
            XCTAssertEqual(reply6, [])
        }
    }

    func testDefaultsAndSecurityCompliance() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let all = try await api.call(.get, "/identity/v3/domains/config/default", token: admin)
            XCTAssertEqual(all.status, 200, all.text)
            XCTAssertEqual(all.json["config"]?["identity"], ["driver": "sql", "list_limit": nil])
            XCTAssertEqual(all.json["config"]?["ldap"]?["url"], "ldap://localhost")
            XCTAssertNil(all.json["config"]?["ldap"]?["password"])
            let ldap = try await api.call(.get, "/identity/v3/domains/config/ldap/default", token: admin)
            XCTAssertEqual(ldap.json["config"]?["ldap"]?["pool_size"], 10)
            let option = try await api.call(.get, "/identity/v3/domains/config/ldap/user_objectclass/default", token: admin)
            XCTAssertEqual(option.json["config"], ["user_objectclass": "inetOrgPerson"])
            assertKeystoneError(try await api.call(.get, "/identity/v3/domains/config/ldap/password/default", token: admin), 403)
            assertKeystoneError(try await api.call(.get, "/identity/v3/domains/config/nova/default", token: admin), 403)

            // Anyone may read the default domain's password rules; none are set.
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let rules = try await api.call(.get, "/identity/v3/domains/default/config/security_compliance", token: alice.token)
            XCTAssertEqual(rules.status, 200, rules.text)
            XCTAssertEqual(rules.json["config"], ["security_compliance": ["password_regex": nil, "password_regex_description": nil]])
            let regex = try await api.call(.get, "/identity/v3/domains/default/config/security_compliance/password_regex", token: alice.token)
            XCTAssertEqual(regex.json["config"], ["password_regex": nil])
            assertKeystoneError(try await api.call(.get, "/identity/v3/domains/default/config/security_compliance/lockout_duration",
                                                   token: alice.token), 403)
        }
    }
}
