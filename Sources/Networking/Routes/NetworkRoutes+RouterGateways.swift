import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// Routers' further external gateways (multihoming) and NDP proxies.
    func registerRouterGateways(_ api: RouterGroup<Context>) {
        let service = self.service
        let actions: [(String, @Sendable (String, JSON, AuthContext) async throws -> [String: JSON])] = [
            ("add_external_gateways", service.addExternalGateways), ("update_external_gateways", service.updateExternalGateways),
            ("remove_external_gateways", service.removeExternalGateways),
        ]
        for (path, action) in actions {
            api.put("/routers/:id/\(path)") { request, context in
                let router = try await action(try context.parameters.require("id"), try await self.body(request), try context.requireAuth())
                return JSONResponse(["router": .object(router)]).response()
            }
        }

        api.get("/ndp_proxies") { request, context in
            try NeutronListing(collection: "ndp_proxies", request: request).response(try await service.listNDPProxies(caller: try context.requireAuth()))
        }
        api.post("/ndp_proxies") { request, context in
            let item = try await service.createNDPProxy(try await self.input(request, "ndp_proxy"), caller: try context.requireAuth())
            return JSONResponse(status: .created, ["ndp_proxy": .object(item)]).response()
        }
        api.get("/ndp_proxies/:id") { request, context in
            Self.one("ndp_proxy", try await service.ndpProxy(try context.parameters.require("id"), caller: try context.requireAuth()), request)
        }
        api.put("/ndp_proxies/:id") { request, context in
            let item = try await service.updateNDPProxy(try context.parameters.require("id"), try await self.input(request, "ndp_proxy"),
                                                        caller: try context.requireAuth())
            return JSONResponse(["ndp_proxy": .object(item)]).response()
        }
        api.delete("/ndp_proxies/:id") { _, context in
            try await service.deleteNDPProxy(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response(status: .noContent)
        }
    }
}
