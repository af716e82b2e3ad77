import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A host program that could not be started, or that failed: which one, how it ended, and what
/// it said on stderr.
public struct HostProcessError: Error, CustomStringConvertible, Sendable {
    public let command: [String]
    /// The exit status (128 + the signal's number for a signal), or nil when it never started.
    public let status: Int32?
    public let message: String

    public var description: String {
        let tool = (command.first.map { ($0 as NSString).lastPathComponent } ?? "") + (command.count > 1 ? " \(command[1])" : "")
        guard let status else { return "cannot run \(tool): \(message)" }
        return "\(tool) failed (status \(status))" + (message.isEmpty ? "" : ": \(message)")
    }
}

/// Runs host programs (qemu-img, ip, nft, dnsmasq…) to completion without blocking the
/// cooperative thread pool: the wait blocks its thread, so it happens on a Dispatch worker.
public enum HostProcess {
    public struct Output: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// The absolute path of `name` found on `PATH` or in the sbin directories (or `name` itself
    /// when it contains a slash); nil when it is not installed.
    public static func locate(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"] {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs `executable` (a path, or a name looked up with `locate`) with `arguments` and returns
    /// its exit status and output. `input` is its stdin (else /dev/null). When `stderrLog` is
    /// given, stderr is appended to that file, and what this run added is returned.
    ///
    /// posix_spawn rather than Foundation's `Process`: `Process` on Linux learns that its child
    /// ended when a socket the child inherits reaches EOF, and a daemon the command starts (a
    /// daemonizing QEMU, dnsmasq) keeps that socket, and any other descriptor of ours, open for
    /// its whole life, so the call would never return. Here the child gets three files and no
    /// other descriptor of ours, and the wait is `waitpid` on its pid.
    public static func run(_ executable: String, _ arguments: [String], input: String? = nil,
                           stderrLog: String? = nil) async throws -> Output {
        guard let path = locate(executable) else {
            throw HostProcessError(command: [executable] + arguments, status: nil, message: "\(executable) is not installed (not found on PATH)")
        }
        return try await offload {
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-cmd-\(Identifiers.hexID())").path
            let stdoutPath = scratch + ".out", stdinPath = scratch + ".in"
            let stderrPath = stderrLog ?? scratch + ".err"
            defer {
                unlink(stdoutPath)
                if input != nil { unlink(stdinPath) }
                if stderrLog == nil { unlink(stderrPath) }
            }
            if let input { try Data(input.utf8).write(to: URL(fileURLWithPath: stdinPath)) }
            let stdinFD = open(input == nil ? "/dev/null" : stdinPath, O_RDONLY | O_CLOEXEC)
            let stdoutFD = open(stdoutPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            let stderrFD = open(stderrPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            defer { for fd in [stdinFD, stdoutFD, stderrFD] where fd >= 0 { close(fd) } }
            guard stdinFD >= 0, stdoutFD >= 0, stderrFD >= 0 else {
                throw HostProcessError(command: [path] + arguments, status: nil,
                                       message: "cannot set up its files: \(String(cString: strerror(errno)))")
            }
            let stderrStart = lseek(stderrFD, 0, SEEK_END)

            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_adddup2(&actions, stdinFD, 0)
            posix_spawn_file_actions_adddup2(&actions, stdoutFD, 1)
            posix_spawn_file_actions_adddup2(&actions, stderrFD, 2)
            // Every other descriptor open now is closed in the child (one closed meanwhile is
            // skipped: glibc ignores EBADF for close actions).
            for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
                if let fd = Int32(name), fd > 2 { posix_spawn_file_actions_addclose(&actions, fd) }
            }
            // The child starts with no signal blocked and every signal at its default: it would
            // otherwise inherit this Dispatch worker's mask, which blocks signals, and a daemon
            // it leaves behind (dnsmasq) would never see the SIGHUP that tells it to re-read
            // its files.
            var attributes = posix_spawnattr_t()
            posix_spawnattr_init(&attributes)
            defer { posix_spawnattr_destroy(&attributes) }
            var noSignals = sigset_t(), allSignals = sigset_t()
            sigemptyset(&noSignals)
            sigfillset(&allSignals)
            posix_spawnattr_setsigmask(&attributes, &noSignals)
            posix_spawnattr_setsigdefault(&attributes, &allSignals)
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
            let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
            defer { for pointer in argv { free(pointer) } }
            var pid: pid_t = 0
            let spawned = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
            guard spawned == 0 else {
                throw HostProcessError(command: [path] + arguments, status: nil, message: String(cString: strerror(spawned)))
            }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 {
                guard errno == EINTR else {
                    throw HostProcessError(command: [path] + arguments, status: nil, message: "waitpid: \(String(cString: strerror(errno)))")
                }
            }
            // WIFEXITED/WEXITSTATUS by hand (C macros); a signal is reported as 128 + its number.
            let exitStatus = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            let stdout = (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? ""
            let errData = (FileManager.default.contents(atPath: stderrPath) ?? Data()).dropFirst(Int(max(stderrStart, 0)))
            return Output(status: exitStatus, stdout: stdout, stderr: String(decoding: errData, as: UTF8.self))
        }
    }

    /// Runs like `run` and throws `HostProcessError` (naming the tool and quoting its stderr)
    /// unless it exits with status 0. Returns stdout.
    @discardableResult
    public static func check(_ executable: String, _ arguments: [String], input: String? = nil,
                             stderrLog: String? = nil) async throws -> String {
        let output = try await run(executable, arguments, input: input, stderrLog: stderrLog)
        guard output.status == 0 else {
            throw HostProcessError(command: [executable] + arguments, status: output.status,
                                   message: output.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return output.stdout
    }
}

/// Runs blocking work on a Dispatch worker thread and resumes the caller with its result.
public func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}
