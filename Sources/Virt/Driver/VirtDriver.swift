import Foundation
@_exported import HostAPI

// The contract between a host's agent and its hypervisor, after Nova's `ComputeDriver` and
// Incus's instance drivers.
//
// Glossary
// - guest: what the hypervisor runs for one server, named by the server's uuid.
// - agent: the host's side of Nimbus; it owns the state machine around these calls and the
//   ordering of work per guest (one call at a time per guest, different guests concurrently).
//   A driver keeps no server state of its own beyond what the hypervisor and the guest's
//   directory hold, so an agent restarted at any point finds the truth by asking the driver.
// - base protocol: what every driver does (`VirtDriver`). Optional abilities are the narrow
//   protocols below; a driver's capabilities are the protocols it conforms to, never flags
//   that can drift from the code (`DriverCapabilities(of:)`).
//
// Threading: every method may be called concurrently for different guests; the agent never
// calls two methods for the same guest at once. Methods return when the change is done (or
// throw), never while it is still under way.
//
// Errors: `VirtError.guestNotFound` when the guest does not exist on this host (the agent
// treats it as "already gone" where that is what it wanted); any other error leaves the guest
// as it was before the call, unless the method says otherwise.

public enum VirtError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The guest does not exist on this host.
    case guestNotFound(String)
    /// The guest exists but is in a state that does not allow the call (pause a stopped guest).
    case invalidState(String)
    /// The hypervisor or a tool it needs failed; the message says what and why.
    case failed(String)

    public var description: String {
        switch self {
        case .guestNotFound(let uuid): return "Instance \(uuid) could not be found on this host."
        case .invalidState(let message), .failed(let message): return message
        }
    }
}

/// Where a driver gets image data and puts snapshots: the image service, reached by the agent
/// with its own service credentials. The controller never relays image bytes.
public protocol ImageTransfer: Sendable {
    /// Writes the image's data to `path` (replacing any file there).
    /// Postcondition: on return the file is complete; on throw no file is left at `path`.
    func download(imageID: String, to path: String) async throws
    /// Uploads the file at `path` as the data of an existing, `queued` image. The caller hands
    /// the file over: an image service on this machine may move it into its store rather than
    /// copy its bytes, so the caller neither reads nor writes it afterwards, and removes
    /// whatever is still at `path` once the call returns or throws.
    /// Postcondition: on return the image is `active` with the file's data.
    func upload(imageID: String, taking path: String, diskFormat: String) async throws
}

/// What every driver does.
public protocol VirtDriver: Sendable {
    /// `qemu` or `fake`: the name `[compute] driver` and `nimbus agent --driver` use.
    var name: String { get }

    /// The host's capacity, less the configured reservations.
    func hostResources() async throws -> HostResources

    /// Every guest the hypervisor has on this host, with its power state; the agent compares it
    /// with what the controller expects after a restart and on every power-state sync.
    func listGuests() async throws -> [String: PowerState]

    /// Throws `guestNotFound` when there is no such guest.
    func powerState(of uuid: String) async throws -> PowerState

    /// Builds and starts a guest.
    /// Postcondition: on return the guest exists and is running. On throw nothing of it is
    /// left on the host (no process, disk, socket or directory) — a failed spawn can be
    /// retried on this host or another.
    func spawn(_ guest: GuestSpec) async throws

    /// Stops the guest and removes everything the driver made for it (process, disks, config
    /// drive, sockets, logs, directory); base images stay in the cache.
    /// Idempotent: destroying a guest that does not exist succeeds.
    func destroy(_ uuid: String) async throws

    /// Asks the guest to shut down (ACPI), and stops it hard after `timeout`.
    /// Postcondition: the guest is `shutdown`; its disks are kept. A stopped guest is left alone.
    func powerOff(_ uuid: String, timeout: Duration) async throws

    /// Starts a stopped guest from its disks. Postcondition: running. A running guest is left alone.
    func powerOn(_ uuid: String) async throws

    /// Soft: the guest is asked to restart (ACPI), and restarted hard if it does not within the
    /// shutdown timeout. Hard: the guest is reset. Postcondition: running.
    func reboot(_ uuid: String, hard: Bool) async throws

    /// The guest's serial console log, the last `lines` lines when given.
    func consoleOutput(_ uuid: String, lines: Int?) async throws -> String
}

/// Freezes and thaws a guest's vCPUs in memory.
public protocol PausingDriver: VirtDriver {
    /// Postcondition: `paused`.
    func pause(_ uuid: String) async throws
    /// Postcondition: `running`.
    func unpause(_ uuid: String) async throws
}

/// Saves a guest's memory to disk and stops it, and starts it again from there.
public protocol SuspendingDriver: VirtDriver {
    /// Postcondition: `suspended`; no hypervisor process runs for the guest.
    func suspend(_ uuid: String) async throws
    /// Postcondition: `running`, continuing where it was suspended.
    func resume(_ uuid: String) async throws
}

/// Copies a guest's root disk into the image service.
public protocol SnapshottingDriver: VirtDriver {
    /// Uploads the guest's root disk as the data of the queued image `imageID` (qcow2), through
    /// `images`. The guest keeps its power state. Postcondition: the image is `active` and
    /// bootable; on throw the guest is as before and no temporary file is left.
    func snapshot(_ uuid: String, imageID: String, images: any ImageTransfer) async throws
}

/// Boots a rescue image with the guest's own root disk attached as a second disk.
public protocol RescuingDriver: VirtDriver {
    /// Postcondition: running from `rescueImage`, the original root disk as the second disk.
    func rescue(_ guest: GuestSpec, rescueImage: ImageRef) async throws
    /// Postcondition: running from its own root disk again; the rescue disk is gone.
    func unrescue(_ uuid: String) async throws
}

/// Answers `GET /servers/{id}/diagnostics`.
public protocol DiagnosingDriver: VirtDriver {
    func diagnostics(_ uuid: String) async throws -> GuestDiagnostics
}

/// Changes a guest's size on its own host (a resize to the same host, and its revert).
public protocol ResizingDriver: VirtDriver {
    /// Postcondition: the guest has `guest`'s vCPUs and memory, its root disk grown to
    /// `rootGB` (never shrunk), and is shut down: the agent starts it when the server should run.
    func resize(_ guest: GuestSpec) async throws
}

/// Moves a stopped guest's disks to another host (cold migration, resize elsewhere). The
/// source offers the disks and the destination copies them, so the controller never carries
/// disk bytes. Sequence: `exportDisks` (source) → `importGuest` (destination) → `destroy`
/// (source, on confirm) or `endExport` and `powerOn` (source, on revert).
public protocol ColdMigratingDriver: VirtDriver {
    /// Source, first. Postcondition: the guest is shut down, and its disks stay on this host
    /// and are offered at the returned location until `endExport` or `destroy`.
    func exportDisks(_ uuid: String) async throws -> DiskExport
    /// Destination. Postcondition: the guest exists here with `guest`'s sizes and a copy of the
    /// exported disks, shut down. On throw nothing of it is left here.
    func importGuest(_ guest: GuestSpec, from export: DiskExport) async throws
    /// Source: stops offering the disks. Idempotent.
    func endExport(_ uuid: String) async throws
}

/// Moves a running guest to another host without stopping it. The destination listens before
/// the source sends: `prepareIncoming` (destination) → `migrate` (source) → `finishIncoming`
/// (destination), or `abortIncoming` (destination) when the source fails.
public protocol LiveMigratingDriver: VirtDriver {
    /// Destination, first: a guest waiting for the incoming state, with its disks either opened
    /// where the hosts share them or created empty for a block migration to fill.
    /// Postcondition: the endpoint accepts the source's stream. On throw nothing is left here.
    /// Called again for a guest already waiting, it returns the same endpoint.
    func prepareIncoming(_ guest: GuestSpec, blockMigration: Bool) async throws -> MigrationEndpoint
    /// Source. Postcondition: the guest runs on the destination and nothing of it is left
    /// here. On throw the guest still runs here, as it was.
    func migrate(_ uuid: String, to endpoint: MigrationEndpoint, blockMigration: Bool) async throws
    /// Destination, last. Postcondition: the guest runs here, in the run state it had at the
    /// source (a guest paused there arrives paused, as in Nova); nothing of the migration is
    /// left listening.
    func finishIncoming(_ uuid: String) async throws
    /// Destination, when the source could not send: removes what `prepareIncoming` made. Idempotent.
    func abortIncoming(_ uuid: String) async throws
}

/// Offers a guest's graphical console: its VNC server, which the controller's noVNC proxy
/// relays to a browser (Nova's `get_vnc_console`). A driver without it has no graphical
/// consoles, and the API answers Nova's 501 for its servers.
public protocol VNCConsoleDriver: VirtDriver {
    /// Where the guest's VNC server listens now. Postcondition: a TCP connection to the returned
    /// endpoint, from the controller, reaches this guest's VNC server and no other guest's, for
    /// as long as the guest's hypervisor process runs. Throws `invalidState` when the guest
    /// exists but has no VNC server (it is not running), `guestNotFound` when there is no guest.
    func vncConsole(_ uuid: String) async throws -> VNCEndpoint
}

/// Plugs ports into a guest and out of it while it exists (Nova's `attach_interface` and
/// `detach_interface`). The host's network dataplane has wired the port's tap before
/// `attachInterface` and takes it away after `detachInterface`.
public protocol InterfaceAttachingDriver: VirtDriver {
    /// Postcondition: the guest has a NIC for the port, with its MAC address — in the running
    /// guest at once (hot-plugged), and in what the guest is started from again (a reboot,
    /// a power-on, a move keep it). A NIC already there for the port is left alone. On throw
    /// the guest is as before.
    func attachInterface(_ uuid: String, _ vif: VIF) async throws
    /// Postcondition: the guest has no NIC for the port, running or started again; none there
    /// is fine. On throw the guest is as before.
    func detachInterface(_ uuid: String, portID: String) async throws
}

/// Sets the administrator password inside a running guest (Nova's `set_admin_password`).
public protocol AdminPasswordDriver: VirtDriver {
    /// Postcondition: the guest's administrator account takes `password`.
    func setAdminPassword(_ uuid: String, password: String) async throws
}

extension DriverCapabilities {
    /// The capabilities of a driver: the protocols it conforms to.
    public init(of driver: any VirtDriver) {
        self.init(pause: driver is any PausingDriver, suspend: driver is any SuspendingDriver, snapshot: driver is any SnapshottingDriver,
                  rescue: driver is any RescuingDriver, diagnostics: driver is any DiagnosingDriver, resize: driver is any ResizingDriver,
                  liveMigration: driver is any LiveMigratingDriver, coldMigration: driver is any ColdMigratingDriver,
                  attachInterface: driver is any InterfaceAttachingDriver, setAdminPassword: driver is any AdminPasswordDriver)
    }
}
