import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// Trunks and their sub-ports. The sub-port actions answer the trunk itself, unwrapped, as Neutron's do.
    func registerTrunks(_ api: RouterGroup<Context>) {
        let service = self.service
        api.get("/trunks") { request, context in
            try NeutronListing(collection: "trunks", request: request).response(try await service.listTrunks(caller: try context.requireAuth()))
        }
        api.post("/trunks") { request, context in
            let trunk = try await service.createTrunk(try await self.input(request, "trunk"), caller: try context.requireAuth())
            return JSONResponse(status: .created, ["trunk": .object(trunk)]).response()
        }
        api.get("/trunks/:id") { request, context in
            Self.one("trunk", try await service.trunk(try context.parameters.require("id"), caller: try context.requireAuth()), request)
        }
        api.put("/trunks/:id") { request, context in
            let trunk = try await service.updateTrunk(try context.parameters.require("id"), try await self.input(request, "trunk"),
                                                      caller: try context.requireAuth())
            return JSONResponse(["trunk": .object(trunk)]).response()
        }
        api.delete("/trunks/:id") { _, context in
            try await service.deleteTrunk(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response(status: .noContent)
        }
        api.get("/trunks/:id/get_subports") { _, context in
            JSONResponse(["sub_ports": .array(try await service.trunkSubports(try context.parameters.require("id"), caller: try context.requireAuth()))]).response()
        }
        for (path, adding) in [("add_subports", true), ("remove_subports", false)] {
            api.put("/trunks/:id/\(path)") { request, context in
                JSONResponse(.object(try await service.changeSubports(try context.parameters.require("id"), adding: adding, try await self.body(request),
                                                                      caller: try context.requireAuth()))).response()
            }
        }
    }
}
