import Foundation
import HostAPI

/// The config drive the QEMU driver attaches: what a guest's spec says, written by `ConfigDriveBuilder`.
public struct ConfigDriveWriter: ConfigDriveWriting {
    public init() {}

    public func write(_ guest: GuestSpec, to path: String) throws {
        do {
            // The host's tools were checked when the driver started.
            try ConfigDriveBuilder.build(InstanceMetadata(guest: guest), to: path, installMissingTools: false, log: { _ in })
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
    }
}
