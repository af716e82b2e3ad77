import Compute
import Crypto
import Foundation
import HostAgent
import HostAPI
import Logging
import NimbusCore
import NimbusServer
import NimbusTestSupport
import Synchronization
import Virt
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Remote consoles and console auth tokens through the API, on both engines: the URL, the
/// token stored hashed and shown to admins while valid, spent by its first connection,
/// expiring, refused once its server's console moved or the server went, and Nova's errors.
final class ConsoleTests: XCTestCase {
    static let vnc: JSON = ["remote_console": ["protocol": "vnc", "type": "novnc"]]

    /// A host whose guests have VNC servers: the fake driver's guests, each with a real
    /// listening socket on loopback while it runs.
    static func consoleHost(_ plane: NimbusControlPlane, name: String = "console-1") -> (ConsoleFakeDriver, Task<Void, Never>) {
        let driver = ConsoleFakeDriver()
        let agent = ComputeAgent(host: name, driver: driver, link: LocalAgentLink(conductor: plane.compute.conductor), images: NoImages(),
                                 heartbeatInterval: .seconds(1), logger: Logger(label: name))
        return (driver, Task { await agent.run() })
    }

    static func token(inURL url: String) throws -> String {
        let path = try XCTUnwrap(URLComponents(string: url)?.queryItems?.first(where: { $0.name == "path" })?.value, url)
        XCTAssertTrue(path.hasPrefix("?token="), path)
        return String(path.dropFirst("?token=".count))
    }

    func testConsoleURLTokenAndItsOneConnection() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(0)) { cloud, plane, api in
            let (driver, running) = Self.consoleHost(plane)
            defer { running.cancel() }
            let admin = try await api.adminToken(cloud)
            let (id, host) = try await Compute.activeServer(api, admin: admin)
            XCTAssertEqual(host, "console-1")

            let reply = try await Compute.call(api, .post, "/servers/\(id)/remote-consoles", token: admin, body: Self.vnc)
            XCTAssertEqual(reply.status, 200, reply.text)
            let console = try XCTUnwrap(reply.json["remote_console"])
            XCTAssertEqual(console["protocol"], "vnc")
            XCTAssertEqual(console["type"], "novnc")
            let url = try XCTUnwrap(console["url"]?.stringValue)
            // Nova's shape: the noVNC page on the listener, the token inside its `path` parameter.
            XCTAssertTrue(url.hasPrefix("http://localhost/novnc/vnc_lite.html?path=%3Ftoken%3D"), url)
            let token = try Self.token(inURL: url)
            XCTAssertEqual(token.count, 36, "a random uuid, as Nova's")

            // Stored as its SHA-256 only.
            let hashes = try await cloud.rawColumn("SELECT token_hash FROM compute_console_auth_token")
            XCTAssertEqual(hashes, [Hex.encode(SHA256.hash(data: Data(token.utf8)))])
            let everything = try await cloud.rawColumn("SELECT token_hash || instance_uuid || host || access_url_base FROM compute_console_auth_token")
            XCTAssertFalse(everything.joined().contains(token))

            // Shown to an admin while valid.
            let endpoint = try XCTUnwrap(driver.endpoint(of: id))
            let shown = try await Compute.call(api, .get, "/os-console-auth-tokens/\(token)", token: admin)
            XCTAssertEqual(shown.status, 200, shown.text)
            XCTAssertEqual(shown.json["console"], ["instance_uuid": .string(id), "host": "127.0.0.1", "port": .int(Int64(endpoint.port)),
                                                   "internal_access_path": .null])

            // The proxy's check: the first connection gets the guest's VNC server and spends it.
            let connection = try await plane.compute.consumeConsoleToken(token)
            XCTAssertEqual(connection.instanceUUID, id)
            XCTAssertEqual(connection.computeHost, "console-1")
            XCTAssertEqual(connection.endpoint, endpoint)
            await Self.assertRefused(plane, token, .unknown)
            let after = try await Compute.call(api, .get, "/os-console-auth-tokens/\(token)", token: admin)
            XCTAssertEqual(after.status, 404, after.text)
            XCTAssertEqual(after.json["itemNotFound"]?["message"], "Token not found")
            await Self.assertRefused(plane, "not-a-token", .unknown)
            await Self.assertRefused(plane, "", .unknown)

            // Of two connections racing with one token, one wins.
            let raced = try Self.token(inURL: try await Self.consoleURL(api, id, admin))
            async let first = try? plane.compute.consumeConsoleToken(raced)
            async let second = try? plane.compute.consumeConsoleToken(raced)
            let winners = [await first, await second].compactMap { $0 }
            XCTAssertEqual(winners.count, 1)

            // Before 2.6, the os-getVNCConsole action; from 2.6 on, only remote-consoles.
            let legacy = try await Compute.action(api, id, token: admin, ["os-getVNCConsole": ["type": "novnc"]], version: "2.5")
            XCTAssertEqual(legacy.status, 200, legacy.text)
            XCTAssertEqual(legacy.json["console"]?["type"], "novnc")
            let legacyToken = try Self.token(inURL: try XCTUnwrap(legacy.json["console"]?["url"]?.stringValue))
            let legacyShown = try await Compute.call(api, .get, "/os-console-auth-tokens/\(legacyToken)", token: admin)
            XCTAssertEqual(legacyShown.status, 200, legacyShown.text)
            let gone = try await Compute.action(api, id, token: admin, ["os-getVNCConsole": ["type": "novnc"]], version: "2.6")
            XCTAssertEqual(gone.status, 404, gone.text)
            let early = try await Compute.call(api, .post, "/servers/\(id)/remote-consoles", token: admin, body: Self.vnc, version: "2.5")
            XCTAssertEqual(early.status, 404, early.text)

            // The guest's VNC server restarted elsewhere (a new port): older tokens open nothing.
            let stale = try Self.token(inURL: try await Self.consoleURL(api, id, admin))
            let reboot = try await Compute.action(api, id, token: admin, ["reboot": ["type": "SOFT"]])
            XCTAssertEqual(reboot.status, 202, reboot.text)
            try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
            XCTAssertNotEqual(driver.endpoint(of: id), endpoint)
            await Self.assertRefused(plane, stale, nil) { if case .consoleMoved = $0 { return true } else { return false } }

            // A deleted server's tokens go with it.
            let orphan = try Self.token(inURL: try await Self.consoleURL(api, id, admin))
            let deleted = try await Compute.call(api, .delete, "/servers/\(id)", token: admin)
            XCTAssertEqual(deleted.status, 204, deleted.text)
            let left = try await cloud.rawColumn("SELECT token_hash FROM compute_console_auth_token WHERE instance_uuid = '\(id)'")
            XCTAssertEqual(left, [])
            await Self.assertRefused(plane, orphan, .unknown)
        }
    }

    func testConsoleTokensExpire() async throws {
        // A lifetime of 0: every token has expired by the time anyone uses it.
        try await onEachEngine(settings: Compute.fakeHosts(0, extra: ["consoleauth": ["token_ttl": "0"]])) { cloud, plane, api in
            let (_, running) = Self.consoleHost(plane)
            defer { running.cancel() }
            let admin = try await api.adminToken(cloud)
            let (id, _) = try await Compute.activeServer(api, admin: admin)
            let token = try Self.token(inURL: try await Self.consoleURL(api, id, admin))
            let shown = try await Compute.call(api, .get, "/os-console-auth-tokens/\(token)", token: admin)
            XCTAssertEqual(shown.status, 404, shown.text)
            await Self.assertRefused(plane, token, .expired)
            // Expired tokens are cleared as new ones are made.
            _ = try await Self.consoleURL(api, id, admin)
            _ = try await Self.consoleURL(api, id, admin)
            let rows = try await cloud.rawColumn("SELECT token_hash FROM compute_console_auth_token")
            XCTAssertLessThanOrEqual(rows.count, 1)
        }
    }

    func testConsoleErrorsAndPolicy() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(0)) { cloud, plane, api in
            let (_, running) = Self.consoleHost(plane)
            defer { running.cancel() }
            let admin = try await api.adminToken(cloud)
            let (id, _) = try await Compute.activeServer(api, admin: admin)
            func create(_ body: JSON, token: String = admin, server: String? = nil, version: String = "2.100") async throws -> API.Reply {
                try await Compute.call(api, .post, "/servers/\(server ?? id)/remote-consoles", token: token, body: body, version: version)
            }

            // Nova's schema, then its console types: 400s.
            for body: JSON in [[:], ["remote_console": "vnc"], ["remote_console": ["protocol": "vnc"]], ["remote_console": ["type": "novnc"]],
                               ["remote_console": ["protocol": "vnc", "type": "novnc", "extra": 1]], ["remote_console": ["protocol": "vnc", "type": "vnc"]],
                               ["remote_console": ["protocol": "telnet", "type": "novnc"]], ["remote_console": ["protocol": 1, "type": "novnc"]],
                               ["remote_console": ["protocol": "vnc", "type": "novnc"], "other": 1]] {
                let reply = try await create(body)
                XCTAssertEqual(reply.status, 400, "\(body.serialized()): \(reply.text)")
                XCTAssertEqual(reply.json["badRequest"]?["code"]?.intValue, 400, reply.text)
            }
            let xvp = try await create(["remote_console": ["protocol": "vnc", "type": "xvpvnc"]])
            XCTAssertEqual(xvp.json["badRequest"]?["message"], "Invalid console type xvpvnc", xvp.text)
            let spice = try await create(["remote_console": ["protocol": "spice", "type": "spice-html5"]])
            XCTAssertEqual(spice.json["badRequest"]?["message"], "Unavailable console type spice-html5.", spice.text)
            let serial = try await create(["remote_console": ["protocol": "serial", "type": "serial"]])
            XCTAssertEqual(serial.status, 400, serial.text)
            let rdp = try await create(["remote_console": ["protocol": "rdp", "type": "rdp-html5"]])
            XCTAssertEqual(rdp.json["badRequest"]?["message"], "Unavailable console type rdp.", rdp.text)
            // MKS: unknown to the schema before 2.8, not implemented by any driver after.
            let mksEarly = try await create(["remote_console": ["protocol": "mks", "type": "webmks"]], version: "2.7")
            XCTAssertEqual(mksEarly.status, 400, mksEarly.text)
            let mks = try await create(["remote_console": ["protocol": "mks", "type": "webmks"]])
            XCTAssertEqual(mks.status, 501, mks.text)
            XCTAssertEqual(mks.json["notImplemented"]?["code"]?.intValue, 501, mks.text)
            let legacyBad = try await Compute.action(api, id, token: admin, ["os-getVNCConsole": ["type": "spice-html5"]], version: "2.5")
            XCTAssertEqual(legacyBad.status, 400, legacyBad.text)
            let legacySpice = try await Compute.action(api, id, token: admin, ["os-getSPICEConsole": ["type": "spice-html5"]], version: "2.5")
            XCTAssertEqual(legacySpice.status, 400, legacySpice.text)

            // Unknown servers and other projects' servers are 404; a member may open a console
            // on their own project's server; only admins see tokens.
            let unknown = try await create(Self.vnc, server: UUID().uuidString.lowercased())
            XCTAssertEqual(unknown.status, 404, unknown.text)
            let alice = try await api.projectUser(admin: admin, name: "console-alice")
            let foreign = try await create(Self.vnc, token: alice.token)
            XCTAssertEqual(foreign.status, 404, foreign.text)
            // A flavor of its own: activeServer above made the default one.
            let (image, flavor) = try await Compute.bootables(api, admin: admin, ram: 256)
            let booted = try await Compute.boot(api, token: alice.token, image: image, flavor: flavor, name: "alice-vm")
            let own = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)
            try await Compute.waitFor(api, own, token: alice.token, status: "ACTIVE")
            let mine = try await create(Self.vnc, token: alice.token, server: own)
            XCTAssertEqual(mine.status, 200, mine.text)
            let token = try Self.token(inURL: try XCTUnwrap(mine.json["remote_console"]?["url"]?.stringValue))
            let peek = try await Compute.call(api, .get, "/os-console-auth-tokens/\(token)", token: alice.token)
            XCTAssertEqual(peek.status, 403, peek.text)
            XCTAssertEqual(peek.json["forbidden"]?["code"]?.intValue, 403, peek.text)
            // Before 2.31 the API served RDP tokens only.
            let old = try await Compute.call(api, .get, "/os-console-auth-tokens/\(token)", token: admin, version: "2.30")
            XCTAssertEqual(old.status, 400, old.text)
            let fine = try await Compute.call(api, .get, "/os-console-auth-tokens/\(token)", token: admin, version: "2.31")
            XCTAssertEqual(fine.status, 200, fine.text)

            // A server whose guest does not run has no console: 409.
            let stop = try await Compute.action(api, own, token: alice.token, ["os-stop": .null])
            XCTAssertEqual(stop.status, 202, stop.text)
            try await Compute.waitFor(api, own, token: alice.token, status: "SHUTOFF")
            let stopped = try await create(Self.vnc, token: alice.token, server: own)
            XCTAssertEqual(stopped.status, 409, stopped.text)
            XCTAssertEqual(stopped.json["conflictingRequest"]?["message"], .string("Instance \(own) is not ready"), stopped.text)
            // …and neither has a server on no host (its build found none: no host has 100,000 GB of disk).
            let huge = try await Compute.call(api, .post, "/flavors", token: admin, body: ["flavor": ["name": "huge", "ram": 64, "vcpus": 1, "disk": 100_000]])
            let hugeID = try XCTUnwrap(huge.json["flavor"]?["id"]?.stringValue, huge.text)
            let failed = try await Compute.boot(api, token: admin, image: image, flavor: hugeID, name: "nowhere")
            let nowhere = try XCTUnwrap(failed.json["server"]?["id"]?.stringValue, failed.text)
            try await Compute.waitFor(api, nowhere, token: admin, status: "ERROR")
            let hostless = try await create(Self.vnc, server: nowhere)
            XCTAssertEqual(hostless.status, 409, hostless.text)
        }
    }

    /// Hosts whose driver has no graphical consoles (the fake driver): Nova's 501.
    func testHostsWithoutConsolesAnswerNotSupported() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let (id, _) = try await Compute.activeServer(api, admin: admin)
            let reply = try await Compute.call(api, .post, "/servers/\(id)/remote-consoles", token: admin, body: Self.vnc)
            XCTAssertEqual(reply.status, 501, reply.text)
            XCTAssertEqual(reply.json["notImplemented"]?["message"], "The requested functionality is not supported.", reply.text)
            let rows = try await cloud.rawColumn("SELECT token_hash FROM compute_console_auth_token")
            XCTAssertEqual(rows, [], "no token without a console")
        }
    }

    static func consoleURL(_ api: API, _ id: String, _ token: String, file: StaticString = #filePath, line: UInt = #line) async throws -> String {
        let reply = try await Compute.call(api, .post, "/servers/\(id)/remote-consoles", token: token, body: Self.vnc)
        XCTAssertEqual(reply.status, 200, reply.text, file: file, line: line)
        return try XCTUnwrap(reply.json["remote_console"]?["url"]?.stringValue, reply.text, file: file, line: line)
    }

    static func assertRefused(_ plane: NimbusControlPlane, _ token: String, _ expected: ComputeService.ConsoleTokenRefusal?,
                       file: StaticString = #filePath, line: UInt = #line,
                       matching: (ComputeService.ConsoleTokenRefusal) -> Bool = { _ in true }) async {
        do {
            let connection = try await plane.compute.consumeConsoleToken(token)
            XCTFail("token accepted: \(connection)", file: file, line: line)
        } catch let refusal as ComputeService.ConsoleTokenRefusal {
            if let expected { XCTAssertEqual(refusal, expected, file: file, line: line) }
            XCTAssertTrue(matching(refusal), "\(refusal)", file: file, line: line)
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }
}

/// The fake driver's guests with VNC servers: a real loopback socket listens for each guest
/// while it runs (opened when first asked for). A reboot opens a new one before closing the
/// old, so the guest's console moves to another port, as a restarted QEMU's does.
final class ConsoleFakeDriver: VNCConsoleDriver {
    let inner = FakeDriver()
    let name = "fake-console"
    private let listeners = Mutex<[String: (fd: Int32, port: Int)]>([:])

    deinit { listeners.withLock { for (_, listener) in $0 { close(listener.fd) } } }

    func endpoint(of uuid: String) -> VNCEndpoint? {
        listeners.withLock { $0[uuid] }.map { VNCEndpoint(host: "127.0.0.1", port: $0.port) }
    }

    func vncConsole(_ uuid: String) async throws -> VNCEndpoint {
        guard try await inner.powerState(of: uuid) == .running else { throw VirtError.invalidState("Instance \(uuid) is not running.") }
        if let endpoint = endpoint(of: uuid) { return endpoint }
        let listener = try Self.listen()
        listeners.withLock { $0[uuid] = listener }
        return VNCEndpoint(host: "127.0.0.1", port: listener.port)
    }

    func stopListening(_ uuid: String) {
        if let old = listeners.withLock({ $0.removeValue(forKey: uuid) }) { close(old.fd) }
    }

    static func listen() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7f00_0001).bigEndian)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard fd >= 0, bound, Glibc.listen(fd, 4) == 0 else {
            if fd >= 0 { close(fd) }
            throw VirtError.failed("cannot listen on loopback")
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    func hostResources() async throws -> HostResources { try await inner.hostResources() }
    func listGuests() async throws -> [String: PowerState] { try await inner.listGuests() }
    func powerState(of uuid: String) async throws -> PowerState { try await inner.powerState(of: uuid) }
    func spawn(_ guest: GuestSpec) async throws { try await inner.spawn(guest) }
    func destroy(_ uuid: String) async throws {
        try await inner.destroy(uuid)
        stopListening(uuid)
    }
    func powerOff(_ uuid: String, timeout: Duration) async throws {
        try await inner.powerOff(uuid, timeout: timeout)
        stopListening(uuid)
    }
    func powerOn(_ uuid: String) async throws { try await inner.powerOn(uuid) }
    func reboot(_ uuid: String, hard: Bool) async throws {
        try await inner.reboot(uuid, hard: hard)
        guard endpoint(of: uuid) != nil else { return }
        let fresh = try Self.listen()
        if let old = listeners.withLock({ $0.updateValue(fresh, forKey: uuid) }) { close(old.fd) }
    }
    func consoleOutput(_ uuid: String, lines: Int?) async throws -> String { try await inner.consoleOutput(uuid, lines: lines) }
}
