import NimbusCore
import NimbusTestSupport
import XCTest

/// `GET /v2/info/stores/detail`: each store's type and settings, for admins only.
final class ImageStoresDetailTests: XCTestCase {
    func testAdminsSeeEachStoresTypeAndSettings() async throws {
        try await onEachEngine(settings: ["glance_store": ["enabled_backends": "fast:file, cheap:file", "default_backend": "cheap"]]) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let reply = try await api.call(.get, "/image/v2/info/stores/detail", token: admin)
            XCTAssertEqual(reply.status, 200, reply.text)
            let stores = reply.json["stores"]?.arrayValue ?? []
            XCTAssertEqual(stores.compactMap { $0["id"]?.stringValue }, ["fast", "cheap"])
            for store in stores {
                XCTAssertEqual(store["type"]?.stringValue, "file")
                XCTAssertEqual(store["weight"]?.intValue, 0)
                XCTAssertTrue(store["properties"]?["data_dir"]?.stringValue?.hasPrefix(cloud.dataDir) ?? false, store.serialized())
                XCTAssertEqual(store["properties"]?["thin_provisioning"]?.boolValue, false)
            }
            XCTAssertEqual(stores.last?["default"]?.stringValue, "true")
            XCTAssertNil(stores.first?["default"])

            let member = try await api.projectUser(admin: admin, name: "stores-member")
            let refused = try await api.call(.get, "/image/v2/info/stores/detail", token: member.token)
            XCTAssertEqual(refused.status, 403, refused.text)
            let plain = try await api.call(.get, "/image/v2/info/stores", token: member.token)
            XCTAssertEqual(plain.status, 200, plain.text)
            XCTAssertNil(plain.json["stores"]?.arrayValue?.first?["properties"])
        }
    }
}
