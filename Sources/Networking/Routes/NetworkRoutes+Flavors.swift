import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// Network flavors, service profiles, and the profiles a flavor offers.
    func registerFlavors(_ api: RouterGroup<Context>) {
        let service = self.service
        registerResource(api, key: "flavor", collection: "flavors", list: service.listFlavors, create: service.createFlavor,
                         show: service.flavor, update: service.updateFlavor, delete: service.deleteFlavor)
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
        registerResource(api, key: "service_profile", collection: "service_profiles", list: service.listServiceProfiles, create: service.createServiceProfile,
                         show: service.serviceProfile, update: service.updateServiceProfile, delete: service.deleteServiceProfile)
    }
}
