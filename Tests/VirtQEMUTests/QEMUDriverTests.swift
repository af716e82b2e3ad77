import Foundation
import NimbusCore
@testable import Virt
import XCTest

/// The driver end to end with real QEMU under TCG, booting the test guest's boot sector.
final class QEMUDriverTests: XCTestCase {
    struct Fixture {
        let sandbox: Sandbox
        let images: TestImages
        let driver: QEMUDriver
    }

    func makeFixture() async throws -> Fixture {
        let sandbox = makeSandbox()
        let images = TestImages(uploadDirectory: sandbox.uploads)
        images.add("guest-raw", TestGuest.rawImage)
        var configuration = QEMUDriverConfiguration(instancesPath: sandbox.instances, acceleration: .tcg)
        configuration.shutdownTimeout = .seconds(10)
        let driver = try await QEMUDriver(configuration: configuration, images: images, configDrive: TestConfigDrive())
        return Fixture(sandbox: sandbox, images: images, driver: driver)
    }

    func spec(_ uuid: String = newUUID(), image: String = "guest-raw", rootGB: Int = 1) -> GuestSpec {
        GuestSpec(uuid: uuid, name: "test", hostname: "test", projectID: "p", vcpus: 1, memoryMB: 64, rootGB: rootGB,
                         image: ImageRef(id: image, diskFormat: "raw"))
    }

    func console(_ driver: QEMUDriver, _ uuid: String) async -> String {
        (try? await driver.consoleOutput(uuid, lines: nil)) ?? ""
    }

    /// Waits until the guest's console shows `count` banners (boots) and returns the console.
    @discardableResult
    func waitForBoots(_ driver: QEMUDriver, _ uuid: String, _ count: Int, timeout: Duration = .seconds(20)) async throws -> String {
        let booted = await eventually(timeout) { await occurrences(of: TestGuest.banner, in: console(driver, uuid)) >= count }
        let text = await console(driver, uuid)
        XCTAssertTrue(booted, "expected \(count) boot(s); console:\n\(text)")
        return text
    }

    func qemuPID(_ fixture: Fixture, _ uuid: String) -> pid_t? {
        GuestProcess.running(GuestPaths(instancesRoot: fixture.sandbox.instances, uuid: uuid))
    }

    /// One guest through its whole life: spawn, console, pause, snapshot, suspend/resume,
    /// ACPI power-off, power-on, reboots, a second driver taking over, SIGKILL, destroy.
    func testGuestLifecycle() async throws {
        let fixture = try await makeFixture()
        let driver = fixture.driver
        let uuid = newUUID()
        let paths = GuestPaths(instancesRoot: fixture.sandbox.instances, uuid: uuid)

        let spawnStart = ContinuousClock.now
        try await driver.spawn(spec(uuid))
        let spawned = ContinuousClock.now - spawnStart
        let stateAfterSpawn = try await driver.powerState(of: uuid)
        XCTAssertEqual(stateAfterSpawn, .running)
        try await waitForBoots(driver, uuid, 1)
        print("spawn returned after \(spawned); first console line after \(ContinuousClock.now - spawnStart)")
        for file in [paths.rootDisk, paths.spec, paths.qmpSocket, paths.consoleLog, paths.pidFile] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: file), "\(file) exists")
        }
        let overlay = try await driver.qemuImg.info(paths.rootDisk, format: "qcow2", forceShare: true)
        XCTAssertEqual(overlay["backing-filename-format"]?.stringValue, "raw")
        XCTAssertEqual(overlay["virtual-size"]?.intValue, 1 << 30)
        let listed = try await driver.listGuests()
        XCTAssertEqual(listed, [uuid: .running])

        // Pause and unpause: QMP's run state follows.
        try await driver.pause(uuid)
        let pausedState = try await driver.powerState(of: uuid)
        XCTAssertEqual(pausedState, .paused)
        let pausedStatus = try await driver.monitor(paths).execute("query-status")["status"]?.stringValue
        XCTAssertEqual(pausedStatus, "paused")
        try await driver.unpause(uuid)
        let unpausedState = try await driver.powerState(of: uuid)
        XCTAssertEqual(unpausedState, .running)

        let diagnostics = try await driver.diagnostics(uuid)
        XCTAssertEqual(diagnostics.state, .running)
        XCTAssertEqual(diagnostics.cpuTimes.count, 1)
        XCTAssertNotNil(diagnostics.cpuTimes.first ?? nil)
        XCTAssertEqual(diagnostics.memoryMaximumMB, 64)
        XCTAssertEqual(diagnostics.disks.count, 1)
        XCTAssertGreaterThan(diagnostics.disks.first?.readBytes ?? 0, 0, "the BIOS read the boot sector")

        // Snapshot of the running guest: a standalone qcow2 that qemu-img accepts and that
        // still starts with the boot sector; no scratch file left.
        try await driver.snapshot(uuid, imageID: "snap-1", images: fixture.images)
        let upload = try XCTUnwrap(fixture.images.state.withLock { $0.uploads["snap-1"] })
        XCTAssertEqual(upload.format, "qcow2")
        let check = try await ProcessCommand.run(driver.qemuImg.executable, ["check", "-f", "qcow2", upload.path])
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
        let snapInfo = try await driver.qemuImg.info(upload.path, format: "qcow2")
        XCTAssertNil(snapInfo["backing-filename"], "standalone")
        let rawCopy = fixture.sandbox.root + "/snap.raw"
        try await ProcessCommand.check(driver.qemuImg.executable, ["convert", "-f", "qcow2", "-O", "raw", upload.path, rawCopy])
        let firstSector = try XCTUnwrap(FileManager.default.contents(atPath: rawCopy)).prefix(512)
        XCTAssertEqual(Array(firstSector), Array(TestGuest.rawImage.prefix(512)))
        XCTAssertFalse(FileManager.default.fileExists(atPath: paths.snapshotScratch))
        let afterSnapshot = try await driver.powerState(of: uuid)
        XCTAssertEqual(afterSnapshot, .running)

        // Suspend: no QEMU while suspended; resume continues the same boot (no new banner,
        // more dots).
        let suspendStart = ContinuousClock.now
        try await driver.suspend(uuid)
        print("suspend took \(ContinuousClock.now - suspendStart)")
        XCTAssertNil(qemuPID(fixture, uuid))
        XCTAssertTrue(fixture.sandbox.liveProcesses().isEmpty, "no QEMU runs while suspended")
        XCTAssertTrue(FileManager.default.fileExists(atPath: paths.savedState))
        let suspendedState = try await driver.powerState(of: uuid)
        XCTAssertEqual(suspendedState, .suspended)
        let dotsBefore = occurrences(of: ".", in: await console(driver, uuid))
        let resumeStart = ContinuousClock.now
        try await driver.resume(uuid)
        print("resume took \(ContinuousClock.now - resumeStart)")
        let resumedState = try await driver.powerState(of: uuid)
        XCTAssertEqual(resumedState, .running)
        XCTAssertFalse(FileManager.default.fileExists(atPath: paths.savedState))
        let ticked = await eventually(.seconds(10)) { await occurrences(of: ".", in: console(driver, uuid)) >= dotsBefore + 2 }
        XCTAssertTrue(ticked, "the guest runs on after resume")
        let resumedConsole = await console(driver, uuid)
        XCTAssertEqual(occurrences(of: TestGuest.banner, in: resumedConsole), 1, "resumed, not rebooted")

        // Power-off: the guest answers the ACPI power button and QEMU exits.
        let powerOffStart = ContinuousClock.now
        try await driver.powerOff(uuid, timeout: .seconds(20))
        XCTAssertLessThan(ContinuousClock.now - powerOffStart, .seconds(10), "ACPI, not the timeout")
        let offState = try await driver.powerState(of: uuid)
        XCTAssertEqual(offState, .shutdown)
        let offConsole = await console(driver, uuid)
        XCTAssertTrue(offConsole.contains(TestGuest.poweredOff))
        XCTAssertNil(qemuPID(fixture, uuid))
        try await driver.powerOff(uuid, timeout: .seconds(1))  // a stopped guest is left alone

        try await driver.powerOn(uuid)
        let onState = try await driver.powerState(of: uuid)
        XCTAssertEqual(onState, .running)
        try await waitForBoots(driver, uuid, 2)

        // Hard reboot resets in place (same process); soft reboot goes through ACPI and a new QEMU.
        let pidBeforeReset = qemuPID(fixture, uuid)
        try await driver.reboot(uuid, hard: true)
        XCTAssertEqual(qemuPID(fixture, uuid), pidBeforeReset)
        try await waitForBoots(driver, uuid, 3)
        try await driver.reboot(uuid, hard: false)
        try await waitForBoots(driver, uuid, 4)
        let rebootedConsole = await console(driver, uuid)
        XCTAssertEqual(occurrences(of: TestGuest.poweredOff, in: rebootedConsole), 2)
        let lastLine = try await driver.consoleOutput(uuid, lines: 1)
        XCTAssertEqual(lastLine.split(whereSeparator: \.isNewline).count, 1, lastLine)
        let lastTwo = try await driver.consoleOutput(uuid, lines: 2)
        XCTAssertEqual(lastTwo.split(whereSeparator: \.isNewline).count, 2, lastTwo)

        // The agent goes away; a new driver on the same directory finds the guest running
        // and controls it.
        await driver.disconnectMonitors()
        var configuration = QEMUDriverConfiguration(instancesPath: fixture.sandbox.instances, acceleration: .tcg)
        configuration.monitorTimeout = .seconds(5)
        let restarted = try await QEMUDriver(configuration: configuration, images: fixture.images)
        let relisted = try await restarted.listGuests()
        XCTAssertEqual(relisted, [uuid: .running])
        // Paused, the guest cannot answer the power button: stopped hard after the timeout.
        try await restarted.pause(uuid)
        let hardStart = ContinuousClock.now
        try await restarted.powerOff(uuid, timeout: .seconds(1))
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - hardStart, .seconds(1))
        let hardOff = try await restarted.powerState(of: uuid)
        XCTAssertEqual(hardOff, .shutdown)

        // A QEMU killed outright is reported shut down.
        try await restarted.powerOn(uuid)
        let pid = try XCTUnwrap(qemuPID(fixture, uuid))
        kill(pid, SIGKILL)
        let reportedDown = await eventually(.seconds(5)) { (try? await restarted.powerState(of: uuid)) == .shutdown }
        XCTAssertTrue(reportedDown)
        let afterKill = try await restarted.listGuests()
        XCTAssertEqual(afterKill, [uuid: .shutdown])

        try await restarted.destroy(uuid)
        try await restarted.destroy(uuid)
        XCTAssertFalse(FileManager.default.fileExists(atPath: paths.directory))
        let none = try await restarted.listGuests()
        XCTAssertEqual(none, [:])
        do {
            _ = try await restarted.powerState(of: uuid)
            XCTFail("a destroyed guest is not found")
        } catch VirtError.guestNotFound {}

        // The base image outlives the guest until the sweep finds it unused.
        XCTAssertTrue(FileManager.default.fileExists(atPath: fixture.sandbox.instances + "/_base/guest-raw"))
        let swept = try await restarted.sweepBaseImages(unusedFor: .zero)
        XCTAssertEqual(swept, ["guest-raw"])
    }

    /// A destroyed running guest leaves no process and no directory.
    func testDestroyRunningGuestAndConcurrentSpawnsShareOneDownload() async throws {
        let fixture = try await makeFixture()
        let first = newUUID(), second = newUUID()
        var specA = spec(first)
        specA.configDrive = true
        let (specB, driver) = (spec(second), fixture.driver)
        async let a: Void = driver.spawn(specA)
        async let b: Void = driver.spawn(specB)
        _ = try await (a, b)
        XCTAssertEqual(fixture.images.downloads(of: "guest-raw"), 1, "one download for both guests")
        let listed = try await fixture.driver.listGuests()
        XCTAssertEqual(listed, [first: .running, second: .running])
        // The config drive is attached read-only as a CD-ROM.
        let firstPaths = GuestPaths(instancesRoot: fixture.sandbox.instances, uuid: first)
        let blocks = try await driver.monitor(firstPaths).execute("query-block").arrayValue ?? []
        let config = try XCTUnwrap(blocks.first { $0["device"]?.stringValue == "config" })
        XCTAssertEqual(config["inserted"]?["file"]?.stringValue, firstPaths.configDrive)
        XCTAssertEqual(config["inserted"]?["ro"]?.boolValue, true)
        XCTAssertEqual(config["removable"]?.boolValue, true)
        // In use: the sweep keeps it whatever its age.
        let swept = try await fixture.driver.sweepBaseImages(unusedFor: .zero)
        XCTAssertEqual(swept, [])
        try await fixture.driver.destroy(first)
        try await fixture.driver.destroy(second)
        XCTAssertEqual(fixture.sandbox.liveProcesses(), [])
        let remaining = try FileManager.default.contentsOfDirectory(atPath: fixture.sandbox.instances)
        XCTAssertEqual(remaining, ["_base"])
    }

    /// A spawn that fails part-way leaves nothing of the guest on the host.
    func testFailedSpawnsLeaveNothing() async throws {
        let fixture = try await makeFixture()
        let driver = fixture.driver
        func assertNothingLeft(_ uuid: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertFalse(FileManager.default.fileExists(atPath: fixture.sandbox.instances + "/" + uuid), file: file, line: line)
            XCTAssertEqual(fixture.sandbox.liveProcesses(), [], file: file, line: line)
            let base = (try? FileManager.default.contentsOfDirectory(atPath: fixture.sandbox.instances + "/_base")) ?? []
            XCTAssertTrue(base.allSatisfy { !$0.hasSuffix(".part") }, "\(base)", file: file, line: line)
        }

        // The image download fails.
        fixture.images.state.withLock { _ = $0.failing.insert("guest-raw") }
        let noImage = newUUID()
        await XCTAssertThrowsErrorAsync(try await driver.spawn(spec(noImage)))
        assertNothingLeft(noImage)
        fixture.images.state.withLock { $0.failing.removeAll() }

        // The image does not match its checksum.
        let badSum = newUUID()
        var badSpec = spec(badSum)
        badSpec.image.checksum = String(repeating: "0", count: 32)
        await XCTAssertThrowsErrorAsync(try await driver.spawn(badSpec))
        assertNothingLeft(badSum)

        // The flavor's root disk is smaller than the image (FlavorDiskTooSmall).
        let big = fixture.sandbox.root + "/big.qcow2"
        try await driver.qemuImg.createBlank(big, sizeBytes: 2 << 30)
        fixture.images.add("big", Array(try XCTUnwrap(FileManager.default.contents(atPath: big))))
        let tooSmall = newUUID()
        var smallSpec = spec(tooSmall, image: "big", rootGB: 1)
        smallSpec.image.diskFormat = "qcow2"
        await XCTAssertThrowsErrorAsync(try await driver.spawn(smallSpec)) { error in
            XCTAssertTrue("\(error)".contains("too small"), "\(error)")
        }
        assertNothingLeft(tooSmall)

        // The config drive cannot be written.
        let badDrive = newUUID()
        var driveSpec = spec(badDrive)
        driveSpec.name = "bad-config-drive"
        driveSpec.configDrive = true
        await XCTAssertThrowsErrorAsync(try await driver.spawn(driveSpec))
        assertNothingLeft(badDrive)

        // QEMU itself refuses to start, after the disks were made.
        let badMachine = newUUID()
        var machineSpec = spec(badMachine)
        machineSpec.image.properties["hw_machine_type"] = "no-such-machine"
        await XCTAssertThrowsErrorAsync(try await driver.spawn(machineSpec)) { error in
            XCTAssertTrue("\(error)".contains("unsupported machine type"), "QEMU's own message is reported: \(error)")
        }
        assertNothingLeft(badMachine)

        // With a correct checksum the same image boots.
        let good = newUUID()
        var goodSpec = spec(good)
        goodSpec.image.checksum = try FileDigest.hex(.md5, of: fixture.sandbox.instances + "/_base/guest-raw")
        try await driver.spawn(goodSpec)
        try await driver.destroy(good)
        assertNothingLeft(good)
    }

    /// Rescue boots the rescue image with the guest's disk second; unrescue boots the guest's
    /// own disk again.
    func testRescueAndUnrescue() async throws {
        let fixture = try await makeFixture()
        let driver = fixture.driver
        fixture.images.add("rescue-raw", TestGuest.rawImage)
        let uuid = newUUID()
        let paths = GuestPaths(instancesRoot: fixture.sandbox.instances, uuid: uuid)
        let guest = spec(uuid)
        try await driver.spawn(guest)
        try await waitForBoots(driver, uuid, 1)
        func blockFiles() async throws -> [String: String] {
            let devices = try await driver.monitor(paths).execute("query-block").arrayValue ?? []
            return Dictionary(uniqueKeysWithValues: devices.compactMap { device in
                guard let name = device["device"]?.stringValue, let file = device["inserted"]?["file"]?.stringValue else { return nil }
                return (name, file)
            })
        }
        XCTAssertEqual(DriverCapabilities(of: driver).rescue, true)
        try await driver.rescue(guest, rescueImage: ImageRef(id: "rescue-raw", diskFormat: "raw"))
        let rescuedState = try await driver.powerState(of: uuid)
        XCTAssertEqual(rescuedState, .running)
        let rescued = try await blockFiles()
        XCTAssertEqual(rescued["root"], paths.rescueDisk)
        XCTAssertEqual(rescued["rescued"], paths.rootDisk)
        try await waitForBoots(driver, uuid, 2)
        await XCTAssertThrowsErrorAsync(try await driver.rescue(guest, rescueImage: ImageRef(id: "rescue-raw", diskFormat: "raw")))
        // The rescue image is in use while the guest is rescued.
        let keptWhileRescued = try await driver.sweepBaseImages(unusedFor: .zero)
        XCTAssertEqual(keptWhileRescued, [])

        try await driver.unrescue(uuid)
        let unrescued = try await blockFiles()
        XCTAssertEqual(unrescued["root"], paths.rootDisk)
        XCTAssertNil(unrescued["rescued"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: paths.rescueDisk))
        try await waitForBoots(driver, uuid, 3)
        try await driver.destroy(uuid)
        let swept = try await driver.sweepBaseImages(unusedFor: .zero)
        XCTAssertEqual(Set(swept), ["guest-raw", "rescue-raw"])
    }

    func testHostResources() async throws {
        let fixture = try await makeFixture()
        let resources = try await fixture.driver.hostResources()
        XCTAssertEqual(resources.hypervisorType, "QEMU")
        XCTAssertGreaterThanOrEqual(resources.hypervisorVersion, 7_000_000)
        XCTAssertEqual(resources.vcpus, Int64(ProcessInfo.processInfo.activeProcessorCount))
        XCTAssertGreaterThan(resources.memoryMB, 0)
        XCTAssertGreaterThan(resources.diskGB, 0)
        XCTAssertEqual(resources.cpuInfo["acceleration"], "tcg")
        XCTAssertEqual(resources.cpuInfo["arch"], "x86_64")
        XCTAssertNotNil(resources.cpuInfo["vendor"])
    }

    /// The probe's boot sector reaches long mode under TCG; KVM is used only if it does so
    /// under KVM within the timeout (on hosts where KVM hangs, the probe picks TCG).
    func testAccelerationProbe() async throws {
        let sandbox = makeSandbox()
        let qemu = try ProcessCommand.locate("qemu-system-x86_64")
        let disk = sandbox.root + "/probe.img"
        let log = sandbox.root + "/console.log"
        try Data(AccelerationProbe.bootDisk(AccelerationProbe.bootCode)).write(to: URL(fileURLWithPath: disk))
        let output = try await ProcessCommand.run(qemu, [
            "-machine", "q35", "-accel", "tcg", "-m", "32", "-nodefaults", "-no-user-config", "-display", "none",
            "-drive", "file=\(disk),format=raw,if=none,id=probe", "-device", "virtio-blk-pci,drive=probe,bootindex=1",
            "-chardev", "file,id=serial0,path=\(log)", "-device", "isa-serial,chardev=serial0",
            "-daemonize", "-pidfile", sandbox.root + "/qemu.pid",
        ])
        XCTAssertEqual(output.status, 0, output.stderr)
        let reached = await eventually(.seconds(15)) {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains(AccelerationProbe.banner)
        }
        XCTAssertTrue(reached, "the probe guest reaches long mode under TCG")

        let start = ContinuousClock.now
        let chosen = await AccelerationProbe.run(qemu: qemu, scratchDirectory: sandbox.root, timeout: .seconds(5))
        print("acceleration probe chose \(chosen) in \(ContinuousClock.now - start)")
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(15))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: sandbox.root).filter { $0.hasPrefix("_probe") }
        XCTAssertEqual(leftovers, [])
    }
}

func XCTAssertThrowsErrorAsync<T>(_ expression: @autoclosure () async throws -> T, file: StaticString = #filePath, line: UInt = #line,
                                  _ handler: (any Error) -> Void = { _ in }) async {
    do {
        _ = try await expression()
        XCTFail("expected an error", file: file, line: line)
    } catch {
        handler(error)
    }
}
