import Foundation

/// Runs host programs (`qemu-img`, `qemu-system-x86_64`) to completion without blocking the
/// cooperative thread pool: `Process.waitUntilExit` blocks its thread, so the wait happens on
/// a Dispatch worker.
enum HostCommand {
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
        for directory in path.split(separator: ":") + ["/usr/sbin", "/sbin"] {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw VirtError.failed("\(name) is not installed (not found on PATH)")
    }

    /// Runs `executable` with `arguments` and returns its exit status and output. When
    /// `stderrLog` is given, stderr is appended to that file (and what this run added is
    /// returned), so a daemon that keeps the descriptor cannot hold the call open.
    static func run(_ executable: String, _ arguments: [String], stderrLog: String? = nil) async throws -> Output {
        try await offload {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            process.standardInput = FileHandle.nullDevice
            // Files, not pipes: nothing has to drain them while the process runs, and a
            // daemonizing child that inherits them cannot keep a pipe (and this call) open.
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-cmd-\(UUID().uuidString)").path
            let stdoutPath = scratch + ".out"
            let stderrPath = stderrLog ?? scratch + ".err"
            defer {
                try? FileManager.default.removeItem(atPath: stdoutPath)
                if stderrLog == nil { try? FileManager.default.removeItem(atPath: stderrPath) }
            }
            _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
            if !FileManager.default.fileExists(atPath: stderrPath) { _ = FileManager.default.createFile(atPath: stderrPath, contents: nil) }
            let stdoutHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
            let stderrHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
            let stderrStart = try stderrHandle.seekToEnd()
            process.standardOutput = stdoutHandle
            process.standardError = stderrHandle
            do {
                try process.run()
            } catch {
                try? stdoutHandle.close()
                try? stderrHandle.close()
                throw VirtError.failed("cannot run \(executable): \(error)")
            }
            process.waitUntilExit()
            try? stdoutHandle.close()
            try? stderrHandle.close()
            let stdout = (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? ""
            let errData = (FileManager.default.contents(atPath: stderrPath) ?? Data()).dropFirst(Int(stderrStart))
            return Output(status: process.terminationStatus, stdout: stdout, stderr: String(decoding: errData, as: UTF8.self))
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

/// Runs blocking work on a Dispatch worker thread and resumes the caller with its result.
func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}
