import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

final class NetworkingAPITests: XCTestCase {
    func testVersionDocumentAndExtensionsNeedNoTokenOnlyForDiscovery() async throws {
        try await onEachEngine { cloud, api in
            let versions = try await api.call(.get, "/networking")
            XCTAssertEqual(versions.status, 200, versions.text)
            XCTAssertEqual(versions.json["versions"]?.arrayValue?.first?["id"]?.stringValue, "v2.0")
            let anonymous = try await api.neutron(.get, "/extensions", token: nil)
            XCTAssertEqual(anonymous.status, 401, anonymous.text)
            let admin = try await api.adminToken(cloud)
            let extensions = try await api.neutron(.get, "/extensions", token: admin)
            XCTAssertEqual(extensions.status, 200, extensions.text)
            XCTAssertNotNil(extensions.json["extensions"]?.arrayValue)
            assertNeutronError(try await api.neutron(.get, "/extensions/no-such-thing", token: admin), 404, type: "ExtensionNotFound")
        }
    }
}
