import HTTPTypes
import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// Networks, subnets, subnet pools, ports, quotas, availability zones, tags.
    func registerCore(_ api: RouterGroup<Context>) {
        let service = self.service
        registerCRUD(api, "network", "networks", list: { _, caller in try await service.listNetworks(caller: caller) },
                     show: service.network, update: service.updateNetwork, delete: service.deleteNetwork)
        registerCRUD(api, "subnet", "subnets", list: { _, caller in try await service.listSubnets(caller: caller) },
                     show: service.subnet, update: service.updateSubnet, delete: service.deleteSubnet)
        registerCRUD(api, "subnetpool", "subnetpools", list: { _, caller in try await service.listSubnetPools(caller: caller) },
                     show: service.subnetPool, update: service.updateSubnetPool, delete: service.deleteSubnetPool)
        registerCRUD(api, "port", "ports", list: { request, caller in
            try await service.listPorts(fixedIPFilters: NeutronListing(collection: "ports", request: request).values("fixed_ips"), caller: caller)
        }, show: service.port, update: service.updatePort, delete: service.deletePort)

        api.get("/availability_zones") { request, context in
            try NeutronListing(collection: "availability_zones", request: request).response(try service.availabilityZones(caller: try context.requireAuth()))
        }
        registerQuotas(api)
    }

    /// A resource's collection and item routes, and its tags.
    func registerCRUD(_ api: RouterGroup<Context>, _ key: String, _ collection: String,
                      list: @escaping @Sendable (Request, AuthContext) async throws -> [[String: JSON]],
                      show: @escaping @Sendable (String, AuthContext) async throws -> [String: JSON],
                      update: @escaping @Sendable (String, JSON, AuthContext) async throws -> [String: JSON],
                      delete: @escaping @Sendable (String, AuthContext) async throws -> Void) {
        api.get("/\(collection)") { request, context in
            try NeutronListing(collection: collection, request: request).response(try await list(request, try context.requireAuth()))
        }
        api.post("/\(collection)") { request, context in
            let body = try await self.body(request)
            // A list under the collection's name is a bulk create.
            if let items = body[collection]?.arrayValue {
                guard !items.isEmpty else { throw APIError.badRequest("Resources required") }
                let created = try await self.service.create(key, items, caller: try context.requireAuth())
                return JSONResponse(status: .created, [collection: .array(created.map { .object($0) })]).response()
            }
            let item = try JSONInput(body: body, key: key)
            let created = try await self.service.create(key, [.object(item.fields)], caller: try context.requireAuth())
            return JSONResponse(status: .created, [key: .object(created[0])]).response()
        }
        api.get("/\(collection)/:id") { request, context in
            let item = try await show(try context.parameters.require("id"), try context.requireAuth())
            return Self.one(key, item, request)
        }
        api.put("/\(collection)/:id") { request, context in
            let item = try await update(try context.parameters.require("id"), try await self.body(request), try context.requireAuth())
            return JSONResponse([key: .object(item)]).response()
        }
        api.delete("/\(collection)/:id") { _, context in
            try await delete(try context.parameters.require("id"), try context.requireAuth())
            return Response(status: .noContent)
        }

        let service = self.service
        registerTags(api, collection, show: show) { id, caller, change in try await service.changeTags(key, id, caller: caller, change) }
    }

    /// A resource's tags (standard-attr-tag): `change` replaces them, and must check that the
    /// caller may update the resource.
    func registerTags(_ api: RouterGroup<Context>, _ collection: String,
                      show: @escaping @Sendable (String, AuthContext) async throws -> [String: JSON],
                      change: @escaping @Sendable (String, AuthContext, @escaping @Sendable ([String]) throws -> [String]) async throws -> [String: JSON]) {
        api.get("/\(collection)/:id/tags") { _, context in
            let item = try await show(try context.parameters.require("id"), try context.requireAuth())
            return JSONResponse(["tags": item["tags"] ?? []]).response()
        }
        api.get("/\(collection)/:id/tags/:tag") { _, context in
            let item = try await show(try context.parameters.require("id"), try context.requireAuth())
            let tag = try context.parameters.require("tag")
            guard item["tags"]?.arrayValue?.contains(.string(tag)) == true else {
                throw APIError(.notFound, "Tag \(tag) could not be found.", code: "TagNotFound")
            }
            return Response(status: .noContent)
        }
        api.put("/\(collection)/:id/tags") { request, context in
            let tags = try JSONInput(try await self.body(request).objectValue ?? [:], path: "").stringArray("tags") ?? []
            let item = try await change(try context.parameters.require("id"), try context.requireAuth()) { _ in tags }
            return JSONResponse(["tags": item["tags"] ?? []]).response()
        }
        api.delete("/\(collection)/:id/tags") { _, context in
            _ = try await change(try context.parameters.require("id"), try context.requireAuth()) { _ in [] }
            return Response(status: .noContent)
        }
        api.put("/\(collection)/:id/tags/:tag") { _, context in
            let tag = try context.parameters.require("tag")
            _ = try await change(try context.parameters.require("id"), try context.requireAuth()) { $0 + [tag] }
            return Response(status: .created)
        }
        api.delete("/\(collection)/:id/tags/:tag") { _, context in
            let tag = try context.parameters.require("tag")
            _ = try await change(try context.parameters.require("id"), try context.requireAuth()) { tags in
                guard tags.contains(tag) else { throw APIError(.notFound, "Tag \(tag) could not be found.", code: "TagNotFound") }
                return tags.filter { $0 != tag }
            }
            return Response(status: .noContent)
        }
    }

    func registerQuotas(_ api: RouterGroup<Context>) {
        let service = self.service
        api.get("/quotas") { _, context in
            JSONResponse(try await service.quotas(caller: try context.requireAuth())).response()
        }
        api.get("/quotas/:project") { _, context in
            JSONResponse(try await service.quota(project: try context.parameters.require("project"), details: false, caller: try context.requireAuth())).response()
        }
        api.get("/quotas/:project/details") { _, context in
            JSONResponse(try await service.quota(project: try context.parameters.require("project"), details: true, caller: try context.requireAuth())).response()
        }
        api.get("/quotas/:project/default") { _, context in
            JSONResponse(try service.defaultQuota(project: try context.parameters.require("project"), caller: try context.requireAuth())).response()
        }
        api.put("/quotas/:project") { request, context in
            JSONResponse(try await service.updateQuota(project: try context.parameters.require("project"), try await self.body(request),
                                                       caller: try context.requireAuth())).response()
        }
        api.delete("/quotas/:project") { _, context in
            try await service.deleteQuota(project: try context.parameters.require("project"), caller: try context.requireAuth())
            return Response(status: .noContent)
        }
    }
}
