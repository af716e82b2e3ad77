import Foundation
import NimbusCore
import NimbusStore

/// OS-TRUST: a trustor delegates roles on a project to a trustee, who then gets trust-scoped
/// tokens. A trust that has expired or used up its uses is gone for every route (404), as in
/// Keystone; deleting one deletes the trusts redelegated from it and revokes their tokens.
extension IdentityService {
    /// Keystone's `[trust] max_redelegation_count` default.
    static let maxRedelegationCount = 3

    static func trustNotFound(_ id: String) -> APIError { APIError.notFound("Could not find trust: \(id).") }

    static func forbiddenAction(_ action: String) -> APIError {
        APIError.forbidden("You are not authorized to perform the requested action: \(action).")
    }

    /// The trust if it can still be used: it exists, has not expired and has uses left.
    func usableTrust(_ id: String, _ x: any SQLExecutor) async throws -> Trust? {
        guard let trust = try await store.trust(id: id, x), !trust.isExpired(now: Self.now()), trust.remainingUses.map({ $0 > 0 }) ?? true else {
            return nil
        }
        return trust
    }

    func requireTrust(_ id: String) async throws -> Trust {
        guard let trust = try await usableTrust(id, db) else { throw Self.trustNotFound(id) }
        return trust
    }

    func trustTarget(_ trust: Trust) -> [String: String] {
        ["target.trust.trustor_user_id": trust.trustorUserID, "target.trust.trustee_user_id": trust.trusteeUserID]
    }

    /// Application credentials are bound to one project: they may not read or manage the
    /// trust delegation chain (Keystone refuses them whatever `unrestricted` says).
    func refuseApplicationCredential(_ caller: AuthContext) throws {
        if caller.methods.contains("application_credential") {
            throw Self.forbiddenAction("Using method 'application_credential' is not allowed for managing trusts")
        }
    }

    /// The trust a token is scoped to, read from the token itself.
    public func trustID(of auth: AuthContext) -> String? {
        TokenPayload.open(auth.token, keys: keyCache.current)?.trustID
    }

    /// The trust and its chain of predecessors, the trust itself first.
    func trustPedigree(_ trust: Trust, _ x: any SQLExecutor) async throws -> [Trust] {
        var chain = [trust]
        while let parentID = chain.last?.redelegatedTrustID, chain.count <= Self.maxRedelegationCount + 1 {
            guard let parent = try await usableTrust(parentID, x) else { throw Self.trustNotFound(parentID) }
            chain.append(parent)
        }
        return chain
    }

    /// The roles of the trust that still exist, in id order.
    func trustRoles(_ trust: Trust, _ x: any SQLExecutor) async throws -> [Role] {
        var roles: [Role] = []
        for id in trust.roleIDs { if let role = try await store.role(id: id, x) { roles.append(role) } }
        return roles
    }

    /// What a token scoped to `trust` may do on its project: the trust's roles and what they
    /// imply, provided the original trustor still holds every one of them there (else nil, and
    /// the trust is unusable, as Keystone's "Trustee has no delegated roles").
    func delegatedRoles(_ trust: Trust, _ x: any SQLExecutor) async throws -> [RoleRef]? {
        guard let projectID = trust.projectID else { return [] }
        let originalTrustor = try await trustPedigree(trust, x).last?.trustorUserID ?? trust.trustorUserID
        let held = Set(try await effectiveRoles(userID: originalTrustor, target: .project(projectID), x).map(\.id))
        let delegated = try await expandImplied(trust.roleIDs, x)
        guard !delegated.isEmpty, delegated.allSatisfy({ held.contains($0.id) }) else { return nil }
        return delegated
    }

    // MARK: Routes

    public func createTrust(_ input: JSONInput, caller: AuthContext) async throws -> (Trust, [Role]) {
        let trustorID = try input.requiredString("trustor_user_id", maxLength: 64)
        let trusteeID = try input.requiredString("trustee_user_id", maxLength: 64)
        guard let impersonation = try input.bool("impersonation") else {
            throw APIError.badRequest("Invalid input for field 'impersonation': 'impersonation' is a required property.")
        }
        try authorize("identity:create_trust", caller, target: ["trust.trustor_user_id": trustorID])
        try refuseApplicationCredential(caller)
        let projectID = try input.optionalString("project_id", maxLength: 64).flatMap { $0.isEmpty ? nil : $0 }
        let roleRefs = try input.array("roles") ?? []
        if projectID != nil && roleRefs.isEmpty { throw Self.forbiddenAction("At least one role should be specified") }
        guard caller.userID == trustorID else { throw Self.forbiddenAction("The authenticated user should match the trustor") }
        var expiresAt: Date?
        if let text = try input.optionalString("expires_at", maxLength: 64) {
            guard let date = Timestamps.parse(text) else {
                throw APIError.badRequest("Timestamp not in expected format. The server could not comply with the request since it is either "
                                          + "malformed or otherwise incorrect. The client is assumed to be in error.")
            }
            guard date.timeIntervalSince1970 > Self.now() else {
                throw APIError.badRequest("The 'expires_at' must not be before now. The server could not comply with the request since it is "
                                          + "either malformed or otherwise incorrect. The client is assumed to be in error.")
            }
            expiresAt = date
        }
        let remainingUses = try input.int("remaining_uses", in: 1...Int64(Int32.max)).map { Int($0) }
        let requestedCount = try input.int("redelegation_count", in: 0...Int64(Int32.max)).map { Int($0) }
        let redelegatable = (try input.bool("allow_redelegation") ?? false) && requestedCount != 0
        _ = try await requireUser(trusteeID, db)

        var roleIDs: [String] = []
        for item in roleRefs {
            guard let ref = item.objectValue, ref.count == 1, let key = ref.keys.first, key == "id" || key == "name",
                  let value = ref[key]?.stringValue else {
                throw APIError.badRequest("Invalid input for field 'roles': each role must be an object with exactly one of 'id' or 'name'.")
            }
            if key == "id" {
                roleIDs.append(value)
            } else {
                guard let role = try await store.roles(db).first(where: { $0.name == value && $0.domainID == nil }) else {
                    throw APIError.notFound("Could not find role: \(value).")
                }
                roleIDs.append(role.id)
            }
        }
        var unique: [String] = []
        for id in roleIDs where !unique.contains(id) { unique.append(id) }

        var trust = Trust(id: Identifiers.hexID(), trustorUserID: trustorID, trusteeUserID: trusteeID, projectID: projectID,
                          impersonation: impersonation, expiresAt: expiresAt, remainingUses: remainingUses, redelegatedTrustID: nil,
                          redelegationCount: 0, roleIDs: unique, extra: input.extras(excluding: Self.trustFields))
        if redelegatable {
            if let requestedCount, requestedCount > Self.maxRedelegationCount {
                throw APIError.forbidden("Requested redelegation depth of \(requestedCount) is greater than allowed \(Self.maxRedelegationCount)")
            }
            if remainingUses != nil { throw APIError.badRequest("remaining_uses must not be set if redelegation is allowed") }
        }

        // A trust-scoped caller is redelegating the trust its token carries.
        var pedigree: [Trust] = []
        if let sourceID = trustID(of: caller) {
            guard let source = try await usableTrust(sourceID, db) else { throw Self.trustNotFound(sourceID) }
            pedigree = try await trustPedigree(source, db)
            trust.redelegatedTrustID = source.id
            let remaining = source.redelegationCount - 1
            if redelegatable, let requestedCount, requestedCount != remaining {
                throw Self.forbiddenAction("Modifying \"redelegation_count\" upon redelegation is forbidden. Omitting this parameter is advised")
            }
            trust.redelegationCount = redelegatable ? max(remaining, 0) : 0
            for parent in pedigree { try Self.validateRedelegation(from: parent, to: &trust) }
        } else {
            trust.redelegationCount = redelegatable ? (requestedCount ?? Self.maxRedelegationCount) : 0
        }

        // The (original) trustor must hold every delegated role on the project.
        if let projectID {
            _ = try await requireProject(projectID, db)
            let originalTrustor = pedigree.last?.trustorUserID ?? trustorID
            let held = Set(try await effectiveRoles(userID: originalTrustor, target: .project(projectID), db).map(\.id))
            if let missing = unique.first(where: { !held.contains($0) }) { throw APIError.notFound("Could not find role: \(missing).") }
        }
        let final = trust
        try await db.transaction { x in try await self.store.insert(final, x) }
        return (final, try await trustRoles(final, db))
    }

    static let trustFields: Set<String> = [
        "id", "trustor_user_id", "trustee_user_id", "project_id", "impersonation", "expires_at", "remaining_uses", "allow_redelegation",
        "redelegation_count", "redelegated_trust_id", "roles", "roles_links", "links", "deleted_at",
    ]

    /// Keystone's checks of a redelegated trust against each trust up its chain.
    static func validateRedelegation(from parent: Trust, to trust: inout Trust) throws {
        guard (1...maxRedelegationCount).contains(parent.redelegationCount) else {
            throw APIError.forbidden("Remaining redelegation depth of \(parent.redelegationCount) out of allowed range of [0..\(maxRedelegationCount)]")
        }
        if let uses = trust.remainingUses {
            throw APIError.forbidden("Field \"remaining_uses\" is set to \(uses) while it must not be set in order to redelegate a trust")
        }
        if let expiry = trust.expiresAt {
            if let parentExpiry = parent.expiresAt, parentExpiry < expiry {
                throw APIError.forbidden("Requested expiration time is more than redelegated trust can provide")
            }
        } else {
            trust.expiresAt = parent.expiresAt
        }
        let parentRoles = Set(parent.roleIDs)
        guard trust.roleIDs.allSatisfy(parentRoles.contains) else { throw APIError.forbidden("Some of requested roles are not in redelegated trust") }
        if trust.impersonation && !parent.impersonation {
            throw APIError.forbidden("Impersonation is not allowed because redelegated trust does not specify impersonation. "
                                     + "Redelegated trust id: \(parent.id)")
        }
    }

    /// `GET /v3/OS-TRUST/trusts`: all of them for an administrator, else those naming the
    /// caller as trustor or trustee through the matching filter.
    public func listTrusts(_ query: Query, caller: AuthContext) async throws -> [Trust] {
        let trustor = query["trustor_user_id"], trustee = query["trustee_user_id"]
        if let trustor {
            try authorize("identity:list_trusts_for_trustor", caller, target: ["target.trust.trustor_user_id": trustor])
        } else if let trustee {
            try authorize("identity:list_trusts_for_trustee", caller, target: ["target.trust.trustee_user_id": trustee])
        } else {
            try authorize("identity:list_trusts", caller)
        }
        try refuseApplicationCredential(caller)
        return try await store.trusts(trustor: trustor, trustee: trustor == nil ? trustee : nil, db)
    }

    public func getTrust(_ id: String, caller: AuthContext) async throws -> (Trust, [Role]) {
        let trust = try await requireTrust(id)
        try authorize("identity:get_trust", caller, target: trustTarget(trust))
        try refuseApplicationCredential(caller)
        return (trust, try await trustRoles(trust, db))
    }

    public func listTrustRoles(_ id: String, caller: AuthContext) async throws -> [Role] {
        let trust = try await requireTrust(id)
        try authorize("identity:list_roles_for_trust", caller, target: trustTarget(trust))
        try refuseApplicationCredential(caller)
        return try await trustRoles(trust, db)
    }

    public func getTrustRole(_ id: String, roleID: String, caller: AuthContext) async throws -> Role {
        let trust = try await requireTrust(id)
        try authorize("identity:get_role_for_trust", caller, target: trustTarget(trust))
        try refuseApplicationCredential(caller)
        guard trust.roleIDs.contains(roleID), let role = try await store.role(id: roleID, db) else {
            throw APIError.notFound("Could not find role: \(roleID).")
        }
        return role
    }

    public func deleteTrust(_ id: String, caller: AuthContext) async throws {
        let trust = try await requireTrust(id)
        try authorize("identity:delete_trust", caller, target: trustTarget(trust))
        try refuseApplicationCredential(caller)
        let events = try await db.transaction { x -> [RevocationEvent] in
            let deleted = try await self.store.deleteTrusts(where: "id = ?", [.text(id)], x)
            guard !deleted.isEmpty else { throw Self.trustNotFound(id) }
            return try await self.revokeTrusts(deleted, x)
        }
        didChange(revoked: events)
    }

    /// Revocation events for the tokens of deleted trusts.
    func revokeTrusts(_ ids: [String], _ x: any SQLExecutor) async throws -> [RevocationEvent] {
        let now = Self.now()
        let events = ids.map { RevocationEvent(trustID: $0, issuedBefore: now, revokedAt: now) }
        try await revoke(events, x)
        return events
    }

    // MARK: Tokens

    /// Checks a trust-scope request by `userID` and returns the trust: it must be usable and
    /// name the user as trustee, and the trustor must still be able to delegate.
    func trustForToken(_ id: String, userID: String) async throws -> Trust {
        guard let trust = try await usableTrust(id, db) else { throw APIError.unauthorized("Could not find trust: \(id).") }
        guard trust.trusteeUserID == userID else { throw APIError.forbidden("User is not a trustee.") }
        guard let trustor = try await store.user(id: trust.trustorUserID, db), trustor.enabled else {
            throw APIError.forbidden("Trustor is disabled.")
        }
        guard try await delegatedRoles(trust, db) != nil else { throw APIError.forbidden("Trustee has no delegated roles.") }
        return trust
    }

    /// The token body's `OS-TRUST:trust`, for a trust-scoped token.
    public func trustTokenSection(_ auth: AuthContext) async throws -> JSON? {
        guard let id = trustID(of: auth), let trust = try await store.trust(id: id, db) else { return nil }
        return ["id": .string(trust.id), "impersonation": .bool(trust.impersonation),
                "trustor_user": ["id": .string(trust.trustorUserID)], "trustee_user": ["id": .string(trust.trusteeUserID)]]
    }
}
