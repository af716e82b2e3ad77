import Compute
import Foundation
import HostAgent
import HostAPI
import Logging
import NimbusCore
import NimbusTestSupport
import Virt
import XCTest

/// A host's capabilities are what its driver's protocols say, and the API refuses what the
/// host cannot do before anything changes.
final class DriverCapabilityTests: XCTestCase {
    func testCapabilitiesFollowTheProtocolsADriverConformsTo() {
        XCTAssertEqual(DriverCapabilities(of: FakeDriver()),
                       DriverCapabilities(pause: true, suspend: true, snapshot: true, rescue: true, diagnostics: true, resize: true,
                                          liveMigration: true, coldMigration: true, attachInterface: true, setAdminPassword: true))
        XCTAssertEqual(DriverCapabilities(of: BasicFakeDriver()), DriverCapabilities())
        let round = DriverCapabilities(pause: true, liveMigration: true)
        XCTAssertEqual(DriverCapabilities(json: round.json), round)
    }

    func testActionsTheHostsDriverCannotDoAreRefusedBeforeAnythingChanges() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(0)) { cloud, plane, api in
            // One host whose driver does only the base protocol.
            let agent = ComputeAgent(host: "basic-1", driver: BasicFakeDriver(), link: LocalAgentLink(conductor: plane.compute.conductor),
                                     images: NoImages(), heartbeatInterval: .seconds(1), logger: Logger(label: "basic-1"))
            let running = Task { await agent.run() }
            defer { running.cancel() }
            let admin = try await api.adminToken(cloud)
            let (id, host) = try await Compute.activeServer(api, admin: admin)
            XCTAssertEqual(host, "basic-1")
            let imagesBefore = try await api.call(.get, "/image/v2/images", token: admin).json["images"]?.arrayValue?.count
            let actionsBefore = try await Compute.call(api, .get, "/servers/\(id)/os-instance-actions", token: admin)
                .json["instanceActions"]?.arrayValue?.count

            for body: JSON in [["pause": .null], ["suspend": .null], ["createImage": ["name": "snap"]], ["shelve": .null],
                               ["rescue": .null], ["os-migrateLive": ["host": .null, "block_migration": "auto"]], ["migrate": .null],
                               ["resize": ["flavorRef": "1"]]] {
                let reply = try await Compute.call(api, .post, "/servers/\(id)/action", token: admin, body: body)
                XCTAssertEqual(reply.status, 501, "\(body.serialized()): \(reply.text)")
                XCTAssertEqual(reply.json["notImplemented"]?["code"]?.intValue, 501, reply.text)
            }
            let diagnostics = try await Compute.call(api, .get, "/servers/\(id)/diagnostics", token: admin)
            XCTAssertEqual(diagnostics.status, 501, diagnostics.text)

            let server = try await Compute.call(api, .get, "/servers/\(id)", token: admin)
            XCTAssertEqual(server.json["server"]?["status"], "ACTIVE", server.text)
            XCTAssertEqual(server.json["server"]?["OS-EXT-STS:task_state"], .null, server.text)
            let imagesAfter = try await api.call(.get, "/image/v2/images", token: admin).json["images"]?.arrayValue?.count
            XCTAssertEqual(imagesAfter, imagesBefore, "no snapshot image was made")
            let actionsAfter = try await Compute.call(api, .get, "/servers/\(id)/os-instance-actions", token: admin)
                .json["instanceActions"]?.arrayValue?.count
            XCTAssertEqual(actionsAfter, actionsBefore, "no action was recorded")

            // What every driver does still works.
            let stop = try await Compute.call(api, .post, "/servers/\(id)/action", token: admin, body: ["os-stop": .null])
            XCTAssertEqual(stop.status, 202, stop.text)
            _ = try await Compute.waitFor(api, id, token: admin, status: "SHUTOFF")
        }
    }
}

/// A host that never moves image data (its driver cannot snapshot).
struct NoImages: ImageTransfer {
    func download(imageID: String, to path: String) async throws { throw VirtError.failed("no image service in this test") }
    func upload(imageID: String, taking path: String, diskFormat: String) async throws { throw VirtError.failed("no image service in this test") }
}
