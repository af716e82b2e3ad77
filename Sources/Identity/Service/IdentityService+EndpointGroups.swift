import Foundation
import NimbusCore
import NimbusStore

/// Endpoint groups (`/v3/OS-EP-FILTER/endpoint_groups`): named filters over the catalog.
extension IdentityService {
    func endpointGroup(_ r: Row) -> EndpointGroup {
        EndpointGroup(id: r.string("id"), name: r.string("name"), description: r.string("description"),
                      filters: IdentityStore.object(r, "filters").compactMapValues(\.stringValue))
    }

    func requireEndpointGroup(_ id: String) async throws -> EndpointGroup {
        guard let row = try await db.first("SELECT * FROM identity_endpoint_group WHERE id = ?", .text(id)) else {
            throw APIError.notFound("Could not find endpoint group: \(id).")
        }
        return endpointGroup(row)
    }

    static func endpointFilters(_ input: JSONInput) throws -> [String: String]? {
        guard let filters = try input.object("filters") else { return nil }
        var out: [String: String] = [:]
        for key in filters.fields.keys {
            guard EndpointGroup.filterKeys.contains(key) else {
                throw APIError.badRequest("Invalid input for field 'filters': '\(key)' is not one of service_id, interface, region_id.")
            }
            out[key] = try filters.requiredString(key)
        }
        guard !out.isEmpty else { throw APIError.badRequest("Invalid input for field 'filters': at least one filter is required.") }
        return out
    }

    func save(_ g: EndpointGroup, insert: Bool) async throws {
        let filters = IdentityStore.encode(g.filters.mapValues { JSON.string($0) })
        if insert {
            try await db.execute("INSERT INTO identity_endpoint_group (id, name, description, filters) VALUES (?, ?, ?, ?)",
                                 [.text(g.id), .text(g.name), .text(g.description), filters])
        } else {
            try await db.execute("UPDATE identity_endpoint_group SET name = ?, description = ?, filters = ? WHERE id = ?",
                                 [.text(g.name), .text(g.description), filters, .text(g.id)])
        }
    }

    public func createEndpointGroup(_ input: JSONInput, caller: AuthContext) async throws -> EndpointGroup {
        try authorize("identity:create_endpoint_group", caller)
        guard let filters = try Self.endpointFilters(input) else {
            throw APIError.badRequest("Invalid input for field 'filters': 'filters' is a required property.")
        }
        let group = EndpointGroup(id: Identifiers.hexID(), name: try input.requiredString("name", allowEmpty: false),
                                  description: try input.optionalString("description", maxLength: 65535) ?? "", filters: filters)
        try await save(group, insert: true)
        return group
    }

    public func getEndpointGroup(_ id: String, caller: AuthContext) async throws -> EndpointGroup {
        try authorize("identity:get_endpoint_group", caller)
        return try await requireEndpointGroup(id)
    }

    public func listEndpointGroups(_ query: Query, caller: AuthContext) async throws -> [EndpointGroup] {
        try authorize("identity:list_endpoint_groups", caller)
        return try await db.query("SELECT * FROM identity_endpoint_group ORDER BY name", []).map(endpointGroup)
            .filter { query["name"] == nil || query["name"] == $0.name }
    }

    public func updateEndpointGroup(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> EndpointGroup {
        try authorize("identity:update_endpoint_group", caller)
        var group = try await requireEndpointGroup(id)
        if let name = try input.optionalString("name", allowEmpty: false) { group.name = name }
        if let description = try input.optionalString("description", maxLength: 65535) { group.description = description }
        if let filters = try Self.endpointFilters(input) { group.filters = filters }
        try await save(group, insert: false)
        return group
    }

    public func deleteEndpointGroup(_ id: String, caller: AuthContext) async throws {
        try authorize("identity:delete_endpoint_group", caller)
        guard try await db.execute("DELETE FROM identity_endpoint_group WHERE id = ?", [.text(id)]) > 0 else {
            throw APIError.notFound("Could not find endpoint group: \(id).")
        }
    }
}

/// OS-EP-FILTER's associations: endpoints, and endpoint groups, given to projects. A project
/// with any association sees only those endpoints in its tokens' catalog (Keystone's SQL
/// catalog with `return_all_endpoints_if_no_filter` at its default); others see them all.
extension IdentityService {
    static func endpointNotInProject(_ endpoint: String, _ project: String) -> APIError {
        APIError.notFound("Could not find endpoint \(endpoint) in project \(project).")
    }

    func requireEndpoint(_ id: String, _ x: any SQLExecutor) async throws -> Endpoint {
        guard let endpoint = try await store.endpoint(id: id, x) else { throw APIError.notFound("Could not find endpoint: \(id).") }
        return endpoint
    }

    /// Whether `endpoint` passes every filter of `group`.
    static func matches(_ endpoint: Endpoint, _ group: EndpointGroup) -> Bool {
        group.filters.allSatisfy { key, value in
            switch key {
            case "service_id": return endpoint.serviceID == value
            case "interface": return endpoint.interface == value
            case "region_id": return endpoint.regionID == value
            default: return false
            }
        }
    }

    /// The endpoints given to each project that has any association, directly or through an
    /// endpoint group; a project absent from the answer is unfiltered.
    func projectEndpointFilters(_ endpoints: [Endpoint], _ x: any SQLExecutor) async throws -> [String: Set<String>] {
        var out: [String: Set<String>] = [:]
        for row in try await x.query("SELECT project_id, endpoint_id FROM identity_project_endpoint", []) {
            out[row.string("project_id"), default: []].insert(row.string("endpoint_id"))
        }
        var groupEndpoints: [String: [String]] = [:]
        for group in try await x.query("SELECT * FROM identity_endpoint_group", []).map(endpointGroup) {
            groupEndpoints[group.id] = endpoints.filter { Self.matches($0, group) }.map(\.id)
        }
        for row in try await x.query("SELECT project_id, endpoint_group_id FROM identity_project_endpoint_group", []) {
            guard let ids = groupEndpoints[row.string("endpoint_group_id")] else { continue }
            out[row.string("project_id"), default: []].formUnion(ids)
        }
        return out
    }

    public func addEndpointToProject(_ endpoint: String, project: String, caller: AuthContext) async throws {
        try authorize("identity:add_endpoint_to_project", caller)
        try await db.transaction { x in
            _ = try await self.requireEndpoint(endpoint, x)
            _ = try await self.requireProject(project, x)
            try await x.execute("DELETE FROM identity_project_endpoint WHERE endpoint_id = ? AND project_id = ?", [.text(endpoint), .text(project)])
            try await x.execute("INSERT INTO identity_project_endpoint (endpoint_id, project_id) VALUES (?, ?)", [.text(endpoint), .text(project)])
        }
        didChange()
    }

    public func checkEndpointInProject(_ endpoint: String, project: String, caller: AuthContext) async throws {
        try authorize("identity:check_endpoint_in_project", caller)
        _ = try await requireEndpoint(endpoint, db)
        _ = try await requireProject(project, db)
        guard try await db.first("SELECT 1 AS found FROM identity_project_endpoint WHERE endpoint_id = ? AND project_id = ?", .text(endpoint), .text(project)) != nil
        else { throw Self.endpointNotInProject(endpoint, project) }
    }

    public func removeEndpointFromProject(_ endpoint: String, project: String, caller: AuthContext) async throws {
        try authorize("identity:remove_endpoint_from_project", caller)
        guard try await db.execute("DELETE FROM identity_project_endpoint WHERE endpoint_id = ? AND project_id = ?", [.text(endpoint), .text(project)]) > 0 else {
            throw Self.endpointNotInProject(endpoint, project)
        }
        didChange()
    }

    /// The endpoints a project's catalog is filtered to: its own and its groups' (none: empty).
    public func listEndpointsForProject(_ project: String, caller: AuthContext) async throws -> [Endpoint] {
        try authorize("identity:list_endpoints_for_project", caller)
        _ = try await requireProject(project, db)
        let endpoints = try await store.endpoints(db)
        let allowed = try await projectEndpointFilters(endpoints, db)[project] ?? []
        return endpoints.filter { allowed.contains($0.id) }
    }

    public func listProjectsForEndpoint(_ endpoint: String, caller: AuthContext) async throws -> [Project] {
        try authorize("identity:list_projects_for_endpoint", caller)
        _ = try await requireEndpoint(endpoint, db)
        return try await db.query("SELECT * FROM identity_project WHERE id IN (SELECT project_id FROM identity_project_endpoint WHERE endpoint_id = ?) ORDER BY id",
                                  [.text(endpoint)]).map(IdentityStore.project)
    }

    public func addEndpointGroupToProject(_ group: String, project: String, caller: AuthContext) async throws {
        try authorize("identity:add_endpoint_group_to_project", caller)
        try await db.transaction { x in
            _ = try await self.requireProject(project, x)
            guard try await x.first("SELECT id FROM identity_endpoint_group WHERE id = ?", .text(group)) != nil else {
                throw APIError.notFound("Could not find endpoint group: \(group).")
            }
            try await x.execute("DELETE FROM identity_project_endpoint_group WHERE endpoint_group_id = ? AND project_id = ?", [.text(group), .text(project)])
            try await x.execute("INSERT INTO identity_project_endpoint_group (endpoint_group_id, project_id) VALUES (?, ?)", [.text(group), .text(project)])
        }
        didChange()
    }

    /// Succeeds when the project has the group; 404 otherwise.
    public func checkEndpointGroupInProject(_ group: String, project: String, caller: AuthContext) async throws {
        try authorize("identity:get_endpoint_group_in_project", caller)
        _ = try await requireProject(project, db)
        _ = try await requireEndpointGroup(group)
        guard try await db.first("SELECT 1 AS found FROM identity_project_endpoint_group WHERE endpoint_group_id = ? AND project_id = ?",
                                 .text(group), .text(project)) != nil else {
            throw APIError.notFound("Could not find endpoint group \(group) in project \(project).")
        }
    }

    public func removeEndpointGroupFromProject(_ group: String, project: String, caller: AuthContext) async throws {
        try authorize("identity:remove_endpoint_group_from_project", caller)
        _ = try await requireProject(project, db)
        _ = try await requireEndpointGroup(group)
        guard try await db.execute("DELETE FROM identity_project_endpoint_group WHERE endpoint_group_id = ? AND project_id = ?",
                                   [.text(group), .text(project)]) > 0 else {
            throw APIError.notFound("Could not find endpoint group \(group) in project \(project).")
        }
        didChange()
    }

    public func listProjectsForEndpointGroup(_ group: String, caller: AuthContext) async throws -> [Project] {
        try authorize("identity:list_projects_associated_with_endpoint_group", caller)
        _ = try await requireEndpointGroup(group)
        return try await db.query("SELECT * FROM identity_project WHERE id IN (SELECT project_id FROM identity_project_endpoint_group WHERE endpoint_group_id = ?) ORDER BY id",
                                  [.text(group)]).map(IdentityStore.project)
    }

    public func listEndpointsForEndpointGroup(_ group: String, caller: AuthContext) async throws -> [Endpoint] {
        try authorize("identity:list_endpoints_associated_with_endpoint_group", caller)
        let endpointGroup = try await requireEndpointGroup(group)
        return try await store.endpoints(db).filter { Self.matches($0, endpointGroup) }
    }

    public func listEndpointGroupsForProject(_ project: String, caller: AuthContext) async throws -> [EndpointGroup] {
        try authorize("identity:list_endpoint_groups_for_project", caller)
        _ = try await requireProject(project, db)
        return try await db.query("""
            SELECT g.* FROM identity_endpoint_group g JOIN identity_project_endpoint_group p ON p.endpoint_group_id = g.id
            WHERE p.project_id = ? ORDER BY g.name
            """, [.text(project)]).map(endpointGroup)
    }
}
