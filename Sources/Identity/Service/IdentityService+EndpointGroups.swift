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
