import Foundation
import HTTPTypes
import Hummingbird
import NimbusCore

/// Glance's metadata definitions API, `/v2/metadefs/…` and `/v2/schemas/metadefs/…`, on the
/// image API's authenticated group.
struct MetadefRoutes: Sendable {
    let service: MetadefService
    let maxBodySize: Int

    typealias Group = RouterGroup<NimbusRequestContext>

    /// A path parameter, percent-decoded (names such as `OS::Compute::Quota` may arrive as `OS%3A%3A…`).
    static func parameter(_ context: NimbusRequestContext, _ name: String) throws -> String {
        let raw = try context.parameters.require(name)
        return raw.removingPercentEncoding ?? raw
    }

    /// A list body with Glance's `first`, `next` and `schema` links.
    static func listBody(_ key: String, _ items: [JSON], path: String, schema: String, query: [String: String], nextMarker: String?) -> JSON {
        var query = query
        query["marker"] = nil
        var body: [String: JSON] = [key: .array(items), "schema": .string(schema), "first": .string(ImageRoutes.link(path, query))]
        if let nextMarker {
            query["marker"] = nextMarker
            body["next"] = .string(ImageRoutes.link(path, query))
        }
        return .object(body)
    }

    func register(on api: Group) {
        for (path, document) in MetadefSchemas.all {
            api.get(RouterPath(stringLiteral: "/schemas/metadefs/\(path)")) { _, context in
                _ = try context.requireAuth()
                return JSONResponse(document).response()
            }
        }
        registerNamespaces(on: api)
        registerProperties(on: api)
        registerObjects(on: api)
        registerTags(on: api)
    }

    func registerNamespaces(on api: Group) {
        api.get("/metadefs/namespaces") { request, context in
            let page = try await service.listNamespaces(request.queryDictionary, caller: try context.requireAuth())
            return JSONResponse(Self.listBody("namespaces", page.namespaces, path: "/v2/metadefs/namespaces", schema: "/v2/schemas/metadefs/namespaces",
                                              query: request.queryDictionary, nextMarker: page.nextMarker)).response()
        }
        api.post("/metadefs/namespaces") { request, context in
            let body = try await service.createNamespace(try await request.jsonBody(limit: maxBodySize), caller: try context.requireAuth())
            var response = JSONResponse(status: .created, body).response()
            if let location = body["self"]?.stringValue { response.headers[.location] = location }
            return response
        }
        api.get("/metadefs/namespaces/:namespace") { request, context in
            JSONResponse(try await service.showNamespace(try Self.parameter(context, "namespace"), resourceType: request.queryDictionary["resource_type"],
                                                         caller: try context.requireAuth())).response()
        }
        api.put("/metadefs/namespaces/:namespace") { request, context in
            JSONResponse(try await service.updateNamespace(try Self.parameter(context, "namespace"), try await request.jsonBody(limit: maxBodySize),
                                                           caller: try context.requireAuth())).response()
        }
        api.delete("/metadefs/namespaces/:namespace") { _, context in
            try await service.deleteNamespace(try Self.parameter(context, "namespace"), caller: try context.requireAuth())
            return Response.empty()
        }
        api.get("/metadefs/resource_types") { _, context in
            JSONResponse(["resource_types": .array(try await service.resourceTypes(caller: try context.requireAuth()))]).response()
        }
        api.get("/metadefs/namespaces/:namespace/resource_types") { _, context in
            let associations = try await service.associations(namespace: try Self.parameter(context, "namespace"), caller: try context.requireAuth())
            return JSONResponse(["resource_type_associations": .array(associations)]).response()
        }
        api.post("/metadefs/namespaces/:namespace/resource_types") { request, context in
            JSONResponse(status: .created, try await service.associate(namespace: try Self.parameter(context, "namespace"),
                                                                       try await request.jsonBody(limit: maxBodySize), caller: try context.requireAuth())).response()
        }
        api.delete("/metadefs/namespaces/:namespace/resource_types/:type") { _, context in
            try await service.dissociate(namespace: try Self.parameter(context, "namespace"), resourceType: try Self.parameter(context, "type"),
                                         caller: try context.requireAuth())
            return Response.empty()
        }
    }

    func registerProperties(on api: Group) {
        api.get("/metadefs/namespaces/:namespace/properties") { _, context in
            let properties = try await service.properties(namespace: try Self.parameter(context, "namespace"), caller: try context.requireAuth())
            return JSONResponse(["properties": .object(Dictionary(uniqueKeysWithValues: properties.map { ($0.name, $0.json) }))]).response()
        }
        api.post("/metadefs/namespaces/:namespace/properties") { request, context in
            let property = try await service.createProperty(namespace: try Self.parameter(context, "namespace"), try await request.jsonBody(limit: maxBodySize),
                                                            caller: try context.requireAuth())
            return JSONResponse(status: .created, Self.named(property)).response()
        }
        api.delete("/metadefs/namespaces/:namespace/properties") { _, context in
            try await service.deleteProperties(namespace: try Self.parameter(context, "namespace"), caller: try context.requireAuth())
            return Response.empty()
        }
        api.get("/metadefs/namespaces/:namespace/properties/:property") { request, context in
            let property = try await service.property(namespace: try Self.parameter(context, "namespace"), try Self.parameter(context, "property"),
                                                      resourceType: request.queryDictionary["resource_type"], caller: try context.requireAuth())
            return JSONResponse(Self.named(property)).response()
        }
        api.put("/metadefs/namespaces/:namespace/properties/:property") { request, context in
            let property = try await service.updateProperty(namespace: try Self.parameter(context, "namespace"), try Self.parameter(context, "property"),
                                                            try await request.jsonBody(limit: maxBodySize), caller: try context.requireAuth())
            return JSONResponse(Self.named(property)).response()
        }
        api.delete("/metadefs/namespaces/:namespace/properties/:property") { _, context in
            try await service.deleteProperty(namespace: try Self.parameter(context, "namespace"), try Self.parameter(context, "property"),
                                             caller: try context.requireAuth())
            return Response.empty()
        }
    }

    /// A property as its own document: the definition with its `name`.
    static func named(_ property: MetadefProperty) -> JSON {
        var body = property.schema
        body["name"] = .string(property.name)
        return .object(body)
    }

    func registerObjects(on api: Group) {
        api.get("/metadefs/namespaces/:namespace/objects") { request, context in
            let namespace = try Self.parameter(context, "namespace")
            let (objects, next) = try await service.objects(namespace: namespace, request.queryDictionary, caller: try context.requireAuth())
            return JSONResponse(Self.listBody("objects", objects, path: "/v2/metadefs/namespaces/\(namespace)/objects", schema: "v2/schemas/metadefs/objects",
                                              query: request.queryDictionary, nextMarker: next)).response()
        }
        api.post("/metadefs/namespaces/:namespace/objects") { request, context in
            JSONResponse(status: .created, try await service.createObject(namespace: try Self.parameter(context, "namespace"),
                                                                          try await request.jsonBody(limit: maxBodySize), caller: try context.requireAuth())).response()
        }
        api.delete("/metadefs/namespaces/:namespace/objects") { _, context in
            try await service.deleteObjects(namespace: try Self.parameter(context, "namespace"), caller: try context.requireAuth())
            return Response.empty()
        }
        api.get("/metadefs/namespaces/:namespace/objects/:object") { _, context in
            JSONResponse(try await service.object(namespace: try Self.parameter(context, "namespace"), try Self.parameter(context, "object"),
                                                  caller: try context.requireAuth())).response()
        }
        api.put("/metadefs/namespaces/:namespace/objects/:object") { request, context in
            JSONResponse(try await service.updateObject(namespace: try Self.parameter(context, "namespace"), try Self.parameter(context, "object"),
                                                        try await request.jsonBody(limit: maxBodySize), caller: try context.requireAuth())).response()
        }
        api.delete("/metadefs/namespaces/:namespace/objects/:object") { _, context in
            try await service.deleteObject(namespace: try Self.parameter(context, "namespace"), try Self.parameter(context, "object"),
                                           caller: try context.requireAuth())
            return Response.empty()
        }
    }

    func registerTags(on api: Group) {
        api.get("/metadefs/namespaces/:namespace/tags") { request, context in
            let namespace = try Self.parameter(context, "namespace")
            let (tags, next) = try await service.tags(namespace: namespace, request.queryDictionary, caller: try context.requireAuth())
            return JSONResponse(Self.listBody("tags", tags, path: "/v2/metadefs/namespaces/\(namespace)/tags", schema: "/v2/schemas/metadefs/tags",
                                              query: request.queryDictionary, nextMarker: next)).response()
        }
        api.post("/metadefs/namespaces/:namespace/tags") { request, context in
            let append = request.headers[HTTPField.Name("X-Openstack-Append")!]?.lowercased() == "true"
            let tags = try await service.createTags(namespace: try Self.parameter(context, "namespace"), try await request.jsonBody(limit: maxBodySize),
                                                    append: append, caller: try context.requireAuth())
            return JSONResponse(status: .created, ["tags": .array(tags)]).response()
        }
        api.delete("/metadefs/namespaces/:namespace/tags") { _, context in
            try await service.deleteTags(namespace: try Self.parameter(context, "namespace"), caller: try context.requireAuth())
            return Response.empty()
        }
        api.get("/metadefs/namespaces/:namespace/tags/:tag") { _, context in
            JSONResponse(try await service.tag(namespace: try Self.parameter(context, "namespace"), try Self.parameter(context, "tag"),
                                               caller: try context.requireAuth())).response()
        }
        api.post("/metadefs/namespaces/:namespace/tags/:tag") { _, context in
            JSONResponse(status: .created, try await service.createTag(namespace: try Self.parameter(context, "namespace"), try Self.parameter(context, "tag"),
                                                                       caller: try context.requireAuth())).response()
        }
        api.put("/metadefs/namespaces/:namespace/tags/:tag") { request, context in
            JSONResponse(try await service.updateTag(namespace: try Self.parameter(context, "namespace"), try Self.parameter(context, "tag"),
                                                     try await request.jsonBody(limit: maxBodySize), caller: try context.requireAuth())).response()
        }
        api.delete("/metadefs/namespaces/:namespace/tags/:tag") { _, context in
            try await service.deleteTag(namespace: try Self.parameter(context, "namespace"), try Self.parameter(context, "tag"),
                                        caller: try context.requireAuth())
            return Response.empty()
        }
    }
}
