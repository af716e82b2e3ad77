import Foundation
import NimbusCore

/// The QEMU driver's use of `HostProcess`: the same runs, their failures as `VirtError`.
enum ProcessCommand {
    typealias Output = HostProcess.Output

    /// The absolute path of `name` on `PATH` (or `name` itself when it contains a slash).
    /// Throws `VirtError.failed` when it is not installed.
    static func locate(_ name: String) throws -> String {
        guard let path = HostProcess.locate(name) else { throw VirtError.failed("\(name) is not installed (not found on PATH)") }
        return path
    }

    /// `HostProcess.run`, a failure to start as `VirtError.failed`.
    static func run(_ executable: String, _ arguments: [String], stderrLog: String? = nil) async throws -> Output {
        do { return try await HostProcess.run(executable, arguments, stderrLog: stderrLog) } catch let error as HostProcessError {
            throw VirtError.failed(error.description)
        }
    }

    /// `HostProcess.check`, its failure as `VirtError.failed` (naming the tool and quoting its stderr).
    @discardableResult
    static func check(_ executable: String, _ arguments: [String], stderrLog: String? = nil) async throws -> String {
        do { return try await HostProcess.check(executable, arguments, stderrLog: stderrLog) } catch let error as HostProcessError {
            throw VirtError.failed(error.description)
        }
    }
}
