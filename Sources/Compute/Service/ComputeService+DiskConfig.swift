import Foundation
import NimbusCore

extension ComputeService {
    /// `OS-DCF:diskConfig` of a create, rebuild, resize or update body: `AUTO` or `MANUAL`,
    /// nil when not given. Kept with the server (and shown) from then on, as Nova keeps
    /// `auto_disk_config`.
    static func diskConfig(_ body: JSON) throws -> String? {
        guard let raw = body["OS-DCF:diskConfig"] else { return nil }
        guard let value = raw.stringValue, ["AUTO", "MANUAL"].contains(value) else {
            throw APIError.badRequest("Invalid input for field/attribute OS-DCF:diskConfig. Value: \(raw.serialized()). "
                                      + "\(raw.serialized()) is not one of ['AUTO', 'MANUAL']")
        }
        return value
    }
}
