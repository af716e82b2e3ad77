import Foundation
import NimbusCore
import NimbusStore

/// Application credentials: a user's delegation of some of their roles on one project to a
/// secret that a program can authenticate with.
extension IdentityService {
    public func createAppCredential(userID: String, _ input: JSONInput, caller: AuthContext) async throws -> (ApplicationCredential, String) {
        try authorize("identity:create_application_credential", caller, target: ["user_id": userID, "target.user.id": userID])
        guard caller.userID == userID else {
            throw APIError.forbidden("You are not authorized to perform the requested action: identity:create_application_credential.")
        }
        guard let projectID = caller.projectID else {
            throw APIError.badRequest("An application credential must be created with a project-scoped token.")
        }
        if caller.applicationCredentialID != nil,
           let parent = try await store.appCredential(id: caller.applicationCredentialID!, db), !parent.unrestricted {
            throw APIError.forbidden("Using a restricted application credential to create another application credential is not allowed.")
        }
        let name = try input.requiredString("name", maxLength: 255, allowEmpty: false)
        let secret = try input.optionalString("secret", maxLength: 4096, allowEmpty: false)
            ?? Base64URL.encode((0..<48).map { _ in UInt8.random(in: 0...255) })
        var expiresAt: Date?
        if let text = try input.optionalString("expires_at") {
            guard let date = Timestamps.parse(text) else {
                throw APIError.badRequest("Invalid input for field 'expires_at': '\(text)' is not a valid date-time.")
            }
            guard date.timeIntervalSinceNow > 0 else { throw APIError.badRequest("The 'expires_at' time must be in the future.") }
            expiresAt = date
        }
        let requestedRules = try Self.parseAccessRules(try input.array("access_rules") ?? [])
        // Requested roles must be among the caller's roles on the project; none means all of them.
        let held = caller.roles.map { RoleRef(id: $0.id, name: $0.name) }
        var roles = held
        if let requested = try input.array("roles"), !requested.isEmpty {
            roles = try requested.map { item in
                guard let ref = item.objectValue else { throw APIError.badRequest("Invalid input for field 'roles': each role must be an object.") }
                let id = ref["id"]?.stringValue, name = ref["name"]?.stringValue
                guard let match = held.first(where: { ($0.id == id) || (id == nil && $0.name == name) }) else {
                    throw APIError.forbidden("Cannot create an application credential with a role the user does not have on the project: \(id ?? name ?? "?").")
                }
                return match
            }
        }
        var credential = ApplicationCredential(
            id: Identifiers.hexID(), name: name, userID: userID, projectID: projectID, secretHash: try hasher.hash(secret),
            description: try input.optionalString("description", maxLength: 65535), expiresAt: expiresAt,
            unrestricted: try input.bool("unrestricted") ?? false, roles: roles, createdAt: Date())
        let stored = credential
        do {
            credential.accessRules = try await db.transaction { x in
                try await self.store.insert(stored, x)
                return try await self.linkAccessRules(requestedRules, userID: userID, appCredentialID: stored.id, x)
            }
        } catch DatabaseError.uniqueViolation {
            throw APIError.conflict("Conflict occurred attempting to store application_credential - Duplicate name, \(name).")
        }
        return (credential, secret)
    }

    public func listAppCredentials(userID: String, _ query: Query, caller: AuthContext) async throws -> [ApplicationCredential] {
        try authorize("identity:list_application_credentials", caller, target: ["user_id": userID, "target.user.id": userID])
        _ = try await requireUser(userID, db)
        return try await store.appCredentials(userID: userID, db).filter { query["name"] == nil || query["name"] == $0.name }
    }

    public func getAppCredential(userID: String, id: String, caller: AuthContext) async throws -> ApplicationCredential {
        try authorize("identity:get_application_credential", caller, target: ["user_id": userID, "target.user.id": userID])
        guard let c = try await store.appCredential(id: id, db), c.userID == userID else {
            throw APIError.notFound("Could not find Application Credential: \(id).")
        }
        return c
    }

    public func deleteAppCredential(userID: String, id: String, caller: AuthContext) async throws {
        try authorize("identity:delete_application_credential", caller, target: ["user_id": userID, "target.user.id": userID])
        let events = try await db.transaction { x -> [RevocationEvent] in
            guard let c = try await self.store.appCredential(id: id, x), c.userID == userID else {
                throw APIError.notFound("Could not find Application Credential: \(id).")
            }
            try await x.execute("DELETE FROM identity_app_credential WHERE id = ?", [.text(c.id)])
            let events = [RevocationEvent(appCredentialID: c.id, issuedBefore: Self.now(), revokedAt: Self.now())]
            try await self.revoke(events, x)
            return events
        }
        didChange(revoked: events)
    }
}
