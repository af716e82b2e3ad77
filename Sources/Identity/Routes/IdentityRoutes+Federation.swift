import Foundation
import Hummingbird
import NimbusCore

/// OS-FEDERATION's configuration routes. Providers, protocols, mappings and service providers
/// are created with PUT on the id the caller chose (201), as Keystone does.
extension IdentityRoutes {
    func registerFederation(_ api: RouterGroup<Context>) {
        let idps = "/OS-FEDERATION/identity_providers"
        api.put("\(idps)/:idp") { request, context in
            let idp = try await service.createIdentityProvider(try id(context, "idp"), try await input(request, "identity_provider"), caller: try context.requireAuth())
            return Self.ok(["identity_provider": idp.json(links(request))], .created)
        }
        api.get(RouterPath(stringLiteral: idps)) { request, context in
            let all = try await service.listIdentityProviders(request.queryDictionary, caller: try context.requireAuth())
            return list(request, "identity_providers", all.map { $0.json(links(request)) })
        }
        api.get("\(idps)/:idp") { request, context in
            Self.ok(["identity_provider": try await service.getIdentityProvider(try id(context, "idp"), caller: try context.requireAuth()).json(links(request))])
        }
        api.patch("\(idps)/:idp") { request, context in
            let idp = try await service.updateIdentityProvider(try id(context, "idp"), try await input(request, "identity_provider"), caller: try context.requireAuth())
            return Self.ok(["identity_provider": idp.json(links(request))])
        }
        api.delete("\(idps)/:idp") { _, context in
            try await service.deleteIdentityProvider(try id(context, "idp"), caller: try context.requireAuth())
            return Response.empty()
        }

        api.put("\(idps)/:idp/protocols/:protocol") { request, context in
            let proto = try await service.createProtocol(idp: try id(context, "idp"), try id(context, "protocol"), try await input(request, "protocol"),
                                                         caller: try context.requireAuth())
            return Self.ok(["protocol": proto.json(links(request))], .created)
        }
        api.get("\(idps)/:idp/protocols") { request, context in
            let all = try await service.listProtocols(idp: try id(context, "idp"), caller: try context.requireAuth())
            return list(request, "protocols", all.map { $0.json(links(request), listed: true) })
        }
        api.get("\(idps)/:idp/protocols/:protocol") { request, context in
            let proto = try await service.getProtocol(idp: try id(context, "idp"), try id(context, "protocol"), caller: try context.requireAuth())
            return Self.ok(["protocol": proto.json(links(request))])
        }
        api.patch("\(idps)/:idp/protocols/:protocol") { request, context in
            let proto = try await service.updateProtocol(idp: try id(context, "idp"), try id(context, "protocol"), try await input(request, "protocol"),
                                                         caller: try context.requireAuth())
            return Self.ok(["protocol": proto.json(links(request))])
        }
        api.delete("\(idps)/:idp/protocols/:protocol") { _, context in
            try await service.deleteProtocol(idp: try id(context, "idp"), try id(context, "protocol"), caller: try context.requireAuth())
            return Response.empty()
        }

        api.put("/OS-FEDERATION/mappings/:id") { request, context in
            let mapping = try await service.createMapping(try id(context), try await input(request, "mapping"), caller: try context.requireAuth())
            return Self.ok(["mapping": mapping.json(links(request))], .created)
        }
        api.get("/OS-FEDERATION/mappings") { request, context in
            list(request, "mappings", try await service.listMappings(caller: try context.requireAuth()).map { $0.json(links(request)) })
        }
        api.get("/OS-FEDERATION/mappings/:id") { request, context in
            Self.ok(["mapping": try await service.getMapping(try id(context), caller: try context.requireAuth()).json(links(request))])
        }
        api.patch("/OS-FEDERATION/mappings/:id") { request, context in
            let mapping = try await service.updateMapping(try id(context), try await input(request, "mapping"), caller: try context.requireAuth())
            return Self.ok(["mapping": mapping.json(links(request))])
        }
        api.delete("/OS-FEDERATION/mappings/:id") { _, context in
            try await service.deleteMapping(try id(context), caller: try context.requireAuth())
            return Response.empty()
        }

        api.put("/OS-FEDERATION/service_providers/:id") { request, context in
            let sp = try await service.createServiceProvider(try id(context), try await input(request, "service_provider"), caller: try context.requireAuth())
            return Self.ok(["service_provider": sp.json(links(request))], .created)
        }
        api.get("/OS-FEDERATION/service_providers") { request, context in
            let all = try await service.listServiceProviders(request.queryDictionary, caller: try context.requireAuth())
            return list(request, "service_providers", all.map { $0.json(links(request)) })
        }
        api.get("/OS-FEDERATION/service_providers/:id") { request, context in
            Self.ok(["service_provider": try await service.getServiceProvider(try id(context), caller: try context.requireAuth()).json(links(request))])
        }
        api.patch("/OS-FEDERATION/service_providers/:id") { request, context in
            let sp = try await service.updateServiceProvider(try id(context), try await input(request, "service_provider"), caller: try context.requireAuth())
            return Self.ok(["service_provider": sp.json(links(request))])
        }
        api.delete("/OS-FEDERATION/service_providers/:id") { _, context in
            try await service.deleteServiceProvider(try id(context), caller: try context.requireAuth())
            return Response.empty()
        }

        // The deprecated federation spellings of /v3/auth/projects and /v3/auth/domains.
        api.get("/OS-FEDERATION/projects", use: authProjects)
        api.get("/OS-FEDERATION/domains", use: authDomains)
    }
}
