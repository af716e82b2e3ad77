import Foundation

/// Rescue as Nova's libvirt driver does it: the guest is stopped and started again from a
/// fresh overlay on the rescue image (`disk.rescue`), with its own root disk attached as the
/// second disk; `rescue.json` records the rescue image, so any start (power-on, reboot, a
/// restarted agent) boots the rescue image until `unrescue`.
extension QEMUDriver: RescuingDriver {
    public func rescue(_ guest: GuestSpec, rescueImage: ImageRef) async throws {
        let (paths, spec) = try existing(guest.uuid)
        guard !FileManager.default.fileExists(atPath: paths.rescueImage) else { throw VirtError.invalidState("Instance \(guest.uuid) is already rescued.") }
        guard !FileManager.default.fileExists(atPath: paths.savedState) else { throw VirtError.invalidState("Instance \(guest.uuid) is suspended.") }
        try await Reverter.run { reverter in
            if let pid = GuestProcess.running(paths) {
                await quit(paths, pid: pid)
                // Undone last: the guest runs again as it was.
                reverter.add { [self] in try? await start(spec, paths) }
            }
            let base = try await cache.fetch(rescueImage.id, diskFormat: rescueImage.diskFormat, md5: rescueImage.checksum,
                                             sha512: rescueImage.sha512, images: images)
            reverter.add { try? FileManager.default.removeItem(atPath: paths.rescueDisk) }
            try await qemuImg.createOverlay(paths.rescueDisk, backing: base, backingFormat: BaseImageCache.cachedFormat(of: rescueImage.diskFormat),
                                            sizeBytes: nil)
            reverter.add { try? FileManager.default.removeItem(atPath: paths.rescueImage) }
            try GuestRecord.writeImage(rescueImage, to: paths.rescueImage)
            try await start(spec, paths)
        }
    }

    public func unrescue(_ uuid: String) async throws {
        let (paths, spec) = try existing(uuid)
        guard FileManager.default.fileExists(atPath: paths.rescueImage) else { throw VirtError.invalidState("Instance \(uuid) is not rescued.") }
        if let pid = GuestProcess.running(paths) { await quit(paths, pid: pid) }
        try FileManager.default.removeItem(atPath: paths.rescueImage)
        try? FileManager.default.removeItem(atPath: paths.rescueDisk)
        try await start(spec, paths)
    }
}
