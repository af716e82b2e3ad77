import Foundation
import NimbusCore
@testable import Virt
import XCTest

/// Steering a live migration under way, NMIs and the image precache, with real QEMU (TCG).
final class QEMUOperationsTests: XCTestCase {
    /// Two hosts on loopback; the source sends at 1 MiB/s with a 1 ms downtime limit, so that
    /// a migration of the test guest takes most of a second: long enough to steer it.
    func makeHosts() async throws -> (sandbox: Sandbox, images: TestImages, a: QEMUDriver, b: QEMUDriver) {
        let sandbox = makeSandbox()
        let images = TestImages(uploadDirectory: sandbox.uploads)
        images.add("guest-raw", TestGuest.rawImage)
        func driver(_ name: String, address: String) async throws -> QEMUDriver {
            var configuration = QEMUDriverConfiguration(instancesPath: sandbox.root + "/" + name, acceleration: .tcg)
            configuration.shutdownTimeout = .seconds(10)
            configuration.hostAddress = address
            configuration.migrationMaxBandwidthMiBps = 1
            configuration.migrationDowntimeLimitMS = 1
            return try await QEMUDriver(configuration: configuration, images: images, configDrive: TestConfigDrive())
        }
        return (sandbox, images, try await driver("a", address: "127.0.0.1"), try await driver("b", address: "127.0.0.2"))
    }

    func spec(_ uuid: String) -> GuestSpec {
        GuestSpec(uuid: uuid, name: "steered", hostname: "steered", projectID: "p", vcpus: 1, memoryMB: 64, rootGB: 1,
                  image: ImageRef(id: "guest-raw", diskFormat: "raw"))
    }

    /// Waits until the source sends the guest, then asks `request` (as the agent does, again
    /// while the driver finds no migration under way yet).
    func steer(_ paths: GuestPaths, _ request: () async throws -> Void) async throws {
        let marked = await eventually(.seconds(10)) { FileManager.default.fileExists(atPath: paths.outgoingMigration) }
        XCTAssertTrue(marked, "the migration never started")
        let deadline = ContinuousClock.now + .seconds(5)
        while true {
            do { return try await request() } catch VirtError.invalidState where ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    func testALiveMigrationUnderWayIsCancelledOrForcedToComplete() async throws {
        let hosts = try await makeHosts()
        let uuid = newUUID()
        let pathsA = GuestPaths(instancesRoot: hosts.sandbox.root + "/a", uuid: uuid)
        let pathsB = GuestPaths(instancesRoot: hosts.sandbox.root + "/b", uuid: uuid)
        let guest = spec(uuid)
        try await hosts.a.spawn(guest)
        let booted = await eventually { ((try? await hosts.a.consoleOutput(uuid, lines: nil)) ?? "").contains(TestGuest.banner) }
        XCTAssertTrue(booted)
        await XCTAssertThrowsErrorAsync(try await hosts.a.cancelMigration(uuid))  // none under way
        await XCTAssertThrowsErrorAsync(try await hosts.a.forceCompleteMigration(uuid))
        let pid = try XCTUnwrap(GuestProcess.running(pathsA))

        // Cancelled: the source keeps running the same QEMU, the destination lets go.
        let source = hosts.a
        let firstEndpoint = try await hosts.b.prepareIncoming(guest, blockMigration: true)
        let cancelled = Task { try await source.liveMigrate(uuid, to: firstEndpoint) }
        try await steer(pathsA) { try await source.cancelMigration(uuid) }
        do {
            _ = try await cancelled.value
            XCTFail("a cancelled migration completed")
        } catch {
            XCTAssertTrue("\(error)".contains("cancelled"), "\(error)")
        }
        let running = try await hosts.a.powerState(of: uuid)
        XCTAssertEqual(running, .running)
        XCTAssertEqual(GuestProcess.running(pathsA), pid)
        XCTAssertFalse(FileManager.default.fileExists(atPath: pathsA.outgoingMigration))
        let jobs = try await hosts.a.monitor(pathsA).execute("query-block-jobs").arrayValue ?? []
        XCTAssertEqual(jobs.count, 0, "no disk copy left running")
        try await hosts.b.abortIncoming(uuid)
        XCTAssertNil(GuestProcess.running(pathsB))

        // Forced: the source pauses the guest, the copy completes, the guest arrives paused.
        let secondEndpoint = try await hosts.b.prepareIncoming(guest, blockMigration: true)
        let forced = Task { try await source.liveMigrate(uuid, to: secondEndpoint) }
        try await steer(pathsA) { try await source.forceCompleteMigration(uuid) }
        _ = try await forced.value
        XCTAssertFalse(FileManager.default.fileExists(atPath: pathsA.directory))
        try await hosts.b.finishIncoming(uuid)
        let arrived = try await hosts.b.powerState(of: uuid)
        XCTAssertEqual(arrived, .paused, "paused at the source, it arrives paused (the agent then resumes it)")
        try await hosts.b.unpause(uuid)
        let resumed = try await hosts.b.powerState(of: uuid)
        XCTAssertEqual(resumed, .running)
        try await hosts.b.destroy(uuid)
    }

    func testAnNMIReachesARunningGuestOnly() async throws {
        let hosts = try await makeHosts()
        let uuid = newUUID()
        try await hosts.a.spawn(spec(uuid))
        try await hosts.a.injectNMI(uuid)
        try await hosts.a.powerOff(uuid, timeout: .seconds(1))
        do {
            try await hosts.a.injectNMI(uuid)
            XCTFail("an NMI reached a stopped guest")
        } catch let error as VirtError {
            guard case .invalidState = error else { return XCTFail("\(error)") }
        }
        try await hosts.a.destroy(uuid)
    }

    func testPrecachingPutsTheImageInTheBaseImageCacheOnce() async throws {
        let hosts = try await makeHosts()
        let image = ImageRef(id: "guest-raw", diskFormat: "raw")
        let first = try await hosts.a.cacheImage(image, images: hosts.images)
        XCTAssertTrue(first, "downloaded now")
        let cached = try XCTUnwrap(FileManager.default.contents(atPath: hosts.sandbox.root + "/a/_base/guest-raw"))
        XCTAssertEqual([UInt8](cached), TestGuest.rawImage)
        let second = try await hosts.a.cacheImage(image, images: hosts.images)
        XCTAssertFalse(second, "cached already")
        XCTAssertEqual(hosts.images.downloads(of: "guest-raw"), 1)
        await XCTAssertThrowsErrorAsync(try await hosts.a.cacheImage(ImageRef(id: "no-such-image", diskFormat: "raw"), images: hosts.images))
        XCTAssertFalse(FileManager.default.fileExists(atPath: hosts.sandbox.root + "/a/_base/no-such-image"))
    }
}
