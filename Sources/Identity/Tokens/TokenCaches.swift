import Foundation
import NimbusCore
import Synchronization

/// A revocation event (Keystone's `revoke_event`): every token matching all of its non-empty
/// fields and issued at or before `issuedBefore` is invalid.
public struct RevocationEvent: Sendable {
    public var id: String = Identifiers.hexID()
    public var userID = ""
    public var projectID = ""
    public var domainID = ""
    public var auditID = ""
    public var appCredentialID = ""
    public var trustID = ""
    public var issuedBefore: Double
    public var revokedAt: Double

    init(id: String = Identifiers.hexID(), userID: String = "", projectID: String = "", domainID: String = "", auditID: String = "",
         appCredentialID: String = "", trustID: String = "", issuedBefore: Double, revokedAt: Double) {
        self.id = id
        self.userID = userID
        self.projectID = projectID
        self.domainID = domainID
        self.auditID = auditID
        self.appCredentialID = appCredentialID
        self.trustID = trustID
        self.issuedBefore = issuedBefore
        self.revokedAt = revokedAt
    }

    /// `domainIDs`: the token's user domain and scope domain; a domain event hits both.
    func matches(_ token: TokenPayload, projectID tokenProject: String?, domainIDs: Set<String>) -> Bool {
        guard token.issuedAt <= issuedBefore else { return false }
        if !userID.isEmpty && userID != token.userID { return false }
        if !projectID.isEmpty && projectID != tokenProject { return false }
        if !domainID.isEmpty && !domainIDs.contains(domainID) { return false }
        if !auditID.isEmpty && !token.auditIDs.contains(auditID) { return false }
        if !appCredentialID.isEmpty && appCredentialID != token.applicationCredentialID { return false }
        if !trustID.isEmpty && trustID != token.trustID { return false }
        return true
    }
}

/// The revocation events of the last token lifetime, held in memory so validation needs no
/// query. Other controllers' events are picked up by `refresh`, at most once per second.
final class RevocationList: Sendable {
    private struct State {
        var events: [String: RevocationEvent] = [:]
        var lastRefresh: Double = 0
    }
    private let state = Mutex(State())

    func add(_ events: [RevocationEvent]) {
        state.withLock { s in for e in events { s.events[e.id] = e } }
    }

    /// Events not yet seen were added; returns true when any were.
    func merge(_ events: [RevocationEvent]) -> Bool {
        state.withLock { s in
            var added = false
            for e in events where s.events[e.id] == nil {
                s.events[e.id] = e
                added = true
            }
            return added
        }
    }

    /// True for the one caller per second that should reload events from the database.
    func claimRefresh(now: Double) -> Bool {
        state.withLock { s in
            guard now - s.lastRefresh >= 1 else { return false }
            s.lastRefresh = now
            return true
        }
    }

    func prune(olderThan cutoff: Double) {
        state.withLock { s in s.events = s.events.filter { $0.value.revokedAt >= cutoff } }
    }

    func isRevoked(_ token: TokenPayload, projectID: String?, domainIDs: Set<String>) -> Bool {
        state.withLock { s in s.events.values.contains { $0.matches(token, projectID: projectID, domainIDs: domainIDs) } }
    }
}

/// Validated tokens, so that a token presented again costs a dictionary lookup (memcached's role
/// in the seed's deployment). Any identity change that can alter a token's meaning bumps the
/// generation, which empties the cache in one step.
final class ValidatedTokenCache: Sendable {
    struct Entry: Sendable {
        let auth: AuthContext
        let generation: UInt64
        let cachedAt: Double
    }
    private struct State {
        var entries: [String: Entry] = [:]
        var generation: UInt64 = 0
    }
    private let state = Mutex(State())
    let lifetime: Double
    static let capacity = 50_000

    init(lifetime: Double) { self.lifetime = lifetime }

    var generation: UInt64 { state.withLock { $0.generation } }

    func invalidateAll() {
        state.withLock { s in
            s.generation &+= 1
            s.entries.removeAll(keepingCapacity: true)
        }
    }

    func get(_ token: String, now: Double) -> AuthContext? {
        state.withLock { s in
            guard let e = s.entries[token], e.generation == s.generation, now - e.cachedAt < lifetime,
                  e.auth.expiresAt.timeIntervalSince1970 > now else { return nil }
            return e.auth
        }
    }

    /// `generation` is the value read before validation started, so a result computed across a
    /// concurrent change is not stored.
    func put(_ token: String, _ auth: AuthContext, generation: UInt64, now: Double) {
        state.withLock { s in
            guard generation == s.generation else { return }
            if s.entries.count >= Self.capacity { s.entries.removeAll(keepingCapacity: true) }
            s.entries[token] = Entry(auth: auth, generation: generation, cachedAt: now)
        }
    }
}

/// The enabled services and endpoints, kept for a few seconds because every token response
/// carries them. Local changes clear it at once; another controller's show up within `lifetime`.
final class CatalogCache: @unchecked Sendable {
    struct Entry {
        let services: [CatalogService]
        let endpoints: [String: [Endpoint]]
        /// The endpoints each OS-EP-FILTER-filtered project sees; other projects see all.
        let projectEndpoints: [String: Set<String>]
        let loadedAt: Double
    }
    private let lock = NSLock()
    private var entry: Entry?
    let lifetime: Double = 5

    func get(now: Double) -> Entry? {
        lock.withLock { entry.flatMap { now - $0.loadedAt < lifetime ? $0 : nil } }
    }

    func set(_ new: Entry) { lock.withLock { entry = new } }

    func invalidate() { lock.withLock { entry = nil } }
}

/// Rendered `GET /v3/auth/tokens` bodies, so that validating a token again sends bytes already
/// built: profiling showed building and serialising the body (its catalog above all) as most
/// of a validation's cost. An entry holds while the validated-token cache's generation and the
/// catalog cache's entry it was rendered from are current, so whatever would change the body
/// (an identity change, another controller's catalog edit) misses it.
final class RenderedTokenCache: Sendable {
    struct Stamp: Equatable, Sendable {
        let generation: UInt64
        /// `loadedAt` of the catalog entry rendered; 0 for a body without a catalog.
        let catalogLoadedAt: Double
    }
    private struct Key: Hashable {
        let token: String
        let catalog: Bool
    }
    private struct Entry {
        let body: [UInt8]
        let stamp: Stamp
        let expiresAt: Double
    }
    private let state = Mutex([Key: Entry]())
    /// Bodies are a few kilobytes with a full catalog: a bound of a few megabytes.
    static let capacity = 2_048

    func get(_ token: String, catalog: Bool, stamp: Stamp, now: Double) -> [UInt8]? {
        state.withLock { entries in
            guard let e = entries[Key(token: token, catalog: catalog)], e.stamp == stamp, e.expiresAt > now else { return nil }
            return e.body
        }
    }

    func put(_ token: String, catalog: Bool, body: [UInt8], stamp: Stamp, expiresAt: Double) {
        state.withLock { entries in
            if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[Key(token: token, catalog: catalog)] = Entry(body: body, stamp: stamp, expiresAt: expiresAt)
        }
    }
}
