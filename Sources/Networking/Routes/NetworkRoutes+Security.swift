import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// Security groups, rules and default rules, agents.
    func registerSecurity(_ api: RouterGroup<Context>) {
        api.get("/security-groups") { request, context in
            let listing = NeutronListing(collection: "security_groups", request: request)
            let project = listing.values("project_id").first ?? listing.values("tenant_id").first
            return try listing.response(try await service.securityGroups(caller: try context.requireAuth(), project: project).map(\.json))
        }
        api.get("/security-groups/:id") { request, context in
            let group = try await service.securityGroup(try context.parameters.require("id"), caller: try context.requireAuth())
            return Self.one("security_group", group.json, request)
        }
        api.post("/security-groups") { request, context in
            let group = try await service.createSecurityGroup(try await input(request, "security_group"), caller: try context.requireAuth())
            return JSONResponse(status: .created, ["security_group": .object(group.json)]).response()
        }
        api.put("/security-groups/:id") { request, context in
            let group = try await service.updateSecurityGroup(try context.parameters.require("id"), try await input(request, "security_group"),
                                                              caller: try context.requireAuth())
            return JSONResponse(["security_group": .object(group.json)]).response()
        }
        api.delete("/security-groups/:id") { _, context in
            try await service.deleteSecurityGroup(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response.empty()
        }
        registerTags(api, "security-groups", show: { id, caller in try await service.securityGroup(id, caller: caller).json },
                     change: service.changeSecurityGroupTags)

        api.get("/security-group-rules") { request, context in
            let rules = try await service.securityGroupRules(caller: try context.requireAuth())
            return try NeutronListing(collection: "security_group_rules", request: request).response(rules.map(\.json))
        }
        api.get("/security-group-rules/:id") { request, context in
            let rule = try await service.securityGroupRule(try context.parameters.require("id"), caller: try context.requireAuth())
            return Self.one("security_group_rule", rule.json, request)
        }
        api.post("/security-group-rules") { request, context in
            let body = try await self.body(request)
            // A list under the collection's name is a bulk create.
            if let items = body["security_group_rules"]?.arrayValue {
                guard !items.isEmpty else { throw APIError.badRequest("Resources required") }
                let inputs = try items.map { try JSONInput(body: ["security_group_rule": $0], key: "security_group_rule") }
                let rules = try await service.createSecurityGroupRules(inputs, caller: try context.requireAuth())
                return JSONResponse(status: .created, ["security_group_rules": .array(rules.map { .object($0.json) })]).response()
            }
            let rule = try await service.createSecurityGroupRule(try JSONInput(body: body, key: "security_group_rule"), caller: try context.requireAuth())
            return JSONResponse(status: .created, ["security_group_rule": .object(rule.json)]).response()
        }
        api.delete("/security-group-rules/:id") { _, context in
            try await service.deleteSecurityGroupRule(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response.empty()
        }

        api.get("/default-security-group-rules") { request, context in
            try NeutronListing(collection: "default_security_group_rules", request: request)
                .response(try await service.listDefaultSecurityGroupRules(caller: try context.requireAuth()))
        }
        api.get("/default-security-group-rules/:id") { request, context in
            Self.one("default_security_group_rule", try await service.defaultSecurityGroupRule(try context.parameters.require("id"), caller: try context.requireAuth()),
                     request)
        }
        api.post("/default-security-group-rules") { request, context in
            let rule = try await service.createDefaultSecurityGroupRule(try await self.body(request), caller: try context.requireAuth())
            return JSONResponse(status: .created, ["default_security_group_rule": .object(rule)]).response()
        }
        api.delete("/default-security-group-rules/:id") { _, context in
            try await service.deleteDefaultSecurityGroupRule(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response(status: .noContent)
        }

        registerDefaultStatefulness(api)

        api.get("/agents") { request, context in
            try NeutronListing(collection: "agents", request: request).response(try await service.agents(caller: try context.requireAuth()))
        }
        api.get("/agents/:id") { request, context in
            Self.one("agent", try await service.agent(try context.parameters.require("id"), caller: try context.requireAuth()), request)
        }
        api.put("/agents/:id") { request, context in
            let agent = try await service.updateAgent(try context.parameters.require("id"), try await input(request, "agent"),
                                                      caller: try context.requireAuth())
            return JSONResponse(["agent": .object(agent)]).response()
        }
        api.delete("/agents/:id") { _, context in
            try await service.deleteAgent(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response.empty()
        }
    }
}
