import Foundation
import NimbusCore
import NimbusStore

/// RBAC policies (`/v2.0/rbac-policies`): a network's owner shares it with one project, or
/// with every project (`*`), to use (`access_as_shared`) or to reach as an external network
/// (`access_as_external`). A network is `shared` for a caller when a policy shares it with
/// their project or with `*`; the `shared` column mirrors "a `*` access_as_shared policy
/// exists" (setting `shared` creates or removes that policy) so SQL that only needs global
/// sharing keeps reading one column. `external` is `router:external`; who may see an external
/// network is decided by its access_as_external policies. A security group shared with a
/// project is listed (`shared`) for it and its ports may use the group.
extension NetworkService {
    static let rbacActions: [String: [String]] = ["network": ["access_as_external", "access_as_shared"], "security_group": ["access_as_shared"]]
    static let rbacAttributes: Set<String> = ["object_type", "object_id", "action", "target_tenant", "project_id", "tenant_id"]

    /// Target keys carrying a network's RBAC grants (space-separated target projects); see `personalized`.
    static let sharedGrantsKey = "rbac_shared_with", externalGrantsKey = "rbac_external_to"

    static func rbacJSON(_ row: Row) -> [String: JSON] {
        ["id": .string(row.string("id")), "project_id": .string(row.string("project_id")), "tenant_id": .string(row.string("project_id")),
         "object_type": .string(row.string("object_type")), "object_id": .string(row.string("object_id")),
         "action": .string(row.string("action")), "target_tenant": .string(row.string("target_project"))]
    }

    static func rbacNotFound(_ id: String) -> APIError {
        APIError(.notFound, "RBAC policy of type unknown with ID \(id) not found", code: "RbacPolicyNotFound")
    }

    static let duplicateRBAC = APIError(.conflict, "An RBAC policy already exists with those values.", code: "DuplicateRbacPolicy")

    // MARK: Grants as policy sees them

    /// Each network's grants: target projects by action.
    func networkGrants(_ networkIDs: [String], _ x: any SQLExecutor) async throws -> [String: [String: [String]]] {
        guard !networkIDs.isEmpty else { return [:] }
        var grants: [String: [String: [String]]] = [:]
        for chunk in stride(from: 0, to: networkIDs.count, by: 500).map({ Array(networkIDs[$0..<min($0 + 500, networkIDs.count)]) }) {
            let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
            for row in try await x.query("""
                SELECT object_id, action, target_project FROM network_rbac_policy
                WHERE object_type = 'network' AND object_id IN (\(marks)) ORDER BY target_project
                """, chunk.map { .text($0) }) {
                grants[row.string("object_id"), default: [:]][row.string("action"), default: []].append(row.string("target_project"))
            }
        }
        return grants
    }

    /// `target` with its network's grants, for `personalized` to read.
    static func withGrants(_ target: [String: String], _ grants: [String: [String]]?) -> [String: String] {
        var target = target
        target[sharedGrantsKey] = (grants?["access_as_shared"] ?? []).joined(separator: " ")
        target[externalGrantsKey] = (grants?["access_as_external"] ?? []).joined(separator: " ")
        return target
    }

    /// The target as a caller of `project` sees it: `shared` when a policy shares the network
    /// with them or everyone, `external` when it is external and a policy lets them reach it.
    /// Targets without grants (other resource families) are returned unchanged.
    static func personalized(_ target: [String: String], for project: String?) -> [String: String] {
        guard let shared = target[sharedGrantsKey], let external = target[externalGrantsKey] else { return target }
        func covers(_ list: String) -> Bool {
            list.split(separator: " ").contains { $0 == "*" || (project != nil && $0 == project!) }
        }
        var target = target
        target["shared"] = flag(covers(shared))
        target["external"] = flag(target["external"] == "True" && covers(external))
        return target
    }

    /// Whether a network (its target, with grants) takes ports and servers of `project`: its
    /// owner's, or shared with them.
    static func usable(_ network: Rendered, by project: String) -> Bool {
        network.target["project_id"] == project || personalized(network.target, for: project)["shared"] == "True"
    }

    // MARK: API

    public func listRBACPolicies(caller: AuthContext) async throws -> [[String: JSON]] {
        try await db.query("SELECT * FROM network_rbac_policy ORDER BY created_at, id").compactMap { row in
            visible("rbac_policy", Self.rbacJSON(row), target: ["project_id": row.string("project_id"), "tenant_id": row.string("project_id")], caller: caller)
        }
    }

    public func rbacPolicy(_ id: String, caller: AuthContext) async throws -> [String: JSON] {
        guard let row = try await db.first("SELECT * FROM network_rbac_policy WHERE id = ?", .text(id)),
              let json = visible("rbac_policy", Self.rbacJSON(row), target: ["project_id": row.string("project_id")], caller: caller) else {
            throw Self.rbacNotFound(id)
        }
        return json
    }

    public func createRBACPolicy(_ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try Self.allowOnly(input, Self.rbacAttributes)
        let type = try input.requiredString("object_type")
        guard let actions = Self.rbacActions[type] else {
            throw Self.badRequest("Invalid input for object_type. Reason: '\(type)' is not in \(Self.rbacActions.keys.sorted()).", code: "InvalidInput")
        }
        let objectID = try input.requiredString("object_id")
        let action = try input.requiredString("action")
        let target = try input.requiredString("target_tenant")
        let project = try Self.owner(input, caller)
        try authorize("create_rbac_policy", caller, target: ["project_id": project, "tenant_id": project])
        if target == "*" { try authorize("create_rbac_policy:target_tenant", caller, target: ["project_id": project, "tenant_id": project]) }
        guard actions.contains(action) else {
            throw Self.badRequest("Invalid action '\(action)' for object type '\(type)'. Valid actions: \(actions)", code: "InvalidActionForType")
        }
        let id = Identifiers.uuid()
        try await write { x in
            if type == "network" {
                let network = try await self.visibleNetwork(objectID, caller: caller, x)
                try Self.requireObjectOwner(network.target["project_id"], type, caller: caller)
            } else {
                try Self.requireObjectOwner(try await self.visibleGroup(objectID, caller).projectID, type, caller: caller)
            }
            if try await x.first("""
                SELECT 1 FROM network_rbac_policy WHERE object_type = ? AND object_id = ? AND action = ? AND target_project = ?
                """, .text(type), .text(objectID), .text(action), .text(target)) != nil {
                throw Self.duplicateRBAC
            }
            try await self.insertGrant(id: id, project: project, objectType: type, object: objectID, action: action, target: target, x)
        }
        return try await rbacPolicy(id, caller: caller)
    }

    /// Only `target_tenant` changes; the old target must not be in use, as for a delete.
    public func updateRBACPolicy(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try Self.allowOnly(input, ["target_tenant"])
        guard let target = try input.string("target_tenant") else { return try await rbacPolicy(id, caller: caller) }
        try await write { x in
            let row = try await self.policyForWrite(id, "update_rbac_policy", caller: caller, x)
            if target == "*" { try self.authorize("update_rbac_policy:target_tenant", caller, target: ["project_id": row.string("project_id")]) }
            guard target != row.string("target_project") else { return }
            if try await x.first("""
                SELECT 1 FROM network_rbac_policy WHERE object_type = ? AND object_id = ? AND action = ? AND target_project = ?
                """, .text(row.string("object_type")), .text(row.string("object_id")), .text(row.string("action")), .text(target)) != nil {
                throw Self.duplicateRBAC
            }
            try await self.requireGrantUnused(row, x)
            try await x.execute("UPDATE network_rbac_policy SET target_project = ? WHERE id = ?", .text(target), .text(id))
            if row.string("object_type") == "network" { try await self.networkGrantsChanged(row.string("object_id"), x) }
        }
        return try await rbacPolicy(id, caller: caller)
    }

    public func deleteRBACPolicy(_ id: String, caller: AuthContext) async throws {
        try await write { x in
            let row = try await self.policyForWrite(id, "delete_rbac_policy", caller: caller, x)
            try await self.requireGrantUnused(row, x)
            try await x.execute("DELETE FROM network_rbac_policy WHERE id = ?", .text(id))
            if row.string("object_type") == "network" { try await self.networkGrantsChanged(row.string("object_id"), x) }
        }
    }

    // MARK: Internals

    /// The policy row behind `action`: 404 when the caller may not see it, 403 when they see it
    /// but may not do this; and the caller must own (or administer) the network it is about.
    func policyForWrite(_ id: String, _ action: String, caller: AuthContext, _ x: any SQLExecutor) async throws -> Row {
        guard let row = try await x.first("SELECT * FROM network_rbac_policy WHERE id = ?\(x.dialect.forUpdate)", .text(id)) else { throw Self.rbacNotFound(id) }
        let target = ["project_id": row.string("project_id"), "tenant_id": row.string("project_id")]
        guard visible("rbac_policy", Self.rbacJSON(row), target: target, caller: caller) != nil else { throw Self.rbacNotFound(id) }
        try authorize(action, caller, target: target)
        let object = row.string("object_id")
        let owner = row.string("object_type") == "network"
            ? try await x.first("SELECT project_id FROM network_network WHERE id = ?", .text(object))?.string("project_id")
            : try await x.first("SELECT project_id FROM network_security_group WHERE id = ?", .text(object))?.string("project_id")
        if let owner { try Self.requireObjectOwner(owner, row.string("object_type"), caller: caller) }
        return row
    }

    static func requireObjectOwner(_ owner: String?, _ type: String, caller: AuthContext) throws {
        guard caller.isAdmin || owner == caller.projectID else {
            let objects = type == "network" ? "networks" : "objects"
            throw badRequest("Invalid input for operation: Only admins can manipulate policies on \(objects) they do not own.", code: "InvalidInput")
        }
    }

    /// The security groups RBAC policies share with `project` (or with every project).
    func sharedSecurityGroups(project: String?, _ x: any SQLExecutor) async throws -> Set<String> {
        Set(try await x.query("""
            SELECT object_id FROM network_rbac_policy WHERE object_type = 'security_group' AND action = 'access_as_shared' AND target_project IN ('*', ?)
            """, .text(project ?? "*")).map { $0.string("object_id") })
    }

    /// Adds a grant (a no-op when it exists) and keeps a network's columns in step.
    func insertGrant(id: String = Identifiers.uuid(), project: String, objectType: String = "network", object: String, action: String, target: String,
                     revise: Bool = true, _ x: any SQLExecutor) async throws {
        if try await x.first("""
            SELECT 1 FROM network_rbac_policy WHERE object_type = ? AND object_id = ? AND action = ? AND target_project = ?
            """, .text(objectType), .text(object), .text(action), .text(target)) != nil { return }
        try await x.execute("""
            INSERT INTO network_rbac_policy (id, project_id, object_type, object_id, action, target_project, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """, .text(id), .text(project), .text(objectType), .text(object), .text(action), .text(target), Self.now())
        if objectType == "network" { try await networkGrantsChanged(object, revise: revise, x) }
    }

    /// Removes the network's grants of `action` to `target` once nothing depends on them
    /// (`conflict` is the error when something does).
    func removeGrant(network: String, action: String, target: String, conflict: APIError? = nil, _ x: any SQLExecutor) async throws {
        for row in try await x.query("""
            SELECT * FROM network_rbac_policy WHERE object_type = 'network' AND object_id = ? AND action = ? AND target_project = ?
            """, .text(network), .text(action), .text(target)) {
            try await requireGrantUnused(row, conflict: conflict, x)
            try await x.execute("DELETE FROM network_rbac_policy WHERE id = ?", .text(row.string("id")))
        }
        try await networkGrantsChanged(network, x)
    }

    /// `shared` mirrors the wildcard access_as_shared grant; any access_as_external grant makes
    /// the network external (as Neutron converts it), and revisions move with every change.
    func networkGrantsChanged(_ network: String, revise: Bool = true, _ x: any SQLExecutor) async throws {
        try await x.execute("""
            UPDATE network_network SET
                shared = CASE WHEN EXISTS (SELECT 1 FROM network_rbac_policy WHERE object_type = 'network' AND object_id = ?
                    AND action = 'access_as_shared' AND target_project = '*') THEN 1 ELSE 0 END,
                external = CASE WHEN EXISTS (SELECT 1 FROM network_rbac_policy WHERE object_type = 'network' AND object_id = ?
                    AND action = 'access_as_external') THEN 1 ELSE external END
            WHERE id = ?
            """, .text(network), .text(network), .text(network))
        if revise { try await touch("network_network", network, x) }
    }

    /// 409 when removing this grant would strand what its target projects made with it: their
    /// ports on a shared network, their routers' gateways and floating IPs on an external one.
    /// Projects still covered by another grant (or owning the network) are not stranded.
    func requireGrantUnused(_ row: Row, conflict: APIError? = nil, _ x: any SQLExecutor) async throws {
        let network = row.string("object_id"), action = row.string("action"), target = row.string("target_project")
        let isGroup = row.string("object_type") == "security_group"
        guard let owner = try await x.first("SELECT project_id FROM \(isGroup ? "network_security_group" : "network_network") WHERE id = ?",
                                            .text(network))?.string("project_id"),
              target != owner else { return }
        let others = try await x.query("""
            SELECT target_project FROM network_rbac_policy WHERE object_type = ? AND object_id = ? AND action = ? AND id <> ?
            """, .text(row.string("object_type")), .text(network), .text(action), .text(row.string("id"))).map { $0.string("target_project") }
        if others.contains("*") { return }
        let kept = Set(others + [owner])
        let users: [Row]
        if isGroup {
            users = try await x.query("""
                SELECT DISTINCT p.project_id FROM network_port p JOIN network_port_security_group g ON g.port_id = p.id WHERE g.security_group_id = ?
                """, .text(network))
        } else if action == "access_as_shared" {
            users = try await x.query("SELECT DISTINCT project_id FROM network_port WHERE network_id = ?", .text(network))
        } else {
            users = try await x.query("""
                SELECT r.project_id FROM network_router r JOIN network_port p ON p.device_id = r.id
                WHERE p.network_id = ? AND p.device_owner = 'network:router_gateway'
                UNION SELECT project_id FROM network_floatingip WHERE floating_network_id = ?
                """, .text(network), .text(network))
        }
        let stranded = users.map { $0.string("project_id") }.filter { !kept.contains($0) && (target == "*" || $0 == target) }
        guard stranded.isEmpty else {
            throw conflict ?? APIError(.conflict, "RBAC policy on object \(network) cannot be removed because other objects depend on it.\n"
                                       + "Details: Project(s) \(stranded.sorted().joined(separator: ", ")) still use it.", code: "RbacPolicyInUse")
        }
    }
}
