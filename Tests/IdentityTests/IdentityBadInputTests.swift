import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

/// Request input that once reached a trapping operation in Keystone's API (issue #12).
final class IdentityBadInputTests: XCTestCase {
    /// An application credential's `expires_at` with a year past `Int32` trapped in the
    /// timestamp parser; one with a `.5e300` fraction parsed to an infinite date, passed the
    /// "in the future" check and trapped when the response printed it. Both are 400 now.
    func testApplicationCredentialExpiryOutOfRange() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let selfCheck = try await api.call(.get, "/identity/v3/auth/tokens", token: admin, headers: ["X-Subject-Token": admin])
            let adminUser = try XCTUnwrap(selfCheck.json["token"]?["user"]?["id"]?.stringValue, selfCheck.text)
            let path = "/identity/v3/users/\(adminUser)/application_credentials"
            for (index, expiry) in ["99999999999-01-01T00:00:00", "2999-01-01T00:00:00.5e300", "2999-01-01T00:00:99999999999", "10000-01-01T00:00:00"].enumerated() {
                let reply = try await api.call(.post, path, token: admin,
                                               body: ["application_credential": ["name": .string("bad-\(index)"), "expires_at": .string(expiry)]])
                assertKeystoneError(reply, 400)
            }
            let fine = try await api.call(.post, path, token: admin,
                                          body: ["application_credential": ["name": "fine", "expires_at": "9999-12-31T23:59:59.5"]])
            XCTAssertEqual(fine.status, 201, fine.text)
            XCTAssertEqual(fine.json["application_credential"]?["expires_at"]?.stringValue, "9999-12-31T23:59:59.500000")
            let listed = try await api.call(.get, path, token: admin)
            XCTAssertEqual(listed.json["application_credentials"]?.arrayValue?.count, 1, listed.text)
        }
    }
}
