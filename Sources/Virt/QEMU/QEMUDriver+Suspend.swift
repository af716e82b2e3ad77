import Foundation
import NimbusCore

/// Suspend as libvirt's managed save does it: the guest is paused, its RAM and device state are
/// streamed by QEMU's migration code into a file (`state.sav` in the guest's directory), and
/// QEMU exits. Resume starts a new QEMU with `-incoming` reading that file; the guest
/// continues from the instruction it was paused at.
extension QEMUDriver {
    public func suspend(_ uuid: String) async throws {
        let (paths, _) = try existing(uuid)
        guard let pid = GuestProcess.running(paths) else { throw VirtError.invalidState("Instance \(uuid) is not running.") }
        let client = try await monitor(paths)
        let wasRunning = try await client.execute("query-status")["status"]?.stringValue == "running"
        let partial = paths.savedState + ".part"
        do {
            // Paused first, so memory and disks are saved at the same instant.
            try await client.execute("stop")
            // A local file: no reason to hold the stream to the default 128 MiB/s.
            try await client.execute("migrate-set-parameters", arguments: ["max-bandwidth": .int(Int64(1) << 40)])
            try await client.execute("migrate", arguments: ["uri": .string("exec:cat > \(QEMUCommandLine.shellQuoted(partial))")])
            try await waitForMigration(client, timeout: configuration.stateTransferTimeout)
        } catch {
            // Saving failed: the guest carries on as it was; no state file is left.
            _ = try? await client.execute("migrate_cancel")
            if wasRunning { _ = try? await client.execute("cont") }
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
        await quit(paths, pid: pid)
        guard rename(partial, paths.savedState) == 0 else {
            throw VirtError.failed("cannot keep the saved state of \(uuid): \(String(cString: strerror(errno)))")
        }
    }

    public func resume(_ uuid: String) async throws {
        let (paths, guest) = try existing(uuid)
        guard GuestProcess.running(paths) == nil, FileManager.default.fileExists(atPath: paths.savedState) else {
            throw VirtError.invalidState("Instance \(uuid) is not suspended.")
        }
        // On failure `start` leaves no QEMU behind and the state file stays: still suspended.
        try await start(guest, paths, incomingState: paths.savedState)
        do {
            try await monitor(paths).execute("cont")
        } catch {
            await stopHard(paths)
            throw error
        }
        try? FileManager.default.removeItem(atPath: paths.savedState)
    }

    /// Polls `query-migrate` on the sending side until the migration completes and returns its
    /// last answer; throws if it fails or takes longer than `timeout`. `what` names the
    /// migration in errors.
    @discardableResult
    func waitForMigration(_ client: QMPClient, timeout: Duration, what: String = "saving the guest's state",
                          interval: Duration = .milliseconds(50)) async throws -> JSON {
        let deadline = ContinuousClock.now + timeout
        while true {
            let info = try await client.execute("query-migrate")
            switch info["status"]?.stringValue {
            case "completed": return info
            case "failed", "cancelled":
                throw VirtError.failed("\(what) failed: \(info["error-desc"]?.stringValue ?? "migration \(info["status"]?.stringValue ?? "")")")
            default:
                guard ContinuousClock.now < deadline else { throw VirtError.failed("\(what) took longer than \(timeout)") }
                try await Task.sleep(for: interval)
            }
        }
    }

    /// Waits until a QEMU started with `-incoming` has loaded the saved state (its run state
    /// leaves `inmigrate`).
    func waitForIncomingMigration(_ client: QMPClient) async throws {
        let deadline = ContinuousClock.now + configuration.stateTransferTimeout
        while true {
            let status = try await client.execute("query-status")["status"]?.stringValue
            switch status {
            case "inmigrate", "prelaunch": break
            case "paused", "running": return
            default: throw VirtError.failed("loading the saved state left QEMU in state \(status ?? "?")")
            }
            guard ContinuousClock.now < deadline else { throw VirtError.failed("loading the saved state took longer than \(configuration.stateTransferTimeout)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}
