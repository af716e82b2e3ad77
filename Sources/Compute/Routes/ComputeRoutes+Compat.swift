import Foundation
import HTTPTypes
import Hummingbird
import NimbusCore

extension ComputeRoutes {
    /// Routes clients still call beside the main ones: a server's topology (2.78+) and
    /// addresses on one network, steering a live migration under way (force complete 2.22+,
    /// abort 2.24+), image precache (2.81+), and the proxies to Neutron Nova serves below 2.36.
    func registerCompat(_ api: RouterGroup<Context>) {
        api.get("/servers/:id/topology") { _, context in
            try Self.atLeast(context, 2, 78)
            return JSONResponse(try await service.topology(try context.parameters.require("id"), caller: try context.requireAuth())).response()
        }
        api.get("/servers/:id/ips/:network") { _, context in
            let label = try context.parameters.require("network")
            return JSONResponse(try await service.addresses(try context.parameters.require("id"), network: label.removingPercentEncoding ?? label,
                                                            caller: try context.requireAuth())).response()
        }
        api.post("/servers/:id/migrations/:migration/action") { request, context in
            try Self.atLeast(context, 2, 22)
            let body = try await body(request)
            guard let object = body.objectValue, object.keys.contains("force_complete") else {
                throw APIError.badRequest("Invalid input for field/attribute . Value: \(body.serialized()). 'force_complete' is a required property")
            }
            guard object.count == 1, object["force_complete"]?.isNull == true else {
                throw APIError.badRequest("Invalid input for field/attribute force_complete. Value: \(object["force_complete"]?.serialized() ?? ""). It must be null with no other member")
            }
            try await service.forceCompleteMigration(try context.parameters.require("id"), migrationID: try context.parameters.require("migration"),
                                                     caller: try context.requireAuth(), requestID: context.requestID)
            return Response(status: .accepted)
        }
        api.delete("/servers/:id/migrations/:migration") { _, context in
            try Self.atLeast(context, 2, 24)
            try await service.abortMigration(try context.parameters.require("id"), migrationID: try context.parameters.require("migration"),
                                             version: context.microversion, caller: try context.requireAuth(), requestID: context.requestID)
            return Response(status: .accepted)
        }
        api.post("/os-aggregates/:id/images") { request, context in
            try Self.atLeast(context, 2, 81)
            try await service.cacheImages(aggregate: try context.parameters.require("id"), try await body(request), caller: try context.requireAuth())
            return Response(status: .accepted)
        }
        registerNetworkProxies(api)
        registerFloatingIPProxies(api)
    }

    /// The proxies, 404 from 2.36 as in Nova.
    func registerNetworkProxies(_ api: RouterGroup<Context>) {
        api.get("/os-networks") { _, context in
            try Self.below(context, 2, 36)
            return JSONResponse(["networks": .array(try await service.proxyNetworks(caller: try context.requireAuth()))]).response()
        }
        api.get("/os-networks/:id") { _, context in
            try Self.below(context, 2, 36)
            return JSONResponse(["network": try await service.proxyNetwork(try context.parameters.require("id"), caller: try context.requireAuth())]).response()
        }
        api.get("/os-tenant-networks") { _, context in
            try Self.below(context, 2, 36)
            return JSONResponse(["networks": .array(try await service.tenantNetworks(caller: try context.requireAuth()))]).response()
        }
        api.get("/os-tenant-networks/:id") { _, context in
            try Self.below(context, 2, 36)
            return JSONResponse(["network": try await service.tenantNetwork(try context.parameters.require("id"), caller: try context.requireAuth())]).response()
        }
        api.get("/os-floating-ip-pools") { _, context in
            try Self.below(context, 2, 36)
            return JSONResponse(["floating_ip_pools": .array(try await service.floatingIPPools(caller: try context.requireAuth()))]).response()
        }
        api.get("/os-security-groups") { request, context in
            try Self.below(context, 2, 36)
            return JSONResponse(["security_groups": .array(try await service.proxySecurityGroups(request.queryDictionary,
                                                                                                  caller: try context.requireAuth()))]).response()
        }
        api.post("/os-security-groups") { request, context in
            try Self.below(context, 2, 36)
            return JSONResponse(["security_group": try await service.createProxySecurityGroup(try await body(request),
                                                                                              caller: try context.requireAuth())]).response()
        }
        api.get("/os-security-groups/:id") { _, context in
            try Self.below(context, 2, 36)
            return JSONResponse(["security_group": try await service.proxySecurityGroup(try context.parameters.require("id"),
                                                                                        caller: try context.requireAuth())]).response()
        }
        api.put("/os-security-groups/:id") { request, context in
            try Self.below(context, 2, 36)
            return JSONResponse(["security_group": try await service.updateProxySecurityGroup(try context.parameters.require("id"), try await body(request),
                                                                                              caller: try context.requireAuth())]).response()
        }
        api.delete("/os-security-groups/:id") { _, context in
            try Self.below(context, 2, 36)
            try await service.deleteProxySecurityGroup(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response(status: .accepted)
        }
        api.post("/os-security-group-rules") { request, context in
            try Self.below(context, 2, 36)
            return JSONResponse(["security_group_rule": try await service.createProxySecurityGroupRule(try await body(request),
                                                                                                       caller: try context.requireAuth())]).response()
        }
        api.delete("/os-security-group-rules/:id") { _, context in
            try Self.below(context, 2, 36)
            try await service.deleteProxySecurityGroupRule(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response(status: .accepted)
        }
    }
}
