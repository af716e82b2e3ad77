import HTTPTypes
import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// RBAC policies (`rbac-policies`).
    func registerRBAC(_ api: RouterGroup<Context>) {
        let service = self.service
        api.get("/rbac-policies") { request, context in
            try NeutronListing(collection: "rbac_policies", path: "rbac-policies", request: request).response(try await service.listRBACPolicies(caller: try context.requireAuth()))
        }
        api.post("/rbac-policies") { request, context in
            let created = try await service.createRBACPolicy(try await self.body(request), caller: try context.requireAuth())
            return JSONResponse(status: .created, ["rbac_policy": .object(created)]).response()
        }
        api.get("/rbac-policies/:id") { request, context in
            Self.one("rbac_policy", try await service.rbacPolicy(try context.parameters.require("id"), caller: try context.requireAuth()), request)
        }
        api.put("/rbac-policies/:id") { request, context in
            let updated = try await service.updateRBACPolicy(try context.parameters.require("id"), try await self.body(request), caller: try context.requireAuth())
            return JSONResponse(["rbac_policy": .object(updated)]).response()
        }
        api.delete("/rbac-policies/:id") { _, context in
            try await service.deleteRBACPolicy(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response(status: .noContent)
        }
    }
}
