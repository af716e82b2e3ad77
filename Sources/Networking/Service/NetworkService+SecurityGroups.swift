import Foundation
import NimbusCore
import NimbusStore

extension NetworkService {
    // MARK: For ports

    /// The project's default security group, created with its rules on first need, as the
    /// groups a port without `security_groups` gets. Runs inside the caller's transaction.
    public func defaultSecurityGroupIDs(project: String, _ x: any SQLExecutor) async throws -> [String] {
        [try await ensureDefaultSecurityGroup(project: project, x)]
    }

    /// The rules that apply to traffic of ports in `groups`, for the host agent to program.
    public func effectiveRules(securityGroups groups: [String]) async throws -> [SecurityGroupRule] {
        guard !groups.isEmpty else { return [] }
        let marks = Array(repeating: "?", count: groups.count).joined(separator: ", ")
        return try await db.query("SELECT * FROM network_security_group_rule WHERE security_group_id IN (\(marks)) ORDER BY created_at, id",
                                  groups.map { .text($0) }).map(SecurityGroupRule.init(row:))
    }

    // MARK: API

    public func securityGroups(caller: AuthContext, project filter: String?) async throws -> [SecurityGroup] {
        // Neutron creates the default group of the project asked about (or the caller's) on first listing.
        if let project = filter ?? caller.projectID, canSee("get_security_group", project, caller) {
            try await ensureDefaultSecurityGroup(project: project)
        }
        let shared = try await sharedSecurityGroups(project: caller.projectID, db)
        let groups = try await db.query("SELECT * FROM network_security_group ORDER BY created_at, id").map(SecurityGroup.init(row:))
            .filter { canSee("get_security_group", $0.projectID, caller) || shared.contains($0.id) }
            .map { group in
                var group = group
                group.shared = shared.contains(group.id)
                return group
            }
        return try await withRules(groups)
    }

    public func securityGroup(_ id: String, caller: AuthContext) async throws -> SecurityGroup {
        if let project = caller.projectID { try await ensureDefaultSecurityGroup(project: project) }
        return try await shownGroup(id, caller)
    }

    public func createSecurityGroup(_ input: JSONInput, caller: AuthContext) async throws -> SecurityGroup {
        try input.rejectUnknown(["name", "description", "stateful", "project_id", "tenant_id"])
        let project = try ownerProject(input, caller)
        try authorize("create_security_group", caller, target: ["project_id": project])
        let name = try input.optionalString("name") ?? ""
        try Self.rejectDefaultName(name)
        let description = try input.optionalString("description") ?? ""
        let asked = try input.bool("stateful")
        let id = try await db.transaction { x -> String in
            // The default group exists first, so it counts against the quota like Neutron's.
            _ = try await self.ensureDefaultSecurityGroup(project: project, x)
            try await self.enforceQuota("security_group", project: project, x)
            let stateful = if let asked { asked } else { try await self.defaultStateful(project: project, x) }
            return try await self.insertGroup(project: project, name: name, description: description, stateful: stateful, isDefault: false, x)
        }
        return try await shownGroup(id, caller)
    }

    public func updateSecurityGroup(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> SecurityGroup {
        try input.rejectUnknown(["name", "description", "stateful"])
        let group = try await visibleGroup(id, caller)
        try authorize("update_security_group", caller, target: ["project_id": group.projectID])
        let name = try input.optionalString("name") ?? group.name
        if name != group.name {
            if try await isDefault(id, db) {
                throw APIError(.conflict, "Updating default security group not allowed.", code: "SecurityGroupCannotUpdateDefault")
            }
            try Self.rejectDefaultName(name)
        }
        try await db.execute("""
            UPDATE network_security_group SET name = ?, description = ?, stateful = ?, revision_number = revision_number + 1, updated_at = ?
            WHERE id = ?
            """, .text(name), .text(try input.optionalString("description") ?? group.description),
            .bool(try input.bool("stateful") ?? group.stateful), .real(Date().timeIntervalSince1970), .text(id))
        return try await shownGroup(id, caller)
    }

    public func deleteSecurityGroup(_ id: String, caller: AuthContext) async throws {
        let group = try await visibleGroup(id, caller)
        try authorize("delete_security_group", caller, target: ["project_id": group.projectID])
        try await db.transaction { x in
            if try await self.isDefault(id, x) {
                // Only an admin may remove a default group; it comes back on the project's next use.
                guard self.policy.enforce("network:context_is_admin", credentials: caller.policyInput, target: [:]) else {
                    throw APIError(.conflict, "Insufficient rights for removing default security group.", code: "SecurityGroupCannotRemoveDefault")
                }
                try await x.execute("DELETE FROM network_default_security_group WHERE security_group_id = ?", .text(id))
            }
            if try await self.securityGroupInUse(id, x) {
                throw APIError(.conflict, "Security Group \(id) in use.", code: "SecurityGroupInUse")
            }
            // Rules of other groups naming this one as their remote group go with it (foreign key cascade).
            try await x.execute("DELETE FROM network_security_group WHERE id = ?", .text(id))
            try await x.execute("DELETE FROM network_rbac_policy WHERE object_type = 'security_group' AND object_id = ?", .text(id))
        }
    }

    // MARK: Helpers

    /// Whether policy lets `caller` see a resource of `project`. Neutron answers 404, not 403,
    /// for what the caller may not see.
    func canSee(_ action: String, _ project: String, _ caller: AuthContext) -> Bool {
        policy.enforce(action, credentials: caller.policyInput, target: ["project_id": project])
    }

    func visibleGroup(_ id: String, _ caller: AuthContext) async throws -> SecurityGroup {
        guard let row = try await db.first("SELECT * FROM network_security_group WHERE id = ?", .text(id)) else { throw Self.groupNotFound(id) }
        var group = SecurityGroup(row: row)
        group.shared = try await sharedSecurityGroups(project: caller.projectID, db).contains(id)
        guard canSee("get_security_group", group.projectID, caller) || group.shared else { throw Self.groupNotFound(id) }
        return group
    }

    /// The group as the API shows it, rules included.
    func shownGroup(_ id: String, _ caller: AuthContext) async throws -> SecurityGroup {
        try await withRules([try await visibleGroup(id, caller)])[0]
    }

    func withRules(_ groups: [SecurityGroup]) async throws -> [SecurityGroup] {
        let rules = Dictionary(grouping: try await effectiveRules(securityGroups: groups.map(\.id)), by: \.securityGroupID)
        return groups.map { group in
            var group = group
            group.rules = rules[group.id] ?? []
            return group
        }
    }

    /// The project a new resource belongs to: the caller's, or the one an admin names.
    func ownerProject(_ input: JSONInput, _ caller: AuthContext) throws -> String {
        guard let project = try input.optionalString("project_id") ?? input.optionalString("tenant_id") ?? caller.projectID else {
            throw APIError.badRequest("project_id is required for a caller without a project scope.")
        }
        return project
    }

    static func groupNotFound(_ id: String) -> APIError {
        APIError(.notFound, "Security group \(id) does not exist", code: "SecurityGroupNotFound")
    }

    static func rejectDefaultName(_ name: String) throws {
        if name.lowercased() == "default" {
            throw APIError(.conflict, "Default security group already exists.", code: "SecurityGroupDefaultAlreadyExists")
        }
    }

    func isDefault(_ id: String, _ x: any SQLExecutor) async throws -> Bool {
        try await x.first("SELECT project_id FROM network_default_security_group WHERE security_group_id = ?", .text(id)) != nil
    }

    /// Makes sure the project's default group exists, in a transaction of its own when it does not.
    func ensureDefaultSecurityGroup(project: String) async throws {
        if try await db.first("SELECT 1 AS found FROM network_default_security_group WHERE project_id = ?", .text(project)) == nil {
            _ = try await db.transaction { try await self.ensureDefaultSecurityGroup(project: project, $0) }
        }
    }

    /// The project's default group's id, creating the group if it is missing. Claiming the
    /// project's marker row first decides the race: a concurrent creator waits on the row
    /// (PostgreSQL) or runs after (SQLite) and then finds it taken.
    func ensureDefaultSecurityGroup(project: String, _ x: any SQLExecutor) async throws -> String {
        if let row = try await x.first("SELECT security_group_id FROM network_default_security_group WHERE project_id = ?", .text(project)) {
            return row.string("security_group_id")
        }
        let id = Identifiers.uuid()
        let claimed = try await x.execute("INSERT INTO network_default_security_group (project_id, security_group_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                                          .text(project), .text(id))
        // Taken by a concurrent creator, whose row the next read sees.
        guard claimed == 1 else { return try await ensureDefaultSecurityGroup(project: project, x) }
        return try await insertGroup(project: project, name: "default", description: "Default security group", stateful: true, isDefault: true, x,
                                     id: id)
    }

    /// A new group with Neutron's initial rules: egress anywhere for both families, and for a
    /// default group also ingress from its own members.
    func insertGroup(project: String, name: String, description: String, stateful: Bool, isDefault: Bool, _ x: any SQLExecutor,
                     id: String = Identifiers.uuid()) async throws -> String {
        let now = Date()
        try await x.execute("""
            INSERT INTO network_security_group (id, project_id, name, description, stateful, tags, revision_number, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, '[]', 0, ?, ?)
            """, .text(id), .text(project), .text(name), .text(description), .bool(stateful), .real(now.timeIntervalSince1970),
            .real(now.timeIntervalSince1970))
        for rule in try await templateRules(group: id, project: project, isDefault: isDefault, at: now, x) { try await insertRule(rule, x) }
        return id
    }

    func insertRule(_ rule: SecurityGroupRule, _ x: any SQLExecutor) async throws {
        try await x.execute("""
            INSERT INTO network_security_group_rule (id, security_group_id, project_id, direction, ethertype, protocol, port_range_min,
                port_range_max, remote_ip_prefix, remote_group_id, remote_address_group_id, description, revision_number, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
            """, .text(rule.id), .text(rule.securityGroupID), .text(rule.projectID), .text(rule.direction.rawValue),
            .text(rule.etherType.rawValue), .optional(rule.protocol), rule.portRangeMin.map { .integer($0) } ?? .null,
            rule.portRangeMax.map { .integer($0) } ?? .null, .optional(rule.remoteIPPrefix), .optional(rule.remoteGroupID),
            .optional(rule.remoteAddressGroupID), .text(rule.description), .real(rule.createdAt.timeIntervalSince1970), .real(rule.updatedAt.timeIntervalSince1970))
    }
}
