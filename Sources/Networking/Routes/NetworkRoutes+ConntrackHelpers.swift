import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// Conntrack helpers of routers.
    func registerConntrackHelpers(_ api: RouterGroup<Context>) {
        let service = self.service
        api.get("/routers/:id/conntrack_helpers") { request, context in
            let items = try await service.conntrackHelpers(router: try context.parameters.require("id"), caller: try context.requireAuth())
            return try NeutronListing(collection: "conntrack_helpers", request: request).response(items)
        }
        api.post("/routers/:id/conntrack_helpers") { request, context in
            let created = try await service.createConntrackHelper(router: try context.parameters.require("id"),
                                                                  try await self.input(request, "conntrack_helper"), caller: try context.requireAuth())
            return JSONResponse(status: .created, ["conntrack_helper": .object(created)]).response()
        }
        api.get("/routers/:id/conntrack_helpers/:helper") { request, context in
            let item = try await service.conntrackHelper(try context.parameters.require("helper"), router: try context.parameters.require("id"),
                                                         caller: try context.requireAuth())
            return Self.one("conntrack_helper", item, request)
        }
        api.put("/routers/:id/conntrack_helpers/:helper") { request, context in
            let item = try await service.updateConntrackHelper(try context.parameters.require("helper"), router: try context.parameters.require("id"),
                                                               try await self.input(request, "conntrack_helper"), caller: try context.requireAuth())
            return JSONResponse(["conntrack_helper": .object(item)]).response()
        }
        api.delete("/routers/:id/conntrack_helpers/:helper") { _, context in
            try await service.deleteConntrackHelper(try context.parameters.require("helper"), router: try context.parameters.require("id"),
                                                    caller: try context.requireAuth())
            return Response(status: .noContent)
        }
    }
}
