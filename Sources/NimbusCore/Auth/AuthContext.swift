import Foundation

/// Who is making a request, as established from a validated token: the credentials that policy
/// rules are evaluated against and that services scope objects by.
public struct AuthContext: Sendable {
    public struct Role: Sendable, Hashable {
        public let id: String
        public let name: String
        public init(id: String, name: String) {
            self.id = id
            self.name = name
        }
    }

    public enum Scope: Sendable, Equatable {
        case unscoped
        case project(id: String, name: String, domainID: String, domainName: String)
        case domain(id: String, name: String)
        case system
    }

    public var token: String
    public var userID: String
    public var userName: String
    public var userDomainID: String
    public var userDomainName: String
    public var scope: Scope
    /// Effective roles on the scope: direct, via groups, and implied.
    public var roles: [Role]
    public var methods: [String]
    public var auditIDs: [String]
    public var issuedAt: Date
    public var expiresAt: Date
    public var applicationCredentialID: String?
    /// The access rules of the application credential the token came from; nil when it has
    /// none, so that the token may make any request its roles allow.
    public var accessRules: [AccessRule]?

    public init(token: String, userID: String, userName: String, userDomainID: String, userDomainName: String,
                scope: Scope, roles: [Role], methods: [String], auditIDs: [String], issuedAt: Date, expiresAt: Date,
                applicationCredentialID: String? = nil, accessRules: [AccessRule]? = nil) {
        self.token = token
        self.userID = userID
        self.userName = userName
        self.userDomainID = userDomainID
        self.userDomainName = userDomainName
        self.scope = scope
        self.roles = roles
        self.methods = methods
        self.auditIDs = auditIDs
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.applicationCredentialID = applicationCredentialID
        self.accessRules = accessRules
    }

    public var projectID: String? {
        if case .project(let id, _, _, _) = scope { return id }
        return nil
    }

    public var domainScopeID: String? {
        if case .domain(let id, _) = scope { return id }
        return nil
    }

    public var isSystemScoped: Bool { scope == .system }

    public func hasRole(_ name: String) -> Bool {
        // Exact match first: Foundation's case-insensitive compare was a visible cost of every
        // request (each asks `isAdmin` several times).
        roles.contains { $0.name == name } || roles.contains { $0.name.caseInsensitiveCompare(name) == .orderedSame }
    }

    public var isAdmin: Bool { hasRole("admin") }

    /// The attributes policy rules may test (`user_id:%(target.user.id)s`, `project_id:…`,
    /// `system_scope:all`, `token.domain.id:…`).
    public var policyCredentials: [String: String] {
        var c: [String: String] = [
            "user_id": userID,
            "user.id": userID,
            "user_domain_id": userDomainID,
            "token.user.domain.id": userDomainID,
        ]
        switch scope {
        case .project(let id, _, let domainID, _):
            c["project_id"] = id
            c["project_domain_id"] = domainID
            c["token.project.id"] = id
            c["token.project.domain.id"] = domainID
        case .domain(let id, _):
            c["domain_id"] = id
            c["token.domain.id"] = id
        case .system:
            c["system_scope"] = "all"
            c["token.system.all"] = "True"
        case .unscoped:
            break
        }
        return c
    }
}

extension AuthContext {
    /// The caller as policy rules see it: role names and the attributes above.
    public var policyInput: PolicyCredentials {
        PolicyCredentials(roles: roles.map(\.name), attributes: policyCredentials)
    }
}

/// Turns a token string into the caller's credentials. Implemented by the identity service
/// in-process, and by an HTTP client against a remote identity service on agents.
public protocol TokenValidating: Sendable {
    /// Returns the credentials, or throws `APIError.unauthorized` for an invalid, expired or
    /// revoked token.
    func validate(token: String) async throws -> AuthContext
}
