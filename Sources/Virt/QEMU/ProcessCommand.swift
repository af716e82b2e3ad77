import Foundation
import NimbusCore
#if canImport(Glibc)
import Glibc
#endif

/// Runs host programs (`qemu-img`, `qemu-system-x86_64`) to completion without blocking the
/// cooperative thread pool: the wait blocks its thread, so it happens on a Dispatch worker.
enum ProcessCommand {
    struct Output: Sendable {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The absolute path of `name` found on `PATH` (or `name` itself when it contains a slash).
    /// Throws `VirtError.failed` when it is not installed.
    static func locate(_ name: String) throws -> String {
        if name.contains("/") {
            guard FileManager.default.isExecutableFile(atPath: name) else { throw VirtError.failed("\(name) is not an executable") }
            return name
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"] {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw VirtError.failed("\(name) is not installed (not found on PATH)")
    }

    /// Runs `executable` with `arguments` and returns its exit status and output. When
    /// `stderrLog` is given, stderr is appended to that file (and what this run added is
    /// returned).
    ///
    /// posix_spawn rather than Foundation's `Process`: `Process` on Linux learns that its child
    /// ended when a socket the child inherits reaches EOF, and a daemonizing QEMU keeps that
    /// socket (and would keep any other descriptor of the agent) open for the guest's whole
    /// life, so the call would never return. Here the child gets /dev/null, two files and no
    /// other descriptor of ours, and the wait is `waitpid` on its pid.
    static func run(_ executable: String, _ arguments: [String], stderrLog: String? = nil) async throws -> Output {
        try await offload {
            let stdoutPath = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-cmd-\(UUID().uuidString).out").path
            defer { unlink(stdoutPath) }
            let stderrPath = stderrLog ?? stdoutPath + ".err"
            defer { if stderrLog == nil { unlink(stderrPath) } }
            let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
            let stdoutFD = open(stdoutPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            let stderrFD = open(stderrPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            defer { for fd in [devNull, stdoutFD, stderrFD] where fd >= 0 { close(fd) } }
            guard devNull >= 0, stdoutFD >= 0, stderrFD >= 0 else {
                throw VirtError.failed("cannot set up output files for \(executable): \(String(cString: strerror(errno)))")
            }
            let stderrStart = lseek(stderrFD, 0, SEEK_END)

            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_adddup2(&actions, devNull, 0)
            posix_spawn_file_actions_adddup2(&actions, stdoutFD, 1)
            posix_spawn_file_actions_adddup2(&actions, stderrFD, 2)
            // Every other descriptor open now is closed in the child (one closed meanwhile is
            // skipped: glibc ignores EBADF for close actions).
            for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
                if let fd = Int32(name), fd > 2 { posix_spawn_file_actions_addclose(&actions, fd) }
            }
            let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
            defer { for pointer in argv { free(pointer) } }
            var pid: pid_t = 0
            let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
            guard spawned == 0 else { throw VirtError.failed("cannot run \(executable): \(String(cString: strerror(spawned)))") }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 {
                guard errno == EINTR else { throw VirtError.failed("waiting for \(executable): \(String(cString: strerror(errno)))") }
            }
            // WIFEXITED/WEXITSTATUS by hand (C macros); a signal is reported as 128 + its number.
            let exitStatus = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            let stdout = (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? ""
            let errData = (FileManager.default.contents(atPath: stderrPath) ?? Data()).dropFirst(Int(max(stderrStart, 0)))
            return Output(status: exitStatus, stdout: stdout, stderr: String(decoding: errData, as: UTF8.self))
        }
    }

    /// Runs like `run` and throws `VirtError.failed` (naming the tool and quoting its stderr)
    /// unless it exits with status 0. Returns stdout.
    @discardableResult
    static func check(_ executable: String, _ arguments: [String], stderrLog: String? = nil) async throws -> String {
        let output = try await run(executable, arguments, stderrLog: stderrLog)
        guard output.status == 0 else {
            let tool = (executable as NSString).lastPathComponent
            let message = output.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            throw VirtError.failed("\(tool) \(arguments.first ?? "") failed (status \(output.status)): \(message)")
        }
        return output.stdout
    }
}
