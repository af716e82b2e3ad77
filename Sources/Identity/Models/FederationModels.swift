import Foundation
import NimbusCore

/// An OS-FEDERATION identity provider: a source of identities outside Keystone whose users
/// land in `domainID`. Nimbus stores and serves them; it does not yet accept federated
/// logins (SAML2, OpenID Connect), so they are configuration only (docs/architecture.md).
public struct IdentityProvider: Sendable {
    public var id: String
    public var enabled: Bool
    public var description: String?
    public var domainID: String
    /// Entity ids the provider asserts with, each unique across all providers.
    public var remoteIDs: [String]
    /// Minutes a federated user's group memberships, carried over by the mapping, stay valid;
    /// nil: the cloud's default (Keystone's `[federation] default_authorization_ttl`).
    public var authorizationTTL: Int?

    public func json(_ links: Links) -> JSON {
        let base = "\(links.v3)/OS-FEDERATION/identity_providers/\(id)"
        return ["id": .string(id), "enabled": .bool(enabled), "description": .optional(description), "domain_id": .string(domainID),
                "remote_ids": .array(remoteIDs.map { .string($0) }), "authorization_ttl": authorizationTTL.map { .int(Int64($0)) } ?? .null,
                "links": ["self": .string(base), "protocols": .string(base + "/protocols")]]
    }
}

/// How users of one identity provider authenticate (`saml2`, `openid`, `mapped`): which
/// mapping turns their assertion into local users and groups.
public struct FederationProtocol: Sendable {
    public var id: String
    public var idpID: String
    public var mappingID: String
    public var remoteIDAttribute: String?

    /// Keystone's shape: a list shows `idp_id` and always `remote_id_attribute` (null when
    /// unset); a single protocol shows neither `idp_id` nor an unset `remote_id_attribute`.
    public func json(_ links: Links, listed: Bool = false) -> JSON {
        let idp = "\(links.v3)/OS-FEDERATION/identity_providers/\(idpID)"
        var out: [String: JSON] = ["id": .string(id), "mapping_id": .string(mappingID),
                                   "links": ["self": .string("\(idp)/protocols/\(id)"), "identity_provider": .string(idp)]]
        if listed {
            out["idp_id"] = .string(idpID)
            out["remote_id_attribute"] = .optional(remoteIDAttribute)
        } else if let remoteIDAttribute {
            out["remote_id_attribute"] = .string(remoteIDAttribute)
        }
        return .object(out)
    }
}

/// Rules that turn a federated assertion's attributes into a local user, groups and projects.
public struct FederationMapping: Sendable {
    public var id: String
    public var rules: JSON
    public var schemaVersion: String

    public func json(_ links: Links) -> JSON {
        ["id": .string(id), "rules": rules, "schema_version": .string(schemaVersion),
         "links": links.resource("OS-FEDERATION/mappings", id)]
    }
}

/// A Keystone that this cloud can hand its users to (Keystone-to-Keystone federation).
public struct ServiceProvider: Sendable {
    public var id: String
    public var authURL: String
    public var spURL: String
    public var description: String?
    public var enabled: Bool
    public var relayStatePrefix: String

    public func json(_ links: Links) -> JSON {
        ["id": .string(id), "auth_url": .string(authURL), "sp_url": .string(spURL), "description": .optional(description),
         "enabled": .bool(enabled), "relay_state_prefix": .string(relayStatePrefix),
         "links": links.resource("OS-FEDERATION/service_providers", id)]
    }
}
