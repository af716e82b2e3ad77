import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// The default statefulness of new security groups, per project or system-wide.
    func registerDefaultStatefulness(_ api: RouterGroup<Context>) {
        let service = self.service
        let path = "security-groups-default-statefulness", key = "security_group_default_statefulness"
        api.get("/\(path)") { request, context in
            try NeutronListing(collection: "security_groups_default_statefulness", request: request)
                .response(try await service.listSecurityGroupDefaultStatefulness(caller: try context.requireAuth()))
        }
        api.post("/\(path)") { request, context in
            let item = try await service.createSecurityGroupDefaultStatefulness(try await self.input(request, key), caller: try context.requireAuth())
            return JSONResponse(status: .created, [key: .object(item)]).response()
        }
        api.get("/\(path)/:id") { request, context in
            Self.one(key, try await service.securityGroupDefaultStatefulness(try context.parameters.require("id"), caller: try context.requireAuth()), request)
        }
        api.put("/\(path)/:id") { request, context in
            let item = try await service.updateSecurityGroupDefaultStatefulness(try context.parameters.require("id"), try await self.input(request, key),
                                                                                caller: try context.requireAuth())
            return JSONResponse([key: .object(item)]).response()
        }
        api.delete("/\(path)/:id") { _, context in
            try await service.deleteSecurityGroupDefaultStatefulness(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response(status: .noContent)
        }
    }
}
