import Foundation
import NimbusCore

/// Snapshots: a standalone qcow2 copy of the root disk (its backing chain flattened), made in
/// the guest's directory and handed to the image transfer as the image's data (an image service
/// in this process moves it into its store rather than copying it).
///
/// Running or paused guest: a QMP `blockdev-backup` job with `sync: full` into a fresh qcow2.
/// The backup is point-in-time (copy-before-write: a guest write to a block not yet copied
/// first copies the old block), so the guest keeps running and the copy is consistent as
/// of the job's start, like a power cut at that instant. Stopped or suspended guest (no QEMU):
/// `qemu-img convert` of the overlay.
extension QEMUDriver {
    static let snapshotNode = "nimbus-snapshot"
    static let snapshotJob = "nimbus-snapshot"

    public func snapshot(_ uuid: String, imageID: String, images: any ImageTransfer) async throws {
        let (paths, _) = try existing(uuid)
        let scratch = paths.snapshotScratch
        try? FileManager.default.removeItem(atPath: scratch)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        if GuestProcess.running(paths) != nil {
            try await backup(paths, to: scratch)
        } else {
            try await qemuImg.convertToQCOW2(paths.rootDisk, format: "qcow2", to: scratch)
        }
        try await images.upload(imageID: imageID, taking: scratch, diskFormat: "qcow2")
    }

    private func backup(_ paths: GuestPaths, to scratch: String) async throws {
        let client = try await monitor(paths)
        let size = try await qemuImg.virtualSize(paths.rootDisk, format: "qcow2", forceShare: true)
        try await qemuImg.createBlank(scratch, sizeBytes: size)
        try await client.execute("blockdev-add", arguments: [
            "driver": "qcow2", "node-name": .string(Self.snapshotNode),
            "file": ["driver": "file", "filename": .string(scratch)],
        ])
        do {
            let since = client.lastEventSequence
            try await client.execute("blockdev-backup", arguments: [
                "job-id": .string(Self.snapshotJob), "device": "root", "target": .string(Self.snapshotNode), "sync": "full",
            ])
            var after = since
            while true {
                let event = try await client.waitForEvent(["BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED"], after: after,
                                                          timeout: configuration.snapshotTimeout)
                after = event.sequence
                guard event.data?["device"]?.stringValue == Self.snapshotJob else { continue }
                if event.name == "BLOCK_JOB_CANCELLED" { throw VirtError.failed("the snapshot's disk copy was cancelled") }
                if let error = event.data?["error"]?.stringValue { throw VirtError.failed("the snapshot's disk copy failed: \(error)") }
                break
            }
        } catch {
            _ = try? await client.execute("block-job-cancel", arguments: ["device": .string(Self.snapshotJob), "force": true])
            _ = try? await client.execute("blockdev-del", arguments: ["node-name": .string(Self.snapshotNode)])
            throw error
        }
        try await client.execute("blockdev-del", arguments: ["node-name": .string(Self.snapshotNode)])
    }
}
