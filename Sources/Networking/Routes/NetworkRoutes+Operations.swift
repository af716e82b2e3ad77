import HTTPTypes
import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// The operator's views: network IP availability.
    func registerOperations(_ api: RouterGroup<Context>) {
        let service = self.service
        api.get("/network-ip-availabilities") { request, context in
            let listing = NeutronListing(collection: "network_ip_availabilities", path: "network-ip-availabilities", request: request)
            return try listing.response(try await service.listIPAvailabilities(ipVersions: listing.values("ip_version"), caller: try context.requireAuth()))
        }
        api.get("/network-ip-availabilities/:id") { request, context in
            Self.one("network_ip_availability", try await service.ipAvailability(try context.parameters.require("id"), caller: try context.requireAuth()), request)
        }
    }
}
