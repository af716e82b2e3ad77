import Foundation
import NimbusCore
import NimbusStore

/// Role assignments (grants), implied roles, and the effective-role computation tokens use.
extension IdentityService {
    // MARK: Effective roles

    /// The roles a user holds on a target: direct and group assignments, assignments inherited
    /// from the project's ancestors and domain, and every role those imply.
    func effectiveRoles(userID: String, target: AssignmentTarget, _ x: any SQLExecutor) async throws -> [RoleRef] {
        let assignments = try await store.assignments(forUser: userID, x)
        var inheritedFrom: Set<String> = []
        if case .project(let id) = target {
            var next = try await store.project(id: id, x)
            if let project = next { inheritedFrom.insert(project.domainID) }
            // Ancestors, bounded so a corrupt parent loop cannot spin.
            var hops = 0
            while let parent = next?.parentID, hops < 64 {
                inheritedFrom.insert(parent)
                next = try await store.project(id: parent, x)
                hops += 1
            }
        }
        let roleIDs = assignments.filter { a in
            if a.inherited { return inheritedFrom.contains(a.target.id) && a.target != .system }
            return a.target == target
        }.map(\.roleID)
        return try await expandImplied(roleIDs, x)
    }

    /// The roles and everything they imply, transitively, ordered by name.
    func expandImplied(_ roleIDs: [String], _ x: any SQLExecutor) async throws -> [RoleRef] {
        guard !roleIDs.isEmpty else { return [] }
        let implications = Dictionary(grouping: try await store.impliedRoles(x), by: \.prior).mapValues { $0.map(\.implied) }
        var seen = Set<String>()
        var queue = roleIDs
        while let id = queue.popLast() {
            guard seen.insert(id).inserted else { continue }
            queue.append(contentsOf: implications[id] ?? [])
        }
        // Domain-specific roles only carry implications; they never reach a token themselves.
        let roles = try await store.roles(x)
        return roles.filter { seen.contains($0.id) && $0.domainID == nil }.map { RoleRef(id: $0.id, name: $0.name) }.sorted { $0.name < $1.name }
    }

    // MARK: Grants

    func checkGrantTargets(_ grant: Assignment, _ x: any SQLExecutor) async throws {
        switch grant.actor {
        case .user(let id): _ = try await requireUser(id, x)
        case .group(let id): _ = try await requireGroup(id, x)
        }
        switch grant.target {
        case .project(let id): _ = try await requireProject(id, x)
        case .domain(let id): _ = try await requireDomain(id, x)
        case .system: break
        }
        _ = try await requireRole(grant.roleID, x)
    }

    func grantTarget(_ grant: Assignment) -> [String: String] {
        var t: [String: String] = ["target.role.id": grant.roleID]
        switch grant.target {
        case .project(let id): t["target.project.id"] = id
        case .domain(let id): t["target.domain.id"] = id
        case .system: t["target.system"] = "all"
        }
        return t
    }

    public func createGrant(_ grant: Assignment, caller: AuthContext) async throws {
        try authorize(grant.target == .system ? "identity:create_system_grant" : "identity:create_grant", caller, target: grantTarget(grant))
        try await db.transaction { x in
            try await self.checkGrantTargets(grant, x)
            if try await !self.store.exists(grant, x) { try await self.store.insert(grant, x) }
        }
        didChange()
    }

    public func checkGrant(_ grant: Assignment, caller: AuthContext) async throws {
        try authorize(grant.target == .system ? "identity:check_system_grant" : "identity:check_grant", caller, target: grantTarget(grant))
        try await checkGrantTargets(grant, db)
        guard try await store.exists(grant, db) else {
            throw APIError.notFound("Could not find role assignment with role: \(grant.roleID), actor: \(grant.actor.id), target: \(grant.target.id).")
        }
    }

    public func deleteGrant(_ grant: Assignment, caller: AuthContext) async throws {
        try authorize(grant.target == .system ? "identity:revoke_system_grant" : "identity:revoke_grant", caller, target: grantTarget(grant))
        let events = try await db.transaction { x -> [RevocationEvent] in
            try await self.checkGrantTargets(grant, x)
            guard try await self.store.delete(grant, x) else {
                throw APIError.notFound("Could not find role assignment with role: \(grant.roleID), actor: \(grant.actor.id), target: \(grant.target.id).")
            }
            let users: [String]
            switch grant.actor {
            case .user(let id): users = [id]
            case .group(let id): users = try await self.store.members(ofGroup: id, x).map(\.id)
            }
            let now = Self.now()
            let events = users.map { user -> RevocationEvent in
                switch grant.target {
                case .project(let p) where !grant.inherited: return RevocationEvent(userID: user, projectID: p, issuedBefore: now, revokedAt: now)
                default: return RevocationEvent(userID: user, issuedBefore: now, revokedAt: now)
                }
            }
            try await self.revoke(events, x)
            return events
        }
        didChange(revoked: events)
    }

    /// Roles granted directly to the actor on the target (`GET /v3/projects/{p}/users/{u}/roles`).
    public func listGrants(actor: AssignmentActor, target: AssignmentTarget, inherited: Bool, caller: AuthContext) async throws -> [Role] {
        let probe = Assignment(actor: actor, target: target, roleID: "", inherited: inherited)
        try authorize(target == .system ? "identity:list_system_grants" : "identity:list_grants", caller, target: grantTarget(probe))
        switch actor {
        case .user(let id): _ = try await requireUser(id, db)
        case .group(let id): _ = try await requireGroup(id, db)
        }
        switch target {
        case .project(let id): _ = try await requireProject(id, db)
        case .domain(let id): _ = try await requireDomain(id, db)
        case .system: break
        }
        let ids = Set(try await store.assignments(db).filter { $0.actor == actor && $0.target == target && $0.inherited == inherited }.map(\.roleID))
        return try await store.roles(db).filter { ids.contains($0.id) }
    }

    // MARK: Role assignment listing

    public struct AssignmentFilter: Sendable {
        public var userID: String?
        public var groupID: String?
        public var roleID: String?
        public var projectID: String?
        public var domainID: String?
        public var system = false
        public var inheritedOnly = false
        public var effective = false
        public var includeNames = false
        public var includeSubtree = false
        public init() {}
    }

    /// One row of `GET /v3/role_assignments`, with the assignment it came from.
    struct AssignmentRow {
        var actor: AssignmentActor
        var target: AssignmentTarget
        var roleID: String
        var inherited: Bool
        /// The stored assignment that produced this row (differs from the row when expanded).
        var source: Assignment
        var viaGroup: String?
        var priorRole: String?
    }

    public func listRoleAssignments(_ filter: AssignmentFilter, caller: AuthContext, links: Links) async throws -> [JSON] {
        var target: [String: String] = [:]
        if let p = filter.projectID { target["target.project.id"] = p }
        if let d = filter.domainID { target["target.domain.id"] = d }
        if let u = filter.userID { target["target.user.id"] = u }
        try authorize("identity:list_role_assignments", caller, target: target)

        let x = db
        let stored = try await store.assignments(x)
        let projects = try await store.projects(x)
        var rows = stored.map { AssignmentRow(actor: $0.actor, target: $0.target, roleID: $0.roleID, inherited: $0.inherited, source: $0) }

        if filter.effective {
            // Groups become their members.
            var expanded: [AssignmentRow] = []
            for row in rows {
                if case .group(let gid) = row.actor {
                    for member in try await store.members(ofGroup: gid, x) {
                        var r = row
                        r.actor = .user(member.id)
                        r.viaGroup = gid
                        expanded.append(r)
                    }
                } else {
                    expanded.append(row)
                }
            }
            // Inherited assignments become assignments on each project below their target.
            rows = []
            for row in expanded {
                guard row.inherited else { rows.append(row); continue }
                for project in projects where isBelow(project, row.target, projects) {
                    var r = row
                    r.target = .project(project.id)
                    r.inherited = false
                    rows.append(r)
                }
            }
            // Implied roles join the roles that imply them.
            let implications = Dictionary(grouping: try await store.impliedRoles(x), by: \.prior).mapValues { $0.map(\.implied) }
            var withImplied: [AssignmentRow] = []
            for row in rows {
                withImplied.append(row)
                var seen: Set<String> = [row.roleID]
                var queue = [row.roleID]
                while let current = queue.popLast() {
                    for implied in implications[current] ?? [] where seen.insert(implied).inserted {
                        var r = row
                        r.roleID = implied
                        r.priorRole = current
                        withImplied.append(r)
                        queue.append(implied)
                    }
                }
            }
            // As in tokens, domain-specific roles show only through what they imply.
            let domainRoles = Set(try await store.roles(x).filter { $0.domainID != nil }.map(\.id))
            rows = withImplied.filter { !domainRoles.contains($0.roleID) }
        }

        var subtree: Set<String> = []
        if let p = filter.projectID {
            subtree = [p]
            if filter.includeSubtree {
                for project in projects where isBelow(project, .project(p), projects) { subtree.insert(project.id) }
            }
        }
        rows = rows.filter { r in
            if let u = filter.userID, r.actor != .user(u) { return false }
            if let g = filter.groupID, r.actor != .group(g) { return false }
            if let role = filter.roleID, r.roleID != role { return false }
            if filter.projectID != nil {
                guard case .project(let id) = r.target, subtree.contains(id) else { return false }
            }
            if let d = filter.domainID, r.target != .domain(d) { return false }
            if filter.system, r.target != .system { return false }
            if filter.inheritedOnly, !r.inherited { return false }
            return true
        }

        // Names, looked up once each.
        let roles = Dictionary(try await store.roles(x).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let domains = Dictionary(try await store.domains(x).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let projectByID = Dictionary(projects.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let users = filter.includeNames ? Dictionary(try await store.users(x).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a }) : [:]
        let groups = filter.includeNames ? Dictionary(try await store.groups(x).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a }) : [:]
        func domainRef(_ id: String) -> JSON { ["id": .string(id), "name": .optional(domains[id]?.name)] }

        var seenRows = Set<String>()
        var out: [JSON] = []
        for r in rows {
            let key = "\(r.actor)|\(r.target)|\(r.roleID)|\(r.inherited)|\(r.viaGroup ?? "")|\(r.priorRole ?? "")"
            guard seenRows.insert(key).inserted else { continue }
            var role: [String: JSON] = ["id": .string(r.roleID)]
            if filter.includeNames, let found = roles[r.roleID] {
                role["name"] = .string(found.name)
                if let d = found.domainID { role["domain"] = domainRef(d) }
            }
            var entry: [String: JSON] = ["role": .object(role)]
            switch r.actor {
            case .user(let id):
                var user: [String: JSON] = ["id": .string(id)]
                if filter.includeNames, let u = users[id] { user["name"] = .string(u.name); user["domain"] = domainRef(u.domainID) }
                entry["user"] = .object(user)
            case .group(let id):
                var group: [String: JSON] = ["id": .string(id)]
                if filter.includeNames, let g = groups[id] { group["name"] = .string(g.name); group["domain"] = domainRef(g.domainID) }
                entry["group"] = .object(group)
            }
            var scope: [String: JSON] = [:]
            switch r.target {
            case .project(let id):
                var project: [String: JSON] = ["id": .string(id)]
                if filter.includeNames, let p = projectByID[id] { project["name"] = .string(p.name); project["domain"] = domainRef(p.domainID) }
                scope["project"] = .object(project)
            case .domain(let id):
                var domain: [String: JSON] = ["id": .string(id)]
                if filter.includeNames { domain["name"] = .optional(domains[id]?.name) }
                scope["domain"] = .object(domain)
            case .system:
                scope["system"] = ["all": true]
            }
            if r.inherited { scope["OS-INHERIT:inherited_to"] = "projects" }
            entry["scope"] = .object(scope)
            var entryLinks: [String: JSON] = ["assignment": .string(assignmentURL(r.source, links))]
            if let g = r.viaGroup, case .user(let u) = r.actor { entryLinks["membership"] = .string("\(links.v3)/groups/\(g)/users/\(u)") }
            if let prior = r.priorRole { entryLinks["prior_role"] = .string("\(links.v3)/roles/\(prior)") }
            entry["links"] = .object(entryLinks)
            out.append(.object(entry))
        }
        return out
    }

    /// True when `project` is inside `target` (a domain, or a project's subtree, excluding itself).
    func isBelow(_ project: Project, _ target: AssignmentTarget, _ all: [Project]) -> Bool {
        switch target {
        case .domain(let d): return project.domainID == d
        case .system: return false
        case .project(let ancestor):
            let byID = Dictionary(all.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            var parent = project.parentID
            var hops = 0
            while let p = parent, hops < 64 {
                if p == ancestor { return true }
                parent = byID[p]?.parentID
                hops += 1
            }
            return false
        }
    }

    func assignmentURL(_ a: Assignment, _ links: Links) -> String {
        let actor: String
        switch a.actor {
        case .user(let id): actor = "users/\(id)"
        case .group(let id): actor = "groups/\(id)"
        }
        switch a.target {
        case .system: return "\(links.v3)/system/\(actor)/roles/\(a.roleID)"
        case .project(let id):
            return a.inherited ? "\(links.v3)/OS-INHERIT/projects/\(id)/\(actor)/roles/\(a.roleID)/inherited_to_projects"
                : "\(links.v3)/projects/\(id)/\(actor)/roles/\(a.roleID)"
        case .domain(let id):
            return a.inherited ? "\(links.v3)/OS-INHERIT/domains/\(id)/\(actor)/roles/\(a.roleID)/inherited_to_projects"
                : "\(links.v3)/domains/\(id)/\(actor)/roles/\(a.roleID)"
        }
    }

    // MARK: Implied roles

    public func createImpliedRole(prior: String, implied: String, caller: AuthContext) async throws -> (Role, Role) {
        try authorize("identity:create_implied_role", caller)
        let result = try await db.transaction { x -> (Role, Role) in
            let p = try await self.requireRole(prior, x)
            let i = try await self.requireRole(implied, x)
            if i.name.lowercased() == "admin" {
                throw APIError.forbidden("\(i.name) role is not allowed to be implied.")
            }
            // Refuse a cycle: the prior role must not be reachable from the implied one.
            let reachable = try await self.expandImplied([i.id], x)
            if reachable.contains(where: { $0.id == p.id }) {
                throw APIError.forbidden("Role \(p.name) implying \(i.name) would create a cycle of implied roles.")
            }
            if try await x.first("SELECT prior_role_id FROM identity_implied_role WHERE prior_role_id = ? AND implied_role_id = ?", .text(p.id), .text(i.id)) == nil {
                try await x.execute("INSERT INTO identity_implied_role (prior_role_id, implied_role_id) VALUES (?, ?)", [.text(p.id), .text(i.id)])
            }
            return (p, i)
        }
        didChange()
        return result
    }

    public func getImpliedRole(prior: String, implied: String, caller: AuthContext) async throws -> (Role, Role) {
        try authorize("identity:get_implied_role", caller)
        let p = try await requireRole(prior, db)
        let i = try await requireRole(implied, db)
        guard try await db.first("SELECT prior_role_id FROM identity_implied_role WHERE prior_role_id = ? AND implied_role_id = ?", .text(p.id), .text(i.id)) != nil else {
            throw APIError.notFound("\(p.id) does not imply \(i.id).")
        }
        return (p, i)
    }

    public func deleteImpliedRole(prior: String, implied: String, caller: AuthContext) async throws {
        try authorize("identity:delete_implied_role", caller)
        let removed = try await db.execute("DELETE FROM identity_implied_role WHERE prior_role_id = ? AND implied_role_id = ?", [.text(prior), .text(implied)])
        guard removed > 0 else { throw APIError.notFound("\(prior) does not imply \(implied).") }
        // Roles are recomputed at validation, so forgetting cached validations is enough.
        didChange()
    }

    /// Each prior role with the roles it implies directly: every rule, or one role's (possibly empty) list.
    public func listImpliedRoles(prior: String?, caller: AuthContext) async throws -> [(Role, [Role])] {
        try authorize(prior == nil ? "identity:list_role_inference_rules" : "identity:list_implied_roles", caller)
        let roles = Dictionary(try await store.roles(db).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let grouped = Dictionary(grouping: try await store.impliedRoles(db), by: \.prior)
        if let prior {
            guard let role = roles[prior] else { throw APIError.notFound("Could not find role: \(prior).") }
            return [(role, (grouped[prior] ?? []).compactMap { roles[$0.implied] })]
        }
        return grouped.keys.sorted().compactMap { key in
            roles[key].map { ($0, grouped[key]!.compactMap { roles[$0.implied] }) }
        }
    }
}
