import HTTPTypes
import Hummingbird

/// An OpenStack API microversion, `X.Y`. Nova and Placement let each request pick the shape
/// of the API it speaks with `OpenStack-API-Version: <service> X.Y`.
public struct Microversion: Sendable, Comparable, CustomStringConvertible {
    public let major: Int
    public let minor: Int

    public init(_ major: Int, _ minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// `2.53`; nil unless the text is exactly two non-negative integers joined by a dot.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let major = Int(parts[0]), let minor = Int(parts[1]), major >= 0, minor >= 0,
              parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }) else { return nil }
        self.init(major, minor)
    }

    public var description: String { "\(major).\(minor)" }

    public static func < (a: Microversion, b: Microversion) -> Bool { (a.major, a.minor) < (b.major, b.minor) }

    /// What a request asked for: the service's entry in `OpenStack-API-Version` (a
    /// comma-separated list of `service X.Y`; the last entry for the service wins), else the
    /// legacy header's value. Nil when the request names no version.
    public static func requested(_ headers: HTTPFields, service: String, legacyHeader: HTTPField.Name? = nil) -> String? {
        let entries = headers[values: HTTPField.Name("OpenStack-API-Version")!]
            .flatMap { $0.split(separator: ",") }
            .map { $0.split(whereSeparator: \.isWhitespace) }
        for entry in entries.reversed() where entry.count >= 2 && entry[0].lowercased() == service {
            return entry.dropFirst().joined(separator: " ")
        }
        if let legacyHeader, let value = headers[legacyHeader] { return value.trimmingCharacters(in: .whitespaces) }
        return nil
    }
}

/// The range a service speaks, and how it answers a request outside it.
public struct MicroversionRange: Sendable {
    public let service: String
    public let min: Microversion
    public let max: Microversion
    /// Nova's older header, still honoured and echoed.
    public let legacyHeader: HTTPField.Name?

    public init(service: String, min: Microversion, max: Microversion, legacyHeader: HTTPField.Name? = nil) {
        self.service = service
        self.min = min
        self.max = max
        self.legacyHeader = legacyHeader
    }

    public enum Failure: Error, Sendable {
        case malformed(String)
        case unsupported(String)
    }

    /// The version a request runs at: none asked means the minimum, `latest` the maximum.
    public func negotiate(_ headers: HTTPFields) -> Result<Microversion, Failure> {
        guard let asked = Microversion.requested(headers, service: service, legacyHeader: legacyHeader) else { return .success(min) }
        if asked.lowercased() == "latest" { return .success(max) }
        guard let version = Microversion(asked) else { return .failure(.malformed(asked)) }
        guard version >= min && version <= max else { return .failure(.unsupported(asked)) }
        return .success(version)
    }

    /// The headers every response of the service carries, errors included.
    public func responseHeaders(_ version: Microversion) -> HTTPFields {
        var fields: HTTPFields = [HTTPField.Name("OpenStack-API-Version")!: "\(service) \(version)"]
        var vary = "OpenStack-API-Version"
        if let legacyHeader {
            fields[legacyHeader] = version.description
            vary += ", \(legacyHeader.rawName)"
        }
        fields[.vary] = vary
        return fields
    }
}
