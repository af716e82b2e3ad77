import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Finding and ending a guest's daemonized processes by their pidfiles: its QEMU, and while a
/// cold migration offers its disks, the `qemu-storage-daemon` serving them.
///
/// Both are daemonized, so neither is the agent's child: they outlive the agent, and nothing but
/// the pidfile says which process they are. A pid in a stale pidfile may since have been reused
/// by an unrelated process, so a pid only counts if the process is alive (not a zombie) and its
/// command line is the one expected (QEMU's names the guest's uuid, `-uuid <uuid>`).
enum GuestProcess {
    /// The pid written in `pidFile`, if it holds one.
    static func readPID(_ pidFile: String) -> pid_t? {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8) else { return nil }
        return pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The pid of the guest's running QEMU, or nil when none runs (no pidfile, a dead or
    /// zombie process, or a pid now used by another program).
    static func running(_ paths: GuestPaths) -> pid_t? {
        guard let pid = readPID(paths.pidFile), pid > 0, isQEMU(pid: pid, argument: paths.uuid) else { return nil }
        return pid
    }

    /// Whether `pid` is a live process with `argument` (the guest's uuid) among its arguments.
    static func isQEMU(pid: pid_t, argument: String) -> Bool {
        isLive(pid: pid) { $0.contains(argument) }
    }

    /// Whether `pid` is a live process whose arguments (`argv[0]` included) satisfy `matches`.
    static func isLive(pid: pid_t, arguments matches: ([String]) -> Bool) -> Bool {
        // A zombie keeps its pid until reaped but runs nothing; its cmdline reads empty, and
        // its state field says Z.
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")"),
              let state = stat[stat.index(after: close)...].split(separator: " ").first,
              state != "Z", state != "X" else { return false }
        guard let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        return matches(cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) })
    }

    /// Waits until the guest's QEMU is gone, up to `timeout`. Returns whether it is gone.
    static func waitForExit(_ paths: GuestPaths, pid: pid_t, timeout: Duration) async -> Bool {
        await waitUntilGone(timeout: timeout) { isQEMU(pid: pid, argument: paths.uuid) }
    }

    /// Polls `alive` until it is false or `timeout` passes. Returns whether it became false.
    static func waitUntilGone(timeout: Duration, _ alive: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while alive() {
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    /// Ends the guest's QEMU with SIGKILL (if it runs) and waits for it to go; removes the
    /// pidfile. Returns once no QEMU runs for the guest.
    static func kill(_ paths: GuestPaths) async throws {
        try await kill(pid: running(paths), pidFile: paths.pidFile, what: "QEMU for \(paths.uuid)") { isQEMU(pid: $0, argument: paths.uuid) }
    }

    /// Ends `pid` (when given) with SIGKILL, waits until `alive` says it is gone, and removes
    /// its pidfile.
    static func kill(pid: pid_t?, pidFile: String, what: String, alive: (pid_t) -> Bool) async throws {
        if let pid {
            Glibc.kill(pid, SIGKILL)
            guard await waitUntilGone(timeout: .seconds(10), { alive(pid) }) else {
                throw VirtError.failed("\(what) (pid \(pid)) did not exit after SIGKILL")
            }
        }
        try? FileManager.default.removeItem(atPath: pidFile)
    }
}
