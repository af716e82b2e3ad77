import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// QoS policies, their rules (under their policy, and by id alone: `qos-rules-alias`) and rule types.
    func registerQoS(_ api: RouterGroup<Context>) {
        let service = self.service
        api.get("/qos/rule-types") { request, context in
            let listing = NeutronListing(collection: "rule_types", request: request)
            let allRules = listing.values("all_rules").last.map(NeutronListing.truthy) ?? false
            return try listing.response(try service.qosRuleTypes(allRules: allRules, caller: try context.requireAuth()))
        }
        api.get("/qos/rule-types/:type") { request, context in
            Self.one("rule_type", try service.qosRuleType(try context.parameters.require("type"), caller: try context.requireAuth()), request)
        }

        api.get("/qos/policies") { request, context in
            try NeutronListing(collection: "policies", request: request).response(try await service.listQoSPolicies(caller: try context.requireAuth()))
        }
        api.post("/qos/policies") { request, context in
            let policy = try await service.createQoSPolicy(try await self.input(request, "policy"), caller: try context.requireAuth())
            return JSONResponse(status: .created, ["policy": .object(policy)]).response()
        }
        api.get("/qos/policies/:id") { request, context in
            Self.one("policy", try await service.qosPolicy(try context.parameters.require("id"), caller: try context.requireAuth()), request)
        }
        api.put("/qos/policies/:id") { request, context in
            let policy = try await service.updateQoSPolicy(try context.parameters.require("id"), try await self.input(request, "policy"),
                                                           caller: try context.requireAuth())
            return JSONResponse(["policy": .object(policy)]).response()
        }
        api.delete("/qos/policies/:id") { _, context in
            try await service.deleteQoSPolicy(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response(status: .noContent)
        }

        for type in QoSRuleType.all {
            let rules = "/qos/policies/:id/\(type.collection)"
            api.get("\(rules)") { request, context in
                let items = try await service.qosRules(type, policy: try context.parameters.require("id"), caller: try context.requireAuth())
                return try NeutronListing(collection: type.collection, request: request).response(items)
            }
            api.post("\(rules)") { request, context in
                let rule = try await service.createQoSRule(type, policy: try context.parameters.require("id"),
                                                           try await self.input(request, type.key), caller: try context.requireAuth())
                return JSONResponse(status: .created, [type.key: .object(rule)]).response()
            }
            // The nested path, and the alias paths (Neutron's hyphens, and underscores as some clients spell them).
            for path in [rules + "/:rule", "/qos/\(type.aliasCollection)/:rule", "/qos/alias_\(type.collection)/:rule"] {
                let nested = path.hasPrefix("/qos/policies/")
                api.get("\(path)") { request, context in
                    let policy = nested ? try context.parameters.require("id") : nil
                    let rule = try await service.qosRule(type, try context.parameters.require("rule"), policy: policy, caller: try context.requireAuth())
                    return Self.one(type.key, rule, request)
                }
                api.put("\(path)") { request, context in
                    let policy = nested ? try context.parameters.require("id") : nil
                    let rule = try await service.updateQoSRule(type, try context.parameters.require("rule"), policy: policy,
                                                               try await self.input(request, type.key), caller: try context.requireAuth())
                    return JSONResponse([type.key: .object(rule)]).response()
                }
                api.delete("\(path)") { _, context in
                    let policy = nested ? try context.parameters.require("id") : nil
                    try await service.deleteQoSRule(type, try context.parameters.require("rule"), policy: policy, caller: try context.requireAuth())
                    return Response(status: .noContent)
                }
            }
        }
    }
}
