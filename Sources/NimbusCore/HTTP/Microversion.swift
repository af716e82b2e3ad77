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
        let parts = text.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.count <= 9 && $0.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } })
        else { return nil }
        func value(_ digits: Substring.UTF8View.SubSequence) -> Int { digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) } }
        self.init(value(parts[0]), value(parts[1]))
    }

    public var description: String { "\(major).\(minor)" }

    static let headerName = HTTPField.Name("OpenStack-API-Version")!

    public static func < (a: Microversion, b: Microversion) -> Bool { (a.major, a.minor) < (b.major, b.minor) }

    /// What a request asked for: the service's entry in `OpenStack-API-Version` (a
    /// comma-separated list of `service X.Y`; the last entry for the service wins), else the
    /// legacy header's value. Nil when the request names no version.
    public static func requested(_ headers: HTTPFields, service: String, legacyHeader: HTTPField.Name? = nil) -> String? {
        var found: String?
        for value in headers[values: headerName] {
            for item in value.split(separator: ",") {
                let words = item.split(whereSeparator: \.isWhitespace)
                if words.count >= 2 && (words[0] == service || words[0].lowercased() == service) { found = words.dropFirst().joined(separator: " ") }
            }
        }
        if let found { return found }
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
        var fields: HTTPFields = [Microversion.headerName: "\(service) \(version)"]
        var vary = "OpenStack-API-Version"
        if let legacyHeader {
            fields[legacyHeader] = version.description
            vary += ", \(legacyHeader.rawName)"
        }
        fields[.vary] = vary
        return fields
    }
}
