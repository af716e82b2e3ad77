import Foundation

/// Where one guest's files live: `<instances>/<uuid>/`, one directory per guest, holding
/// everything the driver made for it (removing the directory removes the guest's state).
public struct GuestPaths: Sendable, Equatable {
    public let uuid: String
    public let directory: String

    public init(instancesRoot: String, uuid: String) {
        self.uuid = uuid
        directory = (instancesRoot as NSString).appendingPathComponent(uuid)
    }

    private func file(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    /// qcow2 overlay on the cached base image: the root disk.
    public var rootDisk: String { file("disk") }
    public var ephemeralDisk: String { file("disk.eph0") }
    public var swapDisk: String { file("disk.swap") }
    /// The config drive's ISO 9660 image.
    public var configDrive: String { file("disk.config") }
    /// The longest instances root whose guests' sockets fit a unix socket path (107 bytes):
    /// the root, a slash, a 36-character uuid, a slash and `console.sock`.
    public static let longestInstancesRoot = 107 - (1 + 36 + 1 + "console.sock".utf8.count)

    public var qmpSocket: String { file("qmp.sock") }
    /// The serial console: the socket a console proxy may attach to, and the log QEMU writes
    /// whether or not anyone is attached.
    public var consoleSocket: String { file("console.sock") }
    public var consoleLog: String { file("console.log") }
    /// Written by QEMU (`-pidfile`) once it runs; QEMU removes it when it exits normally.
    public var pidFile: String { file("qemu.pid") }
    /// QEMU's own stderr (warnings, errors), appended across starts.
    public var qemuLog: String { file("qemu.log") }
    /// The `GuestSpec` the guest was built from, so any agent can start it again.
    public var spec: String { file("guest.json") }
    /// The guest's saved memory and device state while it is suspended.
    public var savedState: String { file("state.sav") }
    /// While rescued: the overlay on the rescue image the guest boots from, and that image.
    public var rescueDisk: String { file("disk.rescue") }
    public var rescueImage: String { file("rescue.json") }
    /// A snapshot's copy of the root disk while it is being made and uploaded.
    public var snapshotScratch: String { file("snapshot.qcow2") }
    /// While a cold migration offers the disks: the `qemu-storage-daemon` serving them over NBD
    /// (its pidfile and stderr), and the `DiskExport` location it serves them at.
    public var exportPidFile: String { file("export.pid") }
    public var exportLog: String { file("export.log") }
    public var exportLocation: String { file("export.uri") }
    /// While a live migration's destination waits for the guest: the `MigrationEndpoint` it
    /// listens at. Its presence marks the guest as incoming (not yet this host's).
    public var incomingEndpoint: String { file("incoming.uri") }
}
