import Foundation
import NimbusCore
import NimbusStore

/// Regions, services, endpoints, and the catalog carried in tokens.
extension IdentityService {
    // MARK: Catalog

    /// The catalog a token carries: enabled services with their enabled endpoints.
    /// `$(project_id)s`/`%(tenant_id)s` in URLs are filled for project-scoped tokens.
    public func catalog(for auth: AuthContext) async throws -> JSON {
        let now = Self.now()
        let cached: CatalogCache.Entry
        if let hit = catalogCache.get(now: now) {
            cached = hit
        } else {
            let endpoints = try await store.endpoints(db).filter(\.enabled)
            cached = CatalogCache.Entry(services: try await store.services(db).filter(\.enabled),
                                        endpoints: Dictionary(grouping: endpoints, by: \.serviceID),
                                        projectEndpoints: try await projectEndpointFilters(endpoints, db), loadedAt: now)
            catalogCache.set(cached)
        }
        let allowed = auth.projectID.flatMap { cached.projectEndpoints[$0] }
        return .array(cached.services.compactMap { service in
            let endpoints = (cached.endpoints[service.id] ?? []).filter { allowed?.contains($0.id) ?? true }
            // A filtered project's catalog leaves out the services none of its endpoints serve.
            if allowed != nil && endpoints.isEmpty { return nil }
            let items: [JSON] = endpoints.map { e in
                var url = e.url
                // Most URLs have no placeholder; skip the string searches for them.
                if let project = auth.projectID, url.utf8.contains(UInt8(ascii: "(")) {
                    for placeholder in ["$(project_id)s", "$(tenant_id)s", "%(project_id)s", "%(tenant_id)s"] {
                        url = url.replacingOccurrences(of: placeholder, with: project)
                    }
                }
                return ["id": .string(e.id), "interface": .string(e.interface), "region": .optional(e.regionID),
                        "region_id": .optional(e.regionID), "url": .string(url)]
            }
            return ["id": .string(service.id), "type": .string(service.type), "name": .string(service.name), "endpoints": .array(items)]
        })
    }

    // MARK: Regions

    static let regionFields: Set<String> = ["id", "description", "parent_region_id", "links"]

    public func createRegion(_ input: JSONInput, id explicitID: String?, caller: AuthContext) async throws -> Region {
        try authorize("identity:create_region", caller)
        if let bodyID = try input.optionalString("id", maxLength: 255), let explicitID, bodyID != explicitID {
            throw APIError.badRequest("Conflicting region IDs specified: \"\(explicitID)\" and \"\(bodyID)\".")
        }
        let id = try explicitID ?? input.optionalString("id", maxLength: 255) ?? Identifiers.hexID()
        let region = Region(id: id, description: try input.optionalString("description", maxLength: 255) ?? "",
                            parentRegionID: try input.optionalString("parent_region_id", maxLength: 255),
                            extra: input.extras(excluding: Self.regionFields))
        try await db.transaction { x in
            if let parent = region.parentRegionID, try await self.store.region(id: parent, x) == nil {
                throw APIError.notFound("Could not find region: \(parent).")
            }
            try await self.conflict("region") { try await self.store.insert(region, x) }
        }
        return region
    }

    public func getRegion(_ id: String, caller: AuthContext) async throws -> Region {
        try authorize("identity:get_region", caller)
        guard let r = try await store.region(id: id, db) else { throw APIError.notFound("Could not find region: \(id).") }
        return r
    }

    public func listRegions(_ query: Query, caller: AuthContext) async throws -> [Region] {
        try authorize("identity:list_regions", caller)
        return try await store.regions(db).filter { r in
            if let parent = query["parent_region_id"], parent != r.parentRegionID { return false }
            return true
        }
    }

    public func updateRegion(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> Region {
        try authorize("identity:update_region", caller)
        return try await db.transaction { x in
            guard var r = try await self.store.region(id: id, x) else { throw APIError.notFound("Could not find region: \(id).") }
            if let description = try input.optionalString("description", maxLength: 255) { r.description = description }
            if input.has("parent_region_id") {
                let parent = try input.optionalString("parent_region_id", maxLength: 255)
                if let parent {
                    // Walking up from the new parent must not reach this region.
                    var cursor: String? = parent
                    var hops = 0
                    while let c = cursor, hops < 64 {
                        if c == id { throw APIError.badRequest("Circular reference or a repeated entry found in region tree - \(id).") }
                        guard let found = try await self.store.region(id: c, x) else { throw APIError.notFound("Could not find region: \(c).") }
                        cursor = found.parentRegionID
                        hops += 1
                    }
                }
                r.parentRegionID = parent
            }
            for (k, v) in input.extras(excluding: Self.regionFields) { r.extra[k] = v }
            try await self.store.update(r, x)
            return r
        }
    }

    public func deleteRegion(_ id: String, caller: AuthContext) async throws {
        try authorize("identity:delete_region", caller)
        try await db.transaction { x in
            guard try await self.store.region(id: id, x) != nil else { throw APIError.notFound("Could not find region: \(id).") }
            let hasChildren = try await x.first("SELECT id FROM identity_region WHERE parent_region_id = ?", .text(id)) != nil
            let hasEndpoints = try await x.first("SELECT id FROM identity_endpoint WHERE region_id = ?", .text(id)) != nil
            if hasChildren || hasEndpoints {
                throw APIError.forbidden("Unable to delete region \(id) because it or its child regions have associated endpoints.")
            }
            // Keystone's foreign key refuses this without saying why; Nimbus says why.
            if try await x.first("SELECT id FROM identity_registered_limit WHERE region_id = ?", .text(id)) != nil {
                throw APIError.forbidden("Unable to delete region \(id) because registered limits refer to it.")
            }
            try await x.execute("DELETE FROM identity_region WHERE id = ?", [.text(id)])
        }
    }

    // MARK: Services

    public func createService(_ input: JSONInput, caller: AuthContext) async throws -> CatalogService {
        defer { catalogCache.invalidate() }
        try authorize("identity:create_service", caller)
        var extra = input.extras(excluding: ["id", "type", "enabled", "links"])
        extra["name"] = .optional(try input.optionalString("name", maxLength: 255))
        extra["description"] = .optional(try input.optionalString("description", maxLength: 65535))
        if extra["name"] == .null { extra["name"] = nil }
        if extra["description"] == .null { extra["description"] = nil }
        let service = CatalogService(id: Identifiers.hexID(), type: try input.requiredString("type", maxLength: 255, allowEmpty: false),
                                     enabled: try input.bool("enabled") ?? true, extra: extra)
        try await store.insert(service, db)
        return service
    }

    public func getService(_ id: String, caller: AuthContext) async throws -> CatalogService {
        try authorize("identity:get_service", caller)
        guard let s = try await store.service(id: id, db) else { throw APIError.notFound("Could not find service: \(id).") }
        return s
    }

    public func listServices(_ query: Query, caller: AuthContext) async throws -> [CatalogService] {
        try authorize("identity:list_services", caller)
        return try await store.services(db).filter { s in
            if let t = query["type"], t != s.type { return false }
            if let n = query["name"], n != s.name { return false }
            return true
        }
    }

    public func updateService(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> CatalogService {
        // Limits are looked up by service type, which may change here.
        defer {
            catalogCache.invalidate()
            limitCache.invalidate()
        }
        try authorize("identity:update_service", caller)
        return try await db.transaction { x in
            guard var s = try await self.store.service(id: id, x) else { throw APIError.notFound("Could not find service: \(id).") }
            if let type = try input.optionalString("type", maxLength: 255, allowEmpty: false) { s.type = type }
            if let enabled = try input.bool("enabled") { s.enabled = enabled }
            if let name = try input.optionalString("name", maxLength: 255) { s.extra["name"] = .string(name) }
            if let description = try input.optionalString("description", maxLength: 65535) { s.extra["description"] = .string(description) }
            for (k, v) in input.extras(excluding: ["id", "type", "enabled", "links", "name", "description"]) { s.extra[k] = v }
            try await self.store.update(s, x)
            return s
        }
    }

    public func deleteService(_ id: String, caller: AuthContext) async throws {
        defer { catalogCache.invalidate() }
        try authorize("identity:delete_service", caller)
        try await db.transaction { x in
            guard try await self.store.service(id: id, x) != nil else { throw APIError.notFound("Could not find service: \(id).") }
            // Keystone's foreign key refuses this without saying why; Nimbus says why.
            if try await x.first("SELECT id FROM identity_registered_limit WHERE service_id = ?", .text(id)) != nil {
                throw APIError.forbidden("Unable to delete service \(id) because registered limits refer to it.")
            }
            try await x.execute("DELETE FROM identity_endpoint WHERE service_id = ?", [.text(id)])
            try await x.execute("DELETE FROM identity_service WHERE id = ?", [.text(id)])
        }
    }

    // MARK: Endpoints

    static let endpointFields: Set<String> = ["id", "service_id", "interface", "url", "region_id", "region", "enabled", "links"]

    func checkEndpoint(_ e: Endpoint, _ x: any SQLExecutor) async throws {
        guard Endpoint.interfaces.contains(e.interface) else {
            throw APIError.badRequest("Invalid input for field 'interface': '\(e.interface)' is not one of ['admin', 'internal', 'public'].")
        }
        guard e.url.hasPrefix("http://") || e.url.hasPrefix("https://") || e.url.contains("$(") || e.url.contains("%(") else {
            throw APIError.badRequest("Invalid input for field 'url': '\(e.url)' is not a valid URL.")
        }
        guard try await store.service(id: e.serviceID, x) != nil else { throw APIError.badRequest("Could not find service: \(e.serviceID).") }
        if let region = e.regionID, try await store.region(id: region, x) == nil {
            throw APIError.badRequest("Could not find region: \(region).")
        }
    }

    /// The legacy `region` attribute names a region that is created when missing (Keystone's
    /// compatibility rule); `region_id` must name an existing one.
    func createLegacyRegionIfNeeded(_ input: JSONInput, _ x: any SQLExecutor) async throws {
        guard try input.optionalString("region_id", maxLength: 255) == nil,
              let legacy = try input.optionalString("region", maxLength: 255),
              try await store.region(id: legacy, x) == nil else { return }
        try await store.insert(Region(id: legacy, description: "", parentRegionID: nil, extra: [:]), x)
    }

    public func createEndpoint(_ input: JSONInput, caller: AuthContext) async throws -> Endpoint {
        defer { catalogCache.invalidate() }
        try authorize("identity:create_endpoint", caller)
        let endpoint = Endpoint(id: Identifiers.hexID(), serviceID: try input.requiredString("service_id", maxLength: 64),
                                interface: try input.requiredString("interface", maxLength: 10), url: try input.requiredString("url", maxLength: 2048),
                                regionID: try input.optionalString("region_id", maxLength: 255) ?? input.optionalString("region", maxLength: 255),
                                enabled: try input.bool("enabled") ?? true, extra: input.extras(excluding: Self.endpointFields))
        try await db.transaction { x in
            try await self.createLegacyRegionIfNeeded(input, x)
            try await self.checkEndpoint(endpoint, x)
            try await self.store.insert(endpoint, x)
        }
        return endpoint
    }

    public func getEndpoint(_ id: String, caller: AuthContext) async throws -> Endpoint {
        try authorize("identity:get_endpoint", caller)
        guard let e = try await store.endpoint(id: id, db) else { throw APIError.notFound("Could not find endpoint: \(id).") }
        return e
    }

    public func listEndpoints(_ query: Query, caller: AuthContext) async throws -> [Endpoint] {
        try authorize("identity:list_endpoints", caller)
        return try await store.endpoints(db).filter { e in
            if let s = query["service_id"], s != e.serviceID { return false }
            if let i = query["interface"], i != e.interface { return false }
            if let r = query["region_id"] ?? query["region"], r != e.regionID { return false }
            return true
        }
    }

    public func updateEndpoint(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> Endpoint {
        defer { catalogCache.invalidate() }
        try authorize("identity:update_endpoint", caller)
        return try await db.transaction { x in
            guard var e = try await self.store.endpoint(id: id, x) else { throw APIError.notFound("Could not find endpoint: \(id).") }
            if let s = try input.optionalString("service_id", maxLength: 64) { e.serviceID = s }
            if let i = try input.optionalString("interface", maxLength: 10) { e.interface = i }
            if let u = try input.optionalString("url", maxLength: 2048) { e.url = u }
            if input.has("region_id") || input.has("region") {
                e.regionID = try input.optionalString("region_id", maxLength: 255) ?? input.optionalString("region", maxLength: 255)
            }
            if let enabled = try input.bool("enabled") { e.enabled = enabled }
            for (k, v) in input.extras(excluding: Self.endpointFields) { e.extra[k] = v }
            try await self.createLegacyRegionIfNeeded(input, x)
            try await self.checkEndpoint(e, x)
            try await self.store.update(e, x)
            return e
        }
    }

    public func deleteEndpoint(_ id: String, caller: AuthContext) async throws {
        defer { catalogCache.invalidate() }
        try authorize("identity:delete_endpoint", caller)
        guard try await db.execute("DELETE FROM identity_endpoint WHERE id = ?", [.text(id)]) > 0 else {
            throw APIError.notFound("Could not find endpoint: \(id).")
        }
    }
}
