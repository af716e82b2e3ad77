import Foundation
import NimbusCore

extension GuestPaths {
    /// Present while `liveMigrate` sends the guest from this host.
    var outgoingMigration: String { (directory as NSString).appendingPathComponent("migration.out") }
    /// Written by `cancelMigration`: the running `liveMigrate` stops at its next step.
    var migrationCancelled: String { (directory as NSString).appendingPathComponent("migration.cancel") }
}

/// Force-completing and cancelling a live migration under way (see QEMUDriver+LiveMigration):
/// force complete stops the guest's vCPUs (`stop`), so no page is dirtied any more and the last
/// round fits any downtime limit; cancel marks the migration cancelled, which the disk copy
/// loop notices, and `migrate_cancel`s the memory stream if it has started.
extension QEMUDriver: LiveMigrationSteeringDriver {
    public func forceCompleteMigration(_ uuid: String) async throws {
        let paths = try outgoing(uuid)
        try await monitor(paths).execute("stop")
    }

    public func cancelMigration(_ uuid: String) async throws {
        let paths = try outgoing(uuid)
        try Data().write(to: URL(fileURLWithPath: paths.migrationCancelled))
        try await monitor(paths).execute("migrate_cancel")
    }

    /// The paths of a guest this host is sending now; `invalidState` otherwise.
    private func outgoing(_ uuid: String) throws -> GuestPaths {
        let (paths, _) = try existing(uuid)
        guard FileManager.default.fileExists(atPath: paths.outgoingMigration), GuestProcess.running(paths) != nil else {
            throw VirtError.invalidState("No live migration of instance \(uuid) is under way on this host.")
        }
        return paths
    }

    /// Throws when the migration was cancelled (checked between the steps of `liveMigrate`).
    func checkNotCancelled(_ paths: GuestPaths) throws {
        if FileManager.default.fileExists(atPath: paths.migrationCancelled) {
            throw VirtError.failed("The live migration of \(paths.uuid) was cancelled.")
        }
    }
}

extension QEMUDriver: CrashDumpingDriver {
    public func injectNMI(_ uuid: String) async throws {
        try await runningMonitor(uuid).execute("inject-nmi")
    }
}

extension QEMUDriver: ImageCachingDriver {
    public func cacheImage(_ image: ImageRef, images: any ImageTransfer) async throws -> Bool {
        let existed = FileManager.default.fileExists(atPath: cache.path(of: image.id))
        _ = try await cache.fetch(image.id, diskFormat: image.diskFormat, md5: image.checksum, sha512: image.sha512, images: images)
        return !existed
    }
}
