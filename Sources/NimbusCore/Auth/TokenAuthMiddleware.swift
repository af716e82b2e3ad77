import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Requires a valid `X-Auth-Token` and stores the caller's credentials in the context. Mounted
/// on every route group except version discovery and token creation.
public struct TokenAuthMiddleware: RouterMiddleware {
    public typealias Context = NimbusRequestContext
    let validator: any TokenValidating

    public init(validator: any TokenValidating) { self.validator = validator }

    public static let authTokenHeader = HTTPField.Name("X-Auth-Token")!

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token = request.headers[Self.authTokenHeader], !token.isEmpty else {
            throw APIError.unauthorized()
        }
        var context = context
        let auth = try await validator.validate(token: token)
        context.auth = auth
        context.logger[metadataKey: "user_id"] = .string(auth.userID)
        if let project = auth.projectID { context.logger[metadataKey: "project_id"] = .string(project) }
        return try await next(request, context)
    }
}
