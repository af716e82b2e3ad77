import HTTPTypes
import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// Address groups (`address-group`).
    func registerAddressGroups(_ api: RouterGroup<Context>) {
        let service = self.service
        api.get("/address-groups") { request, context in
            try NeutronListing(collection: "address_groups", path: "address-groups", request: request)
                .response(try await service.listAddressGroups(caller: try context.requireAuth()))
        }
        api.post("/address-groups") { request, context in
            let created = try await service.createAddressGroup(try await self.body(request), caller: try context.requireAuth())
            return JSONResponse(status: .created, ["address_group": .object(created)]).response()
        }
        api.get("/address-groups/:id") { request, context in
            Self.one("address_group", try await service.addressGroup(try context.parameters.require("id"), caller: try context.requireAuth()), request)
        }
        api.put("/address-groups/:id") { request, context in
            let updated = try await service.updateAddressGroup(try context.parameters.require("id"), try await self.body(request), caller: try context.requireAuth())
            return JSONResponse(["address_group": .object(updated)]).response()
        }
        api.delete("/address-groups/:id") { _, context in
            try await service.deleteAddressGroup(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response(status: .noContent)
        }
        for (action, adding) in [("add_addresses", true), ("remove_addresses", false)] {
            api.put("/address-groups/:id/\(action)") { request, context in
                let group = try await service.changeAddressGroupAddresses(try context.parameters.require("id"), adding: adding,
                                                                          try await self.body(request), caller: try context.requireAuth())
                return JSONResponse(["address_group": .object(group)]).response()
            }
        }
    }
}
