import Compute
import Foundation
import Hummingbird
import HummingbirdTesting
import HummingbirdWSClient
import Logging
import NIOCore
import NimbusCore
import NimbusServer
import NimbusTestSupport
import Synchronization
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The console proxy on a real listener, in front of a real QEMU guest (TCG) on `nimbus up`'s
/// own kind of host: noVNC's page is served, a websocket with the console URL's token reaches
/// the guest's VNC server and completes the RFB handshake through the relay, and the spent or
/// a made-up token is refused. Needs qemu-system-x86_64 and novnc (scripts/test installs them).
final class ConsoleProxyTests: XCTestCase {
    func testWebsocketWithTheConsoleTokenReachesTheGuestsVNCServer() async throws {
        for engine in TestCloud.engines {
            // Short: the guests' unix sockets live below it.
            let instances = "/tmp/ncp-\(UUID().uuidString.prefix(8).lowercased())"
            defer { Self.removeGuests(instances) }
            var cloud = try await TestCloud.make(engine)
            cloud.settings = ["compute": ["host": "qemu-console", "force_config_drive": "false"], "DEFAULT": ["report_interval": "1"],
                              "network": ["dataplane": "none"]]
            let plane = try await cloud.start()
            let started = cloud
            let agent = try await plane.localHost(driver: "qemu", instancesPath: instances)
            let running = Task { await agent.run() }
            let app = Application(router: try plane.makeRouter(), server: .nimbusHTTP1(consoles: plane.consoleProxy))
            do {
                try await app.test(.live) { client in try await Self.exercise(API(client: client), port: try XCTUnwrap(client.port), cloud: started) }
            } catch {
                running.cancel()
                await plane.close()
                throw error
            }
            running.cancel()
            await running.value
            await plane.close()
        }
    }

    static func exercise(_ api: API, port: Int, cloud: TestCloud) async throws {
        // noVNC's page, without any token.
        let page = try await api.call(.get, "/novnc/vnc_lite.html")
        XCTAssertEqual(page.status, 200)
        XCTAssertTrue(page.text.contains("noVNC"), String(page.text.prefix(200)))
        XCTAssertEqual(page.headers[.contentType], "text/html")
        let script = try await api.call(.get, "/novnc/core/rfb.js")
        XCTAssertEqual(script.status, 200)
        let missing = try await api.call(.get, "/novnc/no-such-file.js")
        XCTAssertEqual(missing.status, 404)

        // A guest on the QEMU host: a blank raw disk is enough, the VNC server is QEMU's own.
        let admin = try await api.adminToken(cloud)
        let image = try await api.call(.post, "/image/v2/images", token: admin,
                                       body: ["name": "blank", "disk_format": "raw", "container_format": "bare", "visibility": "public"])
        let imageID = try XCTUnwrap(image.json["id"]?.stringValue, image.text)
        let uploaded = try await api.call(.put, "/image/v2/images/\(imageID)/file", token: admin, bytes: [UInt8](repeating: 0, count: 1 << 20))
        XCTAssertEqual(uploaded.status, 204, uploaded.text)
        let flavor = try await Compute.call(api, .post, "/flavors", token: admin,
                                            body: ["flavor": ["name": "console-tiny", "ram": 64, "vcpus": 1, "disk": 1]])
        let flavorID = try XCTUnwrap(flavor.json["flavor"]?["id"]?.stringValue, flavor.text)
        let booted = try await Compute.boot(api, token: admin, image: imageID, flavor: flavorID, name: "vnc-guest")
        let id = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)
        try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")

        let reply = try await Compute.call(api, .post, "/servers/\(id)/remote-consoles", token: admin,
                                           body: ["remote_console": ["protocol": "vnc", "type": "novnc"]])
        XCTAssertEqual(reply.status, 200, reply.text)
        let url = try XCTUnwrap(reply.json["remote_console"]?["url"]?.stringValue, reply.text)
        // The page's websocket: `/` + its `path` parameter.
        let path = try XCTUnwrap(URLComponents(string: url)?.queryItems?.first(where: { $0.name == "path" })?.value)
        let websocket = "ws://127.0.0.1:\(port)/\(path)"

        let handshake = try await Self.rfbHandshake(websocket)
        XCTAssertEqual(handshake.version, "RFB 003.008\n", "QEMU's VNC server greets through the relay")
        XCTAssertEqual(handshake.securityTypes, [1], "QEMU offers security type None")

        // Spent, and a made-up one: refused before any websocket exists.
        for refused in [websocket, "ws://127.0.0.1:\(port)/?token=\(UUID().uuidString.lowercased())", "ws://127.0.0.1:\(port)/"] {
            do {
                _ = try await Self.rfbHandshake(refused)
                XCTFail("\(refused) was accepted")
            } catch let error as WebSocketClientError {
                XCTAssertEqual(error, .webSocketUpgradeFailed, refused)
            }
        }
        // Everything else on the listener is as before.
        let servers = try await Compute.call(api, .get, "/servers/\(id)", token: admin)
        XCTAssertEqual(servers.status, 200, servers.text)
        let deleted = try await Compute.call(api, .delete, "/servers/\(id)", token: admin)
        XCTAssertEqual(deleted.status, 204, deleted.text)
    }

    /// What a VNC client reads through the websocket: the server's protocol version, then —
    /// after answering with the same version — the security types it offers.
    static func rfbHandshake(_ url: String) async throws -> (version: String, securityTypes: [UInt8]) {
        let result = Handshake()
        try await WebSocketClient.connect(url: url, configuration: .init(maxFrameSize: 1 << 20), logger: Logger(label: "vnc-client")) { inbound, outbound, _ in
            var frames = inbound.makeAsyncIterator()
            var received: [UInt8] = []
            func read(_ count: Int) async throws -> [UInt8] {
                while received.count < count, let frame = try await frames.next() { received += Array(frame.data.readableBytesView) }
                guard received.count >= count else { return [] }
                defer { received.removeFirst(count) }
                return Array(received.prefix(count))
            }
            let version = try await read(12)
            result.version.withLock { $0 = String(decoding: version, as: UTF8.self) }
            try await outbound.write(.binary(ByteBuffer(bytes: version)))
            guard let count = try await read(1).first else { return }
            let types = try await read(Int(count))
            result.types.withLock { $0 = types }
            try await outbound.close(.normalClosure, reason: nil)
        }
        return (result.version.withLock { $0 }, result.types.withLock { $0 })
    }

    final class Handshake: Sendable {
        let version = Mutex("")
        let types = Mutex<[UInt8]>([])
    }

    /// Kills the QEMUs whose command line names `instances` (whatever a failed test left) and
    /// removes the directory.
    static func removeGuests(_ instances: String) {
        let mine = Array(instances.utf8)
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry), pid != getpid(), let cmdline = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            if Array(cmdline).firstRange(of: mine) != nil { kill(pid, SIGKILL) }
        }
        try? FileManager.default.removeItem(atPath: instances)
    }
}
