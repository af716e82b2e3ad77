import Crypto
import Foundation
import NimbusCore
import NimbusStore

/// Credentials (encrypted at rest, as Keystone does with its credential key repository) and
/// stored policy documents.
extension IdentityService {
    static let credentialFields: Set<String> = ["id", "user_id", "project_id", "type", "blob", "links"]

    func sealCredential(_ blob: String) throws -> String {
        guard let key = credentialKeys.current.first else { throw TokenError.keyRepository("no credential keys loaded") }
        return try CredentialCipher.seal(blob, key: key)
    }

    func openCredential(_ stored: String) -> String? { CredentialCipher.open(stored, keys: credentialKeys.current) }

    func credential(_ r: Row) -> Credential? {
        guard let blob = openCredential(r.string("blob")) else { return nil }
        return Credential(id: r.string("id"), userID: r.string("user_id"), projectID: r.optionalString("project_id"), type: r.string("type"),
                          blob: blob, extra: IdentityStore.object(r, "extra"))
    }

    func requireCredential(_ id: String) async throws -> Credential {
        guard let row = try await db.first("SELECT * FROM identity_credential WHERE id = ?", .text(id)), let c = credential(row) else {
            throw APIError.notFound("Could not find credential: \(id).")
        }
        return c
    }

    /// EC2 credentials are addressed by the SHA-256 of their access key, as in Keystone.
    static func ec2ID(blob: String, projectID: String?) throws -> String {
        guard let access = (try? JSON.parse(blob))?["access"]?.stringValue else {
            throw APIError.badRequest("Invalid blob in credential: an ec2 credential's blob must be JSON with an 'access' key.")
        }
        guard projectID != nil else { throw APIError.badRequest("An ec2 credential requires a project_id.") }
        return Hex.encode(SHA256.hash(data: Data(access.utf8)))
    }

    public func createCredential(_ input: JSONInput, caller: AuthContext) async throws -> Credential {
        let userID = try input.requiredString("user_id", maxLength: 64)
        try authorize("identity:create_credential", caller, target: ["target.credential.user_id": userID])
        let type = try input.requiredString("type", maxLength: 255, allowEmpty: false)
        let blob = try input.requiredString("blob", maxLength: 65535)
        let projectID = try input.optionalString("project_id", maxLength: 64)
        let id = type == "ec2" ? try Self.ec2ID(blob: blob, projectID: projectID) : Identifiers.hexID()
        let credential = Credential(id: id, userID: userID, projectID: projectID, type: type, blob: blob,
                                    extra: input.extras(excluding: Self.credentialFields))
        let sealed = try sealCredential(blob)
        try await db.transaction { x in
            _ = try await self.requireUser(userID, x)
            _ = try await self.conflict("credential") {
                try await x.execute("INSERT INTO identity_credential (id, user_id, project_id, type, blob, extra) VALUES (?, ?, ?, ?, ?, ?)",
                                    [.text(id), .text(userID), .optional(projectID), .text(type), .text(sealed), IdentityStore.encode(credential.extra)])
            }
        }
        return credential
    }

    public func getCredential(_ id: String, caller: AuthContext) async throws -> Credential {
        let c = try await requireCredential(id)
        try authorize("identity:get_credential", caller, target: ["target.credential.user_id": c.userID])
        return c
    }

    /// Administrators see every credential; other callers only their own (Keystone filters the same way).
    public func listCredentials(_ query: Query, caller: AuthContext) async throws -> [Credential] {
        let rows = try await db.query("SELECT * FROM identity_credential ORDER BY id", [])
        return rows.compactMap(credential).filter { c in
            if let u = query["user_id"], u != c.userID { return false }
            if let t = query["type"], t != c.type { return false }
            return policy.enforce("identity:get_credential", credentials: caller.policyInput,
                                  target: ["target.credential.user_id": c.userID])
        }
    }

    public func updateCredential(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> Credential {
        var c = try await requireCredential(id)
        try authorize("identity:update_credential", caller, target: ["target.credential.user_id": c.userID])
        if let user = try input.optionalString("user_id", maxLength: 64), user != c.userID {
            _ = try await requireUser(user, db)
            c.userID = user
        }
        if input.has("project_id") { c.projectID = try input.optionalString("project_id", maxLength: 64) }
        if let type = try input.optionalString("type", maxLength: 255, allowEmpty: false) { c.type = type }
        if let blob = try input.optionalString("blob", maxLength: 65535) { c.blob = blob }
        // The id stays what it was at creation even when the access key changes, as in Keystone.
        if c.type == "ec2" { _ = try Self.ec2ID(blob: c.blob, projectID: c.projectID) }
        for (k, v) in input.extras(excluding: Self.credentialFields) { c.extra[k] = v }
        try await db.execute("UPDATE identity_credential SET user_id = ?, project_id = ?, type = ?, blob = ?, extra = ? WHERE id = ?",
                             [.text(c.userID), .optional(c.projectID), .text(c.type), .text(try sealCredential(c.blob)),
                              IdentityStore.encode(c.extra), .text(id)])
        return c
    }

    public func deleteCredential(_ id: String, caller: AuthContext) async throws {
        let c = try await requireCredential(id)
        try authorize("identity:delete_credential", caller, target: ["target.credential.user_id": c.userID])
        try await db.execute("DELETE FROM identity_credential WHERE id = ?", [.text(id)])
    }

    // MARK: Policy documents

    func policyDocument(_ r: Row) -> PolicyDocument {
        PolicyDocument(id: r.string("id"), type: r.string("type"), blob: r.string("blob"), extra: IdentityStore.object(r, "extra"))
    }

    func requirePolicyDocument(_ id: String) async throws -> PolicyDocument {
        guard let row = try await db.first("SELECT * FROM identity_policy WHERE id = ?", .text(id)) else {
            throw APIError.notFound("Could not find policy: \(id).")
        }
        return policyDocument(row)
    }

    public func createPolicyDocument(_ input: JSONInput, caller: AuthContext) async throws -> PolicyDocument {
        try authorize("identity:create_policy", caller)
        let document = PolicyDocument(id: Identifiers.hexID(), type: try input.requiredString("type", maxLength: 255, allowEmpty: false),
                                      blob: try input.requiredString("blob", maxLength: 65535),
                                      extra: input.extras(excluding: ["id", "type", "blob", "links"]))
        try await db.execute("INSERT INTO identity_policy (id, type, blob, extra) VALUES (?, ?, ?, ?)",
                             [.text(document.id), .text(document.type), .text(document.blob), IdentityStore.encode(document.extra)])
        return document
    }

    public func getPolicyDocument(_ id: String, caller: AuthContext) async throws -> PolicyDocument {
        try authorize("identity:get_policy", caller)
        return try await requirePolicyDocument(id)
    }

    public func listPolicyDocuments(_ query: Query, caller: AuthContext) async throws -> [PolicyDocument] {
        try authorize("identity:list_policies", caller)
        return try await db.query("SELECT * FROM identity_policy ORDER BY id", []).map(policyDocument).filter { query["type"] == nil || query["type"] == $0.type }
    }

    public func updatePolicyDocument(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> PolicyDocument {
        try authorize("identity:update_policy", caller)
        var document = try await requirePolicyDocument(id)
        if let type = try input.optionalString("type", maxLength: 255, allowEmpty: false) { document.type = type }
        if let blob = try input.optionalString("blob", maxLength: 65535) { document.blob = blob }
        for (k, v) in input.extras(excluding: ["id", "type", "blob", "links"]) { document.extra[k] = v }
        try await db.execute("UPDATE identity_policy SET type = ?, blob = ?, extra = ? WHERE id = ?",
                             [.text(document.type), .text(document.blob), IdentityStore.encode(document.extra), .text(id)])
        return document
    }

    public func deletePolicyDocument(_ id: String, caller: AuthContext) async throws {
        try authorize("identity:delete_policy", caller)
        guard try await db.execute("DELETE FROM identity_policy WHERE id = ?", [.text(id)]) > 0 else {
            throw APIError.notFound("Could not find policy: \(id).")
        }
    }
}
