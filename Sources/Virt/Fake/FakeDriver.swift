import Foundation
import NimbusCore
import Synchronization

/// Nova's fake driver: guests are entries in memory, every call succeeds at once, and the host
/// advertises whatever resources it is configured with. For scale tests and fast API tests.
/// It keeps the real contract — a call on a missing guest throws `guestNotFound`, states move
/// as on a hypervisor, moves go through the same export/import and prepare/migrate/finish
/// steps, a snapshot is uploaded through `ImageTransfer` — so the code above it cannot lean
/// on shortcuts.
public final class FakeDriver: PausingDriver, SuspendingDriver, SnapshottingDriver, RescuingDriver, DiagnosingDriver, ResizingDriver,
    ColdMigratingDriver, LiveMigratingDriver, LiveMigrationSteeringDriver, CrashDumpingDriver, LifecycleEventDriver, InterfaceAttachingDriver,
    AdminPasswordDriver {
    struct Guest {
        var spec: GuestSpec
        var state: PowerState
        var console: [String]
        var exported = false
        var adminPassword: String?
    }

    public let name = "fake"
    let resources: HostResources
    private let guests = Mutex<[String: Guest]>([:])
    /// Guest names whose spawn fails, to exercise reschedules and faults.
    private let failingSpawns = Mutex<Set<String>>([])
    /// Ports whose attach or detach fails, to exercise rollbacks.
    private let failingInterfaces = Mutex<Set<String>>([])
    /// Operations made slow (`slowDown`), and how many calls are in their slow part now.
    private let slowness = Mutex<(delays: [String: Duration], underWay: [String: Int])>(([:], [:]))

    private let events = GuestEventChannel()

    /// Live migrations this host sends now, by guest: whether one was forced or cancelled.
    private enum Outgoing { case running, forced, cancelled }
    private let outgoing = Mutex<[String: Outgoing]>([:])

    /// `reserved*`: what the host keeps for itself, as `[DEFAULT] reserved_host_*` say.
    public init(vcpus: Int64 = 8, memoryMB: Int64 = 16384, diskGB: Int64 = 200, reservedVCPUs: Int64 = 0, reservedMemoryMB: Int64 = 0,
                reservedDiskMB: Int64 = 0) {
        resources = HostResources(vcpus: vcpus, memoryMB: memoryMB, diskGB: diskGB, hypervisorType: "fake", hypervisorVersion: 1000,
                                  cpuInfo: ["arch": "x86_64", "vendor": "fake", "model": "fake"], reservedVCPUs: reservedVCPUs,
                                  reservedMemoryMB: reservedMemoryMB, reservedDiskGB: HostResources.gigabytes(ceilingOf: reservedDiskMB))
    }

    public func guestEvents() -> AsyncStream<String> { events.stream() }

    /// The spec a guest was last built or changed with (what its host was told; a config
    /// drive would be written from it).
    public func spec(of uuid: String) -> GuestSpec? { guests.withLock { $0[uuid]?.spec } }

    /// The guest stops by itself, as a real guest that powers itself off or whose hypervisor
    /// process is killed: it is shut down, and with `notify` a lifecycle event says so (without
    /// it only the agent's periodic sync can notice).
    public func simulateShutdown(_ uuid: String, notify: Bool = true) throws {
        try change(uuid, to: .shutdown, log: "shut down by itself")
        if notify { events.send(uuid) }
    }

    /// Makes every later attach of a port with this id or on this network, and every later
    /// detach of a port with this id, fail.
    public func failInterfaces(_ portOrNetwork: String) { failingInterfaces.withLock { _ = $0.insert(portOrNetwork) } }

    /// The password `setAdminPassword` last gave the guest.
    public func adminPassword(of uuid: String) -> String? { guests.withLock { $0[uuid]?.adminPassword } }

    /// Makes every later spawn of a guest with this name fail.
    public func failSpawns(named name: String) { failingSpawns.withLock { _ = $0.insert(name) } }

    /// Makes every later call of `operation` (a method's name: "spawn", "powerOff",
    /// "migrate", …) take `duration` longer, as on a real hypervisor, so tests can see what
    /// runs while it does.
    public func slowDown(_ operation: String, by duration: Duration) {
        slowness.withLock { $0.delays[operation] = duration }
    }

    /// How many calls of `operation` are in their slowed-down part right now.
    public func underWay(_ operation: String) -> Int { slowness.withLock { $0.underWay[operation, default: 0] } }

    /// The delay `slowDown` asked for `operation`, counted in `underWay` while it lasts; it
    /// ends early once `until` holds (a forced or cancelled migration).
    private func lag(_ operation: String, until done: () -> Bool = { false }) async {
        guard let delay = slowness.withLock({ state -> Duration? in
            guard let delay = state.delays[operation] else { return nil }
            state.underWay[operation, default: 0] += 1
            return delay
        }) else { return }
        let end = ContinuousClock.now + delay
        while ContinuousClock.now < end, !done() {
            guard (try? await Task.sleep(for: min(.milliseconds(10), end - .now))) != nil else { break }
        }
        slowness.withLock { $0.underWay[operation, default: 0] -= 1 }
    }

    public func hostResources() async throws -> HostResources { resources }

    public func listGuests() async throws -> [String: PowerState] { guests.withLock { $0.mapValues(\.state) } }

    public func powerState(of uuid: String) async throws -> PowerState { try guest(uuid).state }

    private func guest(_ uuid: String) throws -> Guest {
        guard let guest = guests.withLock({ $0[uuid] }) else { throw VirtError.guestNotFound(uuid) }
        return guest
    }

    /// Moves a guest from one of `allowed` to `state`, noting it on its console.
    private func change(_ uuid: String, from allowed: Set<PowerState>? = nil, to state: PowerState, log: String,
                        _ also: (inout Guest) -> Void = { _ in }) throws {
        try guests.withLock { guests in
            guard var guest = guests[uuid] else { throw VirtError.guestNotFound(uuid) }
            if let allowed, !allowed.contains(guest.state) { throw VirtError.invalidState("Guest \(uuid) is \(guest.state) and cannot be \(log).") }
            guest.state = state
            guest.console.append("[fake] \(log)")
            also(&guest)
            guests[uuid] = guest
        }
    }

    private func add(_ spec: GuestSpec, state: PowerState, console: [String]) throws {
        if failingSpawns.withLock({ $0.contains(spec.name) }) { throw VirtError.failed("Fake spawn failure for \(spec.name).") }
        try guests.withLock { guests in
            guard guests[spec.uuid] == nil else { throw VirtError.invalidState("Guest \(spec.uuid) already exists on this host.") }
            guests[spec.uuid] = Guest(spec: spec, state: state, console: console)
        }
    }

    public func attachInterface(_ uuid: String, _ vif: VIF) async throws {
        await lag("attachInterface")
        if failingInterfaces.withLock({ $0.contains(vif.portID) || $0.contains(vif.networkID) }) { throw VirtError.failed("Fake attach failure for port \(vif.portID).") }
        try change(uuid, to: try guest(uuid).state, log: "NIC \(vif.macAddress) plugged") { guest in
            if !guest.spec.nics.contains(where: { $0.portID == vif.portID }) { guest.spec.nics.append(vif) }
        }
    }

    public func detachInterface(_ uuid: String, portID: String) async throws {
        await lag("detachInterface")
        if failingInterfaces.withLock({ $0.contains(portID) }) { throw VirtError.failed("Fake detach failure for port \(portID).") }
        try change(uuid, to: try guest(uuid).state, log: "NIC of port \(portID) unplugged") { guest in
            guest.spec.nics.removeAll { $0.portID == portID }
        }
    }

    public func setAdminPassword(_ uuid: String, password: String) async throws {
        try change(uuid, from: [.running], to: .running, log: "administrator password set") { $0.adminPassword = password }
    }

    public func spawn(_ guest: GuestSpec) async throws {
        await lag("spawn")
        try add(guest, state: .running, console: ["FAKE CONSOLE OUTPUT", "[fake] booting \(guest.name)", "[fake] kernel up",
                                                  "[fake] network up", "[fake] \(guest.name) login:"])
    }

    public func destroy(_ uuid: String) async throws { _ = guests.withLock { $0.removeValue(forKey: uuid) } }
    public func powerOff(_ uuid: String, timeout: Duration) async throws {
        await lag("powerOff")
        try change(uuid, to: .shutdown, log: "powered off")
    }
    public func powerOn(_ uuid: String) async throws { try change(uuid, to: .running, log: "powered on") }
    public func reboot(_ uuid: String, hard: Bool) async throws { try change(uuid, to: .running, log: hard ? "hard rebooted" : "rebooted") }
    public func pause(_ uuid: String) async throws { try change(uuid, from: [.running], to: .paused, log: "paused") }
    public func unpause(_ uuid: String) async throws { try change(uuid, from: [.paused], to: .running, log: "unpaused") }
    public func suspend(_ uuid: String) async throws { try change(uuid, from: [.running], to: .suspended, log: "suspended") }
    public func resume(_ uuid: String) async throws { try change(uuid, from: [.suspended], to: .running, log: "resumed") }

    /// Uploads an empty but valid qcow2 (a header that qemu-img and the image service accept).
    public func snapshot(_ uuid: String, imageID: String, images: any ImageTransfer) async throws {
        let state = try guest(uuid).state
        let path = NSTemporaryDirectory() + "nimbus-fake-snapshot-\(uuid)-\(Identifiers.hexID())"
        guard FileManager.default.createFile(atPath: path, contents: Data(FakeDriver.qcow2Header(virtualSize: 1 << 30))) else {
            throw VirtError.failed("cannot write \(path)")
        }
        defer { try? FileManager.default.removeItem(atPath: path) }
        await lag("snapshot")
        try await images.upload(imageID: imageID, taking: path, diskFormat: "qcow2")
        try change(uuid, to: state, log: "snapshotted")
    }

    public func rescue(_ guest: GuestSpec, rescueImage: ImageRef) async throws { try change(guest.uuid, to: .running, log: "rescued") }
    public func unrescue(_ uuid: String) async throws { try change(uuid, to: .running, log: "unrescued") }

    public func resize(_ guest: GuestSpec) async throws {
        try change(guest.uuid, to: .shutdown, log: "resized") { $0.spec = guest }
    }

    public func exportDisks(_ uuid: String) async throws -> DiskExport {
        try change(uuid, to: .shutdown, log: "disks exported") { $0.exported = true }
        return DiskExport(location: "fake://\(uuid)")
    }

    public func importGuest(_ guest: GuestSpec, from export: DiskExport) async throws {
        guard export.location == "fake://\(guest.uuid)" else { throw VirtError.failed("unknown export \(export.location)") }
        try add(guest, state: .shutdown, console: ["[fake] arrived by cold migration"])
    }

    public func endExport(_ uuid: String) async throws {
        guests.withLock { guests in guests[uuid]?.exported = false }
    }

    public func prepareIncoming(_ guest: GuestSpec, blockMigration: Bool) async throws -> MigrationEndpoint {
        if (try? self.guest(guest.uuid))?.state != .paused { try add(guest, state: .paused, console: ["[fake] waiting for live migration"]) }
        return MigrationEndpoint(uri: "fake:\(guest.uuid)")
    }

    /// Takes as long as `slowDown("migrate")` says, or until forced to complete or cancelled.
    public func migrate(_ uuid: String, to endpoint: MigrationEndpoint, blockMigration: Bool) async throws {
        outgoing.withLock { $0[uuid] = .running }
        defer { outgoing.withLock { $0[uuid] = nil } }
        await lag("migrate") { outgoing.withLock { $0[uuid] } != .running }
        if outgoing.withLock({ $0[uuid] }) == .cancelled {
            // A guest paused by a force complete runs again, as after any failed migration.
            guests.withLock { guests in if guests[uuid]?.state == .paused { guests[uuid]?.state = .running } }
            throw VirtError.failed("The live migration of \(uuid) was cancelled.")
        }
        guard endpoint.uri == "fake:\(uuid)" else { throw VirtError.failed("unknown endpoint \(endpoint.uri)") }
        try guests.withLock { guests in
            guard guests.removeValue(forKey: uuid) != nil else { throw VirtError.guestNotFound(uuid) }
        }
    }

    public func forceCompleteMigration(_ uuid: String) async throws {
        try steer(uuid, to: .forced)
        try change(uuid, to: .paused, log: "paused to complete its live migration")
    }

    public func cancelMigration(_ uuid: String) async throws { try steer(uuid, to: .cancelled) }

    private func steer(_ uuid: String, to next: Outgoing) throws {
        try outgoing.withLock { outgoing in
            guard outgoing[uuid] == .running || (next == .cancelled && outgoing[uuid] == .forced) else {
                throw VirtError.invalidState("No live migration of instance \(uuid) is under way on this host.")
            }
            outgoing[uuid] = next
        }
    }

    /// Noted on the guest's console, where a kernel would print its panic.
    public func injectNMI(_ uuid: String) async throws {
        try change(uuid, from: [.running, .paused], to: try guest(uuid).state, log: "NMI received")
    }

    public func finishIncoming(_ uuid: String) async throws { try change(uuid, to: .running, log: "arrived by live migration") }

    public func abortIncoming(_ uuid: String) async throws {
        _ = guests.withLock { guests in guests[uuid]?.state == .paused ? guests.removeValue(forKey: uuid) : nil }
    }

    /// Fixed counters, as Nova's fake driver gives, shaped by the guest's flavor and ports.
    public func diagnostics(_ uuid: String) async throws -> GuestDiagnostics {
        let guest = try guest(uuid)
        return GuestDiagnostics(state: guest.state, driver: "libvirt", hypervisor: "fake", hypervisorOS: "linux", uptime: 46664,
                                cpuTimes: Array(repeating: 17_300_000_000, count: max(guest.spec.vcpus, 1)),
                                memoryMaximumMB: Int64(guest.spec.memoryMB), memoryUsedMB: Int64(guest.spec.memoryMB / 2),
                                nics: guest.spec.nics.map { GuestDiagnostics.NIC(macAddress: $0.macAddress, rxOctets: 4408, rxPackets: 65,
                                                                                 txOctets: 1874, txPackets: 20) },
                                disks: [GuestDiagnostics.Disk(readBytes: 262_144, readRequests: 112, writeBytes: 5_778_432, writeRequests: 488)])
    }

    public func consoleOutput(_ uuid: String, lines: Int?) async throws -> String {
        let console = try guest(uuid).console
        return (lines.map { Array(console.suffix(max($0, 0))) } ?? console).joined(separator: "\n")
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

/// A fake host whose driver does only what every driver must (no pause, suspend, snapshot,
/// rescue, diagnostics or moves), to show the API refusing what a host cannot do.
public final class BasicFakeDriver: VirtDriver {
    let inner = FakeDriver()
    public let name = "fake-basic"

    public init() {}

    public func hostResources() async throws -> HostResources { try await inner.hostResources() }
    public func listGuests() async throws -> [String: PowerState] { try await inner.listGuests() }
    public func powerState(of uuid: String) async throws -> PowerState { try await inner.powerState(of: uuid) }
    public func spawn(_ guest: GuestSpec) async throws { try await inner.spawn(guest) }
    public func destroy(_ uuid: String) async throws { try await inner.destroy(uuid) }
    public func powerOff(_ uuid: String, timeout: Duration) async throws { try await inner.powerOff(uuid, timeout: timeout) }
    public func powerOn(_ uuid: String) async throws { try await inner.powerOn(uuid) }
    public func reboot(_ uuid: String, hard: Bool) async throws { try await inner.reboot(uuid, hard: hard) }
    public func consoleOutput(_ uuid: String, lines: Int?) async throws -> String { try await inner.consoleOutput(uuid, lines: lines) }
}
