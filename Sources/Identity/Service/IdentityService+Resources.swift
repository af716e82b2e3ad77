import Foundation
import NimbusCore
import NimbusStore

/// Domains, projects, users, groups and roles.
extension IdentityService {
    /// Filters from a list request's query string.
    public typealias Query = [String: String]

    static func matches(_ query: Query, name: String, enabled: Bool? = nil, domainID: String? = nil) -> Bool {
        if let n = query["name"], n != name { return false }
        if let wanted = query.boolean("enabled"), let enabled, wanted != enabled { return false }
        if let d = query["domain_id"], let domainID, d != domainID { return false }
        return true
    }

    /// The domain a create request means when it names none: the caller's domain scope, the
    /// domain of the caller's project, else the configured default (Keystone's rule).
    func impliedDomain(_ caller: AuthContext) -> String {
        switch caller.scope {
        case .domain(let id, _): return id
        case .project(_, _, let domainID, _): return domainID
        default: return defaultDomainID
        }
    }

    static func validateTags(_ tags: [String]?) throws -> [String]? {
        guard let tags else { return nil }
        if tags.count > 80 { throw APIError.badRequest("Invalid input for field 'tags': at most 80 tags are allowed.") }
        for tag in tags where tag.isEmpty || tag.count > 255 || tag.contains("/") || tag.contains(",") {
            throw APIError.badRequest("Invalid input for field 'tags': '\(tag)' must be 1-255 characters without '/' or ','.")
        }
        var unique: [String] = []
        for t in tags where !unique.contains(t) { unique.append(t) }
        return unique
    }

    // MARK: Domains

    static let domainFields: Set<String> = ["id", "name", "description", "enabled", "tags", "options", "links", "explicit_domain_id",
                                            "is_domain", "domain_id", "parent_id"]

    public func createDomain(_ input: JSONInput, caller: AuthContext) async throws -> Domain {
        try authorize("identity:create_domain", caller)
        let id = try input.optionalString("explicit_domain_id", maxLength: 64) ?? Identifiers.hexID()
        let domain = Domain(id: id, name: try input.requiredString("name", maxLength: 64), description: try input.optionalString("description", maxLength: 65535) ?? "",
                            enabled: try input.bool("enabled") ?? true, tags: try Self.validateTags(try input.stringArray("tags")) ?? [],
                            extra: input.extras(excluding: Self.domainFields))
        try await conflict("domain") { try await store.insert(domain, db) }
        return domain
    }

    public func getDomain(_ id: String, caller: AuthContext) async throws -> Domain {
        try authorize("identity:get_domain", caller, target: ["target.domain.id": id])
        return try await requireDomain(id, db)
    }

    public func listDomains(_ query: Query, caller: AuthContext) async throws -> [Domain] {
        try authorize("identity:list_domains", caller)
        return try await store.domains(db).filter { Self.matches(query, name: $0.name, enabled: $0.enabled) }
    }

    public func updateDomain(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> Domain {
        try authorize("identity:update_domain", caller, target: ["target.domain.id": id])
        let (domain, events) = try await db.transaction { x -> (Domain, [RevocationEvent]) in
            var d = try await self.requireDomain(id, x)
            let wasEnabled = d.enabled
            if let name = try input.optionalString("name", maxLength: 64, allowEmpty: false) { d.name = name }
            if let description = try input.optionalString("description", maxLength: 65535) { d.description = description }
            if let enabled = try input.bool("enabled") { d.enabled = enabled }
            if let tags = try Self.validateTags(try input.stringArray("tags")) { d.tags = tags }
            for (k, v) in input.extras(excluding: Self.domainFields) { d.extra[k] = v }
            try await self.conflict("domain") { try await self.store.update(d, x) }
            var events: [RevocationEvent] = []
            if wasEnabled && !d.enabled {
                events = [RevocationEvent(domainID: id, issuedBefore: Self.now(), revokedAt: Self.now())]
                try await self.revoke(events, x)
            }
            return (d, events)
        }
        didChange(revoked: events)
        return domain
    }

    public func deleteDomain(_ id: String, caller: AuthContext) async throws {
        try authorize("identity:delete_domain", caller, target: ["target.domain.id": id])
        let events = try await db.transaction { x -> [RevocationEvent] in
            let d = try await self.requireDomain(id, x)
            if d.enabled { throw APIError.forbidden("Cannot delete a domain that is enabled, please disable it first.") }
            // Children first: projects deepest first so parent references never dangle.
            let projects = try await self.store.projects(x).filter { $0.domainID == id }
            var remaining = projects
            while !remaining.isEmpty {
                let parents = Set(remaining.compactMap(\.parentID))
                let leaves = remaining.filter { !parents.contains($0.id) }
                if leaves.isEmpty { break }
                for p in leaves {
                    try await x.execute("DELETE FROM identity_assignment WHERE target_id = ?", [.text(p.id)])
                    try await x.execute("DELETE FROM identity_limit WHERE project_id = ?", [.text(p.id)])
                    try await x.execute("DELETE FROM identity_project WHERE id = ?", [.text(p.id)])
                }
                remaining.removeAll { leaves.map(\.id).contains($0.id) }
            }
            for table in ["identity_user", "identity_group"] {
                for row in try await x.query("SELECT id FROM \(table) WHERE domain_id = ?", [.text(id)]) {
                    try await x.execute("DELETE FROM identity_assignment WHERE actor_id = ?", [.text(row.string("id"))])
                }
            }
            try await x.execute("DELETE FROM identity_user WHERE domain_id = ?", [.text(id)])
            try await x.execute("DELETE FROM identity_group WHERE domain_id = ?", [.text(id)])
            try await x.execute("DELETE FROM identity_role WHERE domain_id = ?", [.text(id)])
            try await x.execute("DELETE FROM identity_assignment WHERE target_id = ?", [.text(id)])
            try await x.execute("DELETE FROM identity_limit WHERE domain_id = ?", [.text(id)])
            try await x.execute("DELETE FROM identity_domain WHERE id = ?", [.text(id)])
            let events = [RevocationEvent(domainID: id, issuedBefore: Self.now(), revokedAt: Self.now())]
            try await self.revoke(events, x)
            return events
        }
        didChange(revoked: events)
        limitCache.invalidate()
    }

    // MARK: Projects

    static let projectFields: Set<String> = ["id", "name", "domain_id", "parent_id", "description", "enabled", "is_domain", "tags", "options", "links"]

    public func createProject(_ input: JSONInput, caller: AuthContext) async throws -> Project {
        let name = try input.requiredString("name", maxLength: 64, allowEmpty: false)
        if try input.bool("is_domain") == true {
            // A project acting as a domain is a domain (Keystone stores them in one table).
            if try input.optionalString("parent_id") != nil || input.optionalString("domain_id") != nil {
                throw APIError.badRequest("A project acting as a domain has no parent and no domain_id.")
            }
            return try await createDomain(input, caller: caller).asProject
        }
        let parentID = try input.optionalString("parent_id", maxLength: 64)
        let requestedDomain = try input.optionalString("domain_id", maxLength: 64)
        try authorize("identity:create_project", caller, target: ["target.project.domain_id": requestedDomain ?? impliedDomain(caller)])
        let project = try await db.transaction { x -> Project in
            var domainID = requestedDomain
            var parent: Project?
            if let parentID {
                // A parent given as the domain's id means a top-level project.
                if let domain = try await self.store.domain(id: parentID, x) {
                    if let domainID, domainID != domain.id { throw APIError.badRequest("The parent domain differs from 'domain_id'.") }
                    domainID = domain.id
                } else {
                    guard let p = try await self.store.project(id: parentID, x) else {
                        throw APIError.notFound("Could not find project: \(parentID).")
                    }
                    if let domainID, domainID != p.domainID {
                        throw APIError.badRequest("Cannot create project, since it specifies its domain_id \(domainID), but specifies a parent in a different domain (\(p.domainID)).")
                    }
                    parent = p
                    domainID = p.domainID
                }
            }
            let domain = domainID ?? self.impliedDomain(caller)
            guard try await self.store.domain(id: domain, x) != nil else { throw APIError.notFound("Could not find domain: \(domain).") }
            let project = Project(id: Identifiers.hexID(), name: name, domainID: domain, parentID: parent?.id,
                                  description: try input.optionalString("description", maxLength: 65535) ?? "",
                                  enabled: try input.bool("enabled") ?? true, tags: try Self.validateTags(try input.stringArray("tags")) ?? [],
                                  extra: input.extras(excluding: Self.projectFields))
            try await self.conflict("project") { try await self.store.insert(project, x) }
            return project
        }
        return project
    }

    public func getProject(_ id: String, caller: AuthContext) async throws -> Project {
        if try await store.project(id: id, db) == nil, try await store.domain(id: id, db) != nil {
            return try await getDomain(id, caller: caller).asProject
        }
        let project = try await requireProject(id, db)
        try authorize("identity:get_project", caller, target: ["target.project.id": id, "target.project.domain_id": project.domainID])
        return project
    }

    public func listProjects(_ query: Query, caller: AuthContext) async throws -> [Project] {
        try authorize("identity:list_projects", caller, target: ["target.domain_id": query["domain_id"] ?? ""])
        let anyTags = query["tags-any"]?.split(separator: ",").map(String.init)
        let allTags = query["tags"]?.split(separator: ",").map(String.init)
        let notTags = query["not-tags"]?.split(separator: ",").map(String.init)
        let notAnyTags = query["not-tags-any"]?.split(separator: ",").map(String.init)
        let candidates = query.flag("is_domain") ? try await store.domains(db).map(\.asProject) : try await store.projects(db)
        return candidates.filter { p in
            guard Self.matches(query, name: p.name, enabled: p.enabled, domainID: p.isDomain ? nil : p.domainID) else { return false }
            if let parent = query["parent_id"], parent != (p.parentID ?? p.domainID) { return false }
            if let allTags, !allTags.allSatisfy(p.tags.contains) { return false }
            if let anyTags, !anyTags.contains(where: p.tags.contains) { return false }
            if let notTags, notTags.allSatisfy(p.tags.contains) { return false }
            if let notAnyTags, notAnyTags.contains(where: p.tags.contains) { return false }
            return true
        }
    }

    public func updateProject(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> Project {
        if try await store.project(id: id, db) == nil, try await store.domain(id: id, db) != nil {
            return try await updateDomain(id, input, caller: caller).asProject
        }
        let current = try await requireProject(id, db)
        try authorize("identity:update_project", caller, target: ["target.project.id": id, "target.project.domain_id": current.domainID])
        if let domain = try input.optionalString("domain_id"), domain != current.domainID {
            throw APIError.badRequest("Update of `domain_id` is not allowed.")
        }
        if try input.bool("is_domain") == true { throw APIError.badRequest("Update of `is_domain` is not allowed.") }
        if let parent = try input.optionalString("parent_id"), parent != (current.parentID ?? current.domainID) {
            throw APIError.forbidden("Update of `parent_id` is not allowed.")
        }
        let (project, events) = try await db.transaction { x -> (Project, [RevocationEvent]) in
            var p = try await self.requireProject(id, x)
            let wasEnabled = p.enabled
            if let name = try input.optionalString("name", maxLength: 64, allowEmpty: false) { p.name = name }
            if let description = try input.optionalString("description", maxLength: 65535) { p.description = description }
            if let enabled = try input.bool("enabled") { p.enabled = enabled }
            if let tags = try Self.validateTags(try input.stringArray("tags")) { p.tags = tags }
            for (k, v) in input.extras(excluding: Self.projectFields) { p.extra[k] = v }
            try await self.conflict("project") { try await self.store.update(p, x) }
            var events: [RevocationEvent] = []
            if wasEnabled && !p.enabled {
                events = [RevocationEvent(projectID: id, issuedBefore: Self.now(), revokedAt: Self.now())]
                try await self.revoke(events, x)
            }
            return (p, events)
        }
        didChange(revoked: events)
        return project
    }

    public func setProjectTags(_ id: String, _ tags: [String]?, adding: String? = nil, removing: String? = nil, caller: AuthContext) async throws -> [String] {
        let current = try await requireProject(id, db)
        try authorize("identity:update_project_tags", caller, target: ["target.project.id": id, "target.project.domain_id": current.domainID])
        return try await db.transaction { x in
            var p = try await self.requireProject(id, x)
            if let tags { p.tags = try Self.validateTags(tags) ?? [] }
            if let adding { p.tags = try Self.validateTags(p.tags + [adding]) ?? [] }
            if let removing {
                guard p.tags.contains(removing) else { throw APIError.notFound("Tag \(removing) not found on project \(id).") }
                p.tags.removeAll { $0 == removing }
            }
            try await self.store.update(p, x)
            return p.tags
        }
    }

    public func deleteProject(_ id: String, caller: AuthContext) async throws {
        if try await store.project(id: id, db) == nil, try await store.domain(id: id, db) != nil {
            return try await deleteDomain(id, caller: caller)
        }
        let current = try await requireProject(id, db)
        try authorize("identity:delete_project", caller, target: ["target.project.id": id, "target.project.domain_id": current.domainID])
        let events = try await db.transaction { x -> [RevocationEvent] in
            _ = try await self.requireProject(id, x)
            if try await self.store.hasChildren(project: id, x) {
                throw APIError.forbidden("Cannot delete the project \(id) since it is not a leaf in the hierarchy.")
            }
            try await x.execute("DELETE FROM identity_assignment WHERE target_id = ? AND kind LIKE '%project'", [.text(id)])
            // A project's limits go with it, as in Keystone.
            try await x.execute("DELETE FROM identity_limit WHERE project_id = ?", [.text(id)])
            try await x.execute("DELETE FROM identity_project WHERE id = ?", [.text(id)])
            // Trusts on the project go with it, as in Keystone.
            let trusts = try await self.store.deleteTrusts(where: "project_id = ?", [.text(id)], x)
            let events = [RevocationEvent(projectID: id, issuedBefore: Self.now(), revokedAt: Self.now())]
            try await self.revoke(events, x)
            return try await self.revokeTrusts(trusts, x) + events
        }
        didChange(revoked: events)
        limitCache.invalidate()
    }

    // MARK: Users

    static let userFields: Set<String> = ["id", "name", "domain_id", "password", "enabled", "default_project_id", "description", "options", "links", "password_expires_at"]

    public func createUser(_ input: JSONInput, caller: AuthContext) async throws -> User {
        let name = try input.requiredString("name", maxLength: 255, allowEmpty: false)
        let domainID = try input.optionalString("domain_id", maxLength: 64) ?? impliedDomain(caller)
        try authorize("identity:create_user", caller, target: ["target.user.domain_id": domainID])
        let password = try input.optionalString("password", maxLength: 4096)
        let hash = try password.map { try hasher.hash($0) }
        let user = User(id: Identifiers.hexID(), name: name, domainID: domainID, enabled: try input.bool("enabled") ?? true,
                        passwordHash: hash, defaultProjectID: try input.optionalString("default_project_id", maxLength: 64),
                        description: try input.optionalString("description", maxLength: 65535), extra: input.extras(excluding: Self.userFields))
        try await db.transaction { x in
            guard try await self.store.domain(id: domainID, x) != nil else { throw APIError.notFound("Could not find domain: \(domainID).") }
            try await self.conflict("user") { try await self.store.insert(user, x) }
        }
        return user
    }

    public func getUser(_ id: String, caller: AuthContext) async throws -> User {
        let user = try await store.user(id: id, db)
        try authorize("identity:get_user", caller, target: ["target.user.id": id, "user_id": id, "target.user.domain_id": user?.domainID ?? ""])
        guard let user else { throw APIError.notFound("Could not find user: \(id).") }
        return user
    }

    public func listUsers(_ query: Query, caller: AuthContext) async throws -> [User] {
        try authorize("identity:list_users", caller, target: ["target.domain_id": query["domain_id"] ?? ""])
        return try await store.users(db).filter { Self.matches(query, name: $0.name, enabled: $0.enabled, domainID: $0.domainID) }
    }

    public func updateUser(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> User {
        let current = try await requireUser(id, db)
        try authorize("identity:update_user", caller, target: ["target.user.id": id, "target.user.domain_id": current.domainID])
        if let domain = try input.optionalString("domain_id"), domain != current.domainID {
            throw APIError.badRequest("Update of `domain_id` is not allowed.")
        }
        let newHash = try (try input.optionalString("password", maxLength: 4096)).map { try hasher.hash($0) }
        let (user, events) = try await db.transaction { x -> (User, [RevocationEvent]) in
            var u = try await self.requireUser(id, x)
            let wasEnabled = u.enabled
            if let name = try input.optionalString("name", maxLength: 255, allowEmpty: false) { u.name = name }
            if let enabled = try input.bool("enabled") { u.enabled = enabled }
            if input.has("default_project_id") { u.defaultProjectID = try input.optionalString("default_project_id", maxLength: 64) }
            if input.has("description") { u.description = try input.optionalString("description", maxLength: 65535) }
            if let newHash { u.passwordHash = newHash }
            for (k, v) in input.extras(excluding: Self.userFields) { u.extra[k] = v }
            try await self.conflict("user") { try await self.store.update(u, x) }
            var events: [RevocationEvent] = []
            if (wasEnabled && !u.enabled) || newHash != nil {
                events = [RevocationEvent(userID: id, issuedBefore: Self.now(), revokedAt: Self.now())]
                try await self.revoke(events, x)
            }
            return (u, events)
        }
        didChange(revoked: events)
        return user
    }

    /// Self-service password change: the original password authenticates the change.
    public func changePassword(_ id: String, _ input: JSONInput, caller: AuthContext) async throws {
        try authorize("identity:change_password", caller, target: ["target.user.id": id, "user_id": id])
        let original = try input.requiredString("original_password", maxLength: 4096, allowEmpty: true)
        let new = try input.requiredString("password", maxLength: 4096, allowEmpty: false)
        let user = try await requireUser(id, db)
        guard user.enabled, let hash = user.passwordHash, hasher.verify(original, hash: hash) else {
            throw APIError.unauthorized("The request you have made requires authentication.")
        }
        let newHash = try hasher.hash(new)
        let events = try await db.transaction { x -> [RevocationEvent] in
            var u = try await self.requireUser(id, x)
            u.passwordHash = newHash
            try await self.store.update(u, x)
            let events = [RevocationEvent(userID: id, issuedBefore: Self.now(), revokedAt: Self.now())]
            try await self.revoke(events, x)
            return events
        }
        didChange(revoked: events)
    }

    public func deleteUser(_ id: String, caller: AuthContext) async throws {
        let current = try await requireUser(id, db)
        try authorize("identity:delete_user", caller, target: ["target.user.id": id, "target.user.domain_id": current.domainID])
        let events = try await db.transaction { x -> [RevocationEvent] in
            _ = try await self.requireUser(id, x)
            try await x.execute("DELETE FROM identity_assignment WHERE actor_id = ?", [.text(id)])
            try await x.execute("DELETE FROM identity_user WHERE id = ?", [.text(id)])
            // The trusts the user gave or received go with it, as in Keystone.
            let trusts = try await self.store.deleteTrusts(where: "trustor_user_id = ? OR trustee_user_id = ?", [.text(id), .text(id)], x)
            let events = [RevocationEvent(userID: id, issuedBefore: Self.now(), revokedAt: Self.now())]
            try await self.revoke(events, x)
            return try await self.revokeTrusts(trusts, x) + events
        }
        didChange(revoked: events)
    }

    public func listUserGroups(_ id: String, caller: AuthContext) async throws -> [Group] {
        try authorize("identity:list_groups_for_user", caller, target: ["target.user.id": id, "user_id": id])
        _ = try await requireUser(id, db)
        return try await store.groups(ofUser: id, db)
    }

    /// Projects where the user has a role (`GET /v3/users/{id}/projects`, `/v3/auth/projects`).
    public func projectsForUser(_ id: String) async throws -> [Project] {
        let assignments = try await store.assignments(forUser: id, db)
        let projects = try await store.projects(db)
        let direct = Set(assignments.filter { !$0.inherited }.compactMap { a -> String? in
            if case .project(let p) = a.target { return p }
            return nil
        })
        let inheritedTargets = assignments.filter(\.inherited).map(\.target)
        return projects.filter { p in
            p.enabled && (direct.contains(p.id) || inheritedTargets.contains { isBelow(p, $0, projects) })
        }
    }

    public func listUserProjects(_ id: String, caller: AuthContext) async throws -> [Project] {
        try authorize("identity:list_user_projects", caller, target: ["target.user.id": id, "user_id": id])
        _ = try await requireUser(id, db)
        return try await projectsForUser(id)
    }

    /// Domains where the user has a role (`/v3/auth/domains`).
    public func domainsForUser(_ id: String) async throws -> [Domain] {
        let ids = Set(try await store.assignments(forUser: id, db).compactMap { a -> String? in
            if case .domain(let d) = a.target, !a.inherited { return d }
            return nil
        })
        return try await store.domains(db).filter { ids.contains($0.id) && $0.enabled }
    }

    // MARK: Groups

    static let groupFields: Set<String> = ["id", "name", "domain_id", "description", "links"]

    public func createGroup(_ input: JSONInput, caller: AuthContext) async throws -> Group {
        let domainID = try input.optionalString("domain_id", maxLength: 64) ?? impliedDomain(caller)
        try authorize("identity:create_group", caller, target: ["target.group.domain_id": domainID])
        let group = Group(id: Identifiers.hexID(), name: try input.requiredString("name", maxLength: 64, allowEmpty: false), domainID: domainID,
                          description: try input.optionalString("description", maxLength: 65535) ?? "", extra: input.extras(excluding: Self.groupFields))
        try await db.transaction { x in
            guard try await self.store.domain(id: domainID, x) != nil else { throw APIError.notFound("Could not find domain: \(domainID).") }
            try await self.conflict("group") { try await self.store.insert(group, x) }
        }
        return group
    }

    public func getGroup(_ id: String, caller: AuthContext) async throws -> Group {
        try authorize("identity:get_group", caller, target: ["target.group.id": id])
        return try await requireGroup(id, db)
    }

    public func listGroups(_ query: Query, caller: AuthContext) async throws -> [Group] {
        try authorize("identity:list_groups", caller, target: ["target.domain_id": query["domain_id"] ?? ""])
        return try await store.groups(db).filter { Self.matches(query, name: $0.name, domainID: $0.domainID) }
    }

    public func updateGroup(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> Group {
        try authorize("identity:update_group", caller, target: ["target.group.id": id])
        return try await db.transaction { x in
            var g = try await self.requireGroup(id, x)
            if let domain = try input.optionalString("domain_id"), domain != g.domainID {
                throw APIError.badRequest("Update of `domain_id` is not allowed.")
            }
            if let name = try input.optionalString("name", maxLength: 64, allowEmpty: false) { g.name = name }
            if let description = try input.optionalString("description", maxLength: 65535) { g.description = description }
            for (k, v) in input.extras(excluding: Self.groupFields) { g.extra[k] = v }
            try await self.conflict("group") { try await self.store.update(g, x) }
            return g
        }
    }

    public func deleteGroup(_ id: String, caller: AuthContext) async throws {
        try authorize("identity:delete_group", caller, target: ["target.group.id": id])
        let events = try await db.transaction { x -> [RevocationEvent] in
            _ = try await self.requireGroup(id, x)
            let hadRoles = try await x.first("SELECT role_id FROM identity_assignment WHERE actor_id = ?", .text(id)) != nil
            let members = try await self.store.members(ofGroup: id, x)
            try await x.execute("DELETE FROM identity_assignment WHERE actor_id = ?", [.text(id)])
            try await x.execute("DELETE FROM identity_group WHERE id = ?", [.text(id)])
            let events = hadRoles ? members.map { RevocationEvent(userID: $0.id, issuedBefore: Self.now(), revokedAt: Self.now()) } : []
            try await self.revoke(events, x)
            return events
        }
        didChange(revoked: events)
    }

    public func listGroupMembers(_ id: String, _ query: Query, caller: AuthContext) async throws -> [User] {
        try authorize("identity:list_users_in_group", caller, target: ["target.group.id": id])
        _ = try await requireGroup(id, db)
        return try await store.members(ofGroup: id, db).filter { Self.matches(query, name: $0.name, enabled: $0.enabled, domainID: $0.domainID) }
    }

    public func addGroupMember(group: String, user: String, caller: AuthContext) async throws {
        try authorize("identity:add_user_to_group", caller, target: ["target.group.id": group, "target.user.id": user])
        try await db.transaction { x in
            _ = try await self.requireGroup(group, x)
            _ = try await self.requireUser(user, x)
            if try await x.first("SELECT user_id FROM identity_group_member WHERE group_id = ? AND user_id = ?", .text(group), .text(user)) == nil {
                try await x.execute("INSERT INTO identity_group_member (group_id, user_id) VALUES (?, ?)", [.text(group), .text(user)])
            }
        }
        didChange()
    }

    public func checkGroupMember(group: String, user: String, caller: AuthContext) async throws {
        try authorize("identity:check_user_in_group", caller, target: ["target.group.id": group, "target.user.id": user])
        _ = try await requireGroup(group, db)
        _ = try await requireUser(user, db)
        guard try await db.first("SELECT user_id FROM identity_group_member WHERE group_id = ? AND user_id = ?", .text(group), .text(user)) != nil else {
            throw APIError.notFound("User \(user) is not a member of group \(group).")
        }
    }

    public func removeGroupMember(group: String, user: String, caller: AuthContext) async throws {
        try authorize("identity:remove_user_from_group", caller, target: ["target.group.id": group, "target.user.id": user])
        let events = try await db.transaction { x -> [RevocationEvent] in
            _ = try await self.requireGroup(group, x)
            _ = try await self.requireUser(user, x)
            guard try await x.execute("DELETE FROM identity_group_member WHERE group_id = ? AND user_id = ?", [.text(group), .text(user)]) > 0 else {
                throw APIError.notFound("User \(user) is not a member of group \(group).")
            }
            let events = [RevocationEvent(userID: user, issuedBefore: Self.now(), revokedAt: Self.now())]
            try await self.revoke(events, x)
            return events
        }
        didChange(revoked: events)
    }

    // MARK: Roles

    static let roleFields: Set<String> = ["id", "name", "domain_id", "description", "options", "links"]

    public func createRole(_ input: JSONInput, caller: AuthContext) async throws -> Role {
        let domainID = try input.optionalString("domain_id", maxLength: 64)
        try authorize(domainID == nil ? "identity:create_role" : "identity:create_domain_role", caller, target: ["target.role.domain_id": domainID ?? ""])
        let role = Role(id: Identifiers.hexID(), name: try input.requiredString("name", maxLength: 255, allowEmpty: false), domainID: domainID,
                        description: try input.optionalString("description", maxLength: 255), extra: input.extras(excluding: Self.roleFields))
        try await db.transaction { x in
            if let domainID, try await self.store.domain(id: domainID, x) == nil { throw APIError.notFound("Could not find domain: \(domainID).") }
            try await self.conflict("role") { try await self.store.insert(role, x) }
        }
        return role
    }

    public func getRole(_ id: String, caller: AuthContext) async throws -> Role {
        try authorize("identity:get_role", caller, target: ["target.role.id": id])
        return try await requireRole(id, db)
    }

    /// Global roles, or a domain's roles when `domain_id` is given.
    public func listRoles(_ query: Query, caller: AuthContext) async throws -> [Role] {
        try authorize("identity:list_roles", caller)
        return try await store.roles(db).filter { r in
            if let n = query["name"], n != r.name { return false }
            return r.domainID == query["domain_id"]
        }
    }

    public func updateRole(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> Role {
        try authorize("identity:update_role", caller, target: ["target.role.id": id])
        let role = try await db.transaction { x -> Role in
            var r = try await self.requireRole(id, x)
            if let domain = try input.optionalString("domain_id"), domain != r.domainID {
                throw APIError.badRequest("Update of `domain_id` is not allowed.")
            }
            if let name = try input.optionalString("name", maxLength: 255, allowEmpty: false) { r.name = name }
            if input.has("description") { r.description = try input.optionalString("description", maxLength: 255) }
            for (k, v) in input.extras(excluding: Self.roleFields) { r.extra[k] = v }
            try await self.conflict("role") { try await self.store.update(r, x) }
            return r
        }
        didChange()
        return role
    }

    public func deleteRole(_ id: String, caller: AuthContext) async throws {
        try authorize("identity:delete_role", caller, target: ["target.role.id": id])
        try await db.transaction { x in
            _ = try await self.requireRole(id, x)
            try await x.execute("DELETE FROM identity_assignment WHERE role_id = ?", [.text(id)])
            try await x.execute("DELETE FROM identity_implied_role WHERE prior_role_id = ? OR implied_role_id = ?", [.text(id), .text(id)])
            try await x.execute("DELETE FROM identity_role WHERE id = ?", [.text(id)])
        }
        // Roles are computed at validation: tokens lose the role as soon as the cache is cleared.
        didChange()
    }
}
