import Foundation
import NimbusCore
import NimbusStore

/// SQL for the identity service. Every method takes an executor so that the service can group
/// several of them in one transaction; none checks policy or validates input.
struct IdentityStore: Sendable {
    let db: any Database

    // MARK: JSON columns

    static func encode(_ object: [String: JSON]) -> SQLValue { .text(JSON.object(object).serialized()) }
    static func encode(_ strings: [String]) -> SQLValue { .text(JSON.array(strings.map { .string($0) }).serialized()) }
    static func object(_ row: Row, _ column: String) -> [String: JSON] {
        (try? JSON.parse(row.string(column)))?.objectValue ?? [:]
    }
    static func strings(_ row: Row, _ column: String) -> [String] {
        (try? JSON.parse(row.string(column)))?.arrayValue?.compactMap(\.stringValue) ?? []
    }

    // MARK: Domains

    static func domain(_ r: Row) -> Domain {
        Domain(id: r.string("id"), name: r.string("name"), description: r.string("description"), enabled: r.bool("enabled"),
               tags: strings(r, "tags"), extra: object(r, "extra"))
    }

    func insert(_ d: Domain, _ x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO identity_domain (id, name, description, enabled, tags, extra) VALUES (?, ?, ?, ?, ?, ?)",
                            [.text(d.id), .text(d.name), .text(d.description), .bool(d.enabled), Self.encode(d.tags), Self.encode(d.extra)])
    }

    func update(_ d: Domain, _ x: any SQLExecutor) async throws {
        try await x.execute("UPDATE identity_domain SET name = ?, description = ?, enabled = ?, tags = ?, extra = ? WHERE id = ?",
                            [.text(d.name), .text(d.description), .bool(d.enabled), Self.encode(d.tags), Self.encode(d.extra), .text(d.id)])
    }

    func domain(id: String, _ x: any SQLExecutor) async throws -> Domain? {
        try await x.query("SELECT * FROM identity_domain WHERE id = ?", [.text(id)]).first.map(Self.domain)
    }

    func domain(name: String, _ x: any SQLExecutor) async throws -> Domain? {
        try await x.query("SELECT * FROM identity_domain WHERE name = ?", [.text(name)]).first.map(Self.domain)
    }

    func domains(_ x: any SQLExecutor) async throws -> [Domain] {
        try await x.query("SELECT * FROM identity_domain ORDER BY name", []).map(Self.domain)
    }

    // MARK: Projects

    static func project(_ r: Row) -> Project {
        Project(id: r.string("id"), name: r.string("name"), domainID: r.string("domain_id"), parentID: r.optionalString("parent_id"),
                description: r.string("description"), enabled: r.bool("enabled"), tags: strings(r, "tags"), extra: object(r, "extra"))
    }

    func insert(_ p: Project, _ x: any SQLExecutor) async throws {
        try await x.execute("""
            INSERT INTO identity_project (id, name, domain_id, parent_id, description, enabled, tags, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """, [.text(p.id), .text(p.name), .text(p.domainID), .optional(p.parentID), .text(p.description), .bool(p.enabled),
                  Self.encode(p.tags), Self.encode(p.extra)])
    }

    func update(_ p: Project, _ x: any SQLExecutor) async throws {
        try await x.execute("UPDATE identity_project SET name = ?, description = ?, enabled = ?, tags = ?, extra = ? WHERE id = ?",
                            [.text(p.name), .text(p.description), .bool(p.enabled), Self.encode(p.tags), Self.encode(p.extra), .text(p.id)])
    }

    func project(id: String, _ x: any SQLExecutor) async throws -> Project? {
        try await x.query("SELECT * FROM identity_project WHERE id = ?", [.text(id)]).first.map(Self.project)
    }

    func project(name: String, domainID: String, _ x: any SQLExecutor) async throws -> Project? {
        try await x.query("SELECT * FROM identity_project WHERE name = ? AND domain_id = ?", [.text(name), .text(domainID)]).first.map(Self.project)
    }

    func projects(_ x: any SQLExecutor) async throws -> [Project] {
        try await x.query("SELECT * FROM identity_project ORDER BY name", []).map(Self.project)
    }

    func hasChildren(project id: String, _ x: any SQLExecutor) async throws -> Bool {
        try await x.first("SELECT id FROM identity_project WHERE parent_id = ?", .text(id)) != nil
    }

    // MARK: Users

    static func user(_ r: Row) -> User {
        User(id: r.string("id"), name: r.string("name"), domainID: r.string("domain_id"), enabled: r.bool("enabled"),
             passwordHash: r.optionalString("password_hash"), defaultProjectID: r.optionalString("default_project_id"),
             description: r.optionalString("description"), extra: object(r, "extra"))
    }

    func insert(_ u: User, _ x: any SQLExecutor) async throws {
        try await x.execute("""
            INSERT INTO identity_user (id, name, domain_id, enabled, password_hash, default_project_id, description, extra, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [.text(u.id), .text(u.name), .text(u.domainID), .bool(u.enabled), .optional(u.passwordHash), .optional(u.defaultProjectID),
                  .optional(u.description), Self.encode(u.extra), .real(Date().timeIntervalSince1970)])
    }

    func update(_ u: User, _ x: any SQLExecutor) async throws {
        try await x.execute("""
            UPDATE identity_user SET name = ?, enabled = ?, password_hash = ?, default_project_id = ?, description = ?, extra = ? WHERE id = ?
            """, [.text(u.name), .bool(u.enabled), .optional(u.passwordHash), .optional(u.defaultProjectID), .optional(u.description),
                  Self.encode(u.extra), .text(u.id)])
    }

    func user(id: String, _ x: any SQLExecutor) async throws -> User? {
        try await x.query("SELECT * FROM identity_user WHERE id = ?", [.text(id)]).first.map(Self.user)
    }

    func user(name: String, domainID: String, _ x: any SQLExecutor) async throws -> User? {
        try await x.query("SELECT * FROM identity_user WHERE name = ? AND domain_id = ?", [.text(name), .text(domainID)]).first.map(Self.user)
    }

    func users(_ x: any SQLExecutor) async throws -> [User] {
        try await x.query("SELECT * FROM identity_user ORDER BY name", []).map(Self.user)
    }

    // MARK: Groups

    static func group(_ r: Row) -> Group {
        Group(id: r.string("id"), name: r.string("name"), domainID: r.string("domain_id"), description: r.string("description"),
              extra: object(r, "extra"))
    }

    func insert(_ g: Group, _ x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO identity_group (id, name, domain_id, description, extra) VALUES (?, ?, ?, ?, ?)",
                            [.text(g.id), .text(g.name), .text(g.domainID), .text(g.description), Self.encode(g.extra)])
    }

    func update(_ g: Group, _ x: any SQLExecutor) async throws {
        try await x.execute("UPDATE identity_group SET name = ?, description = ?, extra = ? WHERE id = ?",
                            [.text(g.name), .text(g.description), Self.encode(g.extra), .text(g.id)])
    }

    func group(id: String, _ x: any SQLExecutor) async throws -> Group? {
        try await x.query("SELECT * FROM identity_group WHERE id = ?", [.text(id)]).first.map(Self.group)
    }

    func groups(_ x: any SQLExecutor) async throws -> [Group] {
        try await x.query("SELECT * FROM identity_group ORDER BY name", []).map(Self.group)
    }

    func groups(ofUser userID: String, _ x: any SQLExecutor) async throws -> [Group] {
        try await x.query("""
            SELECT g.* FROM identity_group g JOIN identity_group_member m ON m.group_id = g.id WHERE m.user_id = ? ORDER BY g.name
            """, [.text(userID)]).map(Self.group)
    }

    func members(ofGroup groupID: String, _ x: any SQLExecutor) async throws -> [User] {
        try await x.query("""
            SELECT u.* FROM identity_user u JOIN identity_group_member m ON m.user_id = u.id WHERE m.group_id = ? ORDER BY u.name
            """, [.text(groupID)]).map(Self.user)
    }

    // MARK: Roles

    static func role(_ r: Row) -> Role {
        let domain = r.string("domain_id")
        return Role(id: r.string("id"), name: r.string("name"), domainID: domain.isEmpty ? nil : domain,
                    description: r.optionalString("description"), extra: object(r, "extra"))
    }

    func insert(_ role: Role, _ x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO identity_role (id, name, domain_id, description, extra) VALUES (?, ?, ?, ?, ?)",
                            [.text(role.id), .text(role.name), .text(role.domainID ?? ""), .optional(role.description), Self.encode(role.extra)])
    }

    func update(_ role: Role, _ x: any SQLExecutor) async throws {
        try await x.execute("UPDATE identity_role SET name = ?, description = ?, extra = ? WHERE id = ?",
                            [.text(role.name), .optional(role.description), Self.encode(role.extra), .text(role.id)])
    }

    func role(id: String, _ x: any SQLExecutor) async throws -> Role? {
        try await x.query("SELECT * FROM identity_role WHERE id = ?", [.text(id)]).first.map(Self.role)
    }

    func roles(_ x: any SQLExecutor) async throws -> [Role] {
        try await x.query("SELECT * FROM identity_role ORDER BY name", []).map(Self.role)
    }

    func impliedRoles(_ x: any SQLExecutor) async throws -> [(prior: String, implied: String)] {
        try await x.query("SELECT prior_role_id, implied_role_id FROM identity_implied_role ORDER BY prior_role_id, implied_role_id", [])
            .map { ($0.string("prior_role_id"), $0.string("implied_role_id")) }
    }

    // MARK: Assignments

    static func assignment(_ r: Row) -> Assignment {
        let kind = r.string("kind")
        let actorID = r.string("actor_id"), targetID = r.string("target_id")
        let actor: AssignmentActor = kind.hasPrefix("user") ? .user(actorID) : .group(actorID)
        let target: AssignmentTarget = kind.hasSuffix("project") ? .project(targetID) : kind.hasSuffix("domain") ? .domain(targetID) : .system
        return Assignment(actor: actor, target: target, roleID: r.string("role_id"), inherited: r.bool("inherited"))
    }

    func assignments(_ x: any SQLExecutor) async throws -> [Assignment] {
        try await x.query("SELECT * FROM identity_assignment", []).map(Self.assignment)
    }

    /// Direct assignments of the user and of the user's groups.
    func assignments(forUser userID: String, _ x: any SQLExecutor) async throws -> [Assignment] {
        try await x.query("""
            SELECT * FROM identity_assignment WHERE actor_id = ?
               OR actor_id IN (SELECT group_id FROM identity_group_member WHERE user_id = ?)
            """, [.text(userID), .text(userID)]).map(Self.assignment)
    }

    func insert(_ a: Assignment, _ x: any SQLExecutor) async throws {
        try await x.execute("""
            INSERT INTO identity_assignment (kind, actor_id, target_id, role_id, inherited) VALUES (?, ?, ?, ?, ?)
            """, [.text(a.kind), .text(a.actor.id), .text(a.target.id), .text(a.roleID), .bool(a.inherited)])
    }

    func delete(_ a: Assignment, _ x: any SQLExecutor) async throws -> Bool {
        try await x.execute("DELETE FROM identity_assignment WHERE kind = ? AND actor_id = ? AND target_id = ? AND role_id = ? AND inherited = ?",
                            [.text(a.kind), .text(a.actor.id), .text(a.target.id), .text(a.roleID), .bool(a.inherited)]) > 0
    }

    func exists(_ a: Assignment, _ x: any SQLExecutor) async throws -> Bool {
        try await x.first("SELECT role_id FROM identity_assignment WHERE kind = ? AND actor_id = ? AND target_id = ? AND role_id = ? AND inherited = ?",
                          .text(a.kind), .text(a.actor.id), .text(a.target.id), .text(a.roleID), .bool(a.inherited)) != nil
    }

    // MARK: Catalog

    static func region(_ r: Row) -> Region {
        Region(id: r.string("id"), description: r.string("description"), parentRegionID: r.optionalString("parent_region_id"),
               extra: object(r, "extra"))
    }

    func regions(_ x: any SQLExecutor) async throws -> [Region] {
        try await x.query("SELECT * FROM identity_region ORDER BY id", []).map(Self.region)
    }

    func region(id: String, _ x: any SQLExecutor) async throws -> Region? {
        try await x.query("SELECT * FROM identity_region WHERE id = ?", [.text(id)]).first.map(Self.region)
    }

    func insert(_ r: Region, _ x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO identity_region (id, description, parent_region_id, extra) VALUES (?, ?, ?, ?)",
                            [.text(r.id), .text(r.description), .optional(r.parentRegionID), Self.encode(r.extra)])
    }

    func update(_ r: Region, _ x: any SQLExecutor) async throws {
        try await x.execute("UPDATE identity_region SET description = ?, parent_region_id = ?, extra = ? WHERE id = ?",
                            [.text(r.description), .optional(r.parentRegionID), Self.encode(r.extra), .text(r.id)])
    }

    static func service(_ r: Row) -> CatalogService {
        CatalogService(id: r.string("id"), type: r.string("type"), enabled: r.bool("enabled"), extra: object(r, "extra"))
    }

    func services(_ x: any SQLExecutor) async throws -> [CatalogService] {
        try await x.query("SELECT * FROM identity_service ORDER BY type, id", []).map(Self.service)
    }

    func service(id: String, _ x: any SQLExecutor) async throws -> CatalogService? {
        try await x.query("SELECT * FROM identity_service WHERE id = ?", [.text(id)]).first.map(Self.service)
    }

    func insert(_ s: CatalogService, _ x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO identity_service (id, type, enabled, extra) VALUES (?, ?, ?, ?)",
                            [.text(s.id), .text(s.type), .bool(s.enabled), Self.encode(s.extra)])
    }

    func update(_ s: CatalogService, _ x: any SQLExecutor) async throws {
        try await x.execute("UPDATE identity_service SET type = ?, enabled = ?, extra = ? WHERE id = ?",
                            [.text(s.type), .bool(s.enabled), Self.encode(s.extra), .text(s.id)])
    }

    static func endpoint(_ r: Row) -> Endpoint {
        Endpoint(id: r.string("id"), serviceID: r.string("service_id"), interface: r.string("interface"), url: r.string("url"),
                 regionID: r.optionalString("region_id"), enabled: r.bool("enabled"), extra: object(r, "extra"))
    }

    func endpoints(_ x: any SQLExecutor) async throws -> [Endpoint] {
        try await x.query("SELECT * FROM identity_endpoint ORDER BY service_id, interface, id", []).map(Self.endpoint)
    }

    func endpoint(id: String, _ x: any SQLExecutor) async throws -> Endpoint? {
        try await x.query("SELECT * FROM identity_endpoint WHERE id = ?", [.text(id)]).first.map(Self.endpoint)
    }

    func insert(_ e: Endpoint, _ x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO identity_endpoint (id, service_id, interface, url, region_id, enabled, extra) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            [.text(e.id), .text(e.serviceID), .text(e.interface), .text(e.url), .optional(e.regionID), .bool(e.enabled), Self.encode(e.extra)])
    }

    func update(_ e: Endpoint, _ x: any SQLExecutor) async throws {
        try await x.execute("UPDATE identity_endpoint SET service_id = ?, interface = ?, url = ?, region_id = ?, enabled = ?, extra = ? WHERE id = ?",
                            [.text(e.serviceID), .text(e.interface), .text(e.url), .optional(e.regionID), .bool(e.enabled), Self.encode(e.extra), .text(e.id)])
    }

    // MARK: Unified limits

    static func registeredLimit(_ r: Row) -> RegisteredLimit {
        RegisteredLimit(id: r.string("id"), serviceID: r.string("service_id"), regionID: r.optionalString("region_id"),
                        resourceName: r.string("resource_name"), defaultLimit: r.int("default_limit"), description: r.optionalString("description"))
    }

    func insert(_ l: RegisteredLimit, _ x: any SQLExecutor) async throws {
        try await x.execute("""
            INSERT INTO identity_registered_limit (id, service_id, region_id, resource_name, default_limit, description) VALUES (?, ?, ?, ?, ?, ?)
            """, [.text(l.id), .text(l.serviceID), .optional(l.regionID), .text(l.resourceName), .integer(l.defaultLimit), .optional(l.description)])
    }

    func update(_ l: RegisteredLimit, _ x: any SQLExecutor) async throws {
        try await x.execute("""
            UPDATE identity_registered_limit SET service_id = ?, region_id = ?, resource_name = ?, default_limit = ?, description = ? WHERE id = ?
            """, [.text(l.serviceID), .optional(l.regionID), .text(l.resourceName), .integer(l.defaultLimit), .optional(l.description), .text(l.id)])
    }

    func registeredLimit(id: String, _ x: any SQLExecutor) async throws -> RegisteredLimit? {
        try await x.query("SELECT * FROM identity_registered_limit WHERE id = ?", [.text(id)]).first.map(Self.registeredLimit)
    }

    /// The registered limit a new limit hangs on: same service, resource and region (both
    /// region-less counts as the same region).
    func registeredLimit(serviceID: String, regionID: String?, resourceName: String, _ x: any SQLExecutor) async throws -> RegisteredLimit? {
        try await x.query("""
            SELECT * FROM identity_registered_limit WHERE service_id = ? AND COALESCE(region_id, '') = ? AND resource_name = ?
            """, [.text(serviceID), .text(regionID ?? ""), .text(resourceName)]).first.map(Self.registeredLimit)
    }

    func registeredLimits(_ x: any SQLExecutor) async throws -> [RegisteredLimit] {
        try await x.query("SELECT * FROM identity_registered_limit ORDER BY resource_name, id", []).map(Self.registeredLimit)
    }

    func hasLimits(registeredLimitID: String, _ x: any SQLExecutor) async throws -> Bool {
        try await x.first("SELECT id FROM identity_limit WHERE registered_limit_id = ?", .text(registeredLimitID)) != nil
    }

    /// A limit joined with its registered limit, which holds its service, region and resource.
    static let limitSelect = """
        SELECT l.*, r.service_id, r.region_id, r.resource_name
        FROM identity_limit l JOIN identity_registered_limit r ON r.id = l.registered_limit_id
        """

    static func limit(_ r: Row) -> Limit {
        Limit(id: r.string("id"), registeredLimitID: r.string("registered_limit_id"), projectID: r.optionalString("project_id"),
              domainID: r.optionalString("domain_id"), serviceID: r.string("service_id"), regionID: r.optionalString("region_id"),
              resourceName: r.string("resource_name"), resourceLimit: r.int("resource_limit"), description: r.optionalString("description"))
    }

    func insert(_ l: Limit, _ x: any SQLExecutor) async throws {
        try await x.execute("""
            INSERT INTO identity_limit (id, registered_limit_id, project_id, domain_id, resource_limit, description) VALUES (?, ?, ?, ?, ?, ?)
            """, [.text(l.id), .text(l.registeredLimitID), .optional(l.projectID), .optional(l.domainID), .integer(l.resourceLimit),
                  .optional(l.description)])
    }

    /// Only the value and the description of a limit change; the rest is what it hangs on.
    func update(_ l: Limit, _ x: any SQLExecutor) async throws {
        try await x.execute("UPDATE identity_limit SET resource_limit = ?, description = ? WHERE id = ?",
                            [.integer(l.resourceLimit), .optional(l.description), .text(l.id)])
    }

    func limit(id: String, _ x: any SQLExecutor) async throws -> Limit? {
        try await x.query(Self.limitSelect + " WHERE l.id = ?", [.text(id)]).first.map(Self.limit)
    }

    /// Limits matching every given filter (`service_id`, `region_id`, `resource_name`,
    /// `project_id`, `domain_id`), and, with `visibleInDomain`, only those of that domain or of
    /// its projects.
    func limits(_ filters: [String: String], visibleInDomain domainID: String? = nil, _ x: any SQLExecutor) async throws -> [Limit] {
        var clauses: [String] = []
        var binds: [SQLValue] = []
        for (key, column) in [("service_id", "r.service_id"), ("region_id", "r.region_id"), ("resource_name", "r.resource_name"),
                              ("project_id", "l.project_id"), ("domain_id", "l.domain_id")] {
            if let value = filters[key] {
                clauses.append("\(column) = ?")
                binds.append(.text(value))
            }
        }
        if let domainID {
            clauses.append("(l.domain_id = ? OR l.project_id IN (SELECT id FROM identity_project WHERE domain_id = ?))")
            binds += [.text(domainID), .text(domainID)]
        }
        let filter = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
        return try await x.query(Self.limitSelect + filter + " ORDER BY r.resource_name, l.id", binds).map(Self.limit)
    }

    /// A project's limit on a resource of the service of a catalog type: its own limit, else
    /// the registered default; nil when none is registered. A registered limit for `regionID`
    /// wins over a region-less one; among services sharing a type, the lowest id decides, so
    /// the answer is stable.
    func effectiveLimit(serviceType: String, resourceName: String, projectID: String, regionID: String,
                        _ x: any SQLExecutor) async throws -> Int64? {
        guard let row = try await x.first("""
            SELECT r.default_limit, l.resource_limit FROM identity_registered_limit r
            JOIN identity_service s ON s.id = r.service_id
            LEFT JOIN identity_limit l ON l.registered_limit_id = r.id AND l.project_id = ?
            WHERE s.type = ? AND r.resource_name = ? AND (r.region_id IS NULL OR r.region_id = ?)
            ORDER BY CASE WHEN r.region_id IS NULL THEN 1 ELSE 0 END, s.id
            LIMIT 1
            """, .text(projectID), .text(serviceType), .text(resourceName), .text(regionID)) else { return nil }
        return row.optionalInt("resource_limit") ?? row.int("default_limit")
    }

    // MARK: Application credentials

    static func appCredential(_ r: Row) -> ApplicationCredential {
        let roles = (try? JSON.parse(r.string("roles")))?.arrayValue?.compactMap { item -> RoleRef? in
            guard let id = item["id"]?.stringValue, let name = item["name"]?.stringValue else { return nil }
            return RoleRef(id: id, name: name)
        } ?? []
        return ApplicationCredential(
            id: r.string("id"), name: r.string("name"), userID: r.string("user_id"), projectID: r.string("project_id"),
            secretHash: r.string("secret_hash"), description: r.optionalString("description"),
            expiresAt: r.optionalString("expires_at") == nil ? nil : Date(timeIntervalSince1970: r.double("expires_at")),
            unrestricted: r.bool("unrestricted"), roles: roles, createdAt: Date(timeIntervalSince1970: r.double("created_at")))
    }

    func insert(_ c: ApplicationCredential, _ x: any SQLExecutor) async throws {
        let roles = JSON.array(c.roles.map { ["id": .string($0.id), "name": .string($0.name)] }).serialized()
        try await x.execute("""
            INSERT INTO identity_app_credential (id, name, user_id, project_id, secret_hash, description, expires_at, unrestricted, roles, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [.text(c.id), .text(c.name), .text(c.userID), .text(c.projectID), .text(c.secretHash), .optional(c.description),
                  c.expiresAt.map { .real($0.timeIntervalSince1970) } ?? .null, .bool(c.unrestricted), .text(roles),
                  .real(c.createdAt.timeIntervalSince1970)])
    }

    func appCredential(id: String, _ x: any SQLExecutor) async throws -> ApplicationCredential? {
        guard var credential = try await x.query("SELECT * FROM identity_app_credential WHERE id = ?", [.text(id)]).first.map(Self.appCredential)
        else { return nil }
        credential.accessRules = try await x.query("""
            SELECT r.* FROM identity_access_rule r JOIN identity_app_credential_access_rule l ON l.access_rule_id = r.id
            WHERE l.app_credential_id = ? ORDER BY l.position
            """, [.text(id)]).map(Self.accessRule)
        return credential
    }

    func appCredentials(userID: String, _ x: any SQLExecutor) async throws -> [ApplicationCredential] {
        var credentials = try await x.query("SELECT * FROM identity_app_credential WHERE user_id = ? ORDER BY name", [.text(userID)])
            .map(Self.appCredential)
        var rules: [String: [AccessRule]] = [:]
        for row in try await x.query("""
            SELECT l.app_credential_id AS credential_id, r.* FROM identity_access_rule r
            JOIN identity_app_credential_access_rule l ON l.access_rule_id = r.id WHERE r.user_id = ? ORDER BY l.position
            """, [.text(userID)]) {
            rules[row.string("credential_id"), default: []].append(Self.accessRule(row))
        }
        for i in credentials.indices { credentials[i].accessRules = rules[credentials[i].id] ?? [] }
        return credentials
    }

    // MARK: Access rules

    static func accessRule(_ r: Row) -> AccessRule {
        AccessRule(id: r.string("id"), service: r.string("service"), method: r.string("method"), path: r.string("path"))
    }

    func accessRules(userID: String, _ x: any SQLExecutor) async throws -> [AccessRule] {
        try await x.query("SELECT * FROM identity_access_rule WHERE user_id = ? ORDER BY id", [.text(userID)]).map(Self.accessRule)
    }

    func accessRule(id: String, userID: String, _ x: any SQLExecutor) async throws -> AccessRule? {
        try await x.query("SELECT * FROM identity_access_rule WHERE id = ? AND user_id = ?", [.text(id), .text(userID)]).first.map(Self.accessRule)
    }

    func accessRule(userID: String, service: String, method: String, path: String, _ x: any SQLExecutor) async throws -> AccessRule? {
        try await x.query("SELECT * FROM identity_access_rule WHERE user_id = ? AND service = ? AND method = ? AND path = ?",
                          [.text(userID), .text(service), .text(method), .text(path)]).first.map(Self.accessRule)
    }

    func insert(_ rule: AccessRule, userID: String, _ x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO identity_access_rule (id, user_id, service, method, path) VALUES (?, ?, ?, ?, ?)",
                            [.text(rule.id), .text(userID), .text(rule.service), .text(rule.method), .text(rule.path)])
    }

    func link(appCredentialID: String, accessRuleID: String, position: Int, _ x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO identity_app_credential_access_rule (app_credential_id, access_rule_id, position) VALUES (?, ?, ?)",
                            [.text(appCredentialID), .text(accessRuleID), .integer(Int64(position))])
    }

    // MARK: Revocation events

    func insert(_ e: RevocationEvent, _ x: any SQLExecutor) async throws {
        try await x.execute("""
            INSERT INTO identity_revocation (id, user_id, project_id, domain_id, audit_id, app_credential_id, trust_id, issued_before, revoked_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [.text(e.id), .text(e.userID), .text(e.projectID), .text(e.domainID), .text(e.auditID), .text(e.appCredentialID),
                  .text(e.trustID), .real(e.issuedBefore), .real(e.revokedAt)])
    }

    func revocations(since: Double, _ x: any SQLExecutor) async throws -> [RevocationEvent] {
        try await x.query("SELECT * FROM identity_revocation WHERE revoked_at >= ?", [.real(since)]).map {
            RevocationEvent(id: $0.string("id"), userID: $0.string("user_id"), projectID: $0.string("project_id"),
                            domainID: $0.string("domain_id"), auditID: $0.string("audit_id"),
                            appCredentialID: $0.string("app_credential_id"), trustID: $0.string("trust_id"),
                            issuedBefore: $0.double("issued_before"),
                            revokedAt: $0.double("revoked_at"))
        }
    }

    func pruneRevocations(before: Double, _ x: any SQLExecutor) async throws {
        try await x.execute("DELETE FROM identity_revocation WHERE revoked_at < ?", [.real(before)])
    }

    // MARK: Trusts

    static func trust(_ r: Row, roleIDs: [String]) -> Trust {
        Trust(id: r.string("id"), trustorUserID: r.string("trustor_user_id"), trusteeUserID: r.string("trustee_user_id"),
              projectID: r.optionalString("project_id"), impersonation: r.bool("impersonation"),
              expiresAt: r.optionalDouble("expires_at").map { Date(timeIntervalSince1970: $0) },
              remainingUses: r.optionalInt("remaining_uses").map { Int($0) }, redelegatedTrustID: r.optionalString("redelegated_trust_id"),
              redelegationCount: Int(r.int("redelegation_count")), roleIDs: roleIDs, extra: object(r, "extra"))
    }

    func insert(_ t: Trust, _ x: any SQLExecutor) async throws {
        try await x.execute("""
            INSERT INTO identity_trust (id, trustor_user_id, trustee_user_id, project_id, impersonation, expires_at, remaining_uses,
                                        redelegated_trust_id, redelegation_count, extra, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [.text(t.id), .text(t.trustorUserID), .text(t.trusteeUserID), .optional(t.projectID), .bool(t.impersonation),
                  t.expiresAt.map { .real($0.timeIntervalSince1970) } ?? .null, t.remainingUses.map { .integer(Int64($0)) } ?? .null,
                  .optional(t.redelegatedTrustID), .integer(Int64(t.redelegationCount)), Self.encode(t.extra), .real(Date().timeIntervalSince1970)])
        for role in t.roleIDs {
            try await x.execute("INSERT INTO identity_trust_role (trust_id, role_id) VALUES (?, ?)", [.text(t.id), .text(role)])
        }
    }

    /// The stored trust, whatever its expiry and remaining uses.
    func trust(id: String, _ x: any SQLExecutor) async throws -> Trust? {
        guard let row = try await x.query("SELECT * FROM identity_trust WHERE id = ?", [.text(id)]).first else { return nil }
        let roles = try await x.query("SELECT role_id FROM identity_trust_role WHERE trust_id = ? ORDER BY role_id", [.text(id)])
        return Self.trust(row, roleIDs: roles.map { $0.string("role_id") })
    }

    /// Trusts matching every given filter (roles left empty: lists do not show them).
    func trusts(trustor: String?, trustee: String?, _ x: any SQLExecutor) async throws -> [Trust] {
        var sql = "SELECT * FROM identity_trust WHERE 1 = 1"
        var binds: [SQLValue] = []
        if let trustor { sql += " AND trustor_user_id = ?"; binds.append(.text(trustor)) }
        if let trustee { sql += " AND trustee_user_id = ?"; binds.append(.text(trustee)) }
        return try await x.query(sql + " ORDER BY created_at, id", binds).map { Self.trust($0, roleIDs: []) }
    }

    /// Uses one of a limited trust's remaining uses; false when none is left. Unlimited trusts
    /// always succeed. One conditional update, so concurrent issues cannot overspend.
    func consumeTrustUse(_ id: String, _ x: any SQLExecutor) async throws -> Bool {
        let limited = try await x.execute("""
            UPDATE identity_trust SET remaining_uses = remaining_uses - 1 WHERE id = ? AND remaining_uses IS NOT NULL AND remaining_uses > 0
            """, [.text(id)])
        if limited > 0 { return true }
        return try await x.query("SELECT id FROM identity_trust WHERE id = ? AND remaining_uses IS NULL", [.text(id)]).first != nil
    }

    /// Deletes the trusts chosen by `whereClause` and every trust redelegated from them;
    /// returns the ids deleted.
    func deleteTrusts(where whereClause: String, _ binds: [SQLValue], _ x: any SQLExecutor) async throws -> [String] {
        var pending = try await x.query("SELECT id FROM identity_trust WHERE \(whereClause)", binds).map { $0.string("id") }
        var deleted: [String] = []
        while let id = pending.popLast() {
            guard !deleted.contains(id) else { continue }
            pending += try await x.query("SELECT id FROM identity_trust WHERE redelegated_trust_id = ?", [.text(id)]).map { $0.string("id") }
            try await x.execute("DELETE FROM identity_trust_role WHERE trust_id = ?", [.text(id)])
            try await x.execute("DELETE FROM identity_trust WHERE id = ?", [.text(id)])
            deleted.append(id)
        }
        return deleted
    }
}
