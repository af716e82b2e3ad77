import Crypto
import Foundation
@testable import Identity
import NimbusTestSupport
import XCTest

final class TokenFormatTests: XCTestCase {
    func testSealOpenRoundTripAndTamperDetection() throws {
        let key = SymmetricKey(size: .bits256)
        let payload = TokenPayload(userID: "u1", methods: ["password", "token"], scope: .project("p1"), issuedAt: 1_700_000_000.123456,
                                   expiresAt: 1_700_003_600.5, auditIDs: ["a", "b"], applicationCredentialID: "c1")
        let token = try payload.seal(with: key)
        XCTAssertEqual(TokenPayload.open(token, keys: [key]), payload)
        XCTAssertNil(TokenPayload.open(token, keys: [SymmetricKey(size: .bits256)]))
        var tampered = Array(token)
        tampered[20] = tampered[20] == "A" ? "B" : "A"
        XCTAssertNil(TokenPayload.open(String(tampered), keys: [key]))
        XCTAssertNil(TokenPayload.open("garbage", keys: [key]))
    }

    func testTrustScopedPayloadRoundTrips() throws {
        let key = SymmetricKey(size: .bits256)
        for scope: TokenPayload.Scope in [.trust(id: "t1", projectID: "p1"), .trust(id: "t2", projectID: nil)] {
            let payload = TokenPayload(userID: "trustee", methods: ["password"], scope: scope, issuedAt: 1_700_000_000, expiresAt: 1_700_003_600,
                                       auditIDs: ["a"])
            let opened = TokenPayload.open(try payload.seal(with: key), keys: [key])
            XCTAssertEqual(opened, payload)
            XCTAssertEqual(opened?.trustID, payload.trustID)
        }
        XCTAssertEqual(TokenPayload(userID: "u", methods: [], scope: .trust(id: "t", projectID: "p"), issuedAt: 0, expiresAt: 1, auditIDs: []).projectID, "p")
    }

    func testRotationKeepsOlderTokensValidUntilTheirKeyIsPruned() throws {
        let dir = NSTemporaryDirectory() + "keys-" + UUID().uuidString
        let repo = KeyRepository(path: dir, maxActiveKeys: 3)
        try repo.setUpIfNeeded()
        let payload = TokenPayload(userID: "u", methods: ["password"], scope: .unscoped, issuedAt: 1, expiresAt: 2, auditIDs: ["x"])
        let before = try payload.seal(with: try repo.loadKeys()[0])
        try repo.rotate()
        XCTAssertNotNil(TokenPayload.open(before, keys: try repo.loadKeys()), "secondary key still opens it")
        let staged = try payload.seal(with: try repo.loadKeys().last!)
        try repo.rotate()
        XCTAssertNotNil(TokenPayload.open(staged, keys: try repo.loadKeys()), "the staged key became primary")
        XCTAssertNil(TokenPayload.open(before, keys: try repo.loadKeys()), "pruned beyond max_active_keys")
        XCTAssertEqual(try repo.keyIndexes().count, 3)
    }

    func testBcryptHashVerify() throws {
        let hasher = PasswordHasher(rounds: 4)
        let hash = try hasher.hash("s3cret")
        XCTAssertTrue(hash.hasPrefix("$2b$04$"))
        XCTAssertTrue(hasher.verify("s3cret", hash: hash))
        XCTAssertFalse(hasher.verify("s3creT", hash: hash))
        XCTAssertFalse(hasher.verify("s3cret", hash: "not-a-hash"))
        XCTAssertNotEqual(try hasher.hash("s3cret"), hash, "salted")
    }
}
