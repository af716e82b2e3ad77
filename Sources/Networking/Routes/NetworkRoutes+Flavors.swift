import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// Network flavors, service profiles, and the profiles a flavor offers.
    func registerFlavors(_ api: RouterGroup<Context>) {
        let service = self.service
        api.get("/flavors") { request, context in
            try NeutronListing(collection: "flavors", request: request).response(try await service.listFlavors(caller: try context.requireAuth()))
        }
        api.post("/flavors") { request, context in
            let flavor = try await service.createFlavor(try await self.input(request, "flavor"), caller: try context.requireAuth())
            return JSONResponse(status: .created, ["flavor": .object(flavor)]).response()
        }
        api.get("/flavors/:id") { request, context in
            Self.one("flavor", try await service.flavor(try context.parameters.require("id"), caller: try context.requireAuth()), request)
        }
        api.put("/flavors/:id") { request, context in
            let flavor = try await service.updateFlavor(try context.parameters.require("id"), try await self.input(request, "flavor"), caller: try context.requireAuth())
            return JSONResponse(["flavor": .object(flavor)]).response()
        }
        api.delete("/flavors/:id") { _, context in
            try await service.deleteFlavor(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response(status: .noContent)
        }
        api.post("/flavors/:id/service_profiles") { request, context in
            let bound = try await service.associateServiceProfile(flavor: try context.parameters.require("id"), try await self.input(request, "service_profile"),
                                                                  caller: try context.requireAuth())
            return JSONResponse(status: .created, ["service_profile": .object(bound)]).response()
        }
        api.delete("/flavors/:id/service_profiles/:profile") { _, context in
            try await service.disassociateServiceProfile(flavor: try context.parameters.require("id"), profile: try context.parameters.require("profile"),
                                                         caller: try context.requireAuth())
            return Response(status: .noContent)
        }
        api.get("/service_profiles") { request, context in
            try NeutronListing(collection: "service_profiles", request: request).response(try await service.listServiceProfiles(caller: try context.requireAuth()))
        }
        api.post("/service_profiles") { request, context in
            let profile = try await service.createServiceProfile(try await self.input(request, "service_profile"), caller: try context.requireAuth())
            return JSONResponse(status: .created, ["service_profile": .object(profile)]).response()
        }
        api.get("/service_profiles/:id") { request, context in
            Self.one("service_profile", try await service.serviceProfile(try context.parameters.require("id"), caller: try context.requireAuth()), request)
        }
        api.put("/service_profiles/:id") { request, context in
            let profile = try await service.updateServiceProfile(try context.parameters.require("id"), try await self.input(request, "service_profile"),
                                                                 caller: try context.requireAuth())
            return JSONResponse(["service_profile": .object(profile)]).response()
        }
        api.delete("/service_profiles/:id") { _, context in
            try await service.deleteServiceProfile(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response(status: .noContent)
        }
    }
}
