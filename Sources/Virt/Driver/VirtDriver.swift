import Foundation

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

/// Everything a driver needs to know to build or change one guest; nothing here needs the
/// database.
public struct GuestSpec: Sendable, Equatable {
    public var uuid: String
    /// The server's display name (the guest's name for humans and logs).
    public var name: String
    /// The hostname the guest gives itself (metadata `hostname`).
    public var hostname: String
    public var projectID: String
    public var availabilityZone: String?
    public var launchIndex: Int
    public var vcpus: Int
    public var memoryMB: Int
    /// Root disk size from the flavor; 0 means the image's own virtual size.
    public var rootGB: Int
    public var ephemeralGB: Int
    public var swapMB: Int
    public var image: ImageRef
    /// Raw user data (already base64-decoded).
    public var userData: [UInt8]?
    public var keys: [PublicKey]
    public var metadata: [String: String]
    /// Nova's `network_data.json`, built by the control plane from the ports.
    public var networkData: String?
    public var configDrive: Bool
    public var nics: [VIF]

    public init(uuid: String, name: String, hostname: String, projectID: String, availabilityZone: String? = nil, launchIndex: Int = 0,
                vcpus: Int, memoryMB: Int, rootGB: Int, ephemeralGB: Int = 0, swapMB: Int = 0, image: ImageRef,
                userData: [UInt8]? = nil, keys: [PublicKey] = [], metadata: [String: String] = [:], networkData: String? = nil,
                configDrive: Bool = false, nics: [VIF] = []) {
        (self.uuid, self.name, self.hostname, self.projectID, self.availabilityZone, self.launchIndex) =
            (uuid, name, hostname, projectID, availabilityZone, launchIndex)
        (self.vcpus, self.memoryMB, self.rootGB, self.ephemeralGB, self.swapMB, self.image) = (vcpus, memoryMB, rootGB, ephemeralGB, swapMB, image)
        (self.userData, self.keys, self.metadata, self.networkData, self.configDrive, self.nics) =
            (userData, keys, metadata, networkData, configDrive, nics)
    }
}

/// The image a guest boots from, as the image service describes it.
public struct ImageRef: Sendable, Equatable {
    public var id: String
    /// `qcow2`, `raw`, … (the driver refuses what it cannot boot).
    public var diskFormat: String
    /// The image's MD5 `checksum` and `os_hash_value` (SHA-512), checked after download.
    public var checksum: String?
    public var sha512: String?
    /// UEC-style kernel and ramdisk images: the guest boots with `-kernel`/`-initrd`.
    public var kernelID: String?
    public var ramdiskID: String?
    /// Image properties the driver reads (`hw_disk_bus`, `os_command_line`, …).
    public var properties: [String: String]

    public init(id: String, diskFormat: String, checksum: String? = nil, sha512: String? = nil, kernelID: String? = nil, ramdiskID: String? = nil,
                properties: [String: String] = [:]) {
        (self.id, self.diskFormat, self.checksum, self.sha512, self.kernelID, self.ramdiskID, self.properties) =
            (id, diskFormat, checksum, sha512, kernelID, ramdiskID, properties)
    }
}

public struct PublicKey: Sendable, Equatable {
    public var name: String
    /// `ssh` or `x509`.
    public var type: String
    public var data: String

    public init(name: String, type: String = "ssh", data: String) { (self.name, self.type, self.data) = (name, type, data) }
}

/// A port as the hypervisor plugs it: the network dataplane makes the tap (`tapName`) and
/// wires it before the guest starts; the driver only opens it.
public struct VIF: Sendable, Equatable {
    public var portID: String
    public var networkID: String
    public var macAddress: String
    public var mtu: Int
    public var fixedIPs: [String]

    public init(portID: String, networkID: String, macAddress: String, mtu: Int = 1500, fixedIPs: [String] = []) {
        (self.portID, self.networkID, self.macAddress, self.mtu, self.fixedIPs) = (portID, networkID, macAddress, mtu, fixedIPs)
    }

    /// Neutron's tap name for a port: `tap` and the first 11 characters of its id (15 in all,
    /// the kernel's limit for interface names).
    public var tapName: String { "tap" + portID.prefix(11) }
}

/// Nova's power states (`nova.compute.power_state`), with its numbers.
public enum PowerState: Int64, Sendable {
    case noState = 0, running = 1, paused = 3, shutdown = 4, crashed = 6, suspended = 7
}

/// What a host offers, reported by its agent and turned into placement inventory.
public struct HostResources: Sendable, Equatable {
    public var vcpus: Int64
    public var memoryMB: Int64
    public var diskGB: Int64
    /// `QEMU` or `fake`, as `hypervisor_type` shows it.
    public var hypervisorType: String
    /// Nova's integer form of the version: 7.2.0 → 7002000.
    public var hypervisorVersion: Int64
    public var cpuInfo: [String: String]

    public init(vcpus: Int64, memoryMB: Int64, diskGB: Int64, hypervisorType: String, hypervisorVersion: Int64, cpuInfo: [String: String] = [:]) {
        (self.vcpus, self.memoryMB, self.diskGB, self.hypervisorType, self.hypervisorVersion, self.cpuInfo) =
            (vcpus, memoryMB, diskGB, hypervisorType, hypervisorVersion, cpuInfo)
    }
}

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
    /// Uploads the file at `path` as the data of an existing, `queued` image.
    /// Postcondition: on return the image is `active` with that data.
    func upload(imageID: String, from path: String, diskFormat: String) async throws
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

/// What a driver can do, derived from the protocols it conforms to. The API refuses an action
/// the server's host cannot perform before anything changes (Nova's `capabilities`), and the
/// scheduler sees these as `COMPUTE_*` traits.
public struct DriverCapabilities: Sendable, Equatable, Codable {
    public var pause: Bool
    public var suspend: Bool
    public var snapshot: Bool
    public var rescue: Bool
    public var diagnostics: Bool
    public var liveMigration: Bool
    public var coldMigration: Bool

    public init(pause: Bool = false, suspend: Bool = false, snapshot: Bool = false, rescue: Bool = false, diagnostics: Bool = false,
                liveMigration: Bool = false, coldMigration: Bool = false) {
        (self.pause, self.suspend, self.snapshot, self.rescue, self.diagnostics, self.liveMigration, self.coldMigration) =
            (pause, suspend, snapshot, rescue, diagnostics, liveMigration, coldMigration)
    }

    public init(of driver: any VirtDriver) {
        self.init(pause: driver is any PausingDriver, suspend: driver is any SuspendingDriver, snapshot: driver is any SnapshottingDriver,
                  rescue: driver is any RescuingDriver, diagnostics: driver is any DiagnosingDriver)
    }
}

/// Nova's standard diagnostics (microversion 2.48): counters the driver has, nil where it has none.
public struct GuestDiagnostics: Sendable {
    public struct NIC: Sendable {
        public var macAddress: String?
        public var rxOctets, rxPackets, txOctets, txPackets: Int64?
        public init(macAddress: String?, rxOctets: Int64? = nil, rxPackets: Int64? = nil, txOctets: Int64? = nil, txPackets: Int64? = nil) {
            (self.macAddress, self.rxOctets, self.rxPackets, self.txOctets, self.txPackets) = (macAddress, rxOctets, rxPackets, txOctets, txPackets)
        }
    }
    public struct Disk: Sendable {
        public var readBytes, readRequests, writeBytes, writeRequests: Int64?
        public init(readBytes: Int64? = nil, readRequests: Int64? = nil, writeBytes: Int64? = nil, writeRequests: Int64? = nil) {
            (self.readBytes, self.readRequests, self.writeBytes, self.writeRequests) = (readBytes, readRequests, writeBytes, writeRequests)
        }
    }

    public var state: PowerState
    /// Nova's names: `libvirt` for the KVM/QEMU family (the fake driver reports it too, as Nova's does).
    public var driver: String
    public var hypervisor: String?
    public var hypervisorOS: String?
    public var uptime: Int64?
    /// Nanoseconds of CPU time per vCPU.
    public var cpuTimes: [Int64?]
    public var memoryMaximumMB: Int64?
    public var memoryUsedMB: Int64?
    public var nics: [NIC]
    public var disks: [Disk]

    public init(state: PowerState, driver: String, hypervisor: String?, hypervisorOS: String?, uptime: Int64?, cpuTimes: [Int64?],
                memoryMaximumMB: Int64?, memoryUsedMB: Int64?, nics: [NIC], disks: [Disk]) {
        (self.state, self.driver, self.hypervisor, self.hypervisorOS, self.uptime) = (state, driver, hypervisor, hypervisorOS, uptime)
        (self.cpuTimes, self.memoryMaximumMB, self.memoryUsedMB, self.nics, self.disks) = (cpuTimes, memoryMaximumMB, memoryUsedMB, nics, disks)
    }
}
