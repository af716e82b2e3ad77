import Foundation
import NimbusCore
import NimbusStore

/// Access rules: the requests (service type, method, path pattern) an application credential's
/// tokens are limited to. A user's rules are shared by their credentials: a credential naming
/// an existing rule by `id`, or one identical to an existing rule, links that rule.
extension IdentityService {
    /// One requested rule of `POST …/application_credentials`, parsed: either a reference to
    /// one of the user's rules by id, or a rule to find or create.
    struct RequestedAccessRule {
        var id: String?
        var service: String?
        var method: String?
        var path: String?
    }

    static func parseAccessRules(_ items: [JSON]) throws -> [RequestedAccessRule] {
        try items.enumerated().map { index, item in
            guard let fields = item.objectValue else {
                throw APIError.badRequest("Invalid input for field 'access_rules/\(index)': \(item.serialized()) is not of type 'object'.")
            }
            let rule = JSONInput(fields, path: "access_rules/\(index)")
            let id = try rule.optionalString("id", maxLength: 64, allowEmpty: false)
            let service = try rule.optionalString("service", maxLength: 64, allowEmpty: false)
            for (key, value) in [("id", id), ("service", service)] {
                if let value, !value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) {
                    throw APIError.badRequest("Invalid input for field 'access_rules/\(index)/\(key)': '\(value)' does not match '^[a-zA-Z0-9-]+$'.")
                }
            }
            let method = try rule.optionalString("method", maxLength: 16)
            if let method, !AccessRule.methods.contains(method) {
                throw APIError.badRequest("Invalid input for field 'access_rules/\(index)/method': '\(method)' is not one of \(AccessRule.methods.sorted()).")
            }
            let path = try rule.optionalString("path", maxLength: 225)
            if let path, !path.hasPrefix("/") {
                throw APIError.badRequest("Invalid input for field 'access_rules/\(index)/path': '\(path)' does not match '^/'.")
            }
            if id == nil && (service == nil || method == nil || path == nil) {
                throw APIError.badRequest("Invalid input for field 'access_rules/\(index)': an access rule needs 'service', 'method' and 'path', or the 'id' of an existing rule.")
            }
            return RequestedAccessRule(id: id, service: service, method: method, path: path)
        }
    }

    /// Finds or creates each requested rule for `userID` and links it to the credential, inside
    /// the credential's transaction; returns the linked rules in request order, each once.
    func linkAccessRules(_ requested: [RequestedAccessRule], userID: String, appCredentialID: String,
                         _ x: any SQLExecutor) async throws -> [AccessRule] {
        var linked: [AccessRule] = []
        for item in requested {
            var rule: AccessRule?
            if let id = item.id { rule = try await store.accessRule(id: id, userID: userID, x) }
            if rule == nil, let service = item.service, let method = item.method, let path = item.path {
                rule = try await store.accessRule(userID: userID, service: service, method: method, path: path, x)
                if rule == nil {
                    let new = AccessRule(id: item.id ?? Identifiers.hexID(), service: service, method: method, path: path)
                    do {
                        try await store.insert(new, userID: userID, x)
                    } catch DatabaseError.uniqueViolation {
                        throw APIError.conflict("Conflict occurred attempting to store access_rule - Duplicate ID, \(new.id).")
                    }
                    rule = new
                }
            }
            guard let rule else { throw APIError.notFound("Could not find Access Rule: \(item.id ?? "").") }
            if linked.contains(where: { $0.id == rule.id }) { continue }
            try await store.link(appCredentialID: appCredentialID, accessRuleID: rule.id, position: linked.count, x)
            linked.append(rule)
        }
        return linked
    }

    /// `GET /v3/users/{user_id}/access_rules`, filtered by `service`, `method` and `path`.
    public func listAccessRules(userID: String, _ query: Query, caller: AuthContext) async throws -> [AccessRule] {
        try authorize("identity:list_access_rules", caller, target: ["user_id": userID, "target.user.id": userID])
        _ = try await requireUser(userID, db)
        return try await store.accessRules(userID: userID, db).filter { rule in
            (query["service"].map { $0 == rule.service } ?? true) && (query["method"].map { $0 == rule.method } ?? true)
                && (query["path"].map { $0 == rule.path } ?? true)
        }
    }

    public func getAccessRule(userID: String, id: String, caller: AuthContext) async throws -> AccessRule {
        try authorize("identity:get_access_rule", caller, target: ["user_id": userID, "target.user.id": userID])
        guard let rule = try await store.accessRule(id: id, userID: userID, db) else {
            throw APIError.notFound("Could not find Access Rule: \(id).")
        }
        return rule
    }

    /// Deletes a rule no application credential uses (Keystone answers 403 while one does).
    public func deleteAccessRule(userID: String, id: String, caller: AuthContext) async throws {
        try authorize("identity:delete_access_rule", caller, target: ["user_id": userID, "target.user.id": userID])
        try await db.transaction { x in
            guard try await self.store.accessRule(id: id, userID: userID, x) != nil else {
                throw APIError.notFound("Could not find Access Rule: \(id).")
            }
            // The link's foreign key has no cascade, so a credential linked concurrently makes
            // this DELETE fail rather than leave a credential without its rule.
            let deleted = try await x.execute("""
                DELETE FROM identity_access_rule WHERE id = ? AND user_id = ?
                AND NOT EXISTS (SELECT 1 FROM identity_app_credential_access_rule WHERE access_rule_id = ?)
                """, [.text(id), .text(userID), .text(id)])
            guard deleted == 1 else { throw APIError.forbidden("May not delete access rule in use.") }
        }
    }
}
