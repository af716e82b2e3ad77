import Foundation

// Optional abilities added after the first set (see VirtDriver.swift for the contract every
// method follows).

/// Steers a live migration while this host, its source, sends the guest (`migrate` is running
/// for it): the agent calls these concurrently with that `migrate`.
public protocol LiveMigrationSteeringDriver: LiveMigratingDriver {
    /// Pauses the guest so that the copy of its memory converges (what Nova's libvirt driver
    /// does without post-copy). Postcondition: the guest is paused here and its migration goes
    /// on; if the migration then fails the guest runs here again. Throws `invalidState` when no
    /// migration of the guest is under way.
    func forceCompleteMigration(_ uuid: String) async throws
    /// Cancels the migration. Postcondition: the running `migrate` throws, leaving the guest
    /// here as it was (running if it ran). Throws `invalidState` when no migration of the
    /// guest is under way.
    func cancelMigration(_ uuid: String) async throws
}

/// Sends a guest a non-maskable interrupt, which a guest kernel set up for it answers with a
/// crash dump (Nova's `trigger_crash_dump`, libvirt's `inject-nmi`).
public protocol CrashDumpingDriver: VirtDriver {
    /// Postcondition: the NMI was delivered. Throws `invalidState` when the guest is not running.
    func injectNMI(_ uuid: String) async throws
}

/// Keeps images in a host-wide cache that guests are built from (Nova's image precaching).
public protocol ImageCachingDriver: VirtDriver {
    /// Puts the image in the host's cache, downloading it through `images` if it is not there.
    /// Returns false when it was cached already. Postcondition: the cached copy is complete.
    func cacheImage(_ image: ImageRef, images: any ImageTransfer) async throws -> Bool
}
