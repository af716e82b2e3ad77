import Foundation
import NimbusCore
@testable import Virt
import XCTest

/// Interface hot-plug with real QEMU under TCG. QEMU runs inside a network namespace the test
/// makes (through a wrapper given as the QEMU binary), so the taps it creates for the guest's
/// ports live and die there and the host's own namespace is never touched.
final class QEMUInterfaceTests: XCTestCase {
    struct Fixture {
        let sandbox: Sandbox
        let driver: QEMUDriver
        let namespace: String
    }

    func makeFixture() async throws -> Fixture {
        guard getuid() == 0 else { throw XCTSkip("taps and network namespaces need root") }
        let sandbox = makeSandbox()
        let namespace = "nq-if-" + String(sandbox.root.suffix(8))
        _ = try await ProcessCommand.check("/usr/sbin/ip", ["netns", "add", namespace])
        addTeardownBlock {
            // After the sandbox's QEMUs are killed (teardown blocks run last-added first).
            _ = try? await HostProcess.run("/usr/sbin/ip", ["netns", "delete", namespace])
        }
        let qemu = try XCTUnwrap(HostProcess.locate("qemu-system-x86_64"))
        let wrapper = sandbox.root + "/qemu-in-netns"
        try "#!/bin/sh\nexec /usr/sbin/ip netns exec \(namespace) \(qemu) \"$@\"\n".write(toFile: wrapper, atomically: true, encoding: .utf8)
        chmod(wrapper, 0o755)
        let images = TestImages(uploadDirectory: sandbox.uploads)
        images.add("guest-raw", TestGuest.rawImage)
        var configuration = QEMUDriverConfiguration(instancesPath: sandbox.instances, acceleration: .tcg)
        configuration.qemuBinary = wrapper
        configuration.shutdownTimeout = .seconds(5)
        configuration.unplugTimeout = .seconds(3)
        let driver = try await QEMUDriver(configuration: configuration, images: images, configDrive: TestConfigDrive())
        return Fixture(sandbox: sandbox, driver: driver, namespace: namespace)
    }

    func vif(_ n: Int) -> VIF {
        VIF(portID: String(format: "%02d345678-9abc-4def-8123-456789abcdef", n), networkID: "net", macAddress: String(format: "fa:16:3e:00:00:%02x", n), mtu: 1450)
    }

    /// Waits until the guest has booted `count` times: its firmware has then numbered the root
    /// ports' buses, and `query-pci` shows what is behind them.
    func waitForBoots(_ fixture: Fixture, _ uuid: String, _ count: Int) async {
        let booted = await eventually {
            occurrences(of: TestGuest.banner, in: (try? await fixture.driver.consoleOutput(uuid, lines: nil)) ?? "") >= count
        }
        XCTAssertTrue(booted, "expected \(count) boot(s)")
    }

    /// The device QEMU has on each NIC slot's root port (nil: the slot is empty), from `query-pci`.
    func slots(_ fixture: Fixture, _ uuid: String) async throws -> [String?] {
        let client = try await fixture.driver.runningMonitor(uuid)
        let buses = try await client.execute("query-pci").arrayValue ?? []
        let root = buses.first { $0["bus"]?.intValue == 0 }?["devices"]?.arrayValue ?? []
        return (0..<NICSlots.count).map { slot in
            let port = root.first { $0["qdev_id"]?.stringValue == NICSlots.rootPort(slot) }
            return port?["pci_bridge"]?["devices"]?.arrayValue?.first?["qdev_id"]?.stringValue
        }
    }

    func tapExists(_ fixture: Fixture, _ vif: VIF) async -> Bool {
        (try? await ProcessCommand.check("/usr/sbin/ip", ["netns", "exec", fixture.namespace, "ip", "link", "show", vif.tapName])) != nil
    }

    func recordedPorts(_ fixture: Fixture, _ uuid: String) throws -> [String] {
        try fixture.driver.existing(uuid).1.nics.map(\.portID)
    }

    func testNICsArePluggedIntoARunningGuestAndKeptAcrossARestart() async throws {
        let fixture = try await makeFixture()
        let driver = fixture.driver
        let uuid = newUUID()
        let (first, second, third) = (vif(1), vif(2), vif(3))
        try await driver.spawn(GuestSpec(uuid: uuid, name: "nics", hostname: "nics", projectID: "p", vcpus: 1, memoryMB: 64, rootGB: 1,
                                         image: ImageRef(id: "guest-raw", diskFormat: "raw"), nics: [first]))
        await waitForBoots(fixture, uuid, 1)
        var shown = try await slots(fixture, uuid)
        XCTAssertEqual(shown[0], NICSlots.deviceID(first))
        XCTAssertEqual(shown[1], nil)
        let firstTap = await tapExists(fixture, first)
        XCTAssertTrue(firstTap)

        // Attach: a virtio NIC with the port's MAC appears in the first free slot, on its tap.
        try await driver.attachInterface(uuid, second)
        shown = try await slots(fixture, uuid)
        XCTAssertEqual(shown[1], NICSlots.deviceID(second))
        let client = try await driver.runningMonitor(uuid)
        let mac = try await client.execute("qom-get", arguments: ["path": .string("/machine/peripheral/\(NICSlots.deviceID(second))"), "property": "mac"])
        XCTAssertEqual(mac.stringValue, second.macAddress)
        let secondTap = await tapExists(fixture, second)
        XCTAssertTrue(secondTap)
        XCTAssertEqual(try recordedPorts(fixture, uuid), [first.portID, second.portID])
        // Again: nothing changes.
        try await driver.attachInterface(uuid, second)
        let again = try await slots(fixture, uuid)
        XCTAssertEqual(again, shown)

        // A plug-in QEMU refuses (a MAC it cannot parse) leaves no backend, tap or record behind.
        var broken = vif(4)
        broken.macAddress = "not-a-mac"
        do {
            try await driver.attachInterface(uuid, broken)
            XCTFail("a NIC with a bad MAC was plugged in")
        } catch {}
        let afterRefusal = try await slots(fixture, uuid)
        XCTAssertEqual(afterRefusal, shown)
        let brokenTap = await tapExists(fixture, broken)
        XCTAssertFalse(brokenTap)
        XCTAssertEqual(try recordedPorts(fixture, uuid), [first.portID, second.portID])

        // Detach from a running guest needs the guest's acknowledgement (ACPI hot-unplug), which
        // the test guest's boot sector never gives: the detach fails, and the NIC stays plugged
        // in and recorded.
        do {
            try await driver.detachInterface(uuid, portID: second.portID)
            XCTFail("the test guest cannot release a NIC")
        } catch let error as VirtError {
            XCTAssertTrue(error.description.contains("did not release NIC \(NICSlots.deviceID(second))"), error.description)
        }
        let afterFailedDetach = try await slots(fixture, uuid)
        XCTAssertEqual(afterFailedDetach[1], NICSlots.deviceID(second))
        XCTAssertEqual(try recordedPorts(fixture, uuid), [first.portID, second.portID])

        // A shut-down guest has its record changed, and starts with the NICs it lists, in order.
        try await driver.powerOff(uuid, timeout: .seconds(1))
        try await driver.detachInterface(uuid, portID: second.portID)
        try await driver.detachInterface(uuid, portID: second.portID)  // already gone: fine
        try await driver.attachInterface(uuid, third)
        XCTAssertEqual(try recordedPorts(fixture, uuid), [first.portID, third.portID])
        try await driver.powerOn(uuid)
        // Plugged in at once, before the firmware has looked at the slots: the first free one
        // is still found.
        try await driver.attachInterface(uuid, second)
        await waitForBoots(fixture, uuid, 2)
        let plugged = try await slots(fixture, uuid)
        XCTAssertEqual(Array(plugged.prefix(4)), [NICSlots.deviceID(first), NICSlots.deviceID(third), NICSlots.deviceID(second), nil])
        let thirdTap = await tapExists(fixture, third)
        XCTAssertTrue(thirdTap)

        // A NIC plugged into a running guest is there when it is started again from its record.
        try await driver.powerOff(uuid, timeout: .seconds(1))
        try await driver.powerOn(uuid)
        await waitForBoots(fixture, uuid, 3)
        let afterRestart = try await slots(fixture, uuid)
        XCTAssertEqual(Array(afterRestart.prefix(3)), [NICSlots.deviceID(first), NICSlots.deviceID(third), NICSlots.deviceID(second)])
        try await driver.destroy(uuid)
    }
}
