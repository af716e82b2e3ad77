import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// The collection and item routes of a resource created one at a time (no bulk create,
    /// no tag routes; `registerCRUD` has those): list, create (201), show, update and delete
    /// (204) at `/v2.0/<path>`, where `path` is the collection's name unless Neutron spells its
    /// URL otherwise (`address-groups`). Bodies and answers are under `key`.
    func registerResource(_ api: RouterGroup<Context>, key: String, collection: String, path: String? = nil,
                          list: @escaping @Sendable (AuthContext) async throws -> [[String: JSON]],
                          create: @escaping @Sendable (JSONInput, AuthContext) async throws -> [String: JSON],
                          show: @escaping @Sendable (String, AuthContext) async throws -> [String: JSON],
                          update: @escaping @Sendable (String, JSONInput, AuthContext) async throws -> [String: JSON],
                          delete: @escaping @Sendable (String, AuthContext) async throws -> Void) {
        registerResource(api, key: key, collection: collection, path: path, read: { request in try await self.input(request, key) },
                         list: list, create: create, show: show, update: update, delete: delete)
    }

    /// The same routes for a service that reads the whole request body itself (`read` gives
    /// create and update what they take).
    func registerResource<Body: Sendable>(_ api: RouterGroup<Context>, key: String, collection: String, path: String? = nil,
                                          read: @escaping @Sendable (Request) async throws -> Body,
                                          list: @escaping @Sendable (AuthContext) async throws -> [[String: JSON]],
                                          create: @escaping @Sendable (Body, AuthContext) async throws -> [String: JSON],
                                          show: @escaping @Sendable (String, AuthContext) async throws -> [String: JSON],
                                          update: @escaping @Sendable (String, Body, AuthContext) async throws -> [String: JSON],
                                          delete: @escaping @Sendable (String, AuthContext) async throws -> Void) {
        let url = "/" + (path ?? collection)
        api.get("\(url)") { request, context in
            try NeutronListing(collection: collection, request: request).response(try await list(try context.requireAuth()))
        }
        api.post("\(url)") { request, context in
            let created = try await create(try await read(request), try context.requireAuth())
            return JSONResponse(status: .created, [key: .object(created)]).response()
        }
        api.get("\(url)/:id") { request, context in
            Self.one(key, try await show(try context.parameters.require("id"), try context.requireAuth()), request)
        }
        api.put("\(url)/:id") { request, context in
            let updated = try await update(try context.parameters.require("id"), try await read(request), try context.requireAuth())
            return JSONResponse([key: .object(updated)]).response()
        }
        api.delete("\(url)/:id") { _, context in
            try await delete(try context.parameters.require("id"), try context.requireAuth())
            return Response(status: .noContent)
        }
    }
}
