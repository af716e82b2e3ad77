import Foundation
import NimbusCore
import NimbusStore

/// Default statefulness of security groups (`/v2.0/security-groups-default-statefulness`):
/// the `stateful` a security group created without one gets — its project's setting, else
/// the system-wide one (`project_id` null), else true. Settings are the operator's to write;
/// a project reads its own and the system-wide one, which applies to it too.
extension NetworkService {
    static func statefulnessNotFound(_ id: String) -> APIError {
        APIError(.notFound, "Security group default statefulness \(id) could not be found.", code: "SecurityGroupDefaultStatefulnessNotFound")
    }

    static func statefulnessJSON(_ row: Row) -> [String: JSON] {
        let project = row.string("project_id")
        let owner: JSON = project.isEmpty ? .null : .string(project)
        return ["id": .string(row.string("id")), "project_id": owner, "tenant_id": owner, "stateful": .bool(row.bool("stateful")),
                "revision_number": .int(row.int("revision_number")), "created_at": Self.time(row, "created_at"), "updated_at": Self.time(row, "updated_at")]
    }

    /// The policy target of a setting: its project, or for the system-wide one the caller's
    /// own project, as that setting applies to every project.
    func statefulnessTarget(_ row: Row, caller: AuthContext) -> [String: String] {
        let project = row.string("project_id")
        let owner = project.isEmpty ? (caller.projectID ?? "") : project
        return ["project_id": owner, "tenant_id": owner]
    }

    public func listSecurityGroupDefaultStatefulness(caller: AuthContext) async throws -> [[String: JSON]] {
        try await db.query("SELECT * FROM network_sg_default_statefulness ORDER BY created_at, id")
            .filter { canSeeStatefulness($0, caller) }.map(Self.statefulnessJSON)
    }

    func canSeeStatefulness(_ row: Row, _ caller: AuthContext) -> Bool {
        policy.enforce("get_security_group_default_statefulness", credentials: caller.policyInput, target: statefulnessTarget(row, caller: caller))
    }

    func storedStatefulness(_ id: String, caller: AuthContext, _ x: any SQLExecutor) async throws -> Row {
        guard let row = try await x.first("SELECT * FROM network_sg_default_statefulness WHERE id = ?", .text(id)),
              canSeeStatefulness(row, caller) else { throw Self.statefulnessNotFound(id) }
        return row
    }

    public func securityGroupDefaultStatefulness(_ id: String, caller: AuthContext) async throws -> [String: JSON] {
        Self.statefulnessJSON(try await storedStatefulness(id, caller: caller, db))
    }

    /// `project_id` absent is the caller's project; null (as the CLI sends without
    /// `--project`) the system-wide setting. One setting per project (409 otherwise).
    public func createSecurityGroupDefaultStatefulness(_ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try Self.allowOnly(input, ["project_id", "tenant_id", "stateful"])
        let ownerKey = input.has("project_id") ? "project_id" : "tenant_id"
        let project: String
        if let value = input.fields[ownerKey] {
            project = value.isNull ? "" : try input.optionalString(ownerKey) ?? ""
        } else {
            guard let own = caller.projectID else { throw Self.badRequest("A project_id is required: the token is not project-scoped.") }
            project = own
        }
        try authorize("create_security_group_default_statefulness", caller, target: ["project_id": project, "tenant_id": project])
        guard let stateful = try input.bool("stateful") else {
            throw Self.badRequest("Failed to parse request. Required attribute 'stateful' not specified", code: "BadRequest")
        }
        let id = Identifiers.uuid()
        try await write { x in
            if let existing = try await x.first("SELECT id FROM network_sg_default_statefulness WHERE project_id = ?", .text(project)) {
                throw Self.conflict("A default statefulness setting already exists for \(project.isEmpty ? "the system" : "project \(project)"): \(existing.string("id")).",
                                    code: "SecurityGroupDefaultStatefulnessExists")
            }
            let now = Self.now()
            try await x.execute("""
                INSERT INTO network_sg_default_statefulness (id, project_id, stateful, revision_number, created_at, updated_at) VALUES (?, ?, ?, 0, ?, ?)
                """, .text(id), .text(project), .bool(stateful), now, now)
        }
        return try await securityGroupDefaultStatefulness(id, caller: caller)
    }

    public func updateSecurityGroupDefaultStatefulness(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try Self.allowOnly(input, ["stateful"])
        let stateful = try input.bool("stateful")
        try await write { x in
            let row = try await self.storedStatefulness(id, caller: caller, x)
            try self.authorize("update_security_group_default_statefulness", caller, target: self.statefulnessTarget(row, caller: caller))
            if let stateful {
                try await x.execute("UPDATE network_sg_default_statefulness SET stateful = ? WHERE id = ?", .bool(stateful), .text(id))
                try await self.touch("network_sg_default_statefulness", id, x)
            }
        }
        return try await securityGroupDefaultStatefulness(id, caller: caller)
    }

    public func deleteSecurityGroupDefaultStatefulness(_ id: String, caller: AuthContext) async throws {
        try await write { x in
            let row = try await self.storedStatefulness(id, caller: caller, x)
            try self.authorize("delete_security_group_default_statefulness", caller, target: self.statefulnessTarget(row, caller: caller))
            try await x.execute("DELETE FROM network_sg_default_statefulness WHERE id = ?", .text(id))
        }
    }

    /// The `stateful` a new group of `project` gets when its create names none.
    func defaultStateful(project: String, _ x: any SQLExecutor) async throws -> Bool {
        let rows = try await x.query("SELECT project_id, stateful FROM network_sg_default_statefulness WHERE project_id IN (?, '')", .text(project))
        let chosen = rows.first { !$0.string("project_id").isEmpty } ?? rows.first
        return chosen?.bool("stateful") ?? true
    }
}
