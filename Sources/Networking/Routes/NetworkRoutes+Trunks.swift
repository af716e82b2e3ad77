import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// Trunks and their sub-ports. The sub-port actions answer the trunk itself, unwrapped, as Neutron's do.
    func registerTrunks(_ api: RouterGroup<Context>) {
        let service = self.service
        registerResource(api, key: "trunk", collection: "trunks", list: service.listTrunks, create: service.createTrunk,
                         show: service.trunk, update: service.updateTrunk, delete: service.deleteTrunk)
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
