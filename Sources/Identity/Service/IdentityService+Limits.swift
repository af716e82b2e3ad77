import Foundation
import NimbusCore
import NimbusStore
import Synchronization

/// Keystone's unified limits with its flat enforcement model: registered limits (a service's
/// default limit on a resource, `/v3/registered_limits`) and limits (one project's or domain's
/// override, `/v3/limits`). Other services read a project's effective limit in-process through
/// `ProjectLimitLookup`.
extension IdentityService: ProjectLimitLookup {
    /// What Keystone's schema allows for a limit value: -1 (unlimited) up to the largest signed
    /// 32-bit integer, what its SQL column holds.
    static let limitRange: ClosedRange<Int64> = -1...Int64(Int32.max)
    static let registeredLimitFields: Set<String> = ["service_id", "region_id", "resource_name", "default_limit", "description"]
    static let limitFields: Set<String> = ["service_id", "region_id", "resource_name", "resource_limit", "description", "project_id", "domain_id"]
    static let limitUpdateFields: Set<String> = ["resource_limit", "description"]

    // MARK: Lookup

    /// Region: Nimbus serves one region (`IdentityService.region`, RegionOne), so a registered
    /// limit for that region and a region-less one both apply, the region's own winning. Domain
    /// limits do not apply to a domain's projects, as in Keystone's flat model. Answers are
    /// cached for a few seconds and forgotten at once on any local limit change.
    public func limit(serviceType: String, resource: String, projectID: String) async throws -> Int64? {
        let key = LimitCache.Key(serviceType: serviceType, resource: resource, projectID: projectID)
        let now = Self.now()
        let generation = limitCache.generation
        if let hit = limitCache.get(key, now: now) { return hit.value }
        let value = try await store.effectiveLimit(serviceType: serviceType, resourceName: resource, projectID: projectID,
                                                   regionID: Self.region, db)
        limitCache.put(key, value, generation: generation, now: now)
        return value
    }

    // MARK: Checks shared by both kinds

    /// A limit's service and region must exist; Keystone answers 400 naming the field.
    func checkReferences(serviceID: String, regionID: String?, in kind: String, _ x: any SQLExecutor) async throws {
        guard try await store.service(id: serviceID, x) != nil else {
            throw APIError.badRequest("Expecting to find service_id in \(kind): no service \(serviceID) exists.")
        }
        if let regionID, try await store.region(id: regionID, x) == nil {
            throw APIError.badRequest("Expecting to find region_id in \(kind): no region \(regionID) exists.")
        }
    }

    // MARK: Registered limits

    func requireRegisteredLimit(_ id: String, _ x: any SQLExecutor) async throws -> RegisteredLimit {
        guard let l = try await store.registeredLimit(id: id, x) else { throw APIError.notFound("Could not find registered limit for \(id).") }
        return l
    }

    /// All or none: the batch is one transaction.
    public func createRegisteredLimits(_ inputs: [JSONInput], caller: AuthContext) async throws -> [RegisteredLimit] {
        try authorize("identity:create_registered_limits", caller)
        let limits = try inputs.map { input in
            try input.rejectUnknown(Self.registeredLimitFields)
            return RegisteredLimit(id: Identifiers.hexID(), serviceID: try input.requiredString("service_id", maxLength: 64),
                                   regionID: try input.optionalString("region_id", maxLength: 255, allowEmpty: false),
                                   resourceName: try input.requiredString("resource_name", maxLength: 255),
                                   defaultLimit: try input.requiredInt("default_limit", in: Self.limitRange),
                                   description: try input.optionalString("description", maxLength: 255))
        }
        defer { limitCache.invalidate() }
        try await db.transaction { x in
            for l in limits { try await self.checkReferences(serviceID: l.serviceID, regionID: l.regionID, in: "registered_limit", x) }
            for l in limits { try await self.conflict("registered_limit") { try await self.store.insert(l, x) } }
        }
        return limits
    }

    public func getRegisteredLimit(_ id: String, caller: AuthContext) async throws -> RegisteredLimit {
        try authorize("identity:get_registered_limit", caller)
        return try await requireRegisteredLimit(id, db)
    }

    public func listRegisteredLimits(_ query: Query, caller: AuthContext) async throws -> [RegisteredLimit] {
        try authorize("identity:list_registered_limits", caller)
        return try await store.registeredLimits(db).filter { l in
            if let s = query["service_id"], s != l.serviceID { return false }
            if let r = query["region_id"], r != l.regionID { return false }
            if let n = query["resource_name"], n != l.resourceName { return false }
            return true
        }
    }

    /// Limits take their service, region and resource from their registered limit, so those
    /// cannot change while limits hang on it (Keystone's 403). Keystone refuses any update then;
    /// Nimbus still lets the default and the description change, which moves no limit.
    public func updateRegisteredLimit(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> RegisteredLimit {
        try authorize("identity:update_registered_limit", caller)
        try input.rejectUnknown(Self.registeredLimitFields)
        let serviceID = try input.optionalString("service_id", maxLength: 64)
        let regionID = try input.optionalString("region_id", maxLength: 255, allowEmpty: false)
        let resourceName = try input.optionalString("resource_name", maxLength: 255, allowEmpty: false)
        let defaultLimit = try input.int("default_limit", in: Self.limitRange)
        let description = try input.optionalString("description", maxLength: 255)
        defer { limitCache.invalidate() }
        return try await db.transaction { x in
            if let serviceID { try await self.checkReferences(serviceID: serviceID, regionID: nil, in: "registered_limit", x) }
            if let regionID, try await self.store.region(id: regionID, x) == nil {
                throw APIError.badRequest("Expecting to find region_id in registered_limit: no region \(regionID) exists.")
            }
            var l = try await self.requireRegisteredLimit(id, x)
            let before = l
            if let serviceID { l.serviceID = serviceID }
            if input.has("region_id") { l.regionID = regionID }
            if let resourceName { l.resourceName = resourceName }
            if let defaultLimit { l.defaultLimit = defaultLimit }
            if input.has("description") { l.description = description }
            let retargeted = l.serviceID != before.serviceID || l.regionID != before.regionID || l.resourceName != before.resourceName
            if retargeted, try await self.store.hasLimits(registeredLimitID: id, x) {
                throw APIError.forbidden("Unable to update or delete registered limit \(id) because there are project limits associated with it.")
            }
            try await self.conflict("registered_limit") { try await self.store.update(l, x) }
            return l
        }
    }

    public func deleteRegisteredLimit(_ id: String, caller: AuthContext) async throws {
        try authorize("identity:delete_registered_limit", caller)
        defer { limitCache.invalidate() }
        try await db.transaction { x in
            _ = try await self.requireRegisteredLimit(id, x)
            if try await self.store.hasLimits(registeredLimitID: id, x) {
                throw APIError.forbidden("Unable to update or delete registered limit \(id) because there are project limits associated with it.")
            }
            try await x.execute("DELETE FROM identity_registered_limit WHERE id = ?", [.text(id)])
        }
    }

    // MARK: Limits

    /// The enforcement model: always flat (a project's limit ignores its parents and children).
    public func limitModel(caller: AuthContext) throws -> JSON {
        try authorize("identity:get_limit_model", caller)
        return ["name": "flat", "description": "Limits apply to each project on its own; the project hierarchy is not considered."]
    }

    /// What `identity:get_limit` is checked against: the limit's project or domain, and the
    /// project's domain, so domain-scoped callers can read their projects' limits.
    func policyTarget(_ l: Limit, _ x: any SQLExecutor) async throws -> [String: String] {
        var target: [String: String] = [:]
        if let projectID = l.projectID {
            target["target.limit.project_id"] = projectID
            if let project = try await store.project(id: projectID, x) { target["target.limit.project.domain_id"] = project.domainID }
        }
        if let domainID = l.domainID { target["target.limit.domain.id"] = domainID }
        return target
    }

    /// All or none: the batch is one transaction. A `project_id` naming a domain (a project
    /// acting as a domain) makes a domain limit, as in Keystone.
    public func createLimits(_ inputs: [JSONInput], caller: AuthContext) async throws -> [Limit] {
        try authorize("identity:create_limits", caller)
        let parsed = try inputs.map { input in
            try input.rejectUnknown(Self.limitFields)
            let projectID = try input.optionalString("project_id", maxLength: 64, allowEmpty: false)
            let domainID = try input.optionalString("domain_id", maxLength: 64, allowEmpty: false)
            guard (projectID == nil) != (domainID == nil) else {
                throw APIError.badRequest("Invalid input for field '\(input.path)': exactly one of 'project_id' and 'domain_id' is required.")
            }
            return Limit(id: Identifiers.hexID(), registeredLimitID: "", projectID: projectID, domainID: domainID,
                         serviceID: try input.requiredString("service_id", maxLength: 64),
                         regionID: try input.optionalString("region_id", maxLength: 255, allowEmpty: false),
                         resourceName: try input.requiredString("resource_name", maxLength: 255),
                         resourceLimit: try input.requiredInt("resource_limit", in: Self.limitRange),
                         description: try input.optionalString("description", maxLength: 255))
        }
        defer { limitCache.invalidate() }
        return try await db.transaction { x in
            var checked: [Limit] = []
            // Every reference first (400), then the registered limits (403) and duplicates (409).
            for var l in parsed {
                try await self.checkReferences(serviceID: l.serviceID, regionID: l.regionID, in: "limit", x)
                if let projectID = l.projectID, try await self.store.project(id: projectID, x) == nil {
                    guard try await self.store.domain(id: projectID, x) != nil else {
                        throw APIError.badRequest("Expecting to find project_id in limit: no project \(projectID) exists.")
                    }
                    l.domainID = projectID
                    l.projectID = nil
                }
                if let domainID = l.domainID, try await self.store.domain(id: domainID, x) == nil {
                    throw APIError.badRequest("Expecting to find domain_id in limit: no domain \(domainID) exists.")
                }
                checked.append(l)
            }
            for i in checked.indices {
                guard let registered = try await self.store.registeredLimit(serviceID: checked[i].serviceID, regionID: checked[i].regionID,
                                                                            resourceName: checked[i].resourceName, x) else {
                    throw APIError.forbidden("Unable to create a limit that has no corresponding registered limit.")
                }
                checked[i].registeredLimitID = registered.id
                let l = checked[i]
                try await self.conflict("limit") { try await self.store.insert(l, x) }
            }
            return checked
        }
    }

    /// A caller the policy does not let read the limit gets 403 whether or not it exists, so
    /// limit ids cannot be probed; Keystone checks in the same order.
    public func getLimit(_ id: String, caller: AuthContext) async throws -> Limit {
        guard let found = try await store.limit(id: id, db) else {
            try authorize("identity:get_limit", caller)
            throw APIError.notFound("Could not find limit for \(id).")
        }
        try authorize("identity:get_limit", caller, target: try await policyTarget(found, db))
        return found
    }

    /// Administrators (and system-scoped or service callers) see every limit, a domain-scoped
    /// caller its domain's and its projects', a project-scoped caller only its project's, an
    /// unscoped one none: Keystone's filtering.
    public func listLimits(_ query: Query, caller: AuthContext) async throws -> [Limit] {
        try authorize("identity:list_limits", caller)
        if caller.isSystemScoped || caller.isAdmin || caller.hasRole("service") {
            return try await store.limits(query, db)
        }
        if let domainID = caller.domainScopeID {
            return try await store.limits(query, visibleInDomain: domainID, db)
        }
        if let projectID = caller.projectID {
            if let asked = query["project_id"], asked != projectID { return [] }
            var filters = query
            filters["project_id"] = projectID
            return try await store.limits(filters, db)
        }
        return []
    }

    /// Only the value and the description change. Unlike Keystone, a `resource_limit` of 0 and
    /// an empty or null description are applied rather than silently ignored.
    public func updateLimit(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> Limit {
        try authorize("identity:update_limit", caller)
        try input.rejectUnknown(Self.limitUpdateFields)
        let resourceLimit = try input.int("resource_limit", in: Self.limitRange)
        let description = try input.optionalString("description", maxLength: 255)
        defer { limitCache.invalidate() }
        return try await db.transaction { x in
            guard var l = try await self.store.limit(id: id, x) else { throw APIError.notFound("Could not find limit for \(id).") }
            if let resourceLimit { l.resourceLimit = resourceLimit }
            if input.has("description") { l.description = description }
            try await self.store.update(l, x)
            return l
        }
    }

    public func deleteLimit(_ id: String, caller: AuthContext) async throws {
        try authorize("identity:delete_limit", caller)
        defer { limitCache.invalidate() }
        guard try await db.execute("DELETE FROM identity_limit WHERE id = ?", [.text(id)]) > 0 else {
            throw APIError.notFound("Could not find limit for \(id).")
        }
    }
}

/// Effective limits by (service type, resource, project), kept for a few seconds because the
/// image service asks on every create and upload. Local limit changes bump the generation,
/// which empties it in one step; another controller's changes show within `lifetime`.
final class LimitCache: Sendable {
    struct Key: Hashable, Sendable {
        let serviceType: String
        let resource: String
        let projectID: String
    }
    struct Entry: Sendable {
        /// nil: no limit registered.
        let value: Int64?
        let cachedAt: Double
    }
    private struct State {
        var entries: [Key: Entry] = [:]
        var generation: UInt64 = 0
    }
    private let state = Mutex(State())
    let lifetime: Double = 5
    static let capacity = 10_000

    var generation: UInt64 { state.withLock { $0.generation } }

    func get(_ key: Key, now: Double) -> Entry? {
        state.withLock { s in s.entries[key].flatMap { now - $0.cachedAt < lifetime ? $0 : nil } }
    }

    /// `generation` is the value read before the lookup started, so an answer computed across a
    /// concurrent change is not stored.
    func put(_ key: Key, _ value: Int64?, generation: UInt64, now: Double) {
        state.withLock { s in
            guard generation == s.generation else { return }
            if s.entries.count >= Self.capacity { s.entries.removeAll(keepingCapacity: true) }
            s.entries[key] = Entry(value: value, cachedAt: now)
        }
    }

    func invalidate() {
        state.withLock { s in
            s.generation &+= 1
            s.entries.removeAll(keepingCapacity: true)
        }
    }
}
