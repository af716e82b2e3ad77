import Foundation
import Synchronization
@testable import Virt
import XCTest

/// The test guest: a boot sector (source: contrib/qemu-boot-sectors/guest.S) that prints
/// `TestGuest.banner` on COM1, then a dot about once a second (it sleeps in `hlt` between
/// timer ticks), and powers the machine off through ACPI when the power button is pressed.
/// Every boot prints the banner once, so counting banners tells a reboot from a resume.
enum TestGuest {
    static let banner = "NIMBUS-TEST-GUEST up"
    static let poweredOff = "NIMBUS-TEST-GUEST power button: off"
    static let bootCode = hexBytes("""
        fa31c08ed88ec08ed0bc007cea117c0000be887ce85f0066b800f80080e84b0083f8ff66b840f80080750666b8400b00
        80e8370083e0fe89c58d5602b80001efb91200fbf4fa89eaeda900017509e2f3b02ee82c00ebe9be9f7ce819008d5604
        ed25ffc30d0020eff4ebfdbaf80c66efbafc0c66edc3ac84c07405e80300ebf6c352baf803ee5ac34e494d4255532d54
        4553542d47554553542075700d0a000d0a4e494d4255532d544553542d475545535420706f77657220627574746f6e3a
        206f66660d0a
        """)
    /// A 1 MiB raw disk image holding the boot sector.
    static var rawImage: [UInt8] { AccelerationProbe.bootDisk(bootCode) }
}

/// An image service in memory: serves `images` by id, counts downloads, keeps uploads.
final class TestImages: ImageTransfer {
    struct State {
        var images: [String: [UInt8]] = [:]
        var downloads: [String: Int] = [:]
        var uploads: [String: (path: String, format: String)] = [:]
        var failing: Set<String> = []
    }
    let state = Mutex(State())
    let uploadDirectory: String

    init(uploadDirectory: String) {
        self.uploadDirectory = uploadDirectory
        try? FileManager.default.createDirectory(atPath: uploadDirectory, withIntermediateDirectories: true)
    }

    func add(_ id: String, _ bytes: [UInt8]) { state.withLock { $0.images[id] = bytes } }
    func downloads(of id: String) -> Int { state.withLock { $0.downloads[id] ?? 0 } }

    func download(imageID: String, to path: String) async throws {
        let bytes: [UInt8]? = try state.withLock { state in
            state.downloads[imageID, default: 0] += 1
            if state.failing.contains(imageID) { throw VirtError.failed("image service unavailable") }
            return state.images[imageID]
        }
        guard let bytes else { throw VirtError.failed("no image \(imageID)") }
        // Slow enough that concurrent fetches overlap.
        try await Task.sleep(for: .milliseconds(200))
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    func upload(imageID: String, taking path: String, diskFormat: String) async throws {
        let copy = (uploadDirectory as NSString).appendingPathComponent(imageID)
        try? FileManager.default.removeItem(atPath: copy)
        try FileManager.default.copyItem(atPath: path, toPath: copy)
        state.withLock { $0.uploads[imageID] = (copy, diskFormat) }
    }
}

/// Stands in for the config-drive ISO writer: writes a small file, or throws for a guest
/// named "bad-config-drive".
struct TestConfigDrive: ConfigDriveWriting {
    func write(_ guest: GuestSpec, to path: String) throws {
        if guest.name == "bad-config-drive" { throw VirtError.failed("config drive writer failed") }
        try Data(repeating: 0, count: 64 << 10).write(to: URL(fileURLWithPath: path))
    }
}

/// A throw-away instances root under /tmp. `cleanUp` kills every process whose command line
/// mentions it (the test's QEMUs, whatever state a failed test left them in) and removes it.
struct Sandbox {
    let root: String

    init() {
        // Short: unix socket paths below it must stay under 108 bytes.
        root = "/tmp/nq-\(UUID().uuidString.prefix(8).lowercased())"
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    var instances: String { root + "/instances" }
    var uploads: String { root + "/uploads" }

    func cleanUp() {
        let mine = Array(root.utf8)
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry), pid != getpid(), let cmdline = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            if Array(cmdline).firstRange(of: mine) != nil { kill(pid, SIGKILL) }
        }
        try? FileManager.default.removeItem(atPath: root)
    }

    /// Processes whose command line mentions this sandbox and that are not zombies.
    func liveProcesses() -> [pid_t] {
        let mine = Array(root.utf8)
        return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
            guard let pid = pid_t(entry), let cmdline = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
                  Array(cmdline).firstRange(of: mine) != nil else { return nil }
            return pid
        }
    }
}

extension XCTestCase {
    /// A sandbox removed (with every process it started) when the test ends, passed or not.
    func makeSandbox() -> Sandbox {
        let sandbox = Sandbox()
        addTeardownBlock { sandbox.cleanUp() }
        return sandbox
    }

    /// The next event within `timeout`, or nil.
    func nextEvent(_ events: AsyncStream<String>, within timeout: Duration = .seconds(10)) async -> String? {
        await withTaskGroup(of: String?.self) { group in
            group.addTask {
                for await uuid in events { return uuid }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// Polls `condition` every 50 ms until it holds or `timeout` passes; returns whether it held.
    func eventually(_ timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }
}

func occurrences(of needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

func newUUID() -> String { UUID().uuidString.lowercased() }
