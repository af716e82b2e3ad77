import Foundation
import NimbusCore
@testable import Virt
import XCTest

/// The QMP client against a real QEMU with no disk, started paused (`-S`).
final class QMPClientTests: XCTestCase {
    func testCommandsErrorsAndEvents() async throws {
        let sandbox = makeSandbox()
        let socket = sandbox.root + "/qmp.sock"
        let qemu = try ProcessCommand.locate("qemu-system-x86_64")
        let started = try await ProcessCommand.run(qemu, [
            "-name", "qmp-test", "-machine", "q35", "-accel", "tcg,tb-size=16", "-m", "32", "-nodefaults", "-no-user-config",
            "-display", "none", "-S", "-qmp", "unix:\(socket),server=on,wait=off",
            "-daemonize", "-pidfile", sandbox.root + "/qemu.pid",
        ])
        XCTAssertEqual(started.status, 0, started.stderr)

        let client = try await QMPClient.connect(path: socket, timeout: .seconds(10))
        defer { client.close() }
        let status = try await client.execute("query-status")
        XCTAssertEqual(status["status"]?.stringValue, "prelaunch")
        XCTAssertEqual(status["running"]?.boolValue, false)

        // Several commands in flight on one connection, each answered by its id.
        async let kvm = client.execute("query-kvm")
        async let version = client.execute("query-version")
        let (kvmReply, versionReply) = try await (kvm, version)
        XCTAssertNotNil(kvmReply["present"]?.boolValue)
        XCTAssertEqual(versionReply["qemu"]?["major"]?.intValue, 7)

        do {
            try await client.execute("no-such-command")
            XCTFail("an unknown command must throw")
        } catch let QMPError.commandFailed(command, errorClass, _) {
            XCTAssertEqual(command, "no-such-command")
            XCTAssertEqual(errorClass, "CommandNotFound")
        }

        let before = client.lastEventSequence
        try await client.execute("cont")
        _ = try await client.waitForEvent(["RESUME"], after: before, timeout: .seconds(5))
        let running = try await client.execute("query-status")
        XCTAssertEqual(running["status"]?.stringValue, "running")

        try await client.execute("stop")
        let paused = try await client.execute("query-status")
        XCTAssertEqual(paused["status"]?.stringValue, "paused")

        // Nothing in this machine handles the power button: the event comes, no shutdown.
        let beforePowerdown = client.lastEventSequence
        try await client.execute("system_powerdown")
        _ = try await client.waitForEvent(["POWERDOWN"], after: beforePowerdown, timeout: .seconds(5))
        do {
            _ = try await client.waitForEvent(["SHUTDOWN"], after: beforePowerdown, timeout: .milliseconds(300))
            XCTFail("no guest answered the power button")
        } catch QMPError.timedOut {}

        let beforeQuit = client.lastEventSequence
        try await client.execute("quit")
        let shutdown = try await client.waitForEvent(["SHUTDOWN"], after: beforeQuit, timeout: .seconds(5))
        XCTAssertEqual(shutdown.data?["reason"]?.stringValue, "host-qmp-quit")
        try await client.waitUntilClosed(timeout: .seconds(5))
        do {
            try await client.execute("query-status")
            XCTFail("a closed monitor must refuse commands")
        } catch QMPError.disconnected {}
        let gone = await eventually(.seconds(5)) { sandbox.liveProcesses().isEmpty }
        XCTAssertTrue(gone, "QEMU exits after quit")
    }

    func testConnectTimesOutWithoutASocket() async throws {
        let sandbox = makeSandbox()
        let start = ContinuousClock.now
        do {
            _ = try await QMPClient.connect(path: sandbox.root + "/absent.sock", timeout: .milliseconds(300))
            XCTFail("connecting to no socket must fail")
        } catch QMPError.connectFailed {}
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(3))
    }
}
