import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// How a service spells its error bodies. Each OpenStack service has its own shape and clients
/// parse them, so the shape is chosen by the route group, not by the code that throws.
public enum ErrorStyle: Sendable {
    /// Keystone: `{"error": {"code": 404, "title": "Not Found", "message": "…"}}`
    case keystone
    /// Glance renders errors through webob, which negotiates on `Accept`: flat JSON
    /// (`{"message", "code": "404 Not Found", "title"}`) when JSON is asked for, an HTML page
    /// for `*/*` or `text/html`, plain text otherwise. Clients depend on each form (glanceclient
    /// breaks on flat JSON and only ever asks for `*/*`), so Nimbus negotiates the same way.
    case glance
    /// Placement: `{"errors": [{"status", "title", "detail", "code", "request_id"}]}`, always
    /// JSON. `detail` is webob's explanation for the status, a blank line, then the specific
    /// message on the last line (osc-placement shows the last line; Nova searches the text).
    /// `code` is rendered when the error carries one: the placement routes set it from 1.23 on.
    case placement
    /// Nova: `{"itemNotFound": {"code": 404, "message": "…"}}`, the key naming the kind of fault.
    case nova
    /// Neutron: `{"NeutronError": {"type": "NetworkNotFound", "message": "…", "detail": ""}}`;
    /// `type` is the error's `code` when it has one (Neutron's exception name), else the
    /// webob class for the status (`HTTPBadRequest`).
    case neutron
}

/// An error meant for the API caller: a status code and a message, rendered in the shape of the
/// service whose route raised it.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String
    public var headers: HTTPFields
    /// Placement's machine-readable error code (`placement.concurrent_update`); only the
    /// placement style renders it.
    public var code: String?
    /// Further members of the error object (placement's `max_version`/`min_version` on a
    /// microversion 406); only the placement style renders them.
    public var extra: [String: JSON]

    public init(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:], code: String? = nil, extra: [String: JSON] = [:]) {
        self.status = status
        self.message = message
        self.headers = headers
        self.code = code
        self.extra = extra
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
        case 410: return "Gone"
        case 413: return "Request Entity Too Large"
        case 415: return "Unsupported Media Type"
        case 501: return "Not Implemented"
        case 503: return "Service Unavailable"
        default: return status.reasonPhrase
        }
    }

    /// Nova's name for a fault of this status.
    var novaFaultName: String {
        switch status.code {
        case 400: return "badRequest"
        case 401: return "unauthorized"
        case 403: return "forbidden"
        case 404: return "itemNotFound"
        case 405: return "badMethod"
        case 409: return "conflictingRequest"
        case 413, 429: return "overLimit"
        case 415: return "badMediaType"
        case 501: return "notImplemented"
        case 503: return "serviceUnavailable"
        default: return "computeFault"
        }
    }

    /// webob's exception class for a status, Neutron's `type` for errors without a code.
    var neutronTypeName: String {
        switch status.code {
        case 400: return "HTTPBadRequest"
        case 403: return "HTTPForbidden"
        case 404: return "HTTPNotFound"
        case 405: return "HTTPMethodNotAllowed"
        case 409: return "HTTPConflict"
        case 413: return "HTTPRequestEntityTooLarge"
        case 415: return "HTTPUnsupportedMediaType"
        case 501: return "HTTPNotImplemented"
        case 503: return "HTTPServiceUnavailable"
        default: return "HTTPInternalServerError"
        }
    }

    var keystoneBody: JSON {
        ["error": ["code": .int(Int64(status.code)), "title": .string(title), "message": .string(message)]]
    }

    /// The error as the service whose route raised it spells it. `accept` is the request's
    /// Accept header, which only Glance's shape depends on; `requestID` goes into placement's body.
    public func response(style: ErrorStyle, accept: String? = nil, requestID: String? = nil) -> Response {
        var response: Response
        switch style {
        case .keystone:
            response = JSONResponse(status: status, keystoneBody).response()
        case .glance:
            response = glanceResponse(accept: accept?.lowercased() ?? "")
        case .placement:
            response = placementResponse(requestID: requestID)
        case .nova:
            // A missing or bad token is answered by the token middleware, as keystonemiddleware does.
            response = JSONResponse(status: status, status == .unauthorized ? keystoneBody : [novaFaultName: ["code": .int(Int64(status.code)), "message": .string(message)]]).response()
        case .neutron:
            response = JSONResponse(status: status, status == .unauthorized ? keystoneBody
                : ["NeutronError": ["type": .string(code ?? neutronTypeName), "message": .string(message), "detail": ""]]).response()
        }
        for field in headers { response.headers.append(field) }
        return response
    }

    /// webob's explanation for a status, the first paragraph of placement's `detail`.
    var webobExplanation: String {
        switch status.code {
        case 400: return "The server could not comply with the request since it is either malformed or otherwise incorrect."
        case 403: return "Access was denied to this resource."
        case 404: return "The resource could not be found."
        case 405: return "The method specified is not allowed for this resource."
        case 406: return "The resource could not be generated that was acceptable to your browser."
        case 409: return "There was a conflict when trying to complete your request."
        case 415: return "The request media type is not supported by this server."
        case 500: return "The server has either erred or is incapable of performing the requested operation."
        default: return status.reasonPhrase + "."
        }
    }

    func placementResponse(requestID: String?) -> Response {
        // keystonemiddleware answers a missing or bad token before placement is reached.
        if status == .unauthorized { return JSONResponse(status: status, keystoneBody).response() }
        var error: [String: JSON] = extra
        error["status"] = .int(Int64(status.code))
        error["title"] = .string(title)
        error["detail"] = .string("\(webobExplanation)\n\n \(message)  ")
        if let code { error["code"] = .string(code) }
        if let requestID { error["request_id"] = .string(requestID) }
        return JSONResponse(status: status, ["errors": [.object(error)]]).response()
    }

    func glanceResponse(accept: String) -> Response {
        // A missing or bad token is answered by the token middleware in Keystone's shape,
        // before Glance itself is reached (keystonemiddleware does the same).
        if status == .unauthorized { return JSONResponse(status: status, keystoneBody).response() }
        let (contentType, text) = webobBody(accept: accept)
        return Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// The body webob's exceptions render for this error, negotiated on `accept` (the
    /// request's Accept header): flat JSON when JSON is asked for, an HTML page for `*/*` or
    /// `text/html`, plain text otherwise. Glance's errors and Nova's metadata API's are these.
    public func webobBody(accept: String) -> (contentType: String, text: String) {
        let accept = accept.lowercased()
        let statusLine = "\(status.code) \(title)"
        if accept.contains("application/json") && !accept.contains("text/html") && !accept.contains("*/*") {
            return ("application/json",
                    JSON.object(["message": .string(message + "<br /><br />\n\n\n"), "code": .string(statusLine), "title": .string(title)]).serialized())
        } else if accept.contains("*/*") || accept.contains("text/html") {
            let escaped = message.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;")
            return ("text/html; charset=UTF-8",
                    "<html>\n <head>\n  <title>\(statusLine)</title>\n </head>\n <body>\n  <h1>\(statusLine)</h1>\n  \(escaped)<br /><br />\n\n\n\n </body>\n</html>")
        } else {
            return ("text/plain; charset=UTF-8", "\(statusLine)\n\n\(message)\n\n   ")
        }
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
