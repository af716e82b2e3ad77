import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// Local IPs and their port associations.
    func registerLocalIPs(_ api: RouterGroup<Context>) {
        let service = self.service
        registerResource(api, key: "local_ip", collection: "local_ips", list: service.listLocalIPs, create: service.createLocalIP,
                         show: service.localIP, update: service.updateLocalIP, delete: service.deleteLocalIP)
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
