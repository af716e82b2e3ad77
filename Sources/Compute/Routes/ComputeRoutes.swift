import Foundation
import HTTPTypes
import Hummingbird
import NimbusCore

/// Nova's API v2.1 over HTTP, mounted under `/compute`. Every response under `/compute/v2.1`
/// says which microversion it was served at.
public struct ComputeRoutes: Sendable {
    let service: ComputeService
    let validator: any TokenValidating
    let maxBodySize: Int

    public static let versions = MicroversionRange(service: "compute", min: Microversion(2, 1), max: Microversion(2, 100),
                                                   legacyHeader: HTTPField.Name("X-OpenStack-Nova-API-Version")!)

    public init(service: ComputeService, validator: any TokenValidating, maxBodySize: Int) {
        self.service = service
        self.validator = validator
        self.maxBodySize = maxBodySize
    }

    typealias Context = NimbusRequestContext

    static func base(_ request: Request) -> String { request.baseURL(fallback: "http://localhost") + "/compute" }

    static func versionEntry(_ request: Request, v21: Bool, mediaTypes: Bool) -> JSON {
        let base = Self.base(request)
        var out: [String: JSON] = v21
            ? ["id": "v2.1", "status": "CURRENT", "version": .string(versions.max.description), "min_version": .string(versions.min.description),
               "updated": "2013-07-23T11:33:21Z", "links": [["rel": "self", "href": .string("\(base)/v2.1/")]]]
            : ["id": "v2.0", "status": "DEPRECATED", "version": "", "min_version": "", "updated": "2025-07-04T12:00:00Z",
               "links": [["rel": "self", "href": .string("\(base)/v2/")]]]
        if mediaTypes {
            out["links"] = .array((out["links"]?.arrayValue ?? []) + [["rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"]])
            out["media-types"] = [["base": "application/json", "type": .string("application/vnd.openstack.compute+json;version=\(v21 ? "2.1" : "2")")]]
        }
        return .object(out)
    }

    public func register(on router: Router<NimbusRequestContext>) {
        let root = router.group("compute").add(middleware: ErrorStyleMiddleware(.nova))
        root.get("") { request, _ in
            JSONResponse(["versions": [Self.versionEntry(request, v21: false, mediaTypes: false), Self.versionEntry(request, v21: true, mediaTypes: false)]]).response()
        }
        root.get("/v2") { request, _ in JSONResponse(["version": Self.versionEntry(request, v21: false, mediaTypes: true)]).response() }
        let versioned = router.group("compute/v2.1").add(middleware: ErrorStyleMiddleware(.nova)).add(middleware: MicroversionMiddleware(range: Self.versions))
        versioned.get("") { request, _ in JSONResponse(["version": Self.versionEntry(request, v21: true, mediaTypes: true)]).response() }
        let api = versioned.add(middleware: TokenAuthMiddleware(validator: validator, service: .compute))
        registerFlavors(api)
        registerKeypairs(api)
        registerServers(api)
        registerHosts(api)
        registerQuotas(api)
        registerImageProxy(api)
        registerExtensions(api)
        registerConsoles(api)
        registerServerExtras(api)
        registerCompat(api)
    }

    func body(_ request: Request) async throws -> JSON { try await request.jsonBody(limit: maxBodySize) }

    // MARK: Flavors and keypairs

    func registerFlavors(_ api: RouterGroup<Context>) {
        api.get("/flavors") { request, context in
            let v = context.microversion
            let flavors = try await service.flavors(caller: try context.requireAuth(), query: request.queryDictionary)
            return try Self.page("flavors", flavors.map { $0.summaryJSON(v, base: Self.base(request)) }, request, lastID: flavors.last?.id)
        }
        api.get("/flavors/detail") { request, context in
            let v = context.microversion
            let flavors = try await service.flavors(caller: try context.requireAuth(), query: request.queryDictionary)
            return try Self.page("flavors", flavors.map { $0.json(v, base: Self.base(request)) }, request, lastID: flavors.last?.id, path: "flavors/detail")
        }
        api.get("/flavors/:id") { request, context in
            JSONResponse(["flavor": try await service.flavor(try context.parameters.require("id"), caller: try context.requireAuth())
                .json(context.microversion, base: Self.base(request))]).response()
        }
        api.post("/flavors") { request, context in
            JSONResponse(["flavor": try await service.createFlavor(try await body(request), caller: try context.requireAuth())
                .json(context.microversion, base: Self.base(request))]).response()
        }
        api.put("/flavors/:id") { request, context in
            guard context.microversion >= Microversion(2, 55) else { throw APIError.notFound("The resource could not be found.") }
            return JSONResponse(["flavor": try await service.updateFlavor(try context.parameters.require("id"), try await body(request),
                                                                          caller: try context.requireAuth()).json(context.microversion, base: Self.base(request))]).response()
        }
        api.delete("/flavors/:id") { _, context in
            try await service.deleteFlavor(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response(status: .accepted)
        }
        api.get("/flavors/:id/os-extra_specs") { _, context in
            let specs = try await service.extraSpecs(try context.parameters.require("id"), caller: try context.requireAuth())
            return JSONResponse(["extra_specs": .object(specs.mapValues { .string($0) })]).response()
        }
        api.post("/flavors/:id/os-extra_specs") { request, context in
            let specs = try await service.setExtraSpecs(try context.parameters.require("id"), try await body(request), caller: try context.requireAuth())
            return JSONResponse(["extra_specs": .object(specs.mapValues { .string($0) })]).response()
        }
        api.get("/flavors/:id/os-extra_specs/:key") { _, context in
            let key = try context.parameters.require("key")
            guard let value = try await service.extraSpecs(try context.parameters.require("id"), caller: try context.requireAuth())[key] else {
                throw APIError.notFound("Flavor \(try context.parameters.require("id")) has no extra specs with key \(key).")
            }
            return JSONResponse([key: .string(value)]).response()
        }
        api.put("/flavors/:id/os-extra_specs/:key") { request, context in
            let specs = try await service.setExtraSpec(try context.parameters.require("id"), key: try context.parameters.require("key"),
                                                       try await body(request), caller: try context.requireAuth())
            return JSONResponse(.object(specs.mapValues { .string($0) })).response()
        }
        api.delete("/flavors/:id/os-extra_specs/:key") { _, context in
            try await service.deleteExtraSpec(try context.parameters.require("id"), key: try context.parameters.require("key"), caller: try context.requireAuth())
            return Response(status: .ok)
        }
        api.get("/flavors/:id/os-flavor-access") { _, context in
            let id = try context.parameters.require("id")
            let projects = try await service.flavorAccess(id, caller: try context.requireAuth())
            return JSONResponse(["flavor_access": .array(projects.map { ["flavor_id": .string(id), "tenant_id": .string($0)] })]).response()
        }
        api.post("/flavors/:id/action") { request, context in
            let id = try context.parameters.require("id")
            let body = try await body(request)
            guard let object = body.objectValue, object.count == 1, let (name, value) = object.first,
                  name == "addTenantAccess" || name == "removeTenantAccess" else { throw APIError.badRequest("There is no such action.") }
            guard let tenant = value["tenant"]?.stringValue else { throw APIError.badRequest("Invalid input for field/attribute tenant.") }
            let projects = try await service.changeFlavorAccess(id, project: tenant, add: name == "addTenantAccess", caller: try context.requireAuth())
            return JSONResponse(["flavor_access": .array(projects.map { ["flavor_id": .string(id), "tenant_id": .string($0)] })]).response()
        }
    }

    func registerKeypairs(_ api: RouterGroup<Context>) {
        api.get("/os-keypairs") { request, context in
            let v = context.microversion
            let query = request.queryDictionary
            let keypairs = try await service.keypairs(caller: try context.requireAuth(), userID: v >= Microversion(2, 10) ? query["user_id"] : nil,
                                                      query: v >= Microversion(2, 35) ? query : [:])
            var out: [String: JSON] = ["keypairs": .array(keypairs.map { ["keypair": $0.json(v, detail: false)] })]
            if v >= Microversion(2, 35), let limit = query["limit"], try Paging.isFull(keypairs.count, query: query), let last = keypairs.last {
                out["keypairs_links"] = [["rel": "next", "href": .string("\(Self.base(request))/v2.1/os-keypairs?limit=\(limit)&marker=\(last.name)")]]
            }
            return JSONResponse(.object(out)).response()
        }
        api.post("/os-keypairs") { request, context in
            let v = context.microversion
            let (keypair, privateKey) = try await service.createKeypair(try await body(request), version: v, caller: try context.requireAuth())
            var shown = keypair.json(v, detail: false).objectValue ?? [:]
            shown["user_id"] = .string(keypair.userID)
            if let privateKey { shown["private_key"] = .string(privateKey) }
            return JSONResponse(status: v >= Microversion(2, 2) ? .created : .ok, ["keypair": .object(shown)]).response()
        }
        api.get("/os-keypairs/:name") { request, context in
            let v = context.microversion
            let keypair = try await service.keypair(try context.parameters.require("name"), caller: try context.requireAuth(),
                                                    userID: v >= Microversion(2, 10) ? request.queryDictionary["user_id"] : nil)
            return JSONResponse(["keypair": keypair.json(v, detail: true)]).response()
        }
        api.delete("/os-keypairs/:name") { request, context in
            let v = context.microversion
            try await service.deleteKeypair(try context.parameters.require("name"), caller: try context.requireAuth(),
                                            userID: v >= Microversion(2, 10) ? request.queryDictionary["user_id"] : nil)
            return Response(status: v >= Microversion(2, 2) ? .noContent : .accepted)
        }
    }

    /// A list page with Nova's `<collection>_links` next link when the page is full.
    static func page(_ key: String, _ items: [JSON], _ request: Request, lastID: String?, path: String? = nil) throws -> Response {
        var out: [String: JSON] = [key: .array(items)]
        let query = request.queryDictionary
        if try Paging.isFull(items.count, query: query), let lastID {
            var next = query
            next["marker"] = lastID
            let text = next.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0.value)" }
                .joined(separator: "&")
            out["\(key)_links"] = [["rel": "next", "href": .string("\(base(request))/v2.1/\(path ?? key)?\(text)")]]
        }
        return JSONResponse(.object(out)).response()
    }
}

/// Negotiates the microversion of a request and stamps it on the response, errors included
/// (a version outside the range is refused before anything else runs).
struct MicroversionMiddleware: RouterMiddleware {
    typealias Context = NimbusRequestContext
    let range: MicroversionRange

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        switch range.negotiate(request.headers) {
        case .failure(.malformed(let text)):
            throw APIError.badRequest("API Version String \(text) is of invalid format. Must be of format MajorNum.MinorNum.")
        case .failure(.unsupported(let text)):
            throw APIError(.notAcceptable, "Version \(text) is not supported by the API. Minimum is \(range.min) and maximum is \(range.max).")
        case .success(let version):
            context.microversion = version
        }
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = APIError.from(error, logger: context.logger).response(style: .nova)
        }
        for field in range.responseHeaders(context.microversion) { response.headers[field.name] = field.value }
        response.headers[HTTPField.Name("X-Compute-Request-Id")!] = context.requestID
        return response
    }
}
