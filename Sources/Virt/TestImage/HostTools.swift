import Foundation

/// A command the builders run, and the Debian package that provides it.
public struct HostTool: Sendable, Hashable {
    /// A command on PATH, or (`isFile`) the absolute path of a file the package installs.
    public let command: String
    public let package: String
    public let isFile: Bool
    public init(_ command: String, package: String) {
        self.command = command
        self.package = package
        isFile = false
    }

    /// A package that brings files rather than a command (noVNC's pages).
    public init(file: String, package: String) {
        command = file
        self.package = package
        isFile = true
    }

    var isPresent: Bool { isFile ? FileManager.default.fileExists(atPath: command) : HostCommand.resolve(command) != nil }
}

public enum HostTools {
    /// Makes sure every tool is on PATH. Missing ones are installed with apt-get when allowed and
    /// running as root (saying so, as DevStack does); otherwise the error names the packages.
    public static func ensure(_ tools: [HostTool], install: Bool, log: @Sendable (String) -> Void) throws {
        let missing = tools.filter { !$0.isPresent }
        guard !missing.isEmpty else { return }
        let packages = Array(Set(missing.map(\.package))).sorted()
        let commands = missing.map(\.command).joined(separator: ", ")
        guard install, getuid() == 0, HostCommand.resolve("apt-get") != nil else {
            throw TestImageError("missing host tools (\(commands)); install the Debian packages: apt-get install \(packages.joined(separator: " "))")
        }
        log("Installing host packages with apt-get for \(commands): \(packages.joined(separator: " "))")
        let env = ["DEBIAN_FRONTEND": "noninteractive"]
        var result = try HostCommand.capture(["apt-get", "install", "-y", "-q", "--no-install-recommends"] + packages, environment: env)
        if result.status != 0 {
            // A fresh machine may have empty package lists.
            log("apt-get install failed; running apt-get update and trying again")
            try HostCommand.run(["apt-get", "update", "-q"], environment: env)
            result = try HostCommand.capture(["apt-get", "install", "-y", "-q", "--no-install-recommends"] + packages, environment: env)
        }
        guard result.status == 0 else {
            throw HostCommandError(command: ["apt-get", "install"] + packages, status: result.status, stderr: result.stderrText)
        }
        let still = missing.filter { !$0.isPresent }.map(\.command)
        guard still.isEmpty else {
            throw TestImageError("installed \(packages.joined(separator: " ")) but still cannot find \(still.joined(separator: ", "))")
        }
    }
}

/// Why a test image or config drive could not be built.
public struct TestImageError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
