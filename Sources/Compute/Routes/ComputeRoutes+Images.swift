import Hummingbird
import NimbusCore

extension ComputeRoutes {
    /// Nova's image proxy: gone from microversion 2.36, as in Nova.
    func registerImageProxy(_ api: RouterGroup<Context>) {
        let service = self.service
        for (path, detail) in [("/images", false), ("/images/detail", true)] {
            api.get("\(path)") { request, context in
                try Self.below(context, 2, 36)
                let (base, imageBase) = Self.bases(request)
                let list = try await service.proxyImages(request.queryDictionary, caller: try context.requireAuth())
                return JSONResponse(["images": .array(list.map { ComputeService.proxyView($0, base: base, imageBase: imageBase, detail: detail) })]).response()
            }
        }
        api.get("/images/:id") { request, context in
            try Self.below(context, 2, 36)
            let (base, imageBase) = Self.bases(request)
            let image = try await service.proxyImage(try context.parameters.require("id"), caller: try context.requireAuth())
            return JSONResponse(["image": ComputeService.proxyView(image, base: base, imageBase: imageBase, detail: true)]).response()
        }
        api.delete("/images/:id") { _, context in
            try Self.below(context, 2, 36)
            try await service.deleteProxyImage(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response(status: .noContent)
        }
        api.get("/images/:id/metadata") { _, context in
            try Self.below(context, 2, 36)
            let image = try await service.proxyImage(try context.parameters.require("id"), caller: try context.requireAuth())
            return JSONResponse(["metadata": .object(ComputeService.metadata(of: image).mapValues { .string($0) })]).response()
        }
        for (replace, put) in [(false, false), (true, true)] {
            let handler: @Sendable (Request, Context) async throws -> Response = { request, context in
                try Self.below(context, 2, 36)
                let metadata = try await service.changeImageMetadata(try context.parameters.require("id"), try await self.body(request), replace: replace,
                                                                     caller: try context.requireAuth())
                return JSONResponse(["metadata": .object(metadata.mapValues { .string($0) })]).response()
            }
            if put { api.put("/images/:id/metadata", use: handler) } else { api.post("/images/:id/metadata", use: handler) }
        }
        api.get("/images/:id/metadata/:key") { _, context in
            try Self.below(context, 2, 36)
            let key = try context.parameters.require("key")
            let image = try await service.proxyImage(try context.parameters.require("id"), caller: try context.requireAuth())
            guard let value = ComputeService.metadata(of: image)[key] else { throw APIError.notFound("Metadata item was not found") }
            return JSONResponse(["meta": [key: .string(value)]]).response()
        }
        api.put("/images/:id/metadata/:key") { request, context in
            try Self.below(context, 2, 36)
            let key = try context.parameters.require("key")
            let metadata = try await service.changeImageMetadata(try context.parameters.require("id"), try await self.body(request), replace: false,
                                                                 key: key, caller: try context.requireAuth())
            return JSONResponse(["meta": [key: .optional(metadata[key])]]).response()
        }
        api.delete("/images/:id/metadata/:key") { _, context in
            try Self.below(context, 2, 36)
            try await service.deleteImageMetadata(try context.parameters.require("id"), key: try context.parameters.require("key"),
                                                  caller: try context.requireAuth())
            return Response(status: .noContent)
        }
    }

    /// The compute API's base and the image service's, for the proxy's links.
    static func bases(_ request: Request) -> (String, String) {
        (base(request), request.baseURL(fallback: "http://localhost") + "/image")
    }
}
