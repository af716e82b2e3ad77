import Foundation
import HTTPTypes
import NimbusCore

/// A placement microversion (`1.29`). Requests choose one with
/// `OpenStack-API-Version: placement X.Y`; without one they get the minimum, 1.0.
public struct Microversion: Sendable, Comparable, CustomStringConvertible {
    public let major: Int
    public let minor: Int

    public init(_ major: Int, _ minor: Int) {
        self.major = major
        self.minor = minor
    }

    public static let minimum = Microversion(1, 0)
    /// Every feature up to this version is implemented.
    public static let maximum = Microversion(1, 39)

    public var description: String { "\(major).\(minor)" }

    public static func < (a: Microversion, b: Microversion) -> Bool { (a.major, a.minor) < (b.major, b.minor) }

    /// `X.Y` with decimal integers, or nil.
    public init?(parsing text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let major = Int(parts[0]), let minor = Int(parts[1]),
              parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) })
        else { return nil }
        self.init(major, minor)
    }

    static let headerName = HTTPField.Name("OpenStack-API-Version")!

    /// The version a request asks for. The header may name several services
    /// (`compute 2.1, placement 1.20`) and may appear more than once; the last placement entry
    /// wins. No entry is 1.0, `latest` is the maximum; a malformed value is 400 and a version
    /// outside the supported range 406 (with the range in the error, which osc-placement reads
    /// to negotiate).
    public static func requested(by headers: HTTPFields) throws -> Microversion {
        let list = headers[values: headerName].joined(separator: ",")
        var value: String?
        for element in list.split(separator: ",").reversed() {
            let words = element.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let service = words.first, service.lowercased() == "placement" else { continue }
            value = words.dropFirst().joined(separator: " ")
            break
        }
        guard let value else { return minimum }
        if value.lowercased() == "latest" { return maximum }
        guard let version = Microversion(parsing: value) else {
            throw APIError.badRequest("Invalid microversion: invalid version string: \(value)")
        }
        guard version >= minimum && version <= maximum else {
            throw APIError(.notAcceptable, "Invalid microversion: Unacceptable version header: \(value)",
                           extra: ["max_version": .string(maximum.description), "min_version": .string(minimum.description)])
        }
        return version
    }
}
