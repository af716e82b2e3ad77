import HTTPTypes
import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// The operator's views and controls: network IP availability, the agent schedulers and
    /// the service providers; floating IP pools and subnet pools' prefix operations.
    func registerOperations(_ api: RouterGroup<Context>) {
        let service = self.service
        api.get("/network-ip-availabilities") { request, context in
            let listing = NeutronListing(collection: "network_ip_availabilities", request: request)
            return try listing.response(try await service.listIPAvailabilities(ipVersions: listing.values("ip_version"), caller: try context.requireAuth()))
        }
        api.get("/network-ip-availabilities/:id") { request, context in
            Self.one("network_ip_availability", try await service.ipAvailability(try context.parameters.require("id"), caller: try context.requireAuth()), request)
        }

        api.get("/agents/:id/dhcp-networks") { request, context in
            try NeutronListing(collection: "networks", request: request)
                .response(try await service.dhcpNetworks(agent: try context.parameters.require("id"), caller: try context.requireAuth()))
        }
        api.post("/agents/:id/dhcp-networks") { request, context in
            let network = try JSONInput(try await self.body(request).objectValue ?? [:], path: "").requiredString("network_id")
            try await service.addDHCPNetwork(agent: try context.parameters.require("id"), network: network, caller: try context.requireAuth())
            return JSONResponse(status: .created, .null).response()
        }
        api.delete("/agents/:id/dhcp-networks/:network") { _, context in
            try await service.removeDHCPNetwork(agent: try context.parameters.require("id"), network: try context.parameters.require("network"),
                                                caller: try context.requireAuth())
            return Response(status: .noContent)
        }
        api.get("/networks/:id/dhcp-agents") { request, context in
            try NeutronListing(collection: "agents", request: request)
                .response(try await service.dhcpAgents(network: try context.parameters.require("id"), caller: try context.requireAuth()))
        }
        api.get("/agents/:id/l3-routers") { request, context in
            try NeutronListing(collection: "routers", request: request)
                .response(try await service.l3Routers(agent: try context.parameters.require("id"), caller: try context.requireAuth()))
        }
        api.post("/agents/:id/l3-routers") { request, context in
            let router = try JSONInput(try await self.body(request).objectValue ?? [:], path: "").requiredString("router_id")
            try await service.addL3Router(agent: try context.parameters.require("id"), router: router, caller: try context.requireAuth())
            return JSONResponse(status: .created, .null).response()
        }
        api.delete("/agents/:id/l3-routers/:router") { _, context in
            try await service.removeL3Router(agent: try context.parameters.require("id"), router: try context.parameters.require("router"),
                                             caller: try context.requireAuth())
            return Response(status: .noContent)
        }
        api.get("/routers/:id/l3-agents") { request, context in
            try NeutronListing(collection: "agents", request: request)
                .response(try await service.l3Agents(router: try context.parameters.require("id"), caller: try context.requireAuth()))
        }
        api.get("/floatingip_pools") { request, context in
            try NeutronListing(collection: "floatingip_pools", request: request).response(try await service.floatingIPPools(caller: try context.requireAuth()))
        }
        api.put("/subnetpools/:id/add_prefixes") { request, context in
            JSONResponse(.object(try await service.addSubnetPoolPrefixes(try context.parameters.require("id"), try await self.body(request),
                                                                         caller: try context.requireAuth()))).response()
        }
        api.put("/subnetpools/:id/remove_prefixes") { request, context in
            JSONResponse(.object(try await service.removeSubnetPoolPrefixes(try context.parameters.require("id"), try await self.body(request),
                                                                            caller: try context.requireAuth()))).response()
        }
        api.get("/service-providers") { request, context in
            try NeutronListing(collection: "service_providers", request: request)
                .response(try service.serviceProviders(caller: try context.requireAuth()))
        }
    }
}
