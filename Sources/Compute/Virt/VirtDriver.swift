import Foundation
import NimbusCore

/// What a hypervisor driver is told about a server: enough to build, move or change it,
/// nothing that needs the database (the agent that runs the driver never touches it).
public struct GuestSpec: Sendable {
    public var uuid: String
    public var name: String
    public var vcpus: Int64
    public var memoryMB: Int64
    public var diskGB: Int64
    public var imageRef: String
    public var userData: String?
    public var keyData: String?
    public var metadata: [String: String]
    /// The ports to plug, already bound to this host by the network service.
    public var nics: [AttachedNIC]

    public init(uuid: String, name: String, vcpus: Int64, memoryMB: Int64, diskGB: Int64, imageRef: String,
                userData: String? = nil, keyData: String? = nil, metadata: [String: String] = [:], nics: [AttachedNIC] = []) {
        (self.uuid, self.name, self.vcpus, self.memoryMB, self.diskGB, self.imageRef) = (uuid, name, vcpus, memoryMB, diskGB, imageRef)
        (self.userData, self.keyData, self.metadata, self.nics) = (userData, keyData, metadata, nics)
    }
}

/// What a host offers, reported by its agent and turned into placement inventory.
public struct HostResources: Sendable, Equatable {
    public var vcpus: Int64
    public var memoryMB: Int64
    public var diskGB: Int64
    public var hypervisorType: String
    public var hypervisorVersion: Int64
    public var cpuInfo: [String: String]

    public init(vcpus: Int64, memoryMB: Int64, diskGB: Int64, hypervisorType: String, hypervisorVersion: Int64, cpuInfo: [String: String] = [:]) {
        (self.vcpus, self.memoryMB, self.diskGB, self.hypervisorType, self.hypervisorVersion, self.cpuInfo) =
            (vcpus, memoryMB, diskGB, hypervisorType, hypervisorVersion, cpuInfo)
    }
}

/// What a driver can do, declared as data (Nova's `capabilities` dict): the API refuses an
/// action the host's driver cannot perform instead of failing it later, and the scheduler
/// turns these into `COMPUTE_*` traits.
public struct DriverCapabilities: Sendable, Equatable {
    public var supportsLiveMigration = true
    public var supportsPause = true
    public var supportsSuspend = true
    public var supportsRescue = true
    public var supportsSnapshot = true
    public var supportsAttachInterface = true
    public var supportsAttachVolume = true
    public var supportsConsoleOutput = true

    public init() {}

    /// The traits a host with this driver reports to placement.
    public var traits: Set<String> {
        var traits: Set<String> = ["COMPUTE_NODE"]
        if supportsAttachInterface { traits.insert("COMPUTE_NET_ATTACH_INTERFACE") }
        if supportsAttachVolume { traits.insert("COMPUTE_VOLUME_ATTACH") }
        if supportsRescue { traits.insert("COMPUTE_RESCUE_BFV") }
        return traits
    }
}

public struct VirtError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The contract between the compute agent and a hypervisor, after Nova's `ComputeDriver`:
/// each call does one thing to one guest on this host and returns when it is done or throws.
/// The agent owns the state machine around the calls; a driver keeps no server state of its
/// own beyond what the hypervisor holds. The fake driver and the QEMU driver both implement
/// it, so everything above it is tested against the real contract.
public protocol VirtDriver: Sendable {
    var capabilities: DriverCapabilities { get }
    func hostResources() async throws -> HostResources
    /// Guests the hypervisor knows, with their power state (used to reconcile after a restart).
    func listGuests() async throws -> [String: PowerState]

    func spawn(_ guest: GuestSpec) async throws
    func destroy(_ uuid: String) async throws
    func powerOff(_ uuid: String) async throws
    func powerOn(_ uuid: String) async throws
    func reboot(_ uuid: String, hard: Bool) async throws
    func pause(_ uuid: String) async throws
    func unpause(_ uuid: String) async throws
    func suspend(_ uuid: String) async throws
    func resume(_ uuid: String) async throws
    /// Writes the guest's root disk to `path` as qcow2 and returns its size.
    func snapshot(_ uuid: String, to path: String) async throws -> Int64
    func rescue(_ guest: GuestSpec, rescueImage: String) async throws
    func unrescue(_ uuid: String) async throws
    /// Resize on this host, or the receiving half of a resize or cold migration.
    func resize(_ guest: GuestSpec) async throws
    /// Sending half of a live migration; the destination then adopts the guest.
    func liveMigrate(_ uuid: String, to destination: String, blockMigration: Bool) async throws
    func adoptMigratedGuest(_ guest: GuestSpec) async throws
    func consoleOutput(_ uuid: String, lines: Int?) async throws -> String
    func powerState(_ uuid: String) async throws -> PowerState
    /// What the hypervisor measures of a running guest (`GET /servers/{id}/diagnostics`).
    func diagnostics(_ uuid: String) async throws -> GuestDiagnostics
}

/// Nova's standard diagnostics (2.48): counters the driver has, nil where it has none.
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

    /// The 2.48 body, less `config_drive`, which the API knows.
    public var json: JSON {
        let states: [PowerState: String] = [.noState: "pending", .running: "running", .paused: "paused", .shutdown: "shutdown",
                                            .crashed: "crashed", .suspended: "suspended"]
        func int(_ value: Int64?) -> JSON { value.map(JSON.int) ?? .null }
        return ["state": .string(states[state] ?? "pending"), "driver": .string(driver), "hypervisor": .optional(hypervisor),
                "hypervisor_os": .optional(hypervisorOS), "uptime": int(uptime),
                "num_cpus": .int(Int64(cpuTimes.count)), "num_nics": .int(Int64(nics.count)), "num_disks": .int(Int64(disks.count)),
                "memory_details": ["maximum": int(memoryMaximumMB), "used": int(memoryUsedMB)],
                "cpu_details": .array(cpuTimes.enumerated().map { ["id": .int(Int64($0.offset)), "time": int($0.element), "utilisation": .null] }),
                "nic_details": .array(nics.map { nic in
                    ["mac_address": .optional(nic.macAddress), "rx_octets": int(nic.rxOctets), "rx_errors": 0, "rx_drop": 0,
                     "rx_packets": int(nic.rxPackets), "rx_rate": .null, "tx_octets": int(nic.txOctets), "tx_errors": 0, "tx_drop": 0,
                     "tx_packets": int(nic.txPackets), "tx_rate": .null]
                }),
                "disk_details": .array(disks.map { disk in
                    ["read_bytes": int(disk.readBytes), "read_requests": int(disk.readRequests), "write_bytes": int(disk.writeBytes),
                     "write_requests": int(disk.writeRequests), "errors_count": 0]
                })]
    }

    public init(state: PowerState, driver: String, hypervisor: String?, hypervisorOS: String?, uptime: Int64?, cpuTimes: [Int64?],
                memoryMaximumMB: Int64?, memoryUsedMB: Int64?, nics: [NIC], disks: [Disk]) {
        (self.state, self.driver, self.hypervisor, self.hypervisorOS, self.uptime) = (state, driver, hypervisor, hypervisorOS, uptime)
        (self.cpuTimes, self.memoryMaximumMB, self.memoryUsedMB, self.nics, self.disks) = (cpuTimes, memoryMaximumMB, memoryUsedMB, nics, disks)
    }
}
