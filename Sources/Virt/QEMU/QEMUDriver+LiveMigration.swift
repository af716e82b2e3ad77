import Foundation
import NimbusCore

/// Live migration between two QEMU hosts that share no storage, the way libvirt does a block
/// migration over NBD on QEMU 7.2:
///
/// 1. Destination (`prepareIncoming`): the guest's directory with fresh disks — a root overlay
///    on its own copy of the base image, of the same size, and blank ephemeral and swap disks —
///    and its QEMU started with `-incoming defer`. That QEMU serves the disks writable over NBD
///    (`nbd-server-start`, `block-export-add`) and listens for the migration stream
///    (`migrate-incoming tcp:…`), both on the host's address on ports the kernel picks.
/// 2. Source (`migrate`): each disk is mirrored into its NBD export (`blockdev-mirror`,
///    `sync: top` — the destination has the base image — and `copy-mode: write-blocking`, so
///    once the mirror is ready every guest write reaches both sides before it completes). Once
///    every mirror is ready, `migrate` sends RAM and device state; the guest pauses only for
///    the last round. With QEMU's `return-path` the source hears whether the destination
///    loaded the state: if not, the migration fails and the guest carries on at the source.
///    Afterwards the mirrors are ended (`block-job-cancel` of a ready mirror leaves the copy
///    complete) and the source's guest is destroyed.
/// 3. Destination (`finishIncoming`): the NBD server stops. The destination QEMU starts the
///    guest by itself the moment the stream is complete (it runs without `-S`): waiting for the
///    agents and the controller to relay "go" would add their round trip to the downtime. That
///    is safe because the disks are already in step (write-blocking mirror, guest stopped and
///    drained at the end of the migration). A guest paused at the source arrives paused (QEMU
///    carries the run state), as in Nova.
///
/// The disks always travel, whatever `blockMigration` says: a QEMU host keeps its guests'
/// disks in its own instances directory, which no other host opens.
extension QEMUDriver: LiveMigratingDriver {
    static func migrationNode(_ disk: String) -> String { "nimbus-migrate-\(disk)" }

    public func prepareIncoming(_ guest: GuestSpec, blockMigration: Bool) async throws -> MigrationEndpoint {
        let paths = try paths(guest.uuid)
        if FileManager.default.fileExists(atPath: paths.directory) {
            guard FileManager.default.fileExists(atPath: paths.incomingEndpoint) else {
                throw VirtError.invalidState("Instance \(guest.uuid) already exists on this host.")
            }
            // Asked again (a redelivered message): the guest already waiting answers the same.
            if GuestProcess.running(paths) != nil, let uri = try? String(contentsOfFile: paths.incomingEndpoint, encoding: .utf8), !uri.isEmpty {
                return MigrationEndpoint(uri: uri)
            }
            try await destroy(guest.uuid)  // half made when the agent stopped: made again
        }
        let address = configuration.hostAddress
        return try await Reverter.run { reverter in
            try FileManager.default.createDirectory(atPath: paths.directory, withIntermediateDirectories: true)
            reverter.add { try? FileManager.default.removeItem(atPath: paths.directory) }
            // Marked incoming first, so that whatever an interruption leaves is known to be
            // removable (`abortIncoming`, or a repeated prepare).
            try Data().write(to: URL(fileURLWithPath: paths.incomingEndpoint))
            try GuestRecord.write(guest, to: paths.spec)
            try await createDisks(guest, paths)
            try writeConfigDrive(guest, paths)
            reverter.add { [self] in await stopHard(paths) }
            try await start(guest, paths, deferredIncoming: true)
            let client = try await monitor(paths)
            // Both sides must enable it: the destination then tells the source whether it
            // loaded the state.
            try await client.execute("migrate-set-capabilities", arguments: ["capabilities": [["capability": "return-path", "state": true]]])
            let nodes = try await blockNodes(client)
            let nbdPort = try await HostPorts.withFreePort(on: address) { port in
                try await client.execute("nbd-server-start", arguments: [
                    "addr": ["type": "inet", "data": ["host": .string(address), "port": .string(String(port))]],
                ])
                return port
            }
            var disks: [String] = []
            for disk in self.disks(of: guest, paths) {
                guard let node = nodes[disk.name] else { throw VirtError.failed("QEMU for \(guest.uuid) has no drive \(disk.name)") }
                try await client.execute("block-export-add", arguments: [
                    "type": "nbd", "id": .string(disk.name), "node-name": .string(node), "name": .string(disk.name), "writable": true,
                ])
                disks.append(NBDExportURI(host: address, port: nbdPort, name: disk.name).uri)
            }
            let stream = try await HostPorts.withFreePort(on: address) { port in
                let uri = "tcp:\(HostPorts.uriHost(address)):\(port)"
                try await client.execute("migrate-incoming", arguments: ["uri": .string(uri)])
                return uri
            }
            let endpoint = MigrationEndpoint(stream: stream, disks: disks)
            try Data(endpoint.uri.utf8).write(to: URL(fileURLWithPath: paths.incomingEndpoint), options: .atomic)
            return endpoint
        }
    }

    public func migrate(_ uuid: String, to endpoint: MigrationEndpoint, blockMigration: Bool) async throws {
        _ = try await liveMigrate(uuid, to: endpoint)
    }

    /// What QEMU measured of a completed live migration (`query-migrate`).
    struct MigrationStatistics: Sendable {
        /// Copying the disks until every mirror was ready, before the stream started.
        var diskCopy: Duration
        /// From the start of the stream to the guest running at the destination.
        var total: Duration
        /// How long the guest was stopped.
        var downtime: Duration
        var ramTransferredBytes: Int64
    }

    /// `migrate`, returning QEMU's figures (the tests and the benchmark read them).
    func liveMigrate(_ uuid: String, to endpoint: MigrationEndpoint) async throws -> MigrationStatistics {
        let (paths, guest) = try existing(uuid)
        guard GuestProcess.running(paths) != nil else { throw VirtError.invalidState("Instance \(uuid) is not running.") }
        let client = try await monitor(paths)
        let deadline = ContinuousClock.now + configuration.migrationTimeout
        let what = "The live migration of \(uuid)"
        let disks = self.disks(of: guest, paths).map(\.name)

        // A migration an earlier call started (the agent restarted meanwhile) goes on in QEMU;
        // it is waited for, or, when it already completed, only the clean-up is left.
        let earlier = try await client.execute("query-migrate")["status"]?.stringValue
        if let earlier, !["none", "completed", "failed", "cancelled"].contains(earlier) {
            _ = try? await waitForMigration(client, timeout: deadline - .now, what: what)
        }
        let status = try await client.execute("query-status")["status"]?.stringValue
        if status == "postmigrate" {
            let info = try await client.execute("query-migrate")
            if info["status"]?.stringValue == "completed" { return await leaveSource(uuid, client, disks: disks, info: info, diskCopy: .zero) }
        }

        let targets = try endpoint.disks.map { uri -> NBDExportURI in
            guard let target = NBDExportURI(uri) else { throw VirtError.failed("\(uri) is not an NBD export") }
            return target
        }
        guard endpoint.stream.hasPrefix("tcp:") else { throw VirtError.failed("\(endpoint.stream) is not a migration stream this host can send to") }
        guard targets.map(\.name).sorted() == disks.sorted() else {
            throw VirtError.failed("The destination takes the disks \(targets.map(\.name)), but \(uuid) has \(disks).")
        }
        let wasRunning = status == "running"
        // Marks the migration under way for `forceCompleteMigration` and `cancelMigration`.
        try? FileManager.default.removeItem(atPath: paths.migrationCancelled)
        try Data().write(to: URL(fileURLWithPath: paths.outgoingMigration))
        defer {
            try? FileManager.default.removeItem(atPath: paths.outgoingMigration)
            try? FileManager.default.removeItem(atPath: paths.migrationCancelled)
        }
        do {
            try await client.execute("migrate-set-capabilities", arguments: ["capabilities": [["capability": "return-path", "state": true]]])
            try await client.execute("migrate-set-parameters", arguments: [
                "max-bandwidth": .int(configuration.migrationMaxBandwidthMiBps << 20), "downtime-limit": .int(configuration.migrationDowntimeLimitMS),
            ])
            for target in targets {
                try await client.execute("blockdev-add", arguments: [
                    "driver": "nbd", "node-name": .string(Self.migrationNode(target.name)), "server": target.server, "export": .string(target.name),
                ])
                try await client.execute("blockdev-mirror", arguments: [
                    "job-id": .string(Self.migrationNode(target.name)), "device": .string(target.name), "target": .string(Self.migrationNode(target.name)),
                    "sync": "top", "copy-mode": "write-blocking",
                ])
            }
            let copyStart = ContinuousClock.now
            try await waitForMirrors(client, paths, disks: disks, deadline: deadline)
            let diskCopy = ContinuousClock.now - copyStart
            try checkNotCancelled(paths)
            try await client.execute("migrate", arguments: ["uri": .string(endpoint.stream)])
            let info = try await waitForMigration(client, timeout: deadline - .now, what: what, interval: .milliseconds(10))
            return await leaveSource(uuid, client, disks: disks, info: info, diskCopy: diskCopy)
        } catch {
            // The guest carries on here as it was; the destination is told to let go (abortIncoming).
            _ = try? await client.execute("migrate_cancel")
            await endMirrors(client, disks: disks, force: true)
            if wasRunning, (try? await client.execute("query-status")["status"]?.stringValue) != "running" {
                _ = try? await client.execute("cont")
            }
            throw error
        }
    }

    /// After a completed migration the guest runs at the destination: the mirrors end (a
    /// ready mirror cancelled leaves its copy complete), and the guest is destroyed here. Never
    /// throws: failing now would have the destination's copy, the only running one, aborted.
    private func leaveSource(_ uuid: String, _ client: QMPClient, disks: [String], info: JSON, diskCopy: Duration) async -> MigrationStatistics {
        await endMirrors(client, disks: disks, force: false)
        do {
            try await destroy(uuid)
        } catch {
            logger.error("live migration of \(uuid): the guest runs at the destination, but its copy here was not removed: \(error)")
        }
        let statistics = MigrationStatistics(diskCopy: diskCopy, total: .milliseconds(info["total-time"]?.intValue ?? 0),
                                             downtime: .milliseconds(info["downtime"]?.intValue ?? 0),
                                             ramTransferredBytes: info["ram"]?["transferred"]?.intValue ?? 0)
        logger.info("""
            live migration of \(uuid): disks copied in \(statistics.diskCopy), memory in \(statistics.total), \
            downtime \(statistics.downtime), \(statistics.ramTransferredBytes >> 20) MiB of RAM sent
            """)
        return statistics
    }

    /// Waits until every disk's mirror is ready (its copy caught up with the guest); throws if
    /// a mirror fails or the deadline passes.
    private func waitForMirrors(_ client: QMPClient, _ paths: GuestPaths, disks: [String], deadline: ContinuousClock.Instant) async throws {
        while true {
            try checkNotCancelled(paths)
            let jobs = try await client.execute("query-block-jobs").arrayValue ?? []
            var ready = 0
            for disk in disks {
                guard let job = jobs.first(where: { $0["device"]?.stringValue == Self.migrationNode(disk) }) else {
                    throw VirtError.failed("copying disk \(disk) to the destination stopped")
                }
                if job["io-status"]?.stringValue.map({ $0 != "ok" }) == true || job["error"] != nil {
                    throw VirtError.failed("copying disk \(disk) to the destination failed: \(job["error"]?.stringValue ?? job["io-status"]?.stringValue ?? "")")
                }
                if job["ready"]?.boolValue == true { ready += 1 }
            }
            if ready == disks.count { return }
            guard ContinuousClock.now < deadline else { throw VirtError.failed("copying the disks to the destination took longer than \(configuration.migrationTimeout)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Ends the disks' mirror jobs and removes their NBD nodes. `force` abandons the copy (a
    /// failed migration); otherwise a ready mirror first writes what is left (none is, with
    /// write-blocking and the guest stopped).
    private func endMirrors(_ client: QMPClient, disks: [String], force: Bool) async {
        for disk in disks {
            _ = try? await client.execute("block-job-cancel", arguments: ["device": .string(Self.migrationNode(disk)), "force": .bool(force)])
        }
        let deadline = ContinuousClock.now + configuration.monitorTimeout
        while ContinuousClock.now < deadline {
            let jobs = (try? await client.execute("query-block-jobs").arrayValue) ?? []
            if !jobs.contains(where: { job in disks.contains { job["device"]?.stringValue == Self.migrationNode($0) } }) { break }
            try? await Task.sleep(for: .milliseconds(20))
        }
        for disk in disks {
            _ = try? await client.execute("blockdev-del", arguments: ["node-name": .string(Self.migrationNode(disk))])
        }
    }

    public func finishIncoming(_ uuid: String) async throws {
        let (paths, _) = try existing(uuid)
        guard GuestProcess.running(paths) != nil else { throw VirtError.failed("Instance \(uuid) has no running QEMU to take over.") }
        let client = try await monitor(paths)
        let deadline = ContinuousClock.now + configuration.monitorTimeout
        var status = try await client.execute("query-status")["status"]?.stringValue
        // The source reports success only once the destination confirmed (return-path), so
        // the stream is complete; the run state follows a moment later.
        while status == "inmigrate" && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            status = try await client.execute("query-status")["status"]?.stringValue
        }
        guard status == "running" || status == "paused" else {
            throw VirtError.failed("Instance \(uuid) is \(status ?? "?") after its live migration, not running.")
        }
        if FileManager.default.fileExists(atPath: paths.incomingEndpoint) {
            do {
                try await client.execute("nbd-server-stop")
            } catch QMPError.commandFailed {
                // Not serving (a repeated call after an interruption).
            }
            try FileManager.default.removeItem(atPath: paths.incomingEndpoint)
        }
    }

    public func abortIncoming(_ uuid: String) async throws {
        let paths = try paths(uuid)
        // Only a guest still waiting for its state is removed: one that arrived (or one this
        // host ran all along) is this host's guest.
        guard FileManager.default.fileExists(atPath: paths.incomingEndpoint) else { return }
        try await destroy(uuid)
    }

    /// Each drive's top block node (`query-block`), by drive id.
    private func blockNodes(_ client: QMPClient) async throws -> [String: String] {
        let devices = try await client.execute("query-block").arrayValue ?? []
        return Dictionary(devices.compactMap { device in
            guard let name = device["device"]?.stringValue, let node = device["inserted"]?["node-name"]?.stringValue else { return nil }
            return (name, node)
        }, uniquingKeysWith: { first, _ in first })
    }
}
