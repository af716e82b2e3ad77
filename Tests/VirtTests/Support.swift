import Foundation
import XCTest

@testable import Virt

/// The test image, built once per test process and shared by every test that boots it.
/// Downloaded .debs stay in .build/nimbus-test-image-cache (or $NIMBUS_TEST_IMAGE_CACHE) so
/// later runs need no network.
enum SharedTestImage {
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // Tests/VirtTests/Support.swift → root
        return url.path
    }()

    static let cacheDirectory = ProcessInfo.processInfo.environment["NIMBUS_TEST_IMAGE_CACHE"]
        ?? "\(packageRoot)/.build/nimbus-test-image-cache"

    static let built: Result<TestImageBuilder.Result, any Error> = Result {
        var options = TestImageBuilder.Options(output: "\(cacheDirectory)/nimbus-test.qcow2", cacheDirectory: cacheDirectory)
        options.writeKernelAndInitrd = true
        return try TestImageBuilder(options: options, log: { print("test image: \($0)") }).build()
    }

    static func get() throws -> TestImageBuilder.Result { try built.get() }
}

/// A scratch directory removed when the test ends.
func makeScratchDirectory(_ test: XCTestCase) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nimbus-virt-\(UUID().uuidString.prefix(8))").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
    return dir
}

/// qemu-system-x86_64 under TCG (KVM hangs on this machine kind, HOST-FACTS), serial console to
/// a log file, no NIC. Killed when the test ends, whatever happened.
final class QemuGuest: @unchecked Sendable {
    let process = Process()
    let serialLog: String
    let started = Date()

    init(test: XCTestCase, arguments: [String], serialLog: String) throws {
        guard let qemu = HostCommand.resolve("qemu-system-x86_64") else {
            // CI installs qemu-system-x86 (scripts/test); its absence is a failure, not a skip.
            throw TestImageError("qemu-system-x86_64 is not installed (Debian package qemu-system-x86)")
        }
        self.serialLog = serialLog
        process.executableURL = URL(fileURLWithPath: qemu)
        process.arguments = [
            "-accel", "tcg", "-m", "128", "-nodefaults", "-nographic", "-display", "none",
            "-monitor", "none", "-nic", "none", "-serial", "file:\(serialLog)",
        ] + arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        let stderrPath = "\(serialLog).qemu-stderr"
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        try process.run()
        test.addTeardownBlock { [self] in self.kill() }
    }

    var console: String {
        (try? String(contentsOfFile: serialLog, encoding: .utf8)) ?? ""
    }

    var qemuStderr: String {
        (try? String(contentsOfFile: "\(serialLog).qemu-stderr", encoding: .utf8)) ?? ""
    }

    /// Waits until the console holds every one of `needles`; returns the seconds since start,
    /// or nil on timeout or when QEMU exits first.
    func waitForConsole(_ needles: [String], timeout: TimeInterval) -> TimeInterval? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let text = console
            if needles.allSatisfy({ text.contains($0) }) { return Date().timeIntervalSince(started) }
            if !process.isRunning { return nil }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return nil
    }

    /// Waits for QEMU to exit; true if it did within `timeout`.
    func waitForExit(timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        return !process.isRunning
    }

    func kill() {
        guard process.isRunning else { return }
        process.terminate()  // SIGTERM: QEMU exits at once
        if !waitForExit(timeout: 5) { Glibc.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// A minimal QMP client over QEMU's unix socket: greeting, qmp_capabilities, commands.
final class QMPClient {
    private let fd: Int32
    private var buffer = Data()

    init(path: String, timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var connected: Int32 = -1
        while connected < 0 {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                let bytes = Array(path.utf8.prefix(raw.count - 1))
                raw.copyBytes(from: bytes + [0])
            }
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            if rc == 0 {
                connected = fd
            } else {
                close(fd)
                guard Date() < deadline else { throw TestImageError("cannot connect to QMP at \(path)") }
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        fd = connected
        // A receive timeout, so a silent QEMU fails the test instead of hanging it.
        var tv = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let greeting = try readMessage()
        guard greeting["QMP"] != nil else { throw TestImageError("no QMP greeting: \(greeting)") }
        _ = try execute("qmp_capabilities")
    }

    deinit { close(fd) }

    /// Sends a command and returns its reply, skipping the events that arrive before it.
    func execute(_ command: String) throws -> [String: Any] {
        let line = Data("{\"execute\": \"\(command)\"}\n".utf8)
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        while true {
            let message = try readMessage()
            if message["return"] != nil || message["error"] != nil { return message }
        }
    }

    /// The next JSON message (QMP writes one per line).
    func readMessage() throws -> [String: Any] {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = buffer[buffer.startIndex..<newline]
                buffer.removeSubrange(buffer.startIndex...newline)
                if line.isEmpty { continue }
                guard let object = try JSONSerialization.jsonObject(with: line) as? [String: Any] else {
                    throw TestImageError("QMP sent something other than an object")
                }
                return object
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &chunk, chunk.count)
            guard n > 0 else { throw TestImageError("QMP connection closed or timed out") }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }
}
