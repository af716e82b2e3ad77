import Foundation
import NimbusCore

/// A failed external command: which one, how it ended, and what it said on stderr.
public struct HostCommandError: Error, CustomStringConvertible, Sendable {
    public let command: [String]
    public let status: Int32
    public let stderr: String

    public var description: String {
        let said = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        return "`\(command.joined(separator: " "))` exited with status \(status)" + (said.isEmpty ? "" : ": \(said)")
    }
}

/// Runs host tools (apt-get, dpkg-deb, mkfs.fat, qemu-img, xorriso, …) and captures their output.
public enum HostCommand {
    public struct Output: Sendable {
        public let status: Int32
        public let stdout: Data
        public let stderr: Data
        public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
        public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
    }

    /// Runs `arguments` (the first is looked up on PATH unless it has a slash) and throws
    /// `HostCommandError` when it exits non-zero. `input` is written to its stdin.
    @discardableResult
    public static func run(_ arguments: [String], input: Data? = nil, directory: String? = nil,
                           environment: [String: String] = [:]) throws -> Output {
        let output = try capture(arguments, input: input, directory: directory, environment: environment)
        guard output.status == 0 else {
            throw HostCommandError(command: arguments, status: output.status, stderr: output.stderrText)
        }
        return output
    }

    /// Like `run`, but returns the status instead of throwing on a non-zero exit.
    public static func capture(_ arguments: [String], input: Data? = nil, directory: String? = nil,
                               environment: [String: String] = [:]) throws -> Output {
        precondition(!arguments.isEmpty)
        let process = Process()
        guard let executable = resolve(arguments[0]) else {
            throw HostCommandError(command: arguments, status: 127, stderr: "\(arguments[0]): command not found")
        }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(arguments.dropFirst())
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        // Output goes to temporary files rather than pipes: a tool that writes more than a pipe
        // holds would block until read, and reading two pipes needs threads for no gain here.
        let scratch = FileManager.default.temporaryDirectory
            .appendingPathComponent("nimbus-cmd-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outURL = scratch.appendingPathComponent("out"), errURL = scratch.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let outHandle = try FileHandle(forWritingTo: outURL), errHandle = try FileHandle(forWritingTo: errURL)
        defer { try? outHandle.close(); try? errHandle.close() }
        process.standardOutput = outHandle
        process.standardError = errHandle
        if let input {
            let url = scratch.appendingPathComponent("in")
            try input.write(to: url)
            process.standardInput = try FileHandle(forReadingFrom: url)
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        try process.run()
        process.waitUntilExit()
        return Output(status: process.terminationStatus,
                      stdout: (try? Data(contentsOf: outURL)) ?? Data(),
                      stderr: (try? Data(contentsOf: errURL)) ?? Data())
    }

    /// The path of `name` on PATH or in the sbin directories (Debian puts mkfs.fat and friends
    /// in /sbin, which a non-login PATH may lack), or `name` itself when it contains a slash;
    /// nil if absent.
    public static func resolve(_ name: String) -> String? { HostProcess.locate(name) }
}
