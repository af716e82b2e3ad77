import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NimbusCore

/// The Placement API over HTTP, mounted under `/placement`. Placement's routing depends on the
/// microversion (a route that does not exist yet at the request's version is 404; a wrong
/// method is 405 with `Allow`), so the routes are matched here from one table rather than by
/// the router. Handlers translate each microversion's JSON to and from `PlacementService`.
public struct PlacementRoutes: Sendable {
    let service: PlacementService
    let validator: any TokenValidating
    let maxBodySize: Int
    /// Base URL for absolute `Location` headers when the request names no host.
    let publicURL: String

    public init(service: PlacementService, validator: any TokenValidating, maxBodySize: Int, publicURL: String) {
        self.service = service
        self.validator = validator
        self.maxBodySize = maxBodySize
        self.publicURL = publicURL
    }

    static let prefix = "/placement"

    public func register(on router: Router<NimbusRequestContext>) {
        let group = router.group("placement")
        for method: HTTPRequest.Method in [.get, .put, .post, .delete, .patch, .head, .options] {
            group.on("", method: method) { request, context in await handle(request, context) }
            group.on("**", method: method) { request, context in await handle(request, context) }
        }
    }

    // MARK: Dispatch

    /// One request, as handlers see it.
    struct Call: Sendable {
        let request: Request
        let version: Microversion
        let caller: AuthContext
        let params: [String: String]
        let query: QueryString
        let requestID: String

        func at(_ minor: Int) -> Bool { version >= Microversion(1, minor) }
        func param(_ name: String) -> String { params[name] ?? "" }
    }

    typealias Handler = @Sendable (PlacementRoutes, Call) async throws -> Response

    struct Route: Sendable {
        let method: HTTPRequest.Method
        let path: [String]
        let minVersion: Int
        let handler: Handler
        /// Below `minVersion` the route is 405 rather than 404 (DELETE all inventories < 1.5).
        var methodNotAllowedBelow = false
    }

    static let routes: [Route] = [
        Route(method: .get, path: [], minVersion: 0) { r, c in r.versions(c.request, c.version) },
        Route(method: .get, path: ["resource_providers"], minVersion: 0) { r, c in try await r.listProviders(c) },
        Route(method: .post, path: ["resource_providers"], minVersion: 0) { r, c in try await r.createProvider(c) },
        Route(method: .get, path: ["resource_providers", ":uuid"], minVersion: 0) { r, c in try await r.showProvider(c) },
        Route(method: .put, path: ["resource_providers", ":uuid"], minVersion: 0) { r, c in try await r.updateProvider(c) },
        Route(method: .delete, path: ["resource_providers", ":uuid"], minVersion: 0) { r, c in try await r.deleteProvider(c) },
        Route(method: .get, path: ["resource_providers", ":uuid", "inventories"], minVersion: 0) { r, c in try await r.listInventories(c) },
        Route(method: .put, path: ["resource_providers", ":uuid", "inventories"], minVersion: 0) { r, c in try await r.setInventories(c) },
        Route(method: .post, path: ["resource_providers", ":uuid", "inventories"], minVersion: 0) { r, c in try await r.addInventory(c) },
        Route(method: .delete, path: ["resource_providers", ":uuid", "inventories"], minVersion: 5, handler: { r, c in try await r.deleteInventories(c) },
              methodNotAllowedBelow: true),
        Route(method: .get, path: ["resource_providers", ":uuid", "inventories", ":rc"], minVersion: 0) { r, c in try await r.showInventory(c) },
        Route(method: .put, path: ["resource_providers", ":uuid", "inventories", ":rc"], minVersion: 0) { r, c in try await r.updateInventory(c) },
        Route(method: .delete, path: ["resource_providers", ":uuid", "inventories", ":rc"], minVersion: 0) { r, c in try await r.deleteInventory(c) },
        Route(method: .get, path: ["resource_providers", ":uuid", "usages"], minVersion: 0) { r, c in try await r.providerUsages(c) },
        Route(method: .get, path: ["resource_providers", ":uuid", "allocations"], minVersion: 0) { r, c in try await r.providerAllocations(c) },
        Route(method: .get, path: ["resource_providers", ":uuid", "aggregates"], minVersion: 1) { r, c in try await r.providerAggregates(c) },
        Route(method: .put, path: ["resource_providers", ":uuid", "aggregates"], minVersion: 1) { r, c in try await r.setProviderAggregates(c) },
        Route(method: .get, path: ["resource_providers", ":uuid", "traits"], minVersion: 6) { r, c in try await r.providerTraits(c) },
        Route(method: .put, path: ["resource_providers", ":uuid", "traits"], minVersion: 6) { r, c in try await r.setProviderTraits(c) },
        Route(method: .delete, path: ["resource_providers", ":uuid", "traits"], minVersion: 6) { r, c in try await r.deleteProviderTraits(c) },
        Route(method: .get, path: ["resource_classes"], minVersion: 2) { r, c in try await r.listResourceClasses(c) },
        Route(method: .post, path: ["resource_classes"], minVersion: 2) { r, c in try await r.createResourceClass(c) },
        Route(method: .get, path: ["resource_classes", ":name"], minVersion: 2) { r, c in try await r.showResourceClass(c) },
        Route(method: .put, path: ["resource_classes", ":name"], minVersion: 2) { r, c in try await r.putResourceClass(c) },
        Route(method: .delete, path: ["resource_classes", ":name"], minVersion: 2) { r, c in try await r.deleteResourceClass(c) },
        Route(method: .get, path: ["traits"], minVersion: 6) { r, c in try await r.listTraits(c) },
        Route(method: .get, path: ["traits", ":name"], minVersion: 6) { r, c in try await r.showTrait(c) },
        Route(method: .put, path: ["traits", ":name"], minVersion: 6) { r, c in try await r.putTrait(c) },
        Route(method: .delete, path: ["traits", ":name"], minVersion: 6) { r, c in try await r.deleteTrait(c) },
        Route(method: .post, path: ["allocations"], minVersion: 13) { r, c in try await r.postAllocations(c) },
        Route(method: .get, path: ["allocations", ":consumer"], minVersion: 0) { r, c in try await r.showAllocations(c) },
        Route(method: .put, path: ["allocations", ":consumer"], minVersion: 0) { r, c in try await r.putAllocations(c) },
        Route(method: .delete, path: ["allocations", ":consumer"], minVersion: 0) { r, c in try await r.deleteAllocations(c) },
        Route(method: .get, path: ["usages"], minVersion: 9) { r, c in try await r.projectUsages(c) },
        Route(method: .get, path: ["allocation_candidates"], minVersion: 10) { r, c in try await r.allocationCandidates(c) },
        Route(method: .post, path: ["reshaper"], minVersion: 30) { r, c in try await r.reshape(c) },
    ]

    /// The routes behind the `/placement/**` catch-all as `(method, "/placement/a/{b}")`: the
    /// router sees only the catch-all, and tests that enumerate every route need these.
    public static var routeTemplates: [(method: String, path: String)] {
        routes.map { route in
            let path = route.path.map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : $0 }.joined(separator: "/")
            return (route.method.rawValue, path.isEmpty ? "/placement" : "/placement/" + path)
        }
    }

    static func match(_ pattern: [String], _ components: [String]) -> [String: String]? {
        guard pattern.count == components.count else { return nil }
        var params: [String: String] = [:]
        for (p, c) in zip(pattern, components) {
            if p.hasPrefix(":") {
                params[String(p.dropFirst())] = c
            } else if p != c {
                return nil
            }
        }
        return params
    }

    func handle(_ request: Request, _ context: NimbusRequestContext) async -> Response {
        var version: Microversion?
        var response: Response
        do {
            let path = request.uri.path
            let rest = path.hasPrefix(Self.prefix) ? path.dropFirst(Self.prefix.count) : Substring(path)
            let components = rest.split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }
            // The version document is open; everything else needs a token (keystonemiddleware
            // answers before placement parses the microversion).
            var caller: AuthContext?
            if !components.isEmpty {
                guard let token = request.headers[TokenAuthMiddleware.authTokenHeader], !token.isEmpty else { throw APIError.unauthorized() }
                let auth = try await validator.validate(token: token)
                try auth.enforceAccessRules(service: .placement, method: request.method.rawValue, rawPath: path)
                caller = auth
            }
            let v = try Microversion.requested(by: request.headers)
            version = v
            response = try await dispatch(request, components: components, version: v, caller: caller, context: context)
        } catch {
            var apiError = APIError.from(error, logger: context.logger)
            if let version, version >= Microversion(1, 23) {
                apiError.code = apiError.code ?? "placement.undefined_code"
            } else {
                apiError.code = nil
            }
            response = apiError.response(style: .placement, requestID: context.requestID)
        }
        if let version {
            response.headers[Microversion.headerName] = "placement \(version)"
            response.headers[.vary] = "openstack-api-version"
            if version >= Microversion(1, 15), (200..<300).contains(response.status.code), response.status != .noContent {
                response.headers[.cacheControl] = "no-cache"
                response.headers[.lastModified] = Self.httpDate(Date())
            }
        }
        return response
    }

    func dispatch(_ request: Request, components: [String], version: Microversion, caller: AuthContext?,
                  context: NimbusRequestContext) async throws -> Response {
        var allowed: [HTTPRequest.Method] = []
        var gated: Route?
        for route in Self.routes {
            guard let params = Self.match(route.path, components) else { continue }
            let available = version >= Microversion(1, route.minVersion)
            if available { allowed.append(route.method) }
            guard route.method == request.method || (request.method == .head && route.method == .get) else { continue }
            guard available else {
                gated = route
                continue
            }
            if route.method == .get { try Self.checkAccept(request) }
            let call = Call(request: request, version: version, caller: caller ?? Self.anonymous, params: params,
                            query: QueryString(request.uri.query), requestID: context.requestID)
            return try await route.handler(self, call)
        }
        if let gated, gated.methodNotAllowedBelow, !allowed.isEmpty {
            throw methodNotAllowed(request.method, allowed)
        }
        if allowed.isEmpty { throw APIError.notFound("The resource could not be found.") }
        throw methodNotAllowed(request.method, allowed)
    }

    func methodNotAllowed(_ method: HTTPRequest.Method, _ allowed: [HTTPRequest.Method]) -> APIError {
        let list = allowed.map(\.rawValue).joined(separator: ", ")
        return APIError(.methodNotAllowed, "The method specified is not allowed for this resource.", headers: [.allow: list])
    }

    /// Only the version document is served without a token; it never reads the caller.
    static let anonymous = AuthContext(token: "", userID: "", userName: "", userDomainID: "", userDomainName: "", scope: .unscoped, roles: [],
                                       methods: [], auditIDs: [], issuedAt: Date(), expiresAt: Date())

    /// A GET whose `Accept` rules out JSON is 406.
    static func checkAccept(_ request: Request) throws {
        guard let accept = request.headers[.accept], !accept.isEmpty else { return }
        let ranges = accept.split(separator: ",").map { $0.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? "" }
        if !ranges.contains(where: { $0 == "application/json" || $0 == "application/*" || $0 == "*/*" }) {
            throw APIError(.notAcceptable, "Only application/json is provided")
        }
    }

    static func httpDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }

    // MARK: Helpers

    func authorize(_ call: Call, _ action: String, target: [String: String] = [:]) throws {
        try service.authorize(action, call.caller, target: target)
    }

    /// The JSON body of a PUT or POST, which must be declared as JSON.
    func body(_ call: Call) async throws -> JSON {
        let body = call.request.body
        let buffer: ByteBuffer
        do {
            buffer = try await body.collect(upTo: maxBodySize)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "Request is too large.")
        }
        let contentType = call.request.headers[.contentType]
        guard let contentType, !contentType.isEmpty else {
            if buffer.readableBytes > 0 { throw APIError.badRequest("content-type header required when content-length > 0") }
            throw APIError(.unsupportedMediaType, "The media type None is not supported, use application/json")
        }
        guard contentType.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() == "application/json" else {
            throw APIError(.unsupportedMediaType, "The media type \(contentType) is not supported, use application/json")
        }
        do {
            return try JSON.parse(buffer.readableBytesView)
        } catch let JSON.ParseError.invalid(reason) {
            throw APIError.badRequest("Malformed JSON: \(reason)")
        }
    }

    /// An absolute URL for `Location` (osc-placement follows it through keystoneauth).
    func location(_ call: Call, _ path: String) -> String {
        call.request.baseURL(fallback: publicURL) + Self.prefix + path
    }

    func json(_ body: JSON, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        JSONResponse(status: status, body, headers: headers).response()
    }

    func uuidParam(_ call: Call, _ name: String = "uuid") -> String {
        PlacementNames.uuid(call.param(name)) ?? call.param(name)
    }

    // MARK: Version document

    func versions(_ request: Request, _ version: Microversion) -> Response {
        json(["versions": [["id": .string("v\(Microversion.minimum)"), "min_version": .string(Microversion.minimum.description),
                            "max_version": .string(Microversion.maximum.description), "status": "CURRENT",
                            "links": [["rel": "self", "href": ""]]]]])
    }
}
