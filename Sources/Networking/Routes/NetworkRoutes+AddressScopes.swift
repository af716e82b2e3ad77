import HTTPTypes
import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// Address scopes (`address-scope`).
    func registerAddressScopes(_ api: RouterGroup<Context>) {
        let service = self.service
        api.get("/address-scopes") { request, context in
            try NeutronListing(collection: "address_scopes", path: "address-scopes", request: request)
                .response(try await service.listAddressScopes(caller: try context.requireAuth()))
        }
        api.post("/address-scopes") { request, context in
            let created = try await service.createAddressScope(try await self.body(request), caller: try context.requireAuth())
            return JSONResponse(status: .created, ["address_scope": .object(created)]).response()
        }
        api.get("/address-scopes/:id") { request, context in
            Self.one("address_scope", try await service.addressScope(try context.parameters.require("id"), caller: try context.requireAuth()), request)
        }
        api.put("/address-scopes/:id") { request, context in
            let updated = try await service.updateAddressScope(try context.parameters.require("id"), try await self.body(request), caller: try context.requireAuth())
            return JSONResponse(["address_scope": .object(updated)]).response()
        }
        api.delete("/address-scopes/:id") { _, context in
            try await service.deleteAddressScope(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response(status: .noContent)
        }
    }
}
