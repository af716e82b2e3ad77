import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Requires a valid `X-Auth-Token` and stores the caller's credentials in the context. Mounted
/// on every route group except version discovery and token creation. A token from an
/// application credential with access rules passes only requests a rule allows on `service`.
public struct TokenAuthMiddleware: RouterMiddleware {
    public typealias Context = NimbusRequestContext
    let validator: any TokenValidating
    let service: ServiceMount?

    /// `service` nil: the group is not an OpenStack service (the agents' APIs), and tokens bound
    /// by access rules are refused on it.
    public init(validator: any TokenValidating, service: ServiceMount?) {
        self.validator = validator
        self.service = service
    }

    public static let authTokenHeader = HTTPField.Name("X-Auth-Token")!

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token = request.headers[Self.authTokenHeader], !token.isEmpty else {
            throw APIError.unauthorized()
        }
        var context = context
        let auth = try await validator.validate(token: token)
        try auth.enforceAccessRules(service: service, method: request.method.rawValue, rawPath: request.uri.path)
        context.auth = auth
        context.logger[metadataKey: "user_id"] = .string(auth.userID)
        if let project = auth.projectID { context.logger[metadataKey: "project_id"] = .string(project) }
        return try await next(request, context)
    }
}
