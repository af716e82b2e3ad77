import Foundation
import HTTPTypes
import Hummingbird
import NimbusCore

/// Neutron's API v2.0 over HTTP, mounted under `/networking` (Neutron's own path prefix when
/// it runs behind a web server). Errors are Neutron's `{"NeutronError": …}`. Each resource
/// family registers its routes in its own `NetworkRoutes+<Family>.swift`.
public struct NetworkRoutes: Sendable {
    let service: NetworkService
    let validator: any TokenValidating
    let maxBodySize: Int

    public static let prefix = "/networking"

    public init(service: NetworkService, validator: any TokenValidating, maxBodySize: Int) {
        self.service = service
        self.validator = validator
        self.maxBodySize = maxBodySize
    }

    typealias Context = NimbusRequestContext

    static func base(_ request: Request) -> String { request.baseURL(fallback: "http://localhost") + prefix }

    public func register(on router: Router<NimbusRequestContext>) {
        let root = router.group("networking").add(middleware: ErrorStyleMiddleware(.neutron))
        root.get("") { request, _ in
            JSONResponse(["versions": [["id": "v2.0", "status": "CURRENT",
                                        "links": [["rel": "self", "href": .string(Self.base(request) + "/v2.0/")]]]]]).response()
        }
        let api = router.group("networking/v2.0").add(middleware: ErrorStyleMiddleware(.neutron))
            .add(middleware: TokenAuthMiddleware(validator: validator, service: .network))
        api.get("") { request, _ in
            let resources: [JSON] = NetworkExtensions.coreResources.map { name, collection in
                ["name": .string(name), "collection": .string(collection),
                 "links": [["rel": "self", "href": .string("\(Self.base(request))/v2.0/\(collection)")]]]
            }
            return JSONResponse(["resources": .array(resources)]).response()
        }
        api.get("/extensions") { _, context in
            _ = try context.requireAuth()
            return JSONResponse(["extensions": .array(NetworkExtensions.all.map(\.json))]).response()
        }
        api.get("/extensions/:alias") { _, context in
            _ = try context.requireAuth()
            let alias = try context.parameters.require("alias")
            guard let found = NetworkExtensions.all.first(where: { $0.alias == alias }) else {
                throw APIError(.notFound, "Extension with alias \(alias) does not exist", code: "ExtensionNotFound")
            }
            return JSONResponse(["extension": found.json]).response()
        }
        registerResources(api)
    }

    /// Every resource family's routes, each family in its own `NetworkRoutes+<Family>.swift`.
    func registerResources(_ api: RouterGroup<Context>) {
        registerCore(api)
        registerSegments(api)
        registerSecurity(api)
        registerRouting(api)
        registerRouterGateways(api)
        registerRBAC(api)
        registerOperations(api)
        registerAddressScopes(api)
        registerAddressGroups(api)
        registerServices(api)
    }

    func body(_ request: Request) async throws -> JSON { try await request.jsonBody(limit: maxBodySize) }

    /// One resource under its key, with only the requested `fields`.
    static func one(_ key: String, _ item: [String: JSON], _ request: Request) -> Response {
        JSONResponse([key: .object(NeutronListing(collection: key, request: request).project(item))]).response()
    }

    /// The single resource object of a request body: `{"network": {…}}`.
    func input(_ request: Request, _ key: String) async throws -> JSONInput {
        try JSONInput(body: try await body(request), key: key)
    }
}
