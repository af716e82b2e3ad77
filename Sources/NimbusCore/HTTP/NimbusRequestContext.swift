import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Logging

/// Per-request state shared by every service: the request id, who is calling (set by the token
/// middleware), and the error shape of the service that owns the route.
public struct NimbusRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var requestID: String
    public var auth: AuthContext?
    public var errorStyle: ErrorStyle = .keystone
    /// The microversion the request runs at, for services that have them (Nova, Placement).
    public var microversion = Microversion(1, 0)

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        requestID = "req-" + Identifiers.uuid()
        logger[metadataKey: "request_id"] = .string(requestID)
    }

    /// The authenticated caller. Routes behind `TokenAuthMiddleware` always have one.
    public func requireAuth() throws -> AuthContext {
        guard let auth else { throw APIError.unauthorized() }
        return auth
    }
}

/// Outermost middleware: stamps `x-openstack-request-id` on every response, errors included,
/// and turns any error into the owning service's error body so no error escapes as a bare 500.
public struct RequestIDMiddleware: RouterMiddleware {
    public typealias Context = NimbusRequestContext
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = APIError.from(error, logger: context.logger).response(style: context.errorStyle, accept: request.headers[.accept], requestID: context.requestID)
        }
        response.headers[HTTPField.Name("x-openstack-request-id")!] = context.requestID
        let status = response.status.code
        if status >= 500 {
            context.logger.error("\(request.method) \(request.uri.path) -> \(status)")
        } else {
            context.logger.debug("\(request.method) \(request.uri.path) -> \(status)")
        }
        return response
    }
}

/// Sets the error shape for a service's route group and renders errors raised inside it.
public struct ErrorStyleMiddleware: RouterMiddleware {
    public typealias Context = NimbusRequestContext
    let style: ErrorStyle
    public init(_ style: ErrorStyle) { self.style = style }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.errorStyle = style
        do {
            return try await next(request, context)
        } catch {
            return APIError.from(error, logger: context.logger).response(style: style, accept: request.headers[.accept], requestID: context.requestID)
        }
    }
}
