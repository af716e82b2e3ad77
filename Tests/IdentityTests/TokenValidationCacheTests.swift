import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

/// `GET /v3/auth/tokens` sends a cached rendering of the token; whatever changes the token's
/// meaning or the catalog must show in the next validation all the same.
final class TokenValidationCacheTests: XCTestCase {
    func testCachedValidationBodiesFollowChanges() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            func validate(_ query: String = "") async throws -> JSON {
                let reply = try await api.call(.get, "/identity/v3/auth/tokens\(query)", token: admin, headers: ["X-Subject-Token": admin])
                XCTAssertEqual(reply.status, 200, reply.text)
                return reply.json["token"] ?? .null
            }
            let first = try await validate()
            let services = first["catalog"]?.arrayValue?.count ?? 0
            XCTAssertGreaterThan(services, 0)
            let again = try await validate()
            XCTAssertEqual(again, first)
            let bare = try await validate("?nocatalog")
            XCTAssertNil(bare["catalog"])

            // A new service with an endpoint is in the next body.
            let service = try await api.create("services", "service", ["type": "cache-test", "name": "cache-test"], token: admin)
            _ = try await api.create("endpoints", "endpoint", ["service_id": .string(service), "interface": "public",
                                                               "url": "http://example.test/x", "region_id": "RegionOne"], token: admin)
            let second = try await validate()
            XCTAssertEqual(second["catalog"]?.arrayValue?.count, services + 1)
            let bareAgain = try await validate("?nocatalog")
            XCTAssertNil(bareAgain["catalog"])

            // A role granted to the token's user on its project is in the next body.
            let role = try await api.create("roles", "role", ["name": "cache-role"], token: admin)
            let project = try XCTUnwrap(first["project"]?["id"]?.stringValue)
            let user = try XCTUnwrap(first["user"]?["id"]?.stringValue)
            let granted = try await api.call(.put, "/identity/v3/projects/\(project)/users/\(user)/roles/\(role)", token: admin)
            XCTAssertEqual(granted.status, 204, granted.text)
            let roles = try await validate()["roles"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
            XCTAssertTrue(roles.contains("cache-role"), "\(roles)")
        }
    }
}
