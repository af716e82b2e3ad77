import HTTPTypes
import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// Segments and network segment ranges.
    func registerSegments(_ api: RouterGroup<Context>) {
        let service = self.service
        registerCollection(api, "segment", "segments", list: service.listSegments, show: service.segment, create: service.createSegment,
                           update: service.updateSegment, delete: service.deleteSegment)
        registerCollection(api, "network_segment_range", "network_segment_ranges", list: service.listSegmentRanges, show: service.segmentRange,
                           create: service.createSegmentRange, update: service.updateSegmentRange, delete: service.deleteSegmentRange)
        registerTags(api, "network_segment_ranges", show: service.segmentRange) { id, caller, change in
            try await service.changeSegmentRangeTags(id, caller: caller, change)
        }
    }

    /// An admin resource's collection and item routes, one object per create.
    func registerCollection(_ api: RouterGroup<Context>, _ key: String, _ collection: String,
                            list: @escaping @Sendable (AuthContext) async throws -> [[String: JSON]],
                            show: @escaping @Sendable (String, AuthContext) async throws -> [String: JSON],
                            create: @escaping @Sendable (JSON, AuthContext) async throws -> [String: JSON],
                            update: @escaping @Sendable (String, JSON, AuthContext) async throws -> [String: JSON],
                            delete: @escaping @Sendable (String, AuthContext) async throws -> Void) {
        api.get("/\(collection)") { request, context in
            try NeutronListing(collection: collection, request: request).response(try await list(try context.requireAuth()))
        }
        api.post("/\(collection)") { request, context in
            let created = try await create(try await self.body(request), try context.requireAuth())
            return JSONResponse(status: .created, [key: .object(created)]).response()
        }
        api.get("/\(collection)/:id") { request, context in
            Self.one(key, try await show(try context.parameters.require("id"), try context.requireAuth()), request)
        }
        api.put("/\(collection)/:id") { request, context in
            let item = try await update(try context.parameters.require("id"), try await self.body(request), try context.requireAuth())
            return JSONResponse([key: .object(item)]).response()
        }
        api.delete("/\(collection)/:id") { _, context in
            try await delete(try context.parameters.require("id"), try context.requireAuth())
            return Response(status: .noContent)
        }
    }
}
