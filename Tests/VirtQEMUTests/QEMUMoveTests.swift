import Foundation
import NimbusCore
@testable import Virt
import XCTest

/// Resize, cold and live migration with real QEMU under TCG. Two drivers with instances roots
/// of their own, listening on two loopback addresses, stand for two hosts that share no storage.
final class QEMUMoveTests: XCTestCase {
    struct Hosts {
        let sandbox: Sandbox
        let images: TestImages
        let a: QEMUDriver
        let b: QEMUDriver
        var rootA: String { sandbox.root + "/a" }
        var rootB: String { sandbox.root + "/b" }
    }

    func makeHosts() async throws -> Hosts {
        let sandbox = makeSandbox()
        let images = TestImages(uploadDirectory: sandbox.uploads)
        images.add("guest-raw", TestGuest.rawImage)
        func driver(_ name: String, address: String) async throws -> QEMUDriver {
            var configuration = QEMUDriverConfiguration(instancesPath: sandbox.root + "/" + name, acceleration: .tcg)
            configuration.shutdownTimeout = .seconds(10)
            configuration.hostAddress = address
            return try await QEMUDriver(configuration: configuration, images: images, configDrive: TestConfigDrive())
        }
        return Hosts(sandbox: sandbox, images: images, a: try await driver("a", address: "127.0.0.1"), b: try await driver("b", address: "127.0.0.2"))
    }

    func spec(_ uuid: String = newUUID(), memoryMB: Int = 64, rootGB: Int = 1) -> GuestSpec {
        GuestSpec(uuid: uuid, name: "mover", hostname: "mover", projectID: "p", vcpus: 1, memoryMB: memoryMB, rootGB: rootGB,
                  image: ImageRef(id: "guest-raw", diskFormat: "raw"))
    }

    func console(_ driver: QEMUDriver, _ uuid: String) async -> String { (try? await driver.consoleOutput(uuid, lines: nil)) ?? "" }

    @discardableResult
    func waitFor(_ driver: QEMUDriver, _ uuid: String, _ what: String, count: Int = 1, timeout: Duration = .seconds(20)) async -> String {
        let seen = await eventually(timeout) { await occurrences(of: what, in: console(driver, uuid)) >= count }
        let text = await console(driver, uuid)
        XCTAssertTrue(seen, "expected \(count) × \(what.debugDescription); console:\n\(text)")
        return text
    }

    /// `qemu-io` on a disk file; `-U -r` reads one a running QEMU holds.
    func qemuIO(_ disk: String, _ command: String, readOnly: Bool = false) async throws -> ProcessCommand.Output {
        let tool = try ProcessCommand.locate("qemu-io")
        return try await ProcessCommand.run(tool, ["-f", "qcow2"] + (readOnly ? ["-U", "-r"] : []) + ["-c", command, disk])
    }

    /// Whether `disk` holds `pattern` in the 64 KiB at `offset` (qemu-io's pattern check).
    func holds(_ disk: String, pattern: UInt8, at offset: String) async throws -> Bool {
        let output = try await qemuIO(disk, "read -P 0x\(String(pattern, radix: 16)) \(offset) 64k", readOnly: true)
        return output.status == 0 && output.stdout.contains("read 65536/65536") && !output.stdout.contains("Pattern verification failed")
    }

    /// Bytes of guest data the qcow2 at `disk` holds itself (not read through its backing file).
    func ownData(_ disk: String) async throws -> Int64 {
        let map = try await ProcessCommand.check(try ProcessCommand.locate("qemu-img"), ["map", "-U", "--output=json", "-f", "qcow2", disk])
        return (try JSON.parse(map).arrayValue ?? []).reduce(0) { sum, extent in
            extent["depth"]?.intValue == 0 && extent["data"]?.boolValue == true ? sum + (extent["length"]?.intValue ?? 0) : sum
        }
    }

    func guestEntries(_ root: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { $0 != "_base" }.sorted()
    }

    /// Processes whose command line mentions one host's instances root.
    func processes(of root: String) -> [pid_t] {
        let mine = Array((root + "/").utf8)
        return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
            guard let pid = pid_t(entry), GuestProcess.isLive(pid: pid, arguments: { _ in true }),
                  let cmdline = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"), Array(cmdline).firstRange(of: mine) != nil else { return nil }
            return pid
        }
    }

    /// Resize on the guest's host: stopped, new memory and vCPUs on the next start, root disk
    /// grown and never shrunk.
    func testResizeGrowsTheDiskAndChangesMemory() async throws {
        let hosts = try await makeHosts()
        let driver = hosts.a
        let uuid = newUUID()
        let paths = GuestPaths(instancesRoot: hosts.rootA, uuid: uuid)
        try await driver.spawn(spec(uuid))
        await waitFor(driver, uuid, TestGuest.banner)
        XCTAssertEqual(DriverCapabilities(of: driver).resize, true)

        var bigger = spec(uuid, memoryMB: 96, rootGB: 2)
        bigger.vcpus = 2
        bigger.swapMB = 16
        try await driver.resize(bigger)
        let resizedState = try await driver.powerState(of: uuid)
        XCTAssertEqual(resizedState, .shutdown, "left shut down for the agent to start")
        let rootSize = try await driver.qemuImg.virtualSize(paths.rootDisk, format: "qcow2")
        XCTAssertEqual(rootSize, 2 << 30)
        let swapSize = try await driver.qemuImg.virtualSize(paths.swapDisk, format: "qcow2")
        XCTAssertEqual(swapSize, 16 << 20, "a disk the old flavor lacked is made")

        try await driver.powerOn(uuid)
        await waitFor(driver, uuid, TestGuest.banner, count: 2)
        let monitor = try await driver.monitor(paths)
        let memory = try await monitor.execute("query-memory-size-summary")
        XCTAssertEqual(memory["base-memory"]?.intValue, 96 << 20)
        let cpus = try await monitor.execute("query-cpus-fast").arrayValue ?? []
        XCTAssertEqual(cpus.count, 2)

        // Back to the smaller flavor (a revert): memory follows, the disk keeps its size.
        try await driver.resize(spec(uuid))
        let keptSize = try await driver.qemuImg.virtualSize(paths.rootDisk, format: "qcow2")
        XCTAssertEqual(keptSize, 2 << 30, "never shrunk")
        try await driver.powerOn(uuid)
        let smaller = try await driver.monitor(paths).execute("query-memory-size-summary")
        XCTAssertEqual(smaller["base-memory"]?.intValue, 64 << 20)
        try await driver.destroy(uuid)
    }

    /// Cold migration between two hosts: the source stops the guest and offers its disks over
    /// NBD from a daemon of its own; the destination copies only what the overlay holds, onto
    /// its own copy of the base image, and the data written on the source is there. Starting
    /// the source again ends the export (a revert); destroying it (a confirm) leaves nothing.
    func testColdMigrationMovesAStoppedGuestsDisks() async throws {
        let hosts = try await makeHosts()
        let uuid = newUUID()
        let pathsA = GuestPaths(instancesRoot: hosts.rootA, uuid: uuid)
        let pathsB = GuestPaths(instancesRoot: hosts.rootB, uuid: uuid)
        var guest = spec(uuid)
        guest.ephemeralGB = 1
        guest.configDrive = true
        try await hosts.a.spawn(guest)
        await waitFor(hosts.a, uuid, TestGuest.banner)
        XCTAssertEqual(DriverCapabilities(of: hosts.a).coldMigration, true)
        // Stopping the guest for the move is the driver's doing, not the guest crashing.
        let eventsA = hosts.a.guestEvents()

        // Data the guest wrote, on its root and ephemeral disks.
        try await hosts.a.powerOff(uuid, timeout: .seconds(10))
        for (disk, write) in [(pathsA.rootDisk, "write -P 0x5a 512M 64k"), (pathsA.ephemeralDisk, "write -P 0x3c 1M 64k")] {
            let output = try await qemuIO(disk, write)
            XCTAssertEqual(output.status, 0, output.stdout + output.stderr)
        }

        let export = try await hosts.a.exportDisks(uuid)
        XCTAssertEqual(export.disks.map { NBDExportURI($0)?.name }, ["root", "eph0"])
        XCTAssertTrue(export.disks.allSatisfy { NBDExportURI($0)?.host == "127.0.0.1" }, export.location)
        let daemon = try XCTUnwrap(hosts.a.exportProcess(pathsA), "the export daemon runs")
        XCTAssertEqual(GuestProcess.readPID(pathsA.exportPidFile), daemon)
        let again = try await hosts.a.exportDisks(uuid)
        XCTAssertEqual(again, export, "asked again, the same export")

        // A revert: starting the guest ends the export.
        try await hosts.a.powerOn(uuid)
        XCTAssertNil(hosts.a.exportProcess(pathsA))
        XCTAssertFalse(FileManager.default.fileExists(atPath: pathsA.exportPidFile))
        await waitFor(hosts.a, uuid, TestGuest.banner, count: 2)

        // Exported again from a running guest (it is shut down first), then imported with a
        // bigger flavor: a resize to another host.
        let moving = try await hosts.a.exportDisks(uuid)
        let stateAtSource = try await hosts.a.powerState(of: uuid)
        XCTAssertEqual(stateAtSource, .shutdown)
        var resized = guest
        resized.rootGB = 2
        resized.memoryMB = 96
        let importStart = ContinuousClock.now
        try await hosts.b.importGuest(resized, from: moving)
        print("cold migration import took \(ContinuousClock.now - importStart)")
        XCTAssertEqual(hosts.images.downloads(of: "guest-raw"), 2, "the destination fetched the base image itself")
        let arrivedState = try await hosts.b.powerState(of: uuid)
        XCTAssertEqual(arrivedState, .shutdown)
        let overlay = try await hosts.b.qemuImg.info(pathsB.rootDisk, format: "qcow2")
        XCTAssertEqual(overlay["backing-filename"]?.stringValue, hosts.rootB + "/_base/guest-raw", "on the destination's own base image")
        XCTAssertEqual(overlay["virtual-size"]?.intValue, 2 << 30, "grown to the new flavor")
        let ownRoot = try await ownData(pathsB.rootDisk)
        XCTAssertEqual(ownRoot, 64 << 10, "only what the overlay held was written, not the base image")
        let rootMoved = try await holds(pathsB.rootDisk, pattern: 0x5a, at: "512M")
        let ephemeralMoved = try await holds(pathsB.ephemeralDisk, pattern: 0x3c, at: "1M")
        XCTAssertTrue(rootMoved && ephemeralMoved, "the guest's data survived the move")
        let notThere = try await holds(pathsB.rootDisk, pattern: 0x5a, at: "256M")
        XCTAssertFalse(notThere, "the pattern check can fail")
        XCTAssertTrue(FileManager.default.fileExists(atPath: pathsB.configDrive), "the config drive is written again here")

        try await hosts.b.powerOn(uuid)
        await waitFor(hosts.b, uuid, TestGuest.banner)
        let memory = try await hosts.b.monitor(pathsB).execute("query-memory-size-summary")
        XCTAssertEqual(memory["base-memory"]?.intValue, 96 << 20)

        // A confirm: the source's guest goes, its export daemon with it.
        try await hosts.a.destroy(uuid)
        XCTAssertEqual(processes(of: hosts.rootA), [], "no QEMU or export daemon left on the source")
        XCTAssertEqual(guestEntries(hosts.rootA), [])
        try await hosts.a.endExport(uuid)  // idempotent
        let sourceEvent = await nextEvent(eventsA, within: .seconds(1))
        XCTAssertNil(sourceEvent, "the source's stops (power-off, export) are no lifecycle events")
        try await hosts.b.destroy(uuid)
        XCTAssertEqual(hosts.sandbox.liveProcesses(), [])
    }

    /// An import that cannot read the export leaves nothing on the destination.
    func testFailedImportLeavesNothing() async throws {
        let hosts = try await makeHosts()
        let uuid = newUUID()
        // Nothing listens there.
        let unreachable = DiskExport(disks: [NBDExportURI(host: "127.0.0.1", port: try HostPorts.free(on: "127.0.0.1"), name: "root").uri])
        await XCTAssertThrowsErrorAsync(try await hosts.b.importGuest(spec(uuid), from: unreachable))
        await XCTAssertThrowsErrorAsync(try await hosts.b.importGuest(spec(uuid), from: DiskExport(location: "fake://\(uuid)"))) { error in
            XCTAssertTrue("\(error)".contains("not a disk"), "\(error)")
        }
        XCTAssertEqual(guestEntries(hosts.rootB), [])
        XCTAssertEqual(hosts.sandbox.liveProcesses(), [])
    }

    /// Live migration of a running 128 MiB guest with its disk: the guest keeps running (its
    /// console goes on without a new boot banner), data written at the source is at the
    /// destination, and nothing of it is left at the source.
    func testLiveMigrationKeepsTheGuestRunning() async throws {
        let hosts = try await makeHosts()
        let uuid = newUUID()
        let pathsA = GuestPaths(instancesRoot: hosts.rootA, uuid: uuid)
        let pathsB = GuestPaths(instancesRoot: hosts.rootB, uuid: uuid)
        var guest = spec(uuid, memoryMB: 128)
        guest.swapMB = 16
        try await hosts.a.spawn(guest)
        await waitFor(hosts.a, uuid, TestGuest.banner)
        await waitFor(hosts.a, uuid, ".", count: 2)
        XCTAssertEqual(DriverCapabilities(of: hosts.a).liveMigration, true)
        // Written by the running guest's QEMU (as a guest write would be).
        try await hosts.a.monitor(pathsA).execute("human-monitor-command", arguments: ["command-line": "qemu-io root \"write -P 0x5a 512M 64k\""])

        let endpoint = try await hosts.b.prepareIncoming(guest, blockMigration: true)
        XCTAssertTrue(endpoint.stream.hasPrefix("tcp:127.0.0.2:"), endpoint.uri)
        XCTAssertEqual(endpoint.disks.map { NBDExportURI($0)?.name }, ["root", "swap"])
        let waiting = try await hosts.b.monitor(pathsB).execute("query-status")["status"]?.stringValue
        XCTAssertEqual(waiting, "inmigrate")
        let repeated = try await hosts.b.prepareIncoming(guest, blockMigration: true)
        XCTAssertEqual(repeated, endpoint, "asked again, the same endpoint")
        let destinationPID = try XCTUnwrap(GuestProcess.running(pathsB))

        let eventsA = hosts.a.guestEvents()
        let start = ContinuousClock.now
        let statistics = try await hosts.a.liveMigrate(uuid, to: endpoint)
        let took = ContinuousClock.now - start
        print("live migration of a 128 MiB guest: \(took) in all; disks copied in \(statistics.diskCopy), "
              + "then QEMU's total-time \(statistics.total), downtime \(statistics.downtime), RAM sent \(statistics.ramTransferredBytes >> 20) MiB")
        let sourceEvent = await nextEvent(eventsA, within: .seconds(1))
        XCTAssertNil(sourceEvent, "the source's QEMU ending after the move is no lifecycle event")
        XCTAssertLessThan(statistics.downtime, .seconds(1))
        XCTAssertFalse(FileManager.default.fileExists(atPath: pathsA.directory), "nothing of the guest is left at the source")
        XCTAssertEqual(processes(of: hosts.rootA), [])

        try await hosts.b.finishIncoming(uuid)
        try await hosts.b.finishIncoming(uuid)  // harmless when repeated
        let arrived = try await hosts.b.powerState(of: uuid)
        XCTAssertEqual(arrived, .running)
        XCTAssertEqual(GuestProcess.running(pathsB), destinationPID, "the QEMU that took the stream runs the guest")
        XCTAssertFalse(FileManager.default.fileExists(atPath: pathsB.incomingEndpoint))
        // The guest goes on where it was: dots, and no new boot.
        let text = await waitFor(hosts.b, uuid, ".", count: 2)
        XCTAssertEqual(occurrences(of: TestGuest.banner, in: text), 0, "continued, not booted again:\n\(text)")
        let memory = try await hosts.b.monitor(pathsB).execute("query-memory-size-summary")
        XCTAssertEqual(memory["base-memory"]?.intValue, 128 << 20)
        let moved = try await holds(pathsB.rootDisk, pattern: 0x5a, at: "512M")
        XCTAssertTrue(moved, "the disk came along")
        let exports = try await hosts.b.monitor(pathsB).execute("query-block-exports").arrayValue ?? []
        XCTAssertEqual(exports.count, 0, "the destination no longer serves its disks")
        // The migrated guest still answers its power button.
        try await hosts.b.powerOff(uuid, timeout: .seconds(10))
        await waitFor(hosts.b, uuid, TestGuest.poweredOff)
        try await hosts.b.destroy(uuid)
    }

    /// A live migration that cannot reach its destination leaves the guest running at the
    /// source as it was; the destination's abort removes what prepare made.
    func testFailedLiveMigrationLeavesTheSourceRunningAndTheDestinationClean() async throws {
        let hosts = try await makeHosts()
        let uuid = newUUID()
        let pathsA = GuestPaths(instancesRoot: hosts.rootA, uuid: uuid)
        let guest = spec(uuid)
        try await hosts.a.spawn(guest)
        await waitFor(hosts.a, uuid, TestGuest.banner)
        let pid = try XCTUnwrap(GuestProcess.running(pathsA))

        let endpoint = try await hosts.b.prepareIncoming(guest, blockMigration: true)
        // Nothing listens at this one.
        let port = try HostPorts.free(on: "127.0.0.2")
        let unreachable = MigrationEndpoint(stream: "tcp:127.0.0.2:\(port)", disks: [NBDExportURI(host: "127.0.0.2", port: port, name: "root").uri])
        await XCTAssertThrowsErrorAsync(try await hosts.a.migrate(uuid, to: unreachable, blockMigration: true))
        // The disk copy reaches the destination, the stream does not.
        let streamless = MigrationEndpoint(stream: "tcp:127.0.0.2:\(port)", disks: endpoint.disks)
        await XCTAssertThrowsErrorAsync(try await hosts.a.migrate(uuid, to: streamless, blockMigration: true))

        let stillRunning = try await hosts.a.powerState(of: uuid)
        XCTAssertEqual(stillRunning, .running)
        XCTAssertEqual(GuestProcess.running(pathsA), pid, "the same QEMU, not a restart")
        let jobs = try await hosts.a.monitor(pathsA).execute("query-block-jobs").arrayValue ?? []
        XCTAssertEqual(jobs.count, 0, "no disk copy left running")
        let dots = occurrences(of: ".", in: await console(hosts.a, uuid))
        await waitFor(hosts.a, uuid, ".", count: dots + 1)

        try await hosts.b.abortIncoming(uuid)
        try await hosts.b.abortIncoming(uuid)  // idempotent
        XCTAssertEqual(guestEntries(hosts.rootB), [])
        XCTAssertEqual(processes(of: hosts.rootB), [])
        // An abort never removes a guest the host runs.
        try await hosts.a.abortIncoming(uuid)
        let kept = try await hosts.a.powerState(of: uuid)
        XCTAssertEqual(kept, .running)
        try await hosts.a.destroy(uuid)
    }
}
