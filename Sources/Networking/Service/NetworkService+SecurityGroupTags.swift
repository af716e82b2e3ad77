import Foundation
import NimbusCore
import NimbusStore

extension NetworkService {
    /// Replaces a security group's tags with `change(current)`; changing tags is updating the
    /// group (`update_security_group`), and moves its revision.
    public func changeSecurityGroupTags(_ id: String, caller: AuthContext,
                                        _ change: @escaping @Sendable ([String]) throws -> [String]) async throws -> [String: JSON] {
        try await write { x in
            guard let row = try await x.first("SELECT * FROM network_security_group WHERE id = ?\(x.dialect.forUpdate)", .text(id)),
                  self.canSee("get_security_group", row.string("project_id"), caller) else {
                throw Self.groupNotFound(id)
            }
            try self.authorize("update_security_group", caller, target: ["project_id": row.string("project_id")])
            let tags = Set(try change(SecurityGroup(row: row).tags)).sorted()
            try Self.validateTags(tags)
            try await x.execute("UPDATE network_security_group SET tags = ? WHERE id = ?", Self.encode(.array(tags.map { .string($0) })), .text(id))
            try await self.touch("network_security_group", id, x)
        }
        return try await shownGroup(id, caller).json
    }
}
