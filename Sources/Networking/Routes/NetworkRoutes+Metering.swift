import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// Metering labels and label rules.
    func registerMetering(_ api: RouterGroup<Context>) {
        let service = self.service
        api.get("/metering/metering-labels") { request, context in
            try NeutronListing(collection: "metering_labels", request: request).response(try await service.listMeteringLabels(caller: try context.requireAuth()))
        }
        api.post("/metering/metering-labels") { request, context in
            let label = try await service.createMeteringLabel(try await self.input(request, "metering_label"), caller: try context.requireAuth())
            return JSONResponse(status: .created, ["metering_label": .object(label)]).response()
        }
        api.get("/metering/metering-labels/:id") { request, context in
            Self.one("metering_label", try await service.meteringLabel(try context.parameters.require("id"), caller: try context.requireAuth()), request)
        }
        api.delete("/metering/metering-labels/:id") { _, context in
            try await service.deleteMeteringLabel(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response(status: .noContent)
        }
        api.get("/metering/metering-label-rules") { request, context in
            try NeutronListing(collection: "metering_label_rules", request: request)
                .response(try await service.listMeteringLabelRules(caller: try context.requireAuth()))
        }
        api.post("/metering/metering-label-rules") { request, context in
            let rule = try await service.createMeteringLabelRule(try await self.input(request, "metering_label_rule"), caller: try context.requireAuth())
            return JSONResponse(status: .created, ["metering_label_rule": .object(rule)]).response()
        }
        api.get("/metering/metering-label-rules/:id") { request, context in
            Self.one("metering_label_rule", try await service.meteringLabelRule(try context.parameters.require("id"), caller: try context.requireAuth()), request)
        }
        api.delete("/metering/metering-label-rules/:id") { _, context in
            try await service.deleteMeteringLabelRule(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response(status: .noContent)
        }
    }
}
