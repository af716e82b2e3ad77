import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// Routers (with their interface and extra-route actions), floating IPs, auto-allocated topologies.
    func registerRouting(_ api: RouterGroup<Context>) {
        let service = self.service
        registerCRUD(api, "router", "routers", list: { _, caller in try await service.listRouters(caller: caller) },
                     show: service.router, update: service.updateRouter, delete: service.deleteRouter)
        registerCRUD(api, "floatingip", "floatingips", list: { _, caller in try await service.listFloatingIPs(caller: caller) },
                     show: service.floatingIP, update: service.updateFloatingIP, delete: service.deleteFloatingIP)

        api.put("/routers/:id/add_router_interface") { request, context in
            JSONResponse(try await service.addRouterInterface(try context.parameters.require("id"), try await self.body(request),
                                                              caller: try context.requireAuth())).response()
        }
        api.put("/routers/:id/remove_router_interface") { request, context in
            JSONResponse(try await service.removeRouterInterface(try context.parameters.require("id"), try await self.body(request),
                                                                 caller: try context.requireAuth())).response()
        }
        for (path, adding) in [("add_extraroutes", true), ("remove_extraroutes", false)] {
            api.put("/routers/:id/\(path)") { request, context in
                let router = try await service.changeExtraRoutes(try context.parameters.require("id"), adding: adding, try await self.body(request),
                                                                 caller: try context.requireAuth())
                return JSONResponse(["router": .object(router)]).response()
            }
        }

        api.get("/auto-allocated-topology/:project") { request, context in
            let dryRun = NeutronListing(collection: "auto_allocated_topology", request: request).fields?.contains("dry-run") == true
            return JSONResponse(try await service.autoAllocatedTopology(project: try context.parameters.require("project"), dryRun: dryRun,
                                                                        caller: try context.requireAuth())).response()
        }
        api.delete("/auto-allocated-topology/:project") { _, context in
            try await service.deleteAutoAllocatedTopology(project: try context.parameters.require("project"), caller: try context.requireAuth())
            return Response(status: .noContent)
        }
    }
}
