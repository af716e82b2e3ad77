import Foundation
import HTTPTypes
import NimbusCore

/// Placement's microversions: 1.0 to 1.39, every feature up to 1.39 implemented. Requests
/// choose one with `OpenStack-API-Version: placement X.Y`; without one they get 1.0.
extension Microversion {
    static let minimum = Microversion(1, 0)
    static let maximum = Microversion(1, 39)
    static let headerName = HTTPField.Name("OpenStack-API-Version")!
    static let placement = MicroversionRange(service: "placement", min: minimum, max: maximum)

    /// The version a request asks for: a malformed value is 400 and a version outside the
    /// range 406, with the range in the error (osc-placement reads it to negotiate).
    static func requested(by headers: HTTPFields) throws -> Microversion {
        switch placement.negotiate(headers) {
        case .success(let version):
            return version
        case .failure(.malformed(let value)):
            throw APIError.badRequest("Invalid microversion: invalid version string: \(value)")
        case .failure(.unsupported(let value)):
            throw APIError(.notAcceptable, "Invalid microversion: Unacceptable version header: \(value)",
                           extra: ["max_version": .string(maximum.description), "min_version": .string(minimum.description)])
        }
    }
}
