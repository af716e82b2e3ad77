import Foundation
import NimbusCore

/// Nova's fake driver: guests are entries in memory, every call succeeds at once, and the host
/// advertises whatever resources it is configured with. For scale tests and fast API tests;
/// it keeps the real driver contract (a call on a missing guest fails, states move as on a
/// hypervisor) so the code above it cannot lean on shortcuts.
public final class FakeDriver: VirtDriver, @unchecked Sendable {
    let resources: HostResources
    public let capabilities: DriverCapabilities
    private let lock = NSLock()
    private var guests: [String: (spec: GuestSpec, state: PowerState, console: [String])] = [:]
    /// Guest names whose spawn fails, to exercise reschedules and faults.
    private var failingSpawns: Set<String> = []

    public init(vcpus: Int64 = 8, memoryMB: Int64 = 16384, diskGB: Int64 = 200, capabilities: DriverCapabilities = DriverCapabilities()) {
        resources = HostResources(vcpus: vcpus, memoryMB: memoryMB, diskGB: diskGB, hypervisorType: "fake", hypervisorVersion: 1000,
                                  cpuInfo: ["arch": "x86_64", "vendor": "fake", "model": "fake"])
        self.capabilities = capabilities
    }

    /// Makes every later spawn of a guest with this name fail.
    public func failSpawns(named name: String) { lock.withLock { _ = failingSpawns.insert(name) } }

    public func hostResources() async throws -> HostResources { resources }

    public func listGuests() async throws -> [String: PowerState] { lock.withLock { guests.mapValues(\.state) } }

    private func change(_ uuid: String, from allowed: Set<PowerState>? = nil, to state: PowerState, log: String) throws {
        try lock.withLock {
            guard var guest = guests[uuid] else { throw VirtError("Instance \(uuid) could not be found on this host.") }
            if let allowed, !allowed.contains(guest.state) {
                throw VirtError("Guest \(uuid) is \(guest.state) and cannot be \(log).")
            }
            guest.state = state
            guest.console.append("[fake] \(log)")
            guests[uuid] = guest
        }
    }

    public func spawn(_ guest: GuestSpec) async throws {
        try lock.withLock {
            if failingSpawns.contains(guest.name) { throw VirtError("Fake spawn failure for \(guest.name).") }
            guard guests[guest.uuid] == nil else { throw VirtError("Guest \(guest.uuid) already exists on this host.") }
            guests[guest.uuid] = (guest, .running, ["FAKE CONSOLE OUTPUT", "[fake] booting \(guest.name)", "[fake] kernel up",
                                                     "[fake] network up", "[fake] \(guest.name) login:"])
        }
    }

    public func destroy(_ uuid: String) async throws { lock.withLock { _ = guests.removeValue(forKey: uuid) } }
    public func powerOff(_ uuid: String) async throws { try change(uuid, to: .shutdown, log: "powered off") }
    public func powerOn(_ uuid: String) async throws { try change(uuid, to: .running, log: "powered on") }
    public func reboot(_ uuid: String, hard: Bool) async throws { try change(uuid, to: .running, log: hard ? "hard rebooted" : "rebooted") }
    public func pause(_ uuid: String) async throws { try change(uuid, from: [.running], to: .paused, log: "paused") }
    public func unpause(_ uuid: String) async throws { try change(uuid, from: [.paused], to: .running, log: "unpaused") }
    public func suspend(_ uuid: String) async throws { try change(uuid, from: [.running], to: .suspended, log: "suspended") }
    public func resume(_ uuid: String) async throws { try change(uuid, from: [.suspended], to: .running, log: "resumed") }

    public func snapshot(_ uuid: String, to path: String) async throws -> Int64 {
        try change(uuid, to: try await powerState(uuid), log: "snapshotted")
        // An empty but valid disk: a qcow2 header that qemu-img and the image service accept.
        let header = FakeDriver.qcow2Header(virtualSize: 1 << 30)
        guard FileManager.default.createFile(atPath: path, contents: Data(header)) else { throw VirtError("cannot write \(path)") }
        return Int64(header.count)
    }

    public func rescue(_ guest: GuestSpec, rescueImage: String) async throws { try change(guest.uuid, to: .running, log: "rescued") }
    public func unrescue(_ uuid: String) async throws { try change(uuid, to: .running, log: "unrescued") }

    public func resize(_ guest: GuestSpec) async throws {
        lock.withLock {
            let state = guests[guest.uuid]?.state ?? .running
            guests[guest.uuid] = (guest, state, (guests[guest.uuid]?.console ?? []) + ["[fake] resized"])
        }
    }

    public func liveMigrate(_ uuid: String, to destination: String, blockMigration: Bool) async throws {
        try lock.withLock {
            guard guests.removeValue(forKey: uuid) != nil else { throw VirtError("Instance \(uuid) could not be found on this host.") }
        }
    }

    public func adoptMigratedGuest(_ guest: GuestSpec) async throws {
        lock.withLock { guests[guest.uuid] = (guest, .running, ["[fake] arrived by live migration"]) }
    }

    /// Fixed counters, as Nova's fake driver gives, shaped by the guest's flavor and ports.
    public func diagnostics(_ uuid: String) async throws -> GuestDiagnostics {
        try lock.withLock {
            guard let guest = guests[uuid] else { throw VirtError("Instance \(uuid) could not be found on this host.") }
            return GuestDiagnostics(state: guest.state, driver: "libvirt", hypervisor: "fake", hypervisorOS: "linux", uptime: 46664,
                                    cpuTimes: Array(repeating: 17_300_000_000, count: Int(max(guest.spec.vcpus, 1))),
                                    memoryMaximumMB: guest.spec.memoryMB, memoryUsedMB: guest.spec.memoryMB / 2,
                                    nics: guest.spec.nics.map { GuestDiagnostics.NIC(macAddress: $0.macAddress, rxOctets: 4408, rxPackets: 65,
                                                                                     txOctets: 1874, txPackets: 20) },
                                    disks: [GuestDiagnostics.Disk(readBytes: 262_144, readRequests: 112, writeBytes: 5_778_432, writeRequests: 488)])
        }
    }

    public func consoleOutput(_ uuid: String, lines: Int?) async throws -> String {
        try lock.withLock {
            guard let guest = guests[uuid] else { throw VirtError("Instance \(uuid) could not be found on this host.") }
            let shown = lines.map { Array(guest.console.suffix($0)) } ?? guest.console
            return shown.joined(separator: "\n")
        }
    }

    public func powerState(_ uuid: String) async throws -> PowerState {
        try lock.withLock {
            guard let guest = guests[uuid] else { throw VirtError("Instance \(uuid) could not be found on this host.") }
            return guest.state
        }
    }

    /// A valid, empty qcow2 v3 header: what fake snapshots contain (tests boot from it too).
    public static func qcow2Header(virtualSize: UInt64) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 512)
        func put(_ value: UInt64, at offset: Int, width: Int) {
            for i in 0..<width { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> UInt64(8 * (width - 1 - i))) }
        }
        bytes[0...3] = [0x51, 0x46, 0x49, 0xFB]
        put(3, at: 4, width: 4)
        put(16, at: 20, width: 4)
        put(virtualSize, at: 24, width: 8)
        put(104, at: 100, width: 4)
        return bytes
    }
}
