import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NimbusCore

/// Glance v2 over HTTP, mounted under `/image`. Links inside bodies are relative to the
/// endpoint (`/v2/images/...`), as Glance writes them.
public struct ImageRoutes: Sendable {
    let service: ImageService
    let validator: any TokenValidating
    let maxBodySize: Int

    public init(service: ImageService, validator: any TokenValidating, maxBodySize: Int) {
        self.service = service
        self.validator = validator
        self.maxBodySize = maxBodySize
    }

    typealias Context = NimbusRequestContext

    /// What Glance advertises with multiple stores and no image cache: v2.17 current, the
    /// earlier ones supported (2.14 and 2.16 are the cache API).
    static let versionIDs = ["v2.17", "v2.15", "v2.13", "v2.12", "v2.11", "v2.10", "v2.9", "v2.8", "v2.7", "v2.6", "v2.5", "v2.4",
                             "v2.3", "v2.2", "v2.1", "v2.0"]

    func versions(_ request: Request, status: HTTPResponse.Status) -> Response {
        let href = request.baseURL(fallback: "http://localhost") + "/image/v2/"
        let list: [JSON] = Self.versionIDs.map { id in
            ["id": .string(id), "status": id == "v2.17" ? "CURRENT" : "SUPPORTED", "links": [["rel": "self", "href": .string(href)]]]
        }
        return JSONResponse(status: status, ["versions": .array(list)]).response()
    }

    public func register(on router: Router<NimbusRequestContext>) {
        let open = router.group("image").add(middleware: ErrorStyleMiddleware(.glance))
        open.get("") { request, _ in versions(request, status: .multipleChoices) }
        open.get("/versions") { request, _ in versions(request, status: .ok) }

        let api = router.group("image/v2").add(middleware: ErrorStyleMiddleware(.glance)).add(middleware: TokenAuthMiddleware(validator: validator, service: .image))
        for (path, document) in [("image", ImageSchemas.image), ("images", ImageSchemas.images), ("member", ImageSchemas.member), ("members", ImageSchemas.members),
                                 ("task", ImageSchemas.task(full: true)), ("tasks", ImageSchemas.tasks)] {
            api.get(RouterPath(stringLiteral: "/schemas/\(path)")) { _, _ in JSONResponse(document).response() }
        }
        MetadefRoutes(service: service.metadefs, maxBodySize: maxBodySize).register(on: api)
        api.get("/info/stores") { _, context in
            _ = try context.requireAuth()
            // Glance writes these flags as the strings "true".
            let stores: [JSON] = service.stores.stores.map { store in
                var entry: [String: JSON] = ["id": .string(store.id), "description": .string(store.description)]
                if store.id == service.stores.defaultID { entry["default"] = "true" }
                return .object(entry)
            }
            return JSONResponse(["stores": .array(stores)]).response()
        }
        api.get("/info/stores/detail") { _, context in
            let caller = try context.requireAuth()
            guard service.policy.enforce("stores_info_detail", credentials: caller.policyInput, target: ["project_id": caller.projectID ?? ""]) else {
                throw APIError.forbidden("You are not authorized to complete stores_info_detail action.")
            }
            let stores: [JSON] = service.stores.stores.map { store in
                // Weight orders an image's locations in Glance; Nimbus has no such setting, so every store has Glance's default.
                var entry: [String: JSON] = ["id": .string(store.id), "description": .string(store.description), "type": .string(store.type),
                                             "properties": .object(store.properties), "weight": 0]
                if store.id == service.stores.defaultID { entry["default"] = "true" }
                return .object(entry)
            }
            return JSONResponse(["stores": .array(stores)]).response()
        }
        api.get("/info/import") { _, context in
            _ = try context.requireAuth()
            return JSONResponse(["import-methods": ["description": "Import methods available.", "type": "array",
                                                    "value": .array(ImageService.importMethods.map { .string($0) })]]).response()
        }
        api.get("/info/usage") { _, context in
            JSONResponse(try await service.usage(caller: try context.requireAuth())).response()
        }
        api.post("/images") { request, context in
            let image = try await service.create(try await request.jsonBody(limit: maxBodySize), caller: try context.requireAuth())
            var response = JSONResponse(status: .created, image.json).response()
            response.headers[.location] = "/v2/images/\(image.id)"
            response.headers[HTTPField.Name("OpenStack-image-import-methods")!] = ImageService.importMethods.joined(separator: ",")
            response.headers[HTTPField.Name("OpenStack-image-store-ids")!] = service.stores.stores.map(\.id).joined(separator: ",")
            return response
        }
        api.get("/images") { request, context in
            // `/v2/images/` is an image with an empty id, not the list (Glance answers 404).
            if request.uri.path.hasSuffix("/") { throw APIError.notFound("No image found with ID ") }
            let page = try await service.list(request.queryDictionary, tags: request.queryValues("tag"), caller: try context.requireAuth())
            var body: [String: JSON] = ["images": .array(page.images.map(\.json)), "schema": "/v2/schemas/images",
                                        "first": .string("/v2/images" + (request.uri.query.map { "?" + $0 } ?? ""))]
            if let marker = page.nextMarker {
                var query = request.queryDictionary
                query["marker"] = marker
                body["next"] = .string(Self.link("/v2/images", query))
            }
            return JSONResponse(.object(body)).response()
        }
        api.get("/images/:id") { _, context in
            JSONResponse(try await service.get(try context.parameters.require("id"), caller: try context.requireAuth()).json).response()
        }
        api.patch("/images/:id") { request, context in
            let image = try await service.update(try context.parameters.require("id"), patch: try await request.jsonBody(limit: maxBodySize),
                                                 mediaType: request.headers[.contentType] ?? "", caller: try context.requireAuth())
            return JSONResponse(image.json).response()
        }
        api.delete("/images/:id") { _, context in
            try await service.delete(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response.empty()
        }
        api.put("/images/:id/file") { request, context in
            let options = ImageService.UploadOptions(contentType: request.headers[.contentType],
                                                     expectedMD5: request.headers[HTTPField.Name("Content-MD5")!],
                                                     storeID: request.headers[HTTPField.Name("X-Image-Meta-Store")!])
            try await service.upload(try context.parameters.require("id"), options: options, body: request.body, caller: try context.requireAuth())
            return Response.empty()
        }
        api.put("/images/:id/stage") { request, context in
            try await service.stage(try context.parameters.require("id"), contentType: request.headers[.contentType], body: request.body,
                                    caller: try context.requireAuth())
            return Response.empty()
        }
        api.post("/images/:id/import") { request, context in
            try await service.importImage(try context.parameters.require("id"), body: try await request.jsonBody(limit: maxBodySize),
                                          requestID: context.requestID, caller: try context.requireAuth())
            return Response(status: .accepted)
        }
        api.get("/images/:id/tasks") { _, context in
            let tasks = try await service.tasks(imageID: try context.parameters.require("id"), caller: try context.requireAuth())
            return JSONResponse(["tasks": .array(tasks.map(\.json))]).response()
        }
        api.get("/tasks") { request, context in
            let page = try await service.listTasks(request.queryDictionary, caller: try context.requireAuth())
            var query = request.queryDictionary
            query["marker"] = nil
            var body: [String: JSON] = ["tasks": .array(page.tasks.map(\.stubJSON)), "schema": "/v2/schemas/tasks",
                                        "first": .string(Self.link("/v2/tasks", query))]
            if let marker = page.nextMarker {
                query["marker"] = marker
                body["next"] = .string(Self.link("/v2/tasks", query))
            }
            return JSONResponse(.object(body)).response()
        }
        api.get("/tasks/:id") { _, context in
            JSONResponse(try await service.task(try context.parameters.require("id"), caller: try context.requireAuth()).json).response()
        }
        api.delete("/stores/:store/:id") { _, context in
            try await service.deleteFromStore(try context.parameters.require("store"), imageID: try context.parameters.require("id"),
                                              caller: try context.requireAuth())
            return Response.empty()
        }
        api.get("/images/:id/file") { request, context in
            try await download(request, id: try context.parameters.require("id"), caller: try context.requireAuth())
        }
        api.post("/images/:id/actions/deactivate") { _, context in
            try await service.setActive(try context.parameters.require("id"), active: false, caller: try context.requireAuth())
            return Response.empty()
        }
        api.post("/images/:id/actions/reactivate") { _, context in
            try await service.setActive(try context.parameters.require("id"), active: true, caller: try context.requireAuth())
            return Response.empty()
        }
        api.put("/images/:id/tags/:tag") { _, context in
            try await service.tag(try context.parameters.require("id"), try context.parameters.require("tag"), add: true, caller: try context.requireAuth())
            return Response.empty()
        }
        api.delete("/images/:id/tags/:tag") { _, context in
            try await service.tag(try context.parameters.require("id"), try context.parameters.require("tag"), add: false, caller: try context.requireAuth())
            return Response.empty()
        }
        api.post("/images/:id/members") { request, context in
            JSONResponse(try await service.addMember(try context.parameters.require("id"), try await request.jsonBody(limit: maxBodySize),
                                                     caller: try context.requireAuth()).json).response()
        }
        api.get("/images/:id/members") { _, context in
            let members = try await service.members(try context.parameters.require("id"), caller: try context.requireAuth())
            return JSONResponse(["members": .array(members.map(\.json)), "schema": "/v2/schemas/members"]).response()
        }
        api.get("/images/:id/members/:member") { _, context in
            JSONResponse(try await service.member(try context.parameters.require("id"), try context.parameters.require("member"),
                                                  caller: try context.requireAuth()).json).response()
        }
        api.put("/images/:id/members/:member") { request, context in
            JSONResponse(try await service.updateMember(try context.parameters.require("id"), try context.parameters.require("member"),
                                                        try await request.jsonBody(limit: maxBodySize), caller: try context.requireAuth()).json).response()
        }
        api.delete("/images/:id/members/:member") { _, context in
            try await service.deleteMember(try context.parameters.require("id"), try context.parameters.require("member"), caller: try context.requireAuth())
            return Response.empty()
        }
    }

    /// `path` with `query` (sorted, escaped) appended, for a list's `first` and `next` links.
    static func link(_ path: String, _ query: [String: String]) -> String {
        query.isEmpty ? path : path + "?" + query.sorted { $0.key < $1.key }.map { "\(escape($0.key))=\(escape($0.value))" }.joined(separator: "&")
    }

    static func escape(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+"))) ?? s
    }

    static let chunkSize = 1 << 20

    /// Streams the data in 1 MiB chunks; a `Range: bytes=a-b` request gets 206 with that slice.
    func download(_ request: Request, id: String, caller: AuthContext) async throws -> Response {
        let download = try await service.download(id, caller: caller)
        guard let reader = download.reader else { return Response.empty() }
        var start: Int64 = 0
        var end = reader.size - 1
        var status = HTTPResponse.Status.ok
        var headers: HTTPFields = [.contentType: "application/octet-stream"]
        if let range = request.headers[.range] {
            guard let (a, b) = Self.parseRange(range, size: reader.size) else {
                reader.close()
                throw APIError(.rangeNotSatisfiable, "Requested range \(range) not satisfiable.",
                               headers: [.contentRange: "bytes */\(reader.size)"])
            }
            (start, end, status) = (a, b, .partialContent)
            headers[.contentRange] = "bytes \(a)-\(b)/\(reader.size)"
        } else if let checksum = download.image.checksum {
            headers[HTTPField.Name("Content-MD5")!] = checksum
        }
        let length = max(end - start + 1, 0)
        try reader.seek(to: start)
        let body = ResponseBody(contentLength: Int(length)) { writer in
            defer { reader.close() }
            var remaining = length
            while remaining > 0 {
                let bytes = try reader.read(upTo: Int(min(remaining, Int64(Self.chunkSize))))
                if bytes.isEmpty { break }
                remaining -= Int64(bytes.count)
                try await writer.write(ByteBuffer(bytes: bytes))
            }
            try await writer.finish(nil)
        }
        return Response(status: status, headers: headers, body: body)
    }

    /// One `bytes=a-b`, `bytes=a-` or `bytes=-n` range within `size`.
    static func parseRange(_ header: String, size: Int64) -> (Int64, Int64)? {
        guard header.hasPrefix("bytes="), size > 0 else { return nil }
        let spec = header.dropFirst("bytes=".count)
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return nil }
        let first = spec[..<dash], last = spec[spec.index(after: dash)...]
        if first.isEmpty {
            guard let n = Int64(last), n > 0 else { return nil }
            return (max(size - n, 0), size - 1)
        }
        guard let a = Int64(first), a < size else { return nil }
        let b = last.isEmpty ? size - 1 : min(Int64(last) ?? -1, size - 1)
        return b >= a ? (a, b) : nil
    }
}
