import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// Local IPs and their port associations.
    func registerLocalIPs(_ api: RouterGroup<Context>) {
        let service = self.service
        api.get("/local_ips") { request, context in
            try NeutronListing(collection: "local_ips", request: request).response(try await service.listLocalIPs(caller: try context.requireAuth()))
        }
        api.post("/local_ips") { request, context in
            let created = try await service.createLocalIP(try await self.input(request, "local_ip"), caller: try context.requireAuth())
            return JSONResponse(status: .created, ["local_ip": .object(created)]).response()
        }
        api.get("/local_ips/:id") { request, context in
            Self.one("local_ip", try await service.localIP(try context.parameters.require("id"), caller: try context.requireAuth()), request)
        }
        api.put("/local_ips/:id") { request, context in
            let item = try await service.updateLocalIP(try context.parameters.require("id"), try await self.input(request, "local_ip"), caller: try context.requireAuth())
            return JSONResponse(["local_ip": .object(item)]).response()
        }
        api.delete("/local_ips/:id") { _, context in
            try await service.deleteLocalIP(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response(status: .noContent)
        }
        api.get("/local_ips/:id/port_associations") { request, context in
            let items = try await service.localIPAssociations(try context.parameters.require("id"), caller: try context.requireAuth())
            return try NeutronListing(collection: "port_associations", request: request).response(items)
        }
        api.post("/local_ips/:id/port_associations") { request, context in
            let created = try await service.associateLocalIP(try context.parameters.require("id"), try await self.input(request, "port_association"),
                                                             caller: try context.requireAuth())
            return JSONResponse(status: .created, ["port_association": .object(created)]).response()
        }
        api.delete("/local_ips/:id/port_associations/:port") { _, context in
            try await service.disassociateLocalIP(try context.parameters.require("id"), port: try context.parameters.require("port"),
                                                  caller: try context.requireAuth())
            return Response(status: .noContent)
        }
    }
}
