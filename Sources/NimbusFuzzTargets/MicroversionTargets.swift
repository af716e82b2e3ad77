import Compute
import HTTPTypes
@testable import NimbusCore
@testable import Placement

enum MicroversionTargets {
    static let apiVersion = HTTPField.Name("OpenStack-API-Version")!
    static let novaLegacy = HTTPField.Name("X-OpenStack-Nova-API-Version")!

    /// Each line of the input is one `OpenStack-API-Version` header value (a request may send
    /// several); the last line is also sent as Nova's legacy header. Both services negotiate
    /// them, and every line and word goes through `Microversion.init?(String)`.
    static func microversion(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).prefix(32)

        var fields = HTTPFields()
        for line in lines {
            // HTTPField turns bytes a header value may not carry into spaces, as a header the
            // HTTP parser let through would be.
            fields.append(HTTPField(name: apiVersion, value: String(line)))
            _ = Microversion(String(line))
            for word in line.split(separator: " ").prefix(8) { _ = Microversion(String(word)) }
        }
        if let last = lines.last { fields.append(HTTPField(name: novaLegacy, value: String(last))) }

        for range in [ComputeRoutes.versions, Microversion.placement] {
            _ = Microversion.requested(fields, service: range.service, legacyHeader: range.legacyHeader)
            if case .success(let version) = range.negotiate(fields) {
                guard version >= range.min && version <= range.max else {
                    fatalError("\(range.service) negotiated \(version), outside \(range.min)-\(range.max)")
                }
                _ = range.responseHeaders(version)
            }
        }
        _ = try? Microversion.requested(by: fields)
    }
}
