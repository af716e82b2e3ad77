import Foundation
import NimbusCore
@testable import Virt
import XCTest

/// The QEMU driver's lifecycle events: a guest whose QEMU ends outside any driver call is
/// reported at once, and the host's reservations are reported beside its totals.
final class QEMULifecycleEventTests: XCTestCase {
    func testAGuestWhoseQEMUEndsByItselfIsReported() async throws {
        let sandbox = makeSandbox()
        let images = TestImages(uploadDirectory: sandbox.uploads)
        images.add("guest-raw", TestGuest.rawImage)
        var configuration = QEMUDriverConfiguration(instancesPath: sandbox.instances, acceleration: .tcg)
        configuration.shutdownTimeout = .seconds(10)
        let driver = try await QEMUDriver(configuration: configuration, images: images)
        let uuid = newUUID()
        let paths = GuestPaths(instancesRoot: sandbox.instances, uuid: uuid)
        try await driver.spawn(GuestSpec(uuid: uuid, name: "t", hostname: "t", projectID: "p", vcpus: 1, memoryMB: 64, rootGB: 1,
                                         image: ImageRef(id: "guest-raw", diskFormat: "raw")))
        defer { Task { try? await driver.destroy(uuid) } }
        let booted = await eventually { occurrences(of: TestGuest.banner, in: (try? await driver.consoleOutput(uuid, lines: nil)) ?? "") >= 1 }
        XCTAssertTrue(booted)
        let events = driver.guestEvents()

        // The guest powers itself off (its ACPI power button, pressed from outside the driver's calls).
        try await driver.monitor(paths).execute("system_powerdown")
        let poweredOff = await nextEvent(events)
        XCTAssertEqual(poweredOff, uuid)
        let afterPowerOff = try await driver.powerState(of: uuid)
        XCTAssertEqual(afterPowerOff, .shutdown)

        // Killed from outside.
        try await driver.powerOn(uuid)
        let pid = try XCTUnwrap(GuestProcess.running(paths))
        kill(pid, SIGKILL)
        let killed = await nextEvent(events)
        XCTAssertEqual(killed, uuid)
        let afterKill = try await driver.powerState(of: uuid)
        XCTAssertEqual(afterKill, .shutdown)

        // A restarted agent's driver reports only once it has looked at the guest (the agent's
        // first sync lists every guest); a later consumer replaces the earlier one.
        try await driver.powerOn(uuid)
        await driver.disconnectMonitors()
        let restarted = try await QEMUDriver(configuration: configuration, images: images)
        let restartedEvents = restarted.guestEvents()
        let listed = try await restarted.listGuests()
        XCTAssertEqual(listed, [uuid: .running])
        kill(try XCTUnwrap(GuestProcess.running(paths)), SIGKILL)
        let afterRestart = await nextEvent(restartedEvents)
        XCTAssertEqual(afterRestart, uuid)

        // What the driver itself ends is not an event: destroy drops the monitor first.
        try await restarted.powerOn(uuid)
        let replaced = restarted.guestEvents()
        try await restarted.destroy(uuid)
        let afterDestroy = await nextEvent(replaced, within: .seconds(2))
        XCTAssertNil(afterDestroy)
    }

    func testHostResourcesReportTheReservationsBesideTheTotals() async throws {
        let sandbox = makeSandbox()
        var configuration = QEMUDriverConfiguration(instancesPath: sandbox.instances, acceleration: .tcg)
        (configuration.reservedVCPUs, configuration.reservedMemoryMB, configuration.reservedDiskMB) = (1, 1000, 1025)
        let driver = try await QEMUDriver(configuration: configuration, images: TestImages(uploadDirectory: sandbox.uploads))
        let resources = try await driver.hostResources()
        XCTAssertEqual(resources.vcpus, Int64(ProcessInfo.processInfo.activeProcessorCount), "the total, not less the reservation")
        XCTAssertEqual(resources.memoryMB, HostInfo.memoryMB())
        XCTAssertEqual(resources.reservedVCPUs, 1)
        XCTAssertEqual(resources.reservedMemoryMB, 1000)
        XCTAssertEqual(resources.reservedDiskGB, 2, "1025 MiB rounds up to 2 GiB")
    }
}
