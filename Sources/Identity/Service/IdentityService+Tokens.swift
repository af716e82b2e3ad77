import Foundation
import NimbusCore
import NimbusStore

/// Authentication (`POST /v3/auth/tokens`) and token validation.
extension IdentityService {
    static let authFailed = "The request you have made requires authentication."

    /// Authenticates the `auth` body and returns a new token with its meaning.
    public func issueToken(_ body: JSON) async throws -> AuthContext {
        let auth = try JSONInput(body: body, key: "auth")
        let identity = try auth.requiredObject("identity")
        guard let methods = try identity.stringArray("methods"), !methods.isEmpty else {
            throw APIError.badRequest("Invalid input for field 'identity.methods': at least one authentication method is required.")
        }
        let requestedScope = try await parseScope(auth)
        var userID: String?
        var methodsUsed: [String] = []
        var inherited: TokenPayload?
        var appCred: ApplicationCredential?

        func setUser(_ id: String) throws {
            if let userID, userID != id { throw APIError.unauthorized("Authentication methods identify different users.") }
            userID = id
        }

        for method in methods {
            switch method {
            case "password":
                let user = try await authenticatePassword(try identity.requiredObject("password"))
                try setUser(user.id)
            case "token":
                let tokenID = try identity.requiredObject("token").requiredString("id", maxLength: 1024)
                // Full validation first: a revoked token must not mint new ones.
                _ = try await validate(token: tokenID)
                let original = try await validPayload(tokenID)
                if original.applicationCredentialID != nil {
                    throw APIError.forbidden("Cannot re-scope a token created with an application credential.")
                }
                if original.trustID != nil {
                    throw Self.forbiddenAction("Using trust-scoped token to create another token. Create a new trust-scoped token instead")
                }
                try setUser(original.userID)
                inherited = original
                methodsUsed.append(contentsOf: original.methods)
            case "application_credential":
                let credential = try await authenticateAppCredential(try identity.requiredObject("application_credential"))
                try setUser(credential.userID)
                appCred = credential
            default:
                throw APIError.unauthorized("Attempted to authenticate with an unsupported method.")
            }
            methodsUsed.append(method)
        }
        guard let userID else { throw APIError.unauthorized(Self.authFailed) }
        let user = try await store.user(id: userID, db)
        guard let user, user.enabled, try await store.domain(id: user.domainID, db)?.enabled == true else {
            throw APIError.unauthorized(Self.authFailed)
        }

        var scope: TokenPayload.Scope
        switch requestedScope {
        case .some(let s): scope = s
        case .none:
            // Keystone scopes to the default project when the request names no scope and the
            // user has a role there; otherwise the token is unscoped.
            scope = .unscoped
            if let defaultProject = user.defaultProjectID,
               !(try await effectiveRoles(userID: user.id, target: .project(defaultProject), db)).isEmpty {
                scope = .project(defaultProject)
            }
            if let inherited { scope = inherited.scope }
        }
        if let appCred {
            if let requested = requestedScope, requested != .project(appCred.projectID) {
                throw APIError.unauthorized("An application credential is bound to its project and cannot be scoped elsewhere.")
            }
            scope = .project(appCred.projectID)
        }
        return try await mintToken(user: user, methods: methodsUsed, scope: scope, inherited: inherited, appCred: appCred)
    }

    /// Seals a token for an authenticated user on `scope` and returns its meaning. The token
    /// ends with what it was derived from (the re-scoped token, the application credential,
    /// the trust); a trust scope spends one of the trust's uses.
    func mintToken(user: User, methods: [String], scope: TokenPayload.Scope, inherited: TokenPayload? = nil,
                   appCred: ApplicationCredential? = nil) async throws -> AuthContext {
        var trust: Trust?
        if case .trust(let id, _) = scope { trust = try await trustForToken(id, userID: user.id) }
        let now = Self.now()
        var expires = inherited?.expiresAt ?? now + tokenLifetime
        if let appExpiry = appCred?.expiresAt?.timeIntervalSince1970 { expires = min(expires, appExpiry) }
        if let trustExpiry = trust?.expiresAt?.timeIntervalSince1970 { expires = min(expires, trustExpiry) }
        var audits = [TokenPayload.newAuditID()]
        if let chain = inherited?.auditIDs.last { audits.append(chain) }
        var unique: [String] = []
        for m in methods where !unique.contains(m) { unique.append(m) }
        let payload = TokenPayload(userID: user.id, methods: unique, scope: scope, issuedAt: now, expiresAt: expires,
                                   auditIDs: audits, applicationCredentialID: appCred?.id)
        guard let primary = keyCache.current.first else { throw TokenError.keyRepository("no token keys loaded") }
        let token = try payload.seal(with: primary)
        let issued: AuthContext
        do {
            issued = try await context(for: payload, token: token)
        } catch let error as APIError where error.status == .unauthorized {
            throw APIError.unauthorized(noAccessMessage(user: user, scope: scope))
        }
        // A use is spent only on a token actually issued, as in Keystone.
        if let trust, !(try await store.consumeTrustUse(trust.id, db)) {
            throw APIError.unauthorized("Could not find trust: \(trust.id).")
        }
        return issued
    }

    func noAccessMessage(user: User, scope: TokenPayload.Scope) -> String {
        switch scope {
        case .project(let id): return "User \(user.id) has no access to project \(id)."
        case .domain(let id): return "User \(user.id) has no access to domain \(id)."
        case .system: return "User \(user.id) has no access to the system."
        case .trust(let id, _): return "User \(user.id) has no access to trust \(id)."
        case .unscoped: return Self.authFailed
        }
    }

    /// Validates `token` for the token middleware and `GET /v3/auth/tokens`.
    public func validate(token: String) async throws -> AuthContext {
        let now = Self.now()
        // Before the cache: another controller's revocation must reach cached tokens too.
        try await refreshRevocations()
        if let cached = tokenCache.get(token, now: now) { return cached }
        let generation = tokenCache.generation
        let payload = try await validPayload(token)
        let auth = try await context(for: payload, token: token)
        tokenCache.put(token, auth, generation: generation, now: now)
        return auth
    }

    /// Decrypts and checks expiry; revocation is checked in `context(for:)` where the scope's
    /// domain is known.
    func validPayload(_ token: String) async throws -> TokenPayload {
        guard let payload = TokenPayload.open(token, keys: keyCache.current) else {
            throw APIError.unauthorized(Self.authFailed)
        }
        guard payload.expiresAt > Self.now() else { throw APIError.unauthorized("The token has expired.") }
        return payload
    }

    /// Picks up revocation events written by other controllers sharing the database.
    func refreshRevocations() async throws {
        let now = Self.now()
        guard revocations.claimRefresh(now: now) else { return }
        let events = try await store.revocations(since: now - tokenLifetime - 60, db)
        if revocations.merge(events) { tokenCache.invalidateAll() }
        revocations.prune(olderThan: now - tokenLifetime - 60)
    }

    /// Everything a token means right now: the user, scope names, effective roles. Throws 401
    /// when any part no longer holds (user or project disabled or gone, no roles left, revoked).
    func context(for payload: TokenPayload, token: String) async throws -> AuthContext {
        guard let user = try await store.user(id: payload.userID, db), user.enabled,
              let userDomain = try await store.domain(id: user.domainID, db), userDomain.enabled
        else { throw APIError.unauthorized(Self.authFailed) }
        var scope: AuthContext.Scope = .unscoped
        var target: AssignmentTarget?
        var domainIDs: Set<String> = [user.domainID]
        var projectID: String?
        var trust: Trust?
        var trustorUser: (User, Domain)?
        switch payload.scope {
        case .unscoped: break
        case .project(let id):
            guard let project = try await store.project(id: id, db), project.enabled,
                  let domain = try await store.domain(id: project.domainID, db), domain.enabled
            else { throw APIError.unauthorized(Self.authFailed) }
            scope = .project(id: id, name: project.name, domainID: domain.id, domainName: domain.name)
            target = .project(id)
            domainIDs.insert(domain.id)
            projectID = id
        case .domain(let id):
            guard let domain = try await store.domain(id: id, db), domain.enabled else { throw APIError.unauthorized(Self.authFailed) }
            scope = .domain(id: id, name: domain.name)
            target = .domain(id)
            domainIDs.insert(id)
        case .system:
            scope = .system
            target = .system
        case .trust(let trustID, let trustProject):
            guard let found = try await store.trust(id: trustID, db), !found.isExpired(now: Self.now()),
                  found.trusteeUserID == user.id, found.projectID == trustProject,
                  let trustor = try await store.user(id: found.trustorUserID, db), trustor.enabled,
                  let trustorDomain = try await store.domain(id: trustor.domainID, db), trustorDomain.enabled
            else { throw APIError.unauthorized(Self.authFailed) }
            if let trustProject {
                guard let project = try await store.project(id: trustProject, db), project.enabled,
                      let domain = try await store.domain(id: project.domainID, db), domain.enabled
                else { throw APIError.unauthorized(Self.authFailed) }
                scope = .project(id: trustProject, name: project.name, domainID: domain.id, domainName: domain.name)
                domainIDs.insert(domain.id)
                projectID = trustProject
            }
            domainIDs.insert(trustor.domainID)
            trust = found
            trustorUser = (trustor, trustorDomain)
        }
        if revocations.isRevoked(payload, projectID: projectID, domainIDs: domainIDs) {
            throw APIError.unauthorized(Self.authFailed)
        }
        var roles: [RoleRef] = []
        var accessRules: [AccessRule]?
        if let trust, let trustor = trustorUser?.0 {
            // Revoking the trustor (password change, disabling) ends the tokens acting for it.
            var asTrustor = payload
            asTrustor.userID = trustor.id
            if revocations.isRevoked(asTrustor, projectID: projectID, domainIDs: domainIDs) { throw APIError.unauthorized(Self.authFailed) }
            guard let delegated = try await delegatedRoles(trust, db) else { throw APIError.unauthorized(Self.authFailed) }
            roles = delegated
        }
        if let target {
            roles = try await effectiveRoles(userID: user.id, target: target, db)
            if let credentialID = payload.applicationCredentialID {
                guard let credential = try await store.appCredential(id: credentialID, db),
                      credential.expiresAt.map({ $0.timeIntervalSince1970 > Self.now() }) ?? true
                else { throw APIError.unauthorized(Self.authFailed) }
                // The credential's roles, each still held, plus what they imply.
                let held = Set(roles.map(\.id))
                let allowed = credential.roles.filter { held.contains($0.id) }
                roles = try await expandImplied(allowed.map(\.id), db)
                if !credential.accessRules.isEmpty { accessRules = credential.accessRules }
            }
            if roles.isEmpty { throw APIError.unauthorized(Self.authFailed) }
        }
        // An impersonating trust's tokens act as the trustor everywhere.
        let (actor, actorDomain) = trust?.impersonation == true ? trustorUser ?? (user, userDomain) : (user, userDomain)
        return AuthContext(
            token: token, userID: actor.id, userName: actor.name, userDomainID: actorDomain.id, userDomainName: actorDomain.name,
            scope: scope, roles: roles.map { AuthContext.Role(id: $0.id, name: $0.name) }, methods: payload.methods,
            auditIDs: payload.auditIDs, issuedAt: Date(timeIntervalSince1970: payload.issuedAt),
            expiresAt: Date(timeIntervalSince1970: payload.expiresAt), applicationCredentialID: payload.applicationCredentialID,
            accessRules: accessRules)
    }

    /// What a rendered validation body of `auth` depends on besides the token, read before
    /// rendering; nil when the catalog is not loaded, so that a body rendered while it loads is
    /// not kept.
    func renderStamp(catalog: Bool) -> RenderedTokenCache.Stamp? {
        let generation = tokenCache.generation
        guard catalog else { return RenderedTokenCache.Stamp(generation: generation, catalogLoadedAt: 0) }
        guard let entry = catalogCache.get(now: Self.now()) else { return nil }
        return RenderedTokenCache.Stamp(generation: generation, catalogLoadedAt: entry.loadedAt)
    }

    /// The serialised validation body of `auth` (a token `validate` just accepted), rendered by
    /// `render` unless a current one is cached.
    public func renderedValidation(_ auth: AuthContext, catalog: Bool, render: () async throws -> JSON) async throws -> [UInt8] {
        let stamp = renderStamp(catalog: catalog)
        if let stamp, let body = renderedTokens.get(auth.token, catalog: catalog, stamp: stamp, now: Self.now()) { return body }
        let body = try await render().serializedBytes()
        if let stamp {
            renderedTokens.put(auth.token, catalog: catalog, body: body, stamp: stamp, expiresAt: auth.expiresAt.timeIntervalSince1970)
        }
        return body
    }

    /// `DELETE /v3/auth/tokens`: revokes the token and every token re-scoped from it.
    public func revokeToken(_ subject: String, caller: AuthContext) async throws {
        let payload = try await validPayload(subject)
        try authorize("identity:revoke_token", caller, target: ["target.token.user_id": payload.userID])
        let event = RevocationEvent(auditID: payload.auditIDs.first ?? "", issuedBefore: Self.now(), revokedAt: Self.now())
        try await store.insert(event, db)
        didChange(revoked: [event])
    }

    /// `GET`/`HEAD /v3/auth/tokens`: the subject token's meaning, for the caller allowed to see it.
    public func checkToken(_ subject: String, caller: AuthContext) async throws -> AuthContext {
        let validated: AuthContext
        do {
            validated = try await validate(token: subject)
        } catch let error as APIError where error.status == .unauthorized {
            throw APIError.notFound("Could not find token: \(subject.prefix(16))….")
        }
        try authorize("identity:validate_token", caller, target: ["target.token.user_id": validated.userID])
        return validated
    }

    // MARK: Methods

    func authenticatePassword(_ password: JSONInput) async throws -> User {
        let userRef = try password.requiredObject("user")
        let secret = try userRef.requiredString("password", maxLength: 4096, allowEmpty: true)
        let user = try await resolveUser(userRef)
        guard let user, user.enabled, let hash = user.passwordHash, hasher.verify(secret, hash: hash) else {
            throw APIError.unauthorized(Self.authFailed)
        }
        return user
    }

    /// A user named by `id`, or by `name` and `domain` (`id` or `name`).
    func resolveUser(_ ref: JSONInput) async throws -> User? {
        if let id = try ref.optionalString("id", maxLength: 64) { return try await store.user(id: id, db) }
        guard let name = try ref.optionalString("name", maxLength: 255) else {
            throw APIError.badRequest("Invalid input for field 'user': either 'id' or 'name' with 'domain' is required.")
        }
        guard let domain = try await resolveDomain(try ref.requiredObject("domain")) else { return nil }
        return try await store.user(name: name, domainID: domain.id, db)
    }

    func resolveDomain(_ ref: JSONInput) async throws -> Domain? {
        if let id = try ref.optionalString("id", maxLength: 64) { return try await store.domain(id: id, db) }
        guard let name = try ref.optionalString("name", maxLength: 255) else {
            throw APIError.badRequest("Invalid input for field 'domain': either 'id' or 'name' is required.")
        }
        return try await store.domain(name: name, db)
    }

    func authenticateAppCredential(_ ref: JSONInput) async throws -> ApplicationCredential {
        let secret = try ref.requiredString("secret", maxLength: 4096)
        var credential: ApplicationCredential?
        if let id = try ref.optionalString("id", maxLength: 64) {
            credential = try await store.appCredential(id: id, db)
        } else {
            let name = try ref.requiredString("name")
            if let user = try await resolveUser(try ref.requiredObject("user")) {
                credential = try await store.appCredentials(userID: user.id, db).first { $0.name == name }
            }
        }
        guard let credential, hasher.verify(secret, hash: credential.secretHash) else {
            throw APIError.unauthorized(Self.authFailed)
        }
        if let expiry = credential.expiresAt, expiry.timeIntervalSince1970 <= Self.now() {
            throw APIError.unauthorized("The application credential has expired.")
        }
        return credential
    }

    /// nil when the body names no scope.
    func parseScope(_ auth: JSONInput) async throws -> TokenPayload.Scope? {
        guard let value = auth.fields["scope"], !value.isNull else { return nil }
        if value.stringValue == "unscoped" { return .unscoped }
        let scope = try auth.requiredObject("scope")
        let kinds = ["project", "domain", "system", "OS-TRUST:trust", "unscoped"].filter { scope.has($0) }
        if kinds.count > 1 {
            throw APIError.badRequest("Invalid input for field 'scope': exactly one of system, project, domain, OS-TRUST:trust or unscoped is expected.")
        }
        if let project = try scope.object("project") {
            if let id = try project.optionalString("id", maxLength: 64) {
                guard try await store.project(id: id, db) != nil else { throw APIError.unauthorized("Could not find project: \(id).") }
                return .project(id)
            }
            let name = try project.requiredString("name")
            guard let domain = try await resolveDomain(try project.requiredObject("domain")),
                  let found = try await store.project(name: name, domainID: domain.id, db)
            else { throw APIError.unauthorized("Could not find project: \(name).") }
            return .project(found.id)
        }
        if let domainRef = try scope.object("domain") {
            guard let domain = try await resolveDomain(domainRef) else { throw APIError.unauthorized("Could not find domain.") }
            return .domain(domain.id)
        }
        if let system = try scope.object("system") {
            guard try system.bool("all") == true else { throw APIError.badRequest("Invalid input for field 'scope.system': 'all' must be true.") }
            return .system
        }
        if let trustRef = try scope.object("OS-TRUST:trust") {
            let id = try trustRef.requiredString("id", maxLength: 64)
            guard let trust = try await usableTrust(id, db) else { throw APIError.unauthorized("Could not find trust: \(id).") }
            if let project = trust.projectID, try await store.project(id: project, db) == nil {
                throw APIError.unauthorized("Could not find project: \(project).")
            }
            return .trust(id: id, projectID: trust.projectID)
        }
        throw APIError.badRequest("Invalid input for field 'scope': expected 'project', 'domain' or 'system'.")
    }
}
