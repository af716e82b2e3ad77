import Foundation
import NimbusCore

extension QEMUDriver {
    /// Starts QEMU for a guest whose disks exist, and returns once its monitor answers.
    /// `incomingState` loads a suspended guest's saved state instead of booting; the guest is
    /// then paused when this returns (it was saved paused). `deferredIncoming` starts a live
    /// migration's destination, which returns waiting (`inmigrate`) for `migrate-incoming`.
    /// Throws with QEMU's stderr when it does not start; on throw no QEMU runs for the guest.
    func start(_ guest: GuestSpec, _ paths: GuestPaths, incomingState: String? = nil, deferredIncoming: Bool = false) async throws {
        // A rescued guest boots the rescue image (and its kernel) until it is unrescued.
        let rescueImage = FileManager.default.fileExists(atPath: paths.rescueImage) ? try GuestRecord.readImage(paths.rescueImage) : nil
        let bootImage = rescueImage ?? guest.image
        let kernel = try await bootFile(bootImage.kernelID)
        let ramdisk = try await bootFile(bootImage.ramdiskID)
        let launch = QEMULaunch(guest: guest, paths: paths, acceleration: acceleration, tcgTranslationCacheMB: configuration.tcgTranslationCacheMB,
                                kernel: kernel, ramdisk: ramdisk, incomingState: incomingState, deferredIncoming: deferredIncoming,
                                rescueDisk: rescueImage == nil ? nil : paths.rescueDisk, vncListen: configuration.vncListen)
        let arguments = try QEMUCommandLine.arguments(launch)
        await monitors.drop(guest.uuid)
        // With -daemonize, QEMU's first process exits once the guest is set up (status 0), or
        // with an error before that; the daemon carries on alone.
        let output = try await ProcessCommand.run(qemu, arguments, stderrLog: paths.qemuLog)
        guard output.status == 0 else {
            await stopHard(paths)
            throw VirtError.failed("QEMU did not start for \(guest.uuid) (status \(output.status)): \(output.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        do {
            let client = try await monitor(paths)
            if let _ = incomingState {
                try await waitForIncomingMigration(client)
            } else {
                let status = try await client.execute("query-status")["status"]?.stringValue
                let expected = deferredIncoming ? "inmigrate" : "running"
                guard status == expected else { throw VirtError.failed("QEMU for \(guest.uuid) started in state \(status ?? "?")") }
            }
        } catch {
            await stopHard(paths)
            throw error
        }
    }

    /// The cached kernel or ramdisk for a UEC-style image (fetched if the cache lost it).
    private func bootFile(_ imageID: String?) async throws -> String? {
        guard let imageID else { return nil }
        return try await cache.fetch(imageID, diskFormat: nil, md5: nil, sha512: nil, images: images)
    }

    /// Ends the guest's QEMU at once (SIGKILL) if it runs, and forgets its monitor.
    func stopHard(_ paths: GuestPaths) async {
        await monitors.drop(paths.uuid)
        try? await GuestProcess.kill(paths)
    }

    /// Stops a running QEMU: `quit` over QMP (QEMU flushes its disks and exits), SIGKILL if it
    /// has not exited within a few seconds.
    func quit(_ paths: GuestPaths, pid: pid_t) async {
        await monitors.expectExit(paths.uuid)
        if let client = try? await monitor(paths) { _ = try? await client.execute("quit", timeout: .seconds(5)) }
        if !(await GuestProcess.waitForExit(paths, pid: pid, timeout: .seconds(5))) { await stopHard(paths) }
        await monitors.drop(paths.uuid)
        try? FileManager.default.removeItem(atPath: paths.pidFile)
    }

    /// How often the power button is pressed again while a guest has not shut down (Nova's
    /// libvirt driver retries its shutdown request the same way, every `retry_interval`).
    static let powerButtonRetry: Duration = .seconds(10)

    /// ACPI power button (`system_powerdown`, pressed again every `powerButtonRetry`: a guest
    /// that was just finishing its boot may miss a press), then waits up to `timeout` for the
    /// guest to shut down (QEMU exits when it does, closing the monitor); stops it hard afterwards.
    public func powerOff(_ uuid: String, timeout: Duration) async throws {
        let (paths, _) = try existing(uuid)
        guard let pid = GuestProcess.running(paths) else { return }
        let client = try await monitor(paths)
        // Asked for (a stop, or a move or resize stopping the guest): not the guest powering
        // itself off, so no lifecycle event.
        await monitors.expectExit(uuid)
        do {
            let deadline = ContinuousClock.now + timeout
            try await client.execute("system_powerdown")
            while true {
                do {
                    try await client.waitUntilClosed(timeout: min(Self.powerButtonRetry, deadline - .now))
                    break
                } catch QMPError.timedOut where ContinuousClock.now < deadline {
                    try await client.execute("system_powerdown")
                }
            }
            // The monitor closes a moment before the process is gone.
            if await GuestProcess.waitForExit(paths, pid: pid, timeout: .seconds(5)) {
                await monitors.drop(uuid)
                try? FileManager.default.removeItem(atPath: paths.pidFile)
                return
            }
        } catch QMPError.timedOut {
            // The guest did not answer the power button (no ACPI handling, or paused).
        } catch QMPError.disconnected {
            // QEMU went away under the command: it is exiting.
        } catch {
            await monitors.exitNoLongerExpected(uuid)
            throw error
        }
        await quit(paths, pid: pid)
    }

    public func powerOn(_ uuid: String) async throws {
        let (paths, guest) = try existing(uuid)
        guard GuestProcess.running(paths) == nil else { return }
        // Disks offered for a cold migration stop being offered once the guest writes to them again.
        try await stopExport(paths)
        if FileManager.default.fileExists(atPath: paths.savedState) {
            // As libvirt starts a domain with a managed save image: from where it was saved.
            try await resume(uuid)
            return
        }
        try await start(guest, paths)
    }

    public func reboot(_ uuid: String, hard: Bool) async throws {
        let (paths, guest) = try existing(uuid)
        guard GuestProcess.running(paths) != nil else {
            try await powerOn(uuid)
            return
        }
        if hard {
            let client = try await monitor(paths)
            try await client.execute("system_reset")
            if try await client.execute("query-status")["status"]?.stringValue != "running" { try await client.execute("cont") }
        } else {
            try await powerOff(uuid, timeout: configuration.shutdownTimeout)
            try await start(guest, paths)
        }
    }

    public func pause(_ uuid: String) async throws {
        let client = try await runningMonitor(uuid)
        try await client.execute("stop")
    }

    public func unpause(_ uuid: String) async throws {
        let client = try await runningMonitor(uuid)
        try await client.execute("cont")
    }

    /// The monitor of a guest whose QEMU runs; `invalidState` when it does not.
    func runningMonitor(_ uuid: String) async throws -> QMPClient {
        let (paths, _) = try existing(uuid)
        guard GuestProcess.running(paths) != nil else { throw VirtError.invalidState("Instance \(uuid) is not running.") }
        return try await monitor(paths)
    }
}
