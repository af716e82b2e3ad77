import Foundation
import NimbusCore

/// Nova's power states (`nova.compute.power_state`), with its numbers.
public enum PowerState: Int64, Sendable {
    case noState = 0, running = 1, paused = 3, shutdown = 4, crashed = 6, suspended = 7
}

/// What a host offers, reported by its agent and turned into placement inventory: the
/// machine's totals, and how much of each the host keeps for itself (`[DEFAULT]
/// reserved_host_cpus`, `reserved_host_memory_mb`, `reserved_host_disk_mb` on the host), which
/// placement's inventory carries as `reserved`, as Nova's compute reports it.
public struct HostResources: Sendable, Equatable {
    public var vcpus: Int64
    public var memoryMB: Int64
    public var diskGB: Int64
    public var reservedVCPUs: Int64
    public var reservedMemoryMB: Int64
    /// Whole GiB: Nova rounds `reserved_host_disk_mb` up to the next GiB.
    public var reservedDiskGB: Int64
    /// `QEMU` or `fake`, as `hypervisor_type` shows it.
    public var hypervisorType: String
    /// Nova's integer form of the version: 7.2.0 → 7002000.
    public var hypervisorVersion: Int64
    public var cpuInfo: [String: String]

    public init(vcpus: Int64, memoryMB: Int64, diskGB: Int64, hypervisorType: String, hypervisorVersion: Int64, cpuInfo: [String: String] = [:],
                reservedVCPUs: Int64 = 0, reservedMemoryMB: Int64 = 0, reservedDiskGB: Int64 = 0) {
        (self.vcpus, self.memoryMB, self.diskGB, self.hypervisorType, self.hypervisorVersion, self.cpuInfo) =
            (vcpus, memoryMB, diskGB, hypervisorType, hypervisorVersion, cpuInfo)
        (self.reservedVCPUs, self.reservedMemoryMB, self.reservedDiskGB) = (reservedVCPUs, reservedMemoryMB, reservedDiskGB)
    }

    /// Nova's conversion of `reserved_host_disk_mb`: whole GiB, rounded up.
    public static func gigabytes(ceilingOf megabytes: Int64) -> Int64 { megabytes <= 0 ? 0 : (megabytes + 1023) / 1024 }
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
