import Foundation
import NimbusCore

// Keystone's resources as stored and as rendered. `json(links:)` gives the exact body shape
// python-openstackclient and openstacksdk parse; `extra` carries attributes Keystone keeps
// verbatim (a user's `email`, a service's `name`), merged into the top level on output.

/// Builds `links.self` for a resource: `<base>/identity/v3/<collection>/<id>`.
public struct Links: Sendable {
    public let v3: String
    public init(identityBase: String) { v3 = identityBase + "/v3" }
    public func resource(_ collection: String, _ id: String) -> JSON { ["self": .string("\(v3)/\(collection)/\(id)")] }
    public func collection(_ path: String, query: String = "") -> JSON {
        ["self": .string("\(v3)/\(path)\(query.isEmpty ? "" : "?" + query)"), "previous": nil, "next": nil]
    }
}

/// A resource rendered in Keystone's shape, with its `links`.
public protocol IdentityResource: Sendable {
    func json(_ links: Links) -> JSON
}

extension Domain: IdentityResource {}
extension Project: IdentityResource {}
extension User: IdentityResource {}
extension Group: IdentityResource {}
extension Role: IdentityResource {}
extension Region: IdentityResource {}
extension CatalogService: IdentityResource {}
extension Endpoint: IdentityResource {}
extension Credential: IdentityResource {}
extension PolicyDocument: IdentityResource {}
extension EndpointGroup: IdentityResource {}

func merged(_ base: [String: JSON], extra: [String: JSON]) -> JSON {
    var out = extra
    for (k, v) in base { out[k] = v }
    return .object(out)
}

public struct Domain: Sendable {
    public var id: String
    public var name: String
    public var description: String
    public var enabled: Bool
    public var tags: [String]
    public var extra: [String: JSON]

    public func json(_ links: Links) -> JSON {
        merged(["id": .string(id), "name": .string(name), "description": .string(description), "enabled": .bool(enabled),
                "tags": .array(tags.map { .string($0) }), "options": [:], "links": links.resource("domains", id)], extra: extra)
    }
}

public struct Project: Sendable {
    public var id: String
    public var name: String
    public var domainID: String
    public var parentID: String?
    public var description: String
    public var enabled: Bool
    public var tags: [String]
    public var extra: [String: JSON]

    /// A domain seen through the projects API (`is_domain: true`), as Keystone shows it.
    public var isDomain = false

    public func json(_ links: Links) -> JSON {
        // A top-level project's parent is its domain, as Keystone reports it.
        merged(["id": .string(id), "name": .string(name), "domain_id": isDomain ? .null : .string(domainID),
                "parent_id": isDomain ? .null : .string(parentID ?? domainID), "description": .string(description),
                "enabled": .bool(enabled), "is_domain": .bool(isDomain), "tags": .array(tags.map { .string($0) }), "options": [:],
                "links": links.resource("projects", id)], extra: extra)
    }
}

extension Domain {
    var asProject: Project {
        Project(id: id, name: name, domainID: "", parentID: nil, description: description, enabled: enabled, tags: tags,
                extra: extra, isDomain: true)
    }
}

public struct User: Sendable {
    public var id: String
    public var name: String
    public var domainID: String
    public var enabled: Bool
    public var passwordHash: String?
    public var defaultProjectID: String?
    public var description: String?
    public var extra: [String: JSON]

    public func json(_ links: Links) -> JSON {
        var base: [String: JSON] = ["id": .string(id), "name": .string(name), "domain_id": .string(domainID),
                                    "enabled": .bool(enabled), "password_expires_at": nil, "options": [:],
                                    "links": links.resource("users", id)]
        if let defaultProjectID { base["default_project_id"] = .string(defaultProjectID) }
        if let description { base["description"] = .string(description) }
        return merged(base, extra: extra)
    }
}

public struct Group: Sendable {
    public var id: String
    public var name: String
    public var domainID: String
    public var description: String
    public var extra: [String: JSON]

    public func json(_ links: Links) -> JSON {
        merged(["id": .string(id), "name": .string(name), "domain_id": .string(domainID), "description": .string(description),
                "links": links.resource("groups", id)], extra: extra)
    }
}

public struct Role: Sendable {
    public var id: String
    public var name: String
    /// nil for a global role.
    public var domainID: String?
    public var description: String?
    public var extra: [String: JSON]

    public func json(_ links: Links) -> JSON {
        merged(["id": .string(id), "name": .string(name), "domain_id": .optional(domainID), "description": .optional(description),
                "options": [:], "links": links.resource("roles", id)], extra: extra)
    }

    /// The short form used inside role inferences and tokens.
    public func reference(_ links: Links) -> JSON {
        ["id": .string(id), "name": .string(name), "links": links.resource("roles", id)]
    }
}

public struct Region: Sendable {
    public var id: String
    public var description: String
    public var parentRegionID: String?
    public var extra: [String: JSON]

    public func json(_ links: Links) -> JSON {
        merged(["id": .string(id), "description": .string(description), "parent_region_id": .optional(parentRegionID),
                "links": links.resource("regions", id)], extra: extra)
    }
}

public struct CatalogService: Sendable {
    public var id: String
    public var type: String
    public var enabled: Bool
    /// Holds `name` and `description`, as Keystone does.
    public var extra: [String: JSON]

    public var name: String { extra["name"]?.stringValue ?? "" }

    public func json(_ links: Links) -> JSON {
        merged(["id": .string(id), "type": .string(type), "enabled": .bool(enabled), "links": links.resource("services", id)], extra: extra)
    }
}

public struct Endpoint: Sendable {
    public var id: String
    public var serviceID: String
    public var interface: String
    public var url: String
    public var regionID: String?
    public var enabled: Bool
    public var extra: [String: JSON]

    public static let interfaces: Set<String> = ["public", "internal", "admin"]

    public func json(_ links: Links) -> JSON {
        merged(["id": .string(id), "service_id": .string(serviceID), "interface": .string(interface), "url": .string(url),
                "region_id": .optional(regionID), "region": .optional(regionID), "enabled": .bool(enabled),
                "links": links.resource("endpoints", id)], extra: extra)
    }
}

public struct ApplicationCredential: Sendable {
    public var id: String
    public var name: String
    public var userID: String
    public var projectID: String
    public var secretHash: String
    public var description: String?
    public var expiresAt: Date?
    public var unrestricted: Bool
    /// The roles the credential may use: a subset of the creator's roles on the project.
    public var roles: [RoleRef]
    public var createdAt: Date
    /// The requests its tokens may make; empty: any its roles allow.
    public var accessRules: [AccessRule] = []

    public func json(_ links: Links, secret: String? = nil) -> JSON {
        var out: [String: JSON] = [
            "id": .string(id), "name": .string(name), "user_id": .string(userID), "project_id": .string(projectID),
            "description": .optional(description), "expires_at": expiresAt.map { .string(Timestamps.naiveMicroseconds($0)) } ?? .null,
            "unrestricted": .bool(unrestricted), "access_rules": .array(accessRules.map(\.json)), "system": nil,
            "roles": .array(roles.map { ["id": .string($0.id), "name": .string($0.name), "domain_id": nil] }),
            "links": ["self": .string("\(links.v3)/users/\(userID)/application_credentials/\(id)")],
        ]
        if let secret { out["secret"] = .string(secret) }
        return .object(out)
    }
}

extension AccessRule {
    /// As an application credential and a token show it.
    public var json: JSON {
        ["id": .string(id), "service": .string(service), "method": .string(method), "path": .string(path)]
    }

    /// As `/v3/users/{id}/access_rules` shows it.
    public func json(_ links: Links, userID: String) -> JSON {
        ["id": .string(id), "service": .string(service), "method": .string(method), "path": .string(path),
         "links": ["self": .string("\(links.v3)/users/\(userID)/access_rules/\(id)")]]
    }
}

/// A role by id and name, as carried in tokens and application credentials.
public struct RoleRef: Sendable, Hashable {
    public var id: String
    public var name: String
    public init(id: String, name: String) {
        self.id = id
        self.name = name
    }
}

/// What a role assignment is made on.
public enum AssignmentTarget: Sendable, Hashable {
    case project(String)
    case domain(String)
    case system

    var id: String {
        switch self {
        case .project(let id), .domain(let id): return id
        case .system: return "all"
        }
    }
}

/// Who a role assignment is given to.
public enum AssignmentActor: Sendable, Hashable {
    case user(String)
    case group(String)

    var id: String {
        switch self {
        case .user(let id), .group(let id): return id
        }
    }
}

public struct Assignment: Sendable, Hashable {
    public var actor: AssignmentActor
    public var target: AssignmentTarget
    public var roleID: String
    public var inherited: Bool

    var kind: String { Assignment.kind(actor, target) }

    static func kind(_ actor: AssignmentActor, _ target: AssignmentTarget) -> String {
        let who: String
        switch actor {
        case .user: who = "user"
        case .group: who = "group"
        }
        switch target {
        case .project: return who + "_project"
        case .domain: return who + "_domain"
        case .system: return who + "_system"
        }
    }
}
