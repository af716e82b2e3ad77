import Foundation
import NimbusCore
import NimbusTestSupport
import XCTest

/// OS-FEDERATION's configuration API: identity providers, protocols, mappings, service
/// providers, stored as Keystone stores them.
final class FederationTests: XCTestCase {
    static let rules: JSON = [["local": [["user": ["name": "{0}"]], ["group": ["id": "g1"]]],
                               "remote": [["type": "REMOTE_USER"], ["type": "orgPersonType", "any_one_of": ["Employee"], "regex": false]]]]

    func testIdentityProviderLifecycleWithItsDomainAndRemoteIDs() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let made = try await api.call(.put, "/identity/v3/OS-FEDERATION/identity_providers/acme", token: admin,
                                          body: ["identity_provider": ["description": "ACME SSO", "remote_ids": ["https://sso.acme.example/idp"]]])
            XCTAssertEqual(made.status, 201, made.text)
            let idp = made.json["identity_provider"]
            XCTAssertEqual(idp?["enabled"], false, "Keystone's default")
            XCTAssertEqual(idp?["remote_ids"], ["https://sso.acme.example/idp"])
            XCTAssertEqual(idp?["authorization_ttl"], .null)
            XCTAssertTrue(idp?["links"]?["protocols"]?.stringValue?.hasSuffix("/OS-FEDERATION/identity_providers/acme/protocols") == true, made.text)
            // A domain is made for the provider's users.
            let domainID = try XCTUnwrap(idp?["domain_id"]?.stringValue)
            let domain = try await api.call(.get, "/identity/v3/domains/\(domainID)", token: admin)
            XCTAssertEqual(domain.json["domain"]?["name"]?.stringValue, domainID, domain.text)

            let again = try await api.call(.put, "/identity/v3/OS-FEDERATION/identity_providers/acme", token: admin, body: ["identity_provider": [:]])
            XCTAssertEqual(again.status, 409, again.text)
            let sameRemote = try await api.call(.put, "/identity/v3/OS-FEDERATION/identity_providers/other", token: admin,
                                                body: ["identity_provider": ["remote_ids": ["https://sso.acme.example/idp"], "domain_id": .string(domainID)]])
            XCTAssertEqual(sameRemote.status, 409, sameRemote.text)
            let noDomain = try await api.call(.put, "/identity/v3/OS-FEDERATION/identity_providers/other", token: admin,
                                              body: ["identity_provider": ["domain_id": "nosuch"]])
            XCTAssertEqual(noDomain.status, 404, noDomain.text)
            let unknown = try await api.call(.put, "/identity/v3/OS-FEDERATION/identity_providers/other", token: admin,
                                             body: ["identity_provider": ["color": "red"]])
            XCTAssertEqual(unknown.status, 400, unknown.text)

            let patched = try await api.call(.patch, "/identity/v3/OS-FEDERATION/identity_providers/acme", token: admin,
                                             body: ["identity_provider": ["enabled": true, "remote_ids": ["https://new.acme.example"], "authorization_ttl": 60]])
            XCTAssertEqual(patched.status, 200, patched.text)
            XCTAssertEqual(patched.json["identity_provider"]?["remote_ids"], ["https://new.acme.example"])
            let domainChange = try await api.call(.patch, "/identity/v3/OS-FEDERATION/identity_providers/acme", token: admin,
                                                  body: ["identity_provider": ["domain_id": .string(domainID)]])
            XCTAssertEqual(domainChange.status, 400, "domain_id is fixed at creation: \(domainChange.text)")
            // The old remote id is free again.
            let reuse = try await api.call(.put, "/identity/v3/OS-FEDERATION/identity_providers/other", token: admin,
                                           body: ["identity_provider": ["remote_ids": ["https://sso.acme.example/idp"], "domain_id": .string(domainID)]])
            XCTAssertEqual(reuse.status, 201, reuse.text)

            let enabled = try await api.call(.get, "/identity/v3/OS-FEDERATION/identity_providers?enabled=true", token: admin)
            XCTAssertEqual(enabled.json["identity_providers"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, ["acme"], enabled.text)
            let all = try await api.call(.get, "/identity/v3/OS-FEDERATION/identity_providers", token: admin)
            XCTAssertEqual(all.json["identity_providers"]?.arrayValue?.compactMap { $0["remote_ids"] },
                           [["https://new.acme.example"], ["https://sso.acme.example/idp"]] as [JSON], "each provider lists its own remote ids: \(all.text)")

            let memberToken = try await api.projectUser(admin: admin, name: "fedmember").token
            let forbidden = try await api.call(.get, "/identity/v3/OS-FEDERATION/identity_providers", token: memberToken)
            XCTAssertEqual(forbidden.status, 403, forbidden.text)

            for id in ["acme", "other"] {
                let gone = try await api.call(.delete, "/identity/v3/OS-FEDERATION/identity_providers/\(id)", token: admin)
                XCTAssertEqual(gone.status, 204, gone.text)
            }
            let missing = try await api.call(.get, "/identity/v3/OS-FEDERATION/identity_providers/acme", token: admin)
            XCTAssertEqual(missing.status, 404, missing.text)
        }
    }

    func testMappingsAndProtocols() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let bad: [JSON] = [["mapping": ["rules": []]], ["mapping": ["rules": [["local": []]]]],
                               ["mapping": ["rules": [["local": [], "remote": [["type": "x", "any_one_of": ["a"], "not_any_of": ["b"]]]]]]],
                               ["mapping": ["rules": [["local": [["colour": "red"]], "remote": [["type": "x"]]]]]],
                               ["mapping": ["rules": [["local": [], "remote": [["type": "x", "regex": true]]]]]], ["mapping": [:]]]
            for body in bad {
                let refused = try await api.call(.put, "/identity/v3/OS-FEDERATION/mappings/m-bad", token: admin, body: body)
                XCTAssertEqual(refused.status, 400, "\(body): \(refused.text)")
            }
            let mapping = try await api.call(.put, "/identity/v3/OS-FEDERATION/mappings/m1", token: admin, body: ["mapping": ["rules": Self.rules]])
            XCTAssertEqual(mapping.status, 201, mapping.text)
            XCTAssertEqual(mapping.json["mapping"]?["schema_version"], "1.0")
            XCTAssertEqual(mapping.json["mapping"]?["rules"], Self.rules)
            _ = try await api.call(.put, "/identity/v3/OS-FEDERATION/identity_providers/idp1", token: admin, body: ["identity_provider": [:]])

            let noMapping = try await api.call(.put, "/identity/v3/OS-FEDERATION/identity_providers/idp1/protocols/saml2", token: admin,
                                               body: ["protocol": ["mapping_id": "nosuch"]])
            XCTAssertEqual(noMapping.status, 404, noMapping.text)
            let noIdP = try await api.call(.put, "/identity/v3/OS-FEDERATION/identity_providers/nosuch/protocols/saml2", token: admin,
                                           body: ["protocol": ["mapping_id": "m1"]])
            XCTAssertEqual(noIdP.status, 404, noIdP.text)
            let proto = try await api.call(.put, "/identity/v3/OS-FEDERATION/identity_providers/idp1/protocols/saml2", token: admin,
                                           body: ["protocol": ["mapping_id": "m1"]])
            XCTAssertEqual(proto.status, 201, proto.text)
            XCTAssertEqual(proto.json["protocol"]?["mapping_id"], "m1")
            let listed = try await api.call(.get, "/identity/v3/OS-FEDERATION/identity_providers/idp1/protocols", token: admin)
            XCTAssertEqual(listed.json["protocols"]?.arrayValue?.first?["idp_id"], "idp1", listed.text)
            XCTAssertEqual(listed.json["protocols"]?.arrayValue?.first?["remote_id_attribute"], .null, listed.text)

            let inUse = try await api.call(.delete, "/identity/v3/OS-FEDERATION/mappings/m1", token: admin)
            XCTAssertEqual(inUse.status, 409, inUse.text)
            _ = try await api.call(.put, "/identity/v3/OS-FEDERATION/mappings/m2", token: admin, body: ["mapping": ["rules": Self.rules]])
            let moved = try await api.call(.patch, "/identity/v3/OS-FEDERATION/identity_providers/idp1/protocols/saml2", token: admin,
                                           body: ["protocol": ["mapping_id": "m2", "remote_id_attribute": "Shib-Identity-Provider"]])
            XCTAssertEqual(moved.status, 200, moved.text)
            XCTAssertEqual(moved.json["protocol"]?["remote_id_attribute"], "Shib-Identity-Provider")
            let unused = try await api.call(.delete, "/identity/v3/OS-FEDERATION/mappings/m1", token: admin)
            XCTAssertEqual(unused.status, 204, unused.text)

            // Deleting the provider takes its protocols along.
            let idpGone = try await api.call(.delete, "/identity/v3/OS-FEDERATION/identity_providers/idp1", token: admin)
            XCTAssertEqual(idpGone.status, 204, idpGone.text)
            _ = try await api.call(.put, "/identity/v3/OS-FEDERATION/identity_providers/idp1", token: admin, body: ["identity_provider": [:]])
            let empty = try await api.call(.get, "/identity/v3/OS-FEDERATION/identity_providers/idp1/protocols", token: admin)
            XCTAssertEqual(empty.json["protocols"], [], empty.text)
        }
    }

    func testServiceProvidersAndFederationProjects() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let missingURL = try await api.call(.put, "/identity/v3/OS-FEDERATION/service_providers/sp1", token: admin,
                                                body: ["service_provider": ["auth_url": "https://sp.example/v3/auth"]])
            XCTAssertEqual(missingURL.status, 400, missingURL.text)
            let notURL = try await api.call(.put, "/identity/v3/OS-FEDERATION/service_providers/sp1", token: admin,
                                            body: ["service_provider": ["auth_url": "nope", "sp_url": "https://sp.example/Shibboleth.sso/SAML2/ECP"]])
            XCTAssertEqual(notURL.status, 400, notURL.text)
            let sp = try await api.call(.put, "/identity/v3/OS-FEDERATION/service_providers/sp1", token: admin,
                                        body: ["service_provider": ["auth_url": "https://sp.example/v3/auth", "sp_url": "https://sp.example/Shibboleth.sso/SAML2/ECP"]])
            XCTAssertEqual(sp.status, 201, sp.text)
            XCTAssertEqual(sp.json["service_provider"]?["enabled"], false)
            XCTAssertEqual(sp.json["service_provider"]?["relay_state_prefix"], "ss:mem:")
            let patched = try await api.call(.patch, "/identity/v3/OS-FEDERATION/service_providers/sp1", token: admin,
                                             body: ["service_provider": ["enabled": true, "description": "partner cloud"]])
            XCTAssertEqual(patched.json["service_provider"]?["description"], "partner cloud", patched.text)
            let listed = try await api.call(.get, "/identity/v3/OS-FEDERATION/service_providers?enabled=false", token: admin)
            XCTAssertEqual(listed.json["service_providers"], [], listed.text)
            let spGone = try await api.call(.delete, "/identity/v3/OS-FEDERATION/service_providers/sp1", token: admin)
            XCTAssertEqual(spGone.status, 204, spGone.text)
            let spAgain = try await api.call(.delete, "/identity/v3/OS-FEDERATION/service_providers/sp1", token: admin)
            XCTAssertEqual(spAgain.status, 404, spAgain.text)

            let projects = try await api.call(.get, "/identity/v3/OS-FEDERATION/projects", token: admin)
            let auth = try await api.call(.get, "/identity/v3/auth/projects", token: admin)
            XCTAssertEqual(projects.status, 200, projects.text)
            XCTAssertEqual(projects.json["projects"], auth.json["projects"])
            let domains = try await api.call(.get, "/identity/v3/OS-FEDERATION/domains", token: admin)
            XCTAssertEqual(domains.status, 200, domains.text)
        }
    }
}
