import Foundation

/// Resize on the guest's own host: the guest is shut down, `guest.json` takes the new vCPUs and
/// memory (the next start uses them), and its disks grow to the new flavor — never shrink.
///
/// Nova's libvirt driver keeps the disks as they were before a resize and puts them back on
/// revert; here a revert is a resize back to the old sizes, so a root disk that grew stays
/// grown (nothing of the guest's data is lost either way).
extension QEMUDriver: ResizingDriver {
    public func resize(_ guest: GuestSpec) async throws {
        let (paths, _) = try existing(guest.uuid)
        guard !FileManager.default.fileExists(atPath: paths.savedState) else { throw VirtError.invalidState("Instance \(guest.uuid) is suspended.") }
        guard !FileManager.default.fileExists(atPath: paths.rescueImage) else { throw VirtError.invalidState("Instance \(guest.uuid) is rescued.") }
        let previous = try GuestRecord.read(paths.spec)
        try await Reverter.run { reverter in
            if GuestProcess.running(paths) != nil {
                try await powerOff(guest.uuid, timeout: configuration.shutdownTimeout)
                // Undone last: the guest runs again as it was.
                reverter.add { [self] in try? await start(previous, paths) }
            }
            try await fitDisks(guest, paths, reverter: reverter)
            try GuestRecord.write(guest, to: paths.spec)
        }
    }

    /// Grows the root disk to the flavor's size (a flavor root of 0 keeps the image's size),
    /// and the ephemeral and swap disks to theirs, making them blank when the guest has none
    /// yet. Never shrinks: a disk already larger keeps its size. New disks are registered with
    /// `reverter`; growth is kept either way (the guest boots as well from a larger disk).
    func fitDisks(_ guest: GuestSpec, _ paths: GuestPaths, reverter: Reverter) async throws {
        if guest.rootGB > 0 { try await grow(paths.rootDisk, to: Int64(guest.rootGB) << 30, reverter: reverter) }
        if guest.ephemeralGB > 0 { try await grow(paths.ephemeralDisk, to: Int64(guest.ephemeralGB) << 30, reverter: reverter) }
        if guest.swapMB > 0 { try await grow(paths.swapDisk, to: Int64(guest.swapMB) << 20, reverter: reverter) }
    }

    private func grow(_ disk: String, to size: Int64, reverter: Reverter) async throws {
        guard FileManager.default.fileExists(atPath: disk) else {
            reverter.add { try? FileManager.default.removeItem(atPath: disk) }
            try await qemuImg.createBlank(disk, sizeBytes: size)
            return
        }
        if try await qemuImg.virtualSize(disk, format: "qcow2") < size { try await qemuImg.grow(disk, to: size) }
    }
}
