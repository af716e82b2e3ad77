import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Finding and ending a guest's QEMU process by its pidfile.
///
/// QEMU is daemonized, so it is not the agent's child: it outlives the agent, and nothing but
/// the pidfile says which process it is. A pid in a stale pidfile may since have been reused
/// by an unrelated process, so a pid only counts as the guest's QEMU if the process is alive
/// (not a zombie) and its command line names the guest's uuid (`-uuid <uuid>`).
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
        // A zombie keeps its pid until reaped but runs nothing; its cmdline reads empty, and
        // its state field says Z.
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")"),
              let state = stat[stat.index(after: close)...].split(separator: " ").first,
              state != "Z", state != "X" else { return false }
        guard let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        return cmdline.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == argument }
    }

    /// Waits until the guest's QEMU is gone, up to `timeout`. Returns whether it is gone.
    static func waitForExit(_ paths: GuestPaths, pid: pid_t, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while isQEMU(pid: pid, argument: paths.uuid) {
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    /// Ends the guest's QEMU with SIGKILL (if it runs) and waits for it to go; removes the
    /// pidfile. Returns once no QEMU runs for the guest.
    static func kill(_ paths: GuestPaths) async throws {
        if let pid = running(paths) {
            Glibc.kill(pid, SIGKILL)
            guard await waitForExit(paths, pid: pid, timeout: .seconds(10)) else {
                throw VirtError.failed("QEMU (pid \(pid)) for \(paths.uuid) did not exit after SIGKILL")
            }
        }
        try? FileManager.default.removeItem(atPath: paths.pidFile)
    }
}
