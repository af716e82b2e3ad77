import Foundation
import NimbusCore
@testable import Virt
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A guest's VNC server as the console proxy reaches it: on TCP at the configured address, a
/// port of its own per guest, asked of QEMU; none while the guest is stopped.
final class QEMUConsoleTests: XCTestCase {
    func testEachRunningGuestHasItsOwnVNCServerOnTCP() async throws {
        let sandbox = makeSandbox()
        let images = TestImages(uploadDirectory: sandbox.uploads)
        images.add("guest-raw", TestGuest.rawImage)
        var configuration = QEMUDriverConfiguration(instancesPath: sandbox.instances, acceleration: .tcg)
        configuration.shutdownTimeout = .seconds(2)
        let driver = try await QEMUDriver(configuration: configuration, images: images)
        func spec(_ uuid: String) -> GuestSpec {
            GuestSpec(uuid: uuid, name: "vnc", hostname: "vnc", projectID: "p", vcpus: 1, memoryMB: 64, rootGB: 1,
                      image: ImageRef(id: "guest-raw", diskFormat: "raw"))
        }
        let (a, b) = (newUUID(), newUUID())
        try await driver.spawn(spec(a))
        try await driver.spawn(spec(b))

        let first = try await driver.vncConsole(a)
        let second = try await driver.vncConsole(b)
        XCTAssertEqual(first.host, "127.0.0.1")
        XCTAssertTrue((5900...65535).contains(first.port), "\(first)")
        XCTAssertNotEqual(first.port, second.port, "each guest listens on its own port")
        // The port is really that guest's QEMU speaking RFB.
        XCTAssertEqual(rfbGreeting(first), "RFB 003.008\n")
        XCTAssertEqual(rfbGreeting(second), "RFB 003.008\n")
        let again = try await driver.vncConsole(a)
        XCTAssertEqual(again, first, "asked again, the same endpoint")

        // Stopped: no VNC server, and the API's 409 comes from this invalidState.
        try await driver.powerOff(a, timeout: .seconds(2))
        await XCTAssertThrowsErrorAsync(try await driver.vncConsole(a)) { error in
            guard case VirtError.invalidState = error else { return XCTFail("\(error)") }
        }
        XCTAssertNil(rfbGreeting(first), "the stopped guest's port no longer answers")
        await XCTAssertThrowsErrorAsync(try await driver.vncConsole(newUUID())) { error in
            guard case VirtError.guestNotFound = error else { return XCTFail("\(error)") }
        }
        try await driver.destroy(a)
        try await driver.destroy(b)
        await driver.disconnectMonitors()
    }

    /// The first 12 bytes a VNC server sends (its protocol version), or nil when nothing answers
    /// within two seconds.
    func rfbGreeting(_ endpoint: VNCEndpoint) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(endpoint.port).bigEndian)
        inet_pton(AF_INET, endpoint.host, &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: 12)
        var got = 0
        while got < 12 {
            let n = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, 12 - got, 0) }
            guard n > 0 else { return nil }
            got += n
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
