import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// Port forwardings of floating IPs.
    func registerPortForwardings(_ api: RouterGroup<Context>) {
        let service = self.service
        api.get("/floatingips/:id/port_forwardings") { request, context in
            let items = try await service.portForwardings(floatingIP: try context.parameters.require("id"), caller: try context.requireAuth())
            return try NeutronListing(collection: "port_forwardings", request: request).response(items)
        }
        api.post("/floatingips/:id/port_forwardings") { request, context in
            let created = try await service.createPortForwarding(floatingIP: try context.parameters.require("id"),
                                                                 try await self.input(request, "port_forwarding"), caller: try context.requireAuth())
            return JSONResponse(status: .created, ["port_forwarding": .object(created)]).response()
        }
        api.get("/floatingips/:id/port_forwardings/:forwarding") { request, context in
            let item = try await service.portForwarding(try context.parameters.require("forwarding"), floatingIP: try context.parameters.require("id"),
                                                        caller: try context.requireAuth())
            return Self.one("port_forwarding", item, request)
        }
        api.put("/floatingips/:id/port_forwardings/:forwarding") { request, context in
            let item = try await service.updatePortForwarding(try context.parameters.require("forwarding"), floatingIP: try context.parameters.require("id"),
                                                              try await self.input(request, "port_forwarding"), caller: try context.requireAuth())
            return JSONResponse(["port_forwarding": .object(item)]).response()
        }
        api.delete("/floatingips/:id/port_forwardings/:forwarding") { _, context in
            try await service.deletePortForwarding(try context.parameters.require("forwarding"), floatingIP: try context.parameters.require("id"),
                                                   caller: try context.requireAuth())
            return Response(status: .noContent)
        }
    }
}
