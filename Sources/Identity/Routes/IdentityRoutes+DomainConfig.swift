import Foundation
import Hummingbird
import NimbusCore

/// `/v3/domains/{id}/config…` and `/v3/domains/config…/default` (Keystone's domain-specific
/// configuration; see `IdentityService+DomainConfig`).
extension IdentityRoutes {
    func registerDomainConfig(_ api: RouterGroup<Context>) {
        // The defaults; the literal `config` segment is matched before a domain id.
        for (path, parts) in [("/domains/config/default", 0), ("/domains/config/:group/default", 1), ("/domains/config/:group/:option/default", 2)] {
            let handler: Handler = { request, context in
                let body = try service.defaultDomainConfig(group: parts >= 1 ? try id(context, "group") : nil,
                                                           option: parts == 2 ? try id(context, "option") : nil,
                                                           caller: try context.requireAuth())
                return Self.headOrBody(request, Self.ok(body))
            }
            api.get(RouterPath(stringLiteral: path), use: handler)
            api.head(RouterPath(stringLiteral: path), use: handler)
        }
        api.put("/domains/:id/config") { request, context in
            let (body, created) = try await service.createDomainConfig(
                domainID: try id(context), try await request.jsonBody(limit: maxBodySize), caller: try context.requireAuth())
            return Self.ok(body, created ? .created : .ok)
        }
        for (path, parts) in [("/domains/:id/config", 0), ("/domains/:id/config/:group", 1), ("/domains/:id/config/:group/:option", 2)] {
            let route = RouterPath(stringLiteral: path)
            let group: @Sendable (Context) throws -> String? = { parts >= 1 ? try id($0, "group") : nil }
            let option: @Sendable (Context) throws -> String? = { parts == 2 ? try id($0, "option") : nil }
            let show: Handler = { request, context in
                let body = try await service.getDomainConfig(domainID: try id(context), group: try group(context), option: try option(context),
                                                             caller: try context.requireAuth())
                return Self.headOrBody(request, Self.ok(body))
            }
            api.get(route, use: show)
            api.head(route, use: show)
            api.patch(route) { request, context in
                Self.ok(try await service.updateDomainConfig(domainID: try id(context), group: try group(context), option: try option(context),
                                                             try await request.jsonBody(limit: maxBodySize), caller: try context.requireAuth()))
            }
            api.delete(route) { _, context in
                try await service.deleteDomainConfig(domainID: try id(context), group: try group(context), option: try option(context),
                                                     caller: try context.requireAuth())
                return Response.empty()
            }
        }
    }

    /// A HEAD answers the GET's status and headers without its body.
    static func headOrBody(_ request: Request, _ response: Response) -> Response {
        var response = response
        if request.method == .head { response.body = .init() }
        return response
    }
}
