import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// How a service spells its error bodies. Each OpenStack service has its own shape and clients
/// parse them, so the shape is chosen by the route group, not by the code that throws.
public enum ErrorStyle: Sendable {
    /// Keystone: `{"error": {"code": 404, "title": "Not Found", "message": "…"}}`
    case keystone
}

/// An error meant for the API caller: a status code and a message, rendered in the shape of the
/// service whose route raised it.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    public var description: String { "\(status.code) \(message)" }

    public static func badRequest(_ message: String) -> APIError { APIError(.badRequest, message) }
    public static func unauthorized(_ message: String = "The request you have made requires authentication.") -> APIError {
        APIError(.unauthorized, message)
    }
    public static func forbidden(_ message: String) -> APIError { APIError(.forbidden, message) }
    public static func notFound(_ message: String) -> APIError { APIError(.notFound, message) }
    public static func conflict(_ message: String) -> APIError { APIError(.conflict, message) }

    /// The reason phrase the service uses as its error title.
    public var title: String {
        switch status.code {
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 406: return "Not Acceptable"
        case 409: return "Conflict"
        case 413: return "Request Entity Too Large"
        case 415: return "Unsupported Media Type"
        case 501: return "Not Implemented"
        case 503: return "Service Unavailable"
        default: return status.reasonPhrase
        }
    }

    public func body(style: ErrorStyle) -> JSON {
        switch style {
        case .keystone:
            return ["error": ["code": .int(Int64(status.code)), "title": .string(title), "message": .string(message)]]
        }
    }

    public func response(style: ErrorStyle) -> Response {
        var response = JSONResponse(status: status, body(style: style)).response()
        for field in headers { response.headers.append(field) }
        return response
    }
}

extension APIError {
    /// Maps any error escaping a handler to what the caller sees. Errors that are not API
    /// errors are internal failures: they are logged with the request id and reported as 500
    /// without internal detail.
    public static func from(_ error: any Error, logger: Logger) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as HTTPError:
            switch error.status {
            case .contentTooLarge:
                return APIError(.contentTooLarge, "Request is too large.")
            case .notFound:
                return .notFound("The resource could not be found.")
            default:
                return APIError(error.status, error.body ?? error.status.reasonPhrase)
            }
        default:
            logger.error("unhandled error: \(String(reflecting: error))")
            return APIError(.internalServerError, "An unexpected error prevented the server from fulfilling your request.")
        }
    }
}
