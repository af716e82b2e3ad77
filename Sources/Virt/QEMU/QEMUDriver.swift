import Foundation
import Logging
import NimbusCore

/// Runs guests as daemonized QEMU processes, the way libvirt does, without libvirt.
///
/// The driver keeps no state of its own: each guest is its directory under the instances root
/// (see `GuestPaths`) plus, while it runs, a QEMU process found through the pidfile and
/// controlled over QMP. QEMU is daemonized, so guests outlive the agent; a new driver on the
/// same instances root (a restarted agent) sees the same guests and can control them.
/// Capabilities: pause, suspend, snapshot, diagnostics, rescue (`QEMUDriver+Rescue.swift`), VNC consoles
/// (`QEMUDriver+Console.swift`), resize (`+Resize`), cold migration (`+ColdMigration`) and live
/// migration (`+LiveMigration`); it reports lifecycle events (`QEMUDriver+Lifecycle.swift`).
public final class QEMUDriver: VirtDriver, PausingDriver, SuspendingDriver, SnapshottingDriver, DiagnosingDriver {
    public let name = "qemu"
    public let configuration: QEMUDriverConfiguration
    /// The accelerator guests run with, probed (or forced) at start.
    public let acceleration: Acceleration
    /// `qemu-system-x86_64 --version` in Nova's integer form.
    public let hypervisorVersion: Int64

    let qemu: String
    let qemuImg: QEMUImg
    let storageDaemon: String
    let images: any ImageTransfer
    let configDrive: (any ConfigDriveWriting)?
    let cache: BaseImageCache
    let monitors = MonitorRegistry()
    /// What operators want to know of moves (a live migration's figures).
    let logger: Logger

    /// Finds QEMU and qemu-img, reads QEMU's version and decides the accelerator (probing KVM
    /// unless `configuration.acceleration` forces one). `images` is where base images come
    /// from; `configDrive` writes config drives for guests that ask for one.
    public init(configuration: QEMUDriverConfiguration, images: any ImageTransfer, configDrive: (any ConfigDriveWriting)? = nil,
                logger: Logger = Logger(label: "nimbus.qemu")) async throws {
        self.configuration = configuration
        self.logger = logger
        self.images = images
        self.configDrive = configDrive
        qemu = try ProcessCommand.locate(configuration.qemuBinary)
        qemuImg = QEMUImg(executable: try ProcessCommand.locate(configuration.qemuImgBinary))
        storageDaemon = try ProcessCommand.locate(configuration.storageDaemonBinary)
        guard configuration.instancesPath.utf8.count <= GuestPaths.longestInstancesRoot else {
            throw VirtError.failed("The instances path \(configuration.instancesPath) is longer than \(GuestPaths.longestInstancesRoot) bytes: "
                                   + "its guests' sockets would not fit a unix socket path.")
        }
        try FileManager.default.createDirectory(atPath: configuration.instancesPath, withIntermediateDirectories: true)
        cache = BaseImageCache(directory: (configuration.instancesPath as NSString).appendingPathComponent("_base"), qemuImg: qemuImg)
        let versionText = try await ProcessCommand.check(qemu, ["--version"])
        guard let version = HostInfo.parseVersion(versionText) else { throw VirtError.failed("cannot read QEMU's version from: \(versionText)") }
        hypervisorVersion = version
        if let forced = configuration.acceleration {
            acceleration = forced
        } else {
            acceleration = await AccelerationProbe.run(qemu: qemu, scratchDirectory: configuration.instancesPath, timeout: configuration.probeTimeout)
        }
    }

    func paths(_ uuid: String) throws -> GuestPaths {
        // The uuid becomes a directory name: nothing that could leave the instances root.
        guard !uuid.isEmpty, uuid.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else { throw VirtError.guestNotFound(uuid) }
        return GuestPaths(instancesRoot: configuration.instancesPath, uuid: uuid)
    }

    /// The guest's paths and spec; throws `guestNotFound` when the guest has no directory.
    func existing(_ uuid: String) throws -> (GuestPaths, GuestSpec) {
        let paths = try paths(uuid)
        guard FileManager.default.fileExists(atPath: paths.spec) else { throw VirtError.guestNotFound(uuid) }
        return (paths, try GuestRecord.read(paths.spec))
    }

    func monitor(_ paths: GuestPaths) async throws -> QMPClient {
        try await monitors.client(for: paths, timeout: configuration.monitorTimeout)
    }

    /// Closes this driver's monitor connections, as the agent's process exiting would; the
    /// guests keep running and another driver can take them over.
    public func disconnectMonitors() async { await monitors.closeAll() }

    // MARK: Host

    public func hostResources() async throws -> HostResources {
        var cpuInfo = HostInfo.cpuInfo()
        cpuInfo["acceleration"] = acceleration.rawValue
        return HostResources(vcpus: HostInfo.cpuCount(), memoryMB: HostInfo.memoryMB(), diskGB: HostInfo.diskGB(at: configuration.instancesPath),
                             hypervisorType: "QEMU", hypervisorVersion: hypervisorVersion, cpuInfo: cpuInfo,
                             reservedVCPUs: configuration.reservedVCPUs, reservedMemoryMB: configuration.reservedMemoryMB,
                             reservedDiskGB: HostResources.gigabytes(ceilingOf: configuration.reservedDiskMB))
    }

    /// Removes cached base images that no guest on this host uses (as its image, kernel,
    /// ramdisk or rescue image) and that nobody fetched for `unusedFor`. Returns their ids.
    @discardableResult
    public func sweepBaseImages(unusedFor: Duration) async throws -> [String] {
        var inUse = Set<String>()
        for uuid in guestDirectories() {
            let paths = GuestPaths(instancesRoot: configuration.instancesPath, uuid: uuid)
            let images = [(try? GuestRecord.read(paths.spec))?.image, try? GuestRecord.readImage(paths.rescueImage)].compactMap { $0 }
            for image in images {
                inUse.formUnion([image.id, image.kernelID, image.ramdiskID].compactMap { $0 })
            }
        }
        return await cache.sweep(unusedFor: unusedFor, inUse: inUse)
    }

    // MARK: Guests

    /// Names of the guest directories (everything but the cache and probe scratch space).
    func guestDirectories() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: configuration.instancesPath)) ?? []).filter { !$0.hasPrefix("_") && !$0.hasPrefix(".") }
    }

    public func listGuests() async throws -> [String: PowerState] {
        var guests: [String: PowerState] = [:]
        for uuid in guestDirectories() {
            guard let state = try? await powerState(of: uuid) else { continue }
            guests[uuid] = state
        }
        return guests
    }

    public func powerState(of uuid: String) async throws -> PowerState {
        let (paths, _) = try existing(uuid)
        guard GuestProcess.running(paths) != nil else {
            return FileManager.default.fileExists(atPath: paths.savedState) ? .suspended : .shutdown
        }
        guard let status = try? await monitor(paths).execute("query-status", timeout: configuration.monitorTimeout)["status"]?.stringValue else {
            // QEMU runs but does not answer; it may be exiting this very moment.
            return GuestProcess.running(paths) == nil ? .shutdown : .noState
        }
        return Self.powerState(qemuStatus: status)
    }

    /// Nova's power state for a QEMU run state (`query-status`).
    static func powerState(qemuStatus: String) -> PowerState {
        switch qemuStatus {
        case "running": return .running
        case "shutdown": return .shutdown
        case "guest-panicked", "internal-error", "io-error": return .crashed
        // paused, suspended (guest S3), inmigrate/prelaunch (loading), postmigrate/
        // finish-migrate/save-vm (saving), debug, restore-vm, watchdog…: vCPUs are not running.
        default: return .paused
        }
    }

    public func spawn(_ guest: GuestSpec) async throws {
        let paths = try paths(guest.uuid)
        guard !FileManager.default.fileExists(atPath: paths.directory) else {
            throw VirtError.invalidState("Instance \(guest.uuid) already exists on this host.")
        }
        try await Reverter.run { reverter in
            try FileManager.default.createDirectory(atPath: paths.directory, withIntermediateDirectories: true)
            reverter.add { try? FileManager.default.removeItem(atPath: paths.directory) }
            try GuestRecord.write(guest, to: paths.spec)
            try await createDisks(guest, paths)
            try writeConfigDrive(guest, paths)
            reverter.add { [self] in await stopHard(paths) }
            try await start(guest, paths)
        }
    }

    /// The root overlay on the cached base image, and ephemeral and swap disks when the flavor
    /// has them. Refuses a root disk smaller than the image (Nova's FlavorDiskTooSmall).
    func createDisks(_ guest: GuestSpec, _ paths: GuestPaths) async throws {
        let image = guest.image
        let base = try await cache.fetch(image.id, diskFormat: image.diskFormat, md5: image.checksum, sha512: image.sha512, images: images)
        let baseFormat = BaseImageCache.cachedFormat(of: image.diskFormat)
        let imageSize = try await qemuImg.virtualSize(base, format: baseFormat)
        let rootSize = Int64(guest.rootGB) << 30
        if guest.rootGB > 0 && rootSize < imageSize {
            throw VirtError.failed("Flavor's disk is too small for requested image. Flavor disk is \(rootSize) bytes, image is \(imageSize) bytes.")
        }
        try await qemuImg.createOverlay(paths.rootDisk, backing: base, backingFormat: baseFormat, sizeBytes: guest.rootGB > 0 ? rootSize : nil)
        if guest.ephemeralGB > 0 { try await qemuImg.createBlank(paths.ephemeralDisk, sizeBytes: Int64(guest.ephemeralGB) << 30) }
        if guest.swapMB > 0 { try await qemuImg.createBlank(paths.swapDisk, sizeBytes: Int64(guest.swapMB) << 20) }
    }

    /// The config drive, when the guest asks for one.
    func writeConfigDrive(_ guest: GuestSpec, _ paths: GuestPaths) throws {
        guard guest.configDrive else { return }
        guard let configDrive else { throw VirtError.failed("config drive requested, but this driver has no config drive writer") }
        try configDrive.write(guest, to: paths.configDrive)
    }

    public func destroy(_ uuid: String) async throws {
        let paths = try paths(uuid)
        let guest = try? GuestRecord.read(paths.spec)
        await monitors.drop(uuid)
        try await GuestProcess.kill(paths)
        try await stopExport(paths)
        if FileManager.default.fileExists(atPath: paths.directory) {
            do {
                try FileManager.default.removeItem(atPath: paths.directory)
            } catch {
                throw VirtError.failed("cannot remove \(paths.directory): \(error)")
            }
        }
        if let guest { await cache.touch(guest.image.id) }
    }

    public func consoleOutput(_ uuid: String, lines: Int?) async throws -> String {
        let (paths, _) = try existing(uuid)
        let data = FileManager.default.contents(atPath: paths.consoleLog) ?? Data()
        let text = String(decoding: data, as: UTF8.self)
        guard let lines else { return text }
        // By Character: a serial console ends lines with "\r\n", one Character.
        var all = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        if all.last == "" { all.removeLast() }
        return all.suffix(max(lines, 0)).joined(separator: "\n")
    }
}
