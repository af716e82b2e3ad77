import Foundation
import NimbusCore

/// Cold migration and resize to another host, without shared storage and without the
/// controller carrying disk bytes.
///
/// The source shuts the guest down and offers each of its disks' qcow2 files read-only over NBD,
/// from a `qemu-storage-daemon` of the guest's own listening on the host's address
/// (`QEMUDriverConfiguration.hostAddress`) on a port the kernel picks. The daemon is daemonized
/// with its pidfile in the guest's directory (`export.pid`), like the guest's QEMU, so an agent
/// restart does not lose it; `endExport`, `destroy` and starting the guest again stop it.
///
/// The destination fetches the base image into its own cache and copies each disk with
/// `qemu-img convert`, reading the exported file through QEMU's qcow2 driver over NBD with the
/// local base image as its backing: with `-B` only the clusters the overlay holds itself are
/// written, so a guest that wrote little moves little (the base image comes from the image
/// service, not from the other host). The config drive is written again locally.
extension QEMUDriver: ColdMigratingDriver {
    /// A guest's disks, by the names its drives (`-drive id=`) and NBD exports use.
    func disks(of guest: GuestSpec, _ paths: GuestPaths) -> [(name: String, path: String)] {
        var disks = [(name: "root", path: paths.rootDisk)]
        if guest.ephemeralGB > 0 { disks.append((name: "eph0", path: paths.ephemeralDisk)) }
        if guest.swapMB > 0 { disks.append((name: "swap", path: paths.swapDisk)) }
        return disks
    }

    public func exportDisks(_ uuid: String) async throws -> DiskExport {
        let (paths, guest) = try existing(uuid)
        if exportProcess(paths) != nil, let location = try? String(contentsOfFile: paths.exportLocation, encoding: .utf8) {
            return DiskExport(location: location)  // asked again (a redelivered message): the export already offered
        }
        guard !FileManager.default.fileExists(atPath: paths.savedState) else { throw VirtError.invalidState("Instance \(uuid) is suspended.") }
        guard !FileManager.default.fileExists(atPath: paths.rescueImage) else { throw VirtError.invalidState("Instance \(uuid) is rescued.") }
        return try await Reverter.run { reverter in
            if GuestProcess.running(paths) != nil {
                try await powerOff(uuid, timeout: configuration.shutdownTimeout)
                // Undone last: the guest runs again as it was.
                reverter.add { [self] in try? await start(guest, paths) }
            }
            try await stopExport(paths)  // one left without its location file, if any
            reverter.add { [self] in try? await stopExport(paths) }
            let export = try await HostPorts.withFreePort(on: configuration.hostAddress) { port in
                try await startExport(disks(of: guest, paths), paths, port: port)
            }
            try Data(export.location.utf8).write(to: URL(fileURLWithPath: paths.exportLocation), options: .atomic)
            return export
        }
    }

    public func importGuest(_ guest: GuestSpec, from export: DiskExport) async throws {
        let paths = try paths(guest.uuid)
        guard !FileManager.default.fileExists(atPath: paths.directory) else {
            throw VirtError.invalidState("Instance \(guest.uuid) already exists on this host.")
        }
        let sources = try export.disks.map { location -> NBDExportURI in
            guard let source = NBDExportURI(location), ["root", "eph0", "swap"].contains(source.name) else {
                throw VirtError.failed("\(location) is not a disk a QEMU host exports")
            }
            return source
        }
        guard sources.contains(where: { $0.name == "root" }) else { throw VirtError.failed("The export \(export.location) offers no root disk.") }
        try await Reverter.run { reverter in
            try FileManager.default.createDirectory(atPath: paths.directory, withIntermediateDirectories: true)
            reverter.add { try? FileManager.default.removeItem(atPath: paths.directory) }
            try GuestRecord.write(guest, to: paths.spec)
            let image = guest.image
            let base = try await cache.fetch(image.id, diskFormat: image.diskFormat, md5: image.checksum, sha512: image.sha512, images: images)
            let baseFormat = BaseImageCache.cachedFormat(of: image.diskFormat)
            let targets = ["root": paths.rootDisk, "eph0": paths.ephemeralDisk, "swap": paths.swapDisk]
            for source in sources {
                guard let target = targets[source.name] else { continue }
                try await qemuImg.copyQCOW2(from: source, to: target, backing: source.name == "root" ? (base, baseFormat) : nil)
            }
            // The new flavor's sizes (a resize): disks grow, and ones the old flavor lacked are made.
            try await fitDisks(guest, paths, reverter: reverter)
            try writeConfigDrive(guest, paths)
        }
    }

    public func endExport(_ uuid: String) async throws {
        try await stopExport(try paths(uuid))
    }

    // MARK: The export daemon

    /// The pid of the guest's running export daemon, if one runs: a live process of the pidfile
    /// that serves NBD from this guest's directory (a pid since reused does not count).
    func exportProcess(_ paths: GuestPaths) -> pid_t? {
        guard let pid = GuestProcess.readPID(paths.exportPidFile), pid > 0,
              GuestProcess.isLive(pid: pid, arguments: { Self.isExportDaemon($0, of: paths) }) else { return nil }
        return pid
    }

    private static func isExportDaemon(_ arguments: [String], of paths: GuestPaths) -> Bool {
        arguments.contains("--nbd-server") && arguments.contains { $0.contains(paths.directory + "/") }
    }

    /// Starts `qemu-storage-daemon` serving `disks` read-only over NBD on `port` of the host's
    /// address, daemonized with its pidfile in the guest's directory; returns once it listens
    /// (the daemon's first process exits only then), or throws with its stderr.
    private func startExport(_ disks: [(name: String, path: String)], _ paths: GuestPaths, port: Int) async throws -> DiskExport {
        let address = configuration.hostAddress
        var arguments: [String] = []
        for disk in disks {
            // The qcow2 file itself, not the disk it holds: the destination reads it through its
            // own qcow2 driver with its own copy of the base image (see the type's comment).
            arguments += ["--blockdev", "driver=file,node-name=\(disk.name),filename=\(QEMUCommandLine.escaped(disk.path)),read-only=on"]
        }
        arguments += ["--nbd-server", "addr.type=inet,addr.host=\(address),addr.port=\(port)"]
        for disk in disks {
            arguments += ["--export", "type=nbd,id=\(disk.name),node-name=\(disk.name),name=\(disk.name),writable=off"]
        }
        arguments += ["--pidfile", paths.exportPidFile, "--daemonize"]
        let output = try await ProcessCommand.run(storageDaemon, arguments, stderrLog: paths.exportLog)
        guard output.status == 0 else {
            try? await stopExport(paths)
            throw VirtError.failed("qemu-storage-daemon did not start for \(paths.uuid) (status \(output.status)): "
                                   + output.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return DiskExport(disks: disks.map { NBDExportURI(host: address, port: port, name: $0.name).uri })
    }

    /// Stops the guest's export daemon if it runs, and forgets its location. Idempotent.
    func stopExport(_ paths: GuestPaths) async throws {
        try await GuestProcess.kill(pid: exportProcess(paths), pidFile: paths.exportPidFile, what: "The disk export of \(paths.uuid)") { pid in
            GuestProcess.isLive(pid: pid) { Self.isExportDaemon($0, of: paths) }
        }
        try? FileManager.default.removeItem(atPath: paths.exportLocation)
    }
}
