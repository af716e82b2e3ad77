import Foundation
import HTTPTypes
@testable import Identity
import Logging
import NimbusCore
import NimbusServer
import NimbusStore
import NimbusTestSupport
import XCTest

/// `nimbus manage credential rotate`: the credential keys rotate like the token keys, and every
/// stored credential is re-encrypted under the new primary so the next rotation loses none.
final class CredentialKeyRotationTests: XCTestCase {
    func testRotationReencryptsAndKeepsCredentialsReadable() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let users = try await api.call(.get, "/identity/v3/users?name=admin", token: admin)
            let adminID = try XCTUnwrap(users.json["users"]?.arrayValue?.first?["id"]?.stringValue)
            let id = try await api.create("credentials", "credential", ["user_id": .string(adminID), "type": "totp", "blob": "seed-1234"], token: admin)
            let repository = CredentialCipher.repository(dataDir: cloud.dataDir)
            let originalPrimary = try XCTUnwrap(try repository.loadKeys().first)
            let before = try await cloud.rawColumn("SELECT blob FROM identity_credential")

            let first = try await Manage.rotateCredentialKeys(dataDir: cloud.dataDir, database: cloud.databaseURL)
            XCTAssertEqual(first.primary, 2)
            XCTAssertEqual(first.reencrypted, 1)
            let after = try await cloud.rawColumn("SELECT blob FROM identity_credential")
            XCTAssertNotEqual(after, before)
            XCTAssertNil(CredentialCipher.open(after[0], keys: [originalPrimary]), "no longer under the old primary")
            XCTAssertEqual(CredentialCipher.open(after[0], keys: try repository.loadKeys()), "seed-1234")
            // The running server reads it: the new primary was its staged key.
            let shown = try await api.call(.get, "/identity/v3/credentials/\(id)", token: admin)
            XCTAssertEqual(shown.json["credential"]?["blob"]?.stringValue, "seed-1234", shown.text)

            // The second rotation prunes the first primary; the credential survives it.
            let second = try await Manage.rotateCredentialKeys(dataDir: cloud.dataDir, database: cloud.databaseURL)
            XCTAssertEqual(second.primary, 3)
            XCTAssertEqual(try repository.keyIndexes().sorted(), [0, 2, 3])
            let last = try await cloud.rawColumn("SELECT blob FROM identity_credential")
            XCTAssertEqual(CredentialCipher.open(last[0], keys: try repository.loadKeys()), "seed-1234")

            // A blob no key opens stops the rotation before anything changes.
            let db = try await DatabaseFactory.open(url: cloud.databaseURL, logger: Logger(label: "test"))
            _ = try await db.execute("INSERT INTO identity_credential (id, user_id, project_id, type, blob, extra) VALUES ('bad', ?, NULL, 'totp', 'AAAA', '{}')",
                                     [.text(adminID)])
            await db.close()
            do {
                _ = try await Manage.rotateCredentialKeys(dataDir: cloud.dataDir, database: cloud.databaseURL)
                XCTFail("rotated over an unreadable credential")
            } catch {
                XCTAssertTrue("\(error)".contains("1 credential(s) open with no key"), "\(error)")
            }
            XCTAssertEqual(try repository.keyIndexes().sorted(), [0, 2, 3])
        }
    }
}
