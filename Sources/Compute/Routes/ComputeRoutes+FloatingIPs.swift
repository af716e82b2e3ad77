import Foundation
import HTTPTypes
import Hummingbird
import NimbusCore

extension ComputeRoutes {
    /// Nova's `os-floating-ips` proxy to Neutron, 404 from 2.36 as in Nova.
    func registerFloatingIPProxies(_ api: RouterGroup<Context>) {
        api.get("/os-floating-ips") { _, context in
            try Self.below(context, 2, 36)
            return JSONResponse(["floating_ips": .array(try await service.proxyFloatingIPs(caller: try context.requireAuth()))]).response()
        }
        api.post("/os-floating-ips") { request, context in
            try Self.below(context, 2, 36)
            // Nova takes an allocate with no body at all (the default pool).
            let body: JSON? = request.headers[.contentLength] == "0" ? nil : try await body(request)
            return JSONResponse(["floating_ip": try await service.allocateProxyFloatingIP(body, caller: try context.requireAuth())]).response()
        }
        api.get("/os-floating-ips/:id") { _, context in
            try Self.below(context, 2, 36)
            return JSONResponse(["floating_ip": try await service.proxyFloatingIP(try context.parameters.require("id"),
                                                                                  caller: try context.requireAuth())]).response()
        }
        api.delete("/os-floating-ips/:id") { _, context in
            try Self.below(context, 2, 36)
            try await service.releaseProxyFloatingIP(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response(status: .accepted)
        }
    }
}
