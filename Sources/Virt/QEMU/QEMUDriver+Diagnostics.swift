import Foundation
import NimbusCore
#if canImport(Glibc)
import Glibc
#endif

/// Diagnostics from QMP (`query-cpus-fast`, `query-memory-size-summary`, `query-blockstats`)
/// and from the host's view of the QEMU process and its taps (/proc, /sys/class/net).
extension QEMUDriver {
    public func diagnostics(_ uuid: String) async throws -> GuestDiagnostics {
        let (paths, guest) = try existing(uuid)
        let state = try await powerState(of: uuid)
        let nics = guest.nics.map { Self.nicCounters($0) }
        guard let pid = GuestProcess.running(paths) else {
            return GuestDiagnostics(state: state, driver: "libvirt", hypervisor: hypervisorName, hypervisorOS: "linux", uptime: nil,
                                    cpuTimes: [], memoryMaximumMB: Int64(guest.memoryMB), memoryUsedMB: nil, nics: nics, disks: [])
        }
        let client = try await monitor(paths)
        let ticksPerSecond = Int64(sysconf(Int32(_SC_CLK_TCK)))
        let cpus = try await client.execute("query-cpus-fast").arrayValue ?? []
        let cpuTimes: [Int64?] = cpus.map { cpu in
            guard let thread = cpu["thread-id"]?.intValue, let fields = Self.statFields("/proc/\(pid)/task/\(thread)/stat"),
                  fields.count > 12, let user = Int64(fields[11]), let system = Int64(fields[12]) else { return nil }
            return (user + system) * 1_000_000_000 / ticksPerSecond
        }
        let memory = try? await client.execute("query-memory-size-summary")
        let blockStats = try await client.execute("query-blockstats").arrayValue ?? []
        let disks: [GuestDiagnostics.Disk] = blockStats.compactMap { entry in
            guard let device = entry["device"]?.stringValue, ["root", "eph0", "swap"].contains(device), let stats = entry["stats"] else { return nil }
            return GuestDiagnostics.Disk(readBytes: stats["rd_bytes"]?.intValue, readRequests: stats["rd_operations"]?.intValue,
                                         writeBytes: stats["wr_bytes"]?.intValue, writeRequests: stats["wr_operations"]?.intValue)
        }
        return GuestDiagnostics(state: state, driver: "libvirt", hypervisor: hypervisorName, hypervisorOS: "linux", uptime: Self.uptime(pid: pid),
                                cpuTimes: cpuTimes, memoryMaximumMB: memory?["base-memory"]?.intValue.map { $0 >> 20 } ?? Int64(guest.memoryMB),
                                memoryUsedMB: nil, nics: nics, disks: disks)
    }

    /// Nova's `hypervisor` diagnostic: libvirt's virt type.
    var hypervisorName: String { acceleration == .kvm ? "kvm" : "qemu" }

    /// The fields of a /proc stat line after the command name (field 3 onwards).
    static func statFields(_ path: String) -> [Substring]? {
        guard let stat = try? String(contentsOfFile: path, encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: close)...].split(separator: " ")
    }

    /// Seconds since the QEMU process started (field 22 of its stat, in clock ticks since boot).
    static func uptime(pid: pid_t) -> Int64? {
        guard let fields = statFields("/proc/\(pid)/stat"), fields.count > 19, let started = Int64(fields[19]),
              let uptimeText = try? String(contentsOfFile: "/proc/uptime", encoding: .utf8),
              let systemUptime = Double(uptimeText.split(separator: " ").first ?? "") else { return nil }
        return Int64(systemUptime) - started / Int64(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// The tap's counters seen from the guest: what the tap transmits, the guest receives.
    static func nicCounters(_ vif: VIF) -> GuestDiagnostics.NIC {
        func counter(_ name: String) -> Int64? {
            (try? String(contentsOfFile: "/sys/class/net/\(vif.tapName)/statistics/\(name)", encoding: .utf8))
                .flatMap { Int64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        return GuestDiagnostics.NIC(macAddress: vif.macAddress, rxOctets: counter("tx_bytes"), rxPackets: counter("tx_packets"),
                                    txOctets: counter("rx_bytes"), txPackets: counter("rx_packets"))
    }
}
