import Foundation
import NimbusCore

/// An OS-TRUST trust: the trustor delegates some of its roles on a project to the trustee, who
/// gets tokens scoped to the trust (acting as the trustor when `impersonation` is set).
public struct Trust: Sendable {
    public var id: String
    public var trustorUserID: String
    public var trusteeUserID: String
    /// nil for a trust that delegates no project roles.
    public var projectID: String?
    public var impersonation: Bool
    public var expiresAt: Date?
    /// nil means unlimited; each token issued through the trust uses one.
    public var remainingUses: Int?
    /// The trust this one was redelegated from, if any.
    public var redelegatedTrustID: String?
    /// How many more times the trustee may redelegate; 0 when redelegation is not allowed.
    public var redelegationCount: Int
    /// The delegated role ids.
    public var roleIDs: [String]
    public var extra: [String: JSON]

    func isExpired(now: Double) -> Bool { expiresAt.map { $0.timeIntervalSince1970 <= now } ?? false }

    /// The trust in Keystone's shape; `roles` are given for show and create, left out of lists
    /// as Keystone does.
    public func json(_ links: Links, roles: [Role]?) -> JSON {
        var out: [String: JSON] = [
            "id": .string(id), "trustor_user_id": .string(trustorUserID), "trustee_user_id": .string(trusteeUserID),
            "project_id": .optional(projectID), "impersonation": .bool(impersonation),
            "expires_at": expiresAt.map { .string(Timestamps.keystone($0)) } ?? .null,
            "remaining_uses": remainingUses.map { .int(Int64($0)) } ?? .null,
            "redelegated_trust_id": .optional(redelegatedTrustID), "redelegation_count": .int(Int64(redelegationCount)),
            "deleted_at": nil, "links": links.resource("OS-TRUST/trusts", id),
        ]
        if let roles {
            out["roles"] = .array(roles.map { $0.json(links) })
            out["roles_links"] = links.collection("OS-TRUST/trusts/\(id)/roles")
        }
        return merged(out, extra: extra)
    }
}
