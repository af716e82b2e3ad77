import Crypto
import Foundation
import Logging
import NimbusCore
import NimbusStore

/// Keystone's logic: authentication, token issue and validation, and the identity, resource,
/// assignment, catalog and unified limit APIs. No HTTP here: routes translate requests into
/// these calls, and other services reach it through `TokenValidating` and `ProjectLimitLookup`.
public final class IdentityService: TokenValidating, Sendable {
    let db: any Database
    let store: IdentityStore
    let keys: KeyRepository
    let policy: PolicyEngine
    let hasher: PasswordHasher
    let logger: Logger
    let tokenLifetime: Double
    let defaultDomainID: String
    let revocations = RevocationList()
    let tokenCache: ValidatedTokenCache
    let catalogCache = CatalogCache()
    let renderedTokens = RenderedTokenCache()
    let limitCache = LimitCache()
    /// Keys are read once and re-read by `reloadKeys()` after a rotation.
    let keyCache: KeyCache
    /// Encrypt stored credentials; a repository of their own, as Keystone keeps.
    let credentialKeys: KeyCache

    /// Guarded by `lock`; swapped whole on reload.
    final class KeyCache: @unchecked Sendable {
        private let lock = NSLock()
        private var keys: [SymmetricKey]
        init(_ keys: [SymmetricKey]) { self.keys = keys }
        var current: [SymmetricKey] { lock.withLock { keys } }
        func replace(_ new: [SymmetricKey]) { lock.withLock { keys = new } }
    }

    public init(db: any Database, config: NimbusConfig, dataDir: String, policy: PolicyEngine, logger: Logger) throws {
        self.db = db
        self.store = IdentityStore(db: db)
        self.policy = policy
        self.logger = logger
        let repo = config.string("fernet_tokens", "key_repository")
        keys = KeyRepository(path: repo.hasPrefix("/") ? repo : "\(dataDir)/\(repo)",
                             maxActiveKeys: try config.int("fernet_tokens", "max_active_keys"))
        try keys.setUpIfNeeded()
        keyCache = KeyCache(try keys.loadKeys())
        let credentialRepository = CredentialCipher.repository(dataDir: dataDir)
        try credentialRepository.setUpIfNeeded()
        credentialKeys = KeyCache(try credentialRepository.loadKeys())
        hasher = PasswordHasher(rounds: try config.int("identity", "password_hash_rounds"))
        tokenLifetime = Double(try config.int("token", "expiration"))
        tokenCache = ValidatedTokenCache(lifetime: Double(try config.int("token", "cache_time")))
        defaultDomainID = config.string("identity", "default_domain_id")
    }

    /// Loads revocation events still relevant (younger than a token lifetime).
    public func start() async throws {
        let now = Date().timeIntervalSince1970
        try await store.pruneRevocations(before: now - tokenLifetime - 60, db)
        _ = revocations.merge(try await store.revocations(since: now - tokenLifetime - 60, db))
    }

    public func reloadKeys() throws { keyCache.replace(try keys.loadKeys()) }

    // MARK: Policy

    /// Raises Keystone's 403 unless policy allows `action` for the caller on `target`.
    func authorize(_ action: String, _ auth: AuthContext, target: [String: String] = [:]) throws {
        guard policy.enforce(action, credentials: auth.policyInput, target: target) else {
            throw APIError.forbidden("You are not authorized to perform the requested action: \(action).")
        }
    }

    // MARK: Change tracking

    /// Records revocation events and forgets validated tokens, in that order, so no cached
    /// token survives a change that revokes it.
    func revoke(_ events: [RevocationEvent], _ x: any SQLExecutor) async throws {
        for e in events { try await store.insert(e, x) }
    }

    /// Called after a committed write that may change what tokens mean or carry.
    func didChange(revoked events: [RevocationEvent] = []) {
        revocations.add(events)
        tokenCache.invalidateAll()
        catalogCache.invalidate()
    }

    static func now() -> Double { Date().timeIntervalSince1970 }

    // MARK: Lookups that 404

    func requireDomain(_ id: String, _ x: any SQLExecutor) async throws -> Domain {
        guard let d = try await store.domain(id: id, x) else { throw APIError.notFound("Could not find domain: \(id).") }
        return d
    }

    func requireProject(_ id: String, _ x: any SQLExecutor) async throws -> Project {
        guard let p = try await store.project(id: id, x) else { throw APIError.notFound("Could not find project: \(id).") }
        return p
    }

    func requireUser(_ id: String, _ x: any SQLExecutor) async throws -> User {
        guard let u = try await store.user(id: id, x) else { throw APIError.notFound("Could not find user: \(id).") }
        return u
    }

    func requireGroup(_ id: String, _ x: any SQLExecutor) async throws -> Group {
        guard let g = try await store.group(id: id, x) else { throw APIError.notFound("Could not find group: \(id).") }
        return g
    }

    func requireRole(_ id: String, _ x: any SQLExecutor) async throws -> Role {
        guard let r = try await store.role(id: id, x) else { throw APIError.notFound("Could not find role: \(id).") }
        return r
    }

    /// Maps a unique-constraint failure to Keystone's 409.
    @discardableResult
    func conflict<T: Sendable>(_ what: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch DatabaseError.uniqueViolation {
            throw APIError.conflict("Conflict occurred attempting to store \(what) - Duplicate entry.")
        } catch DatabaseError.constraintViolation(let message) {
            throw APIError.badRequest("Invalid reference in \(what): \(message).")
        }
    }
}


