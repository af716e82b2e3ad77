import Foundation
import NimbusCore

/// The config drive the QEMU driver attaches: a guest's spec written by `ConfigDriveBuilder`.
public struct ConfigDriveWriter: ConfigDriveWriting {
    public init() {}

    public func write(_ guest: GuestSpec, to path: String) throws {
        var input = ConfigDriveInput(uuid: guest.uuid, name: guest.name, hostname: guest.hostname)
        input.availabilityZone = guest.availabilityZone ?? "nova"
        input.launchIndex = guest.launchIndex
        input.projectID = guest.projectID
        input.publicKeys = guest.keys.map { ConfigDriveInput.PublicKey(name: $0.name, data: $0.data, type: $0.type) }
        input.metadata = guest.metadata
        input.userData = guest.userData.map { Data($0) }
        if let networkData = guest.networkData, let parsed = try? JSON.parse(networkData) { input.networkData = parsed }
        do {
            // The host's tools were checked when the driver started.
            try ConfigDriveBuilder.build(input, to: path, installMissingTools: false, log: { _ in })
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
    }
}
