import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// A JSON response body with a status, as every OpenStack API returns.
public struct JSONResponse: ResponseGenerator, Sendable {
    public var status: HTTPResponse.Status
    public var body: JSON
    public var headers: HTTPFields

    public init(status: HTTPResponse.Status = .ok, _ body: JSON, headers: HTTPFields = [:]) {
        self.status = status
        self.body = body
        self.headers = headers
    }

    public func response() -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        let buffer = ByteBuffer(bytes: body.serializedBytes())
        return Response(status: status, headers: fields, body: .init(byteBuffer: buffer))
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        response()
    }
}

extension Response {
    /// A JSON body serialised earlier (a cached rendering).
    public static func json(_ bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// An empty response (204 and the like).
    public static func empty(_ status: HTTPResponse.Status = .noContent, headers: HTTPFields = [:]) -> Response {
        Response(status: status, headers: headers)
    }
}

extension Request {
    /// Reads the whole body, bounded by `limit`, and parses it as JSON.
    /// An oversized body is 413; an empty or malformed one is 400.
    public func jsonBody(limit: Int) async throws -> JSON {
        var body = self.body
        let buffer: ByteBuffer
        do {
            buffer = try await body.collect(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError(.contentTooLarge, "Request is too large.")
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "Request is too large.")
        }
        if buffer.readableBytes == 0 {
            throw APIError.badRequest("Request body is required and must be a JSON object.")
        }
        do {
            return try JSON.parse(buffer.readableBytesView)
        } catch let JSON.ParseError.invalid(reason) {
            throw APIError.badRequest("Malformed request body: \(reason).")
        }
    }

    /// The value of a query parameter, or nil when absent.
    public func query(_ name: String) -> String? {
        queryDictionary[name]
    }

    /// Base URL the client used to reach us (scheme, host and port), for `links`.
    public func baseURL(fallback: String) -> String {
        guard let host = head.authority, !host.isEmpty else { return fallback }
        let scheme = headers[HTTPField.Name("X-Forwarded-Proto")!] ?? "http"
        return "\(scheme)://\(host)"
    }
}

extension Request {
    /// Query parameters as a dictionary (the last value wins), percent-decoded; a bare flag
    /// like `?effective` maps to "".
    public var queryDictionary: [String: String] {
        guard let query = uri.query, !query.isEmpty else { return [:] }
        var out: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s)
            }
            out[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return out
    }
}

extension Request {
    /// Every value of a repeated query parameter (`?tag=a&tag=b`).
    public func queryValues(_ name: String) -> [String] {
        guard let query = uri.query else { return [] }
        return query.split(separator: "&").compactMap { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0].removingPercentEncoding == name else { return nil }
            return String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding
        }
    }
}
