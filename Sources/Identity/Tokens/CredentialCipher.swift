import Crypto
import Foundation
import NimbusStore

/// How credential blobs are encrypted at rest: AES-256-GCM under the primary key of the
/// credential key repository (`DATA/credential-keys`, laid out and rotated as the token keys
/// are), stored as base64 of nonce ‖ ciphertext ‖ tag. Any key of the repository opens a blob.
public enum CredentialCipher {
    /// The repository of a data directory.
    public static func repository(dataDir: String) -> KeyRepository { KeyRepository(path: "\(dataDir)/credential-keys") }

    static func seal(_ blob: String, key: SymmetricKey) throws -> String {
        guard let combined = try AES.GCM.seal(Data(blob.utf8), using: key).combined else {
            throw TokenError.keyRepository("AES-GCM produced no combined box")
        }
        return combined.base64EncodedString()
    }

    /// nil when no key opens it (a key pruned before the blob was re-encrypted, or tampering).
    static func open(_ stored: String, keys: [SymmetricKey]) -> String? {
        guard let data = Data(base64Encoded: stored), let box = try? AES.GCM.SealedBox(combined: data) else { return nil }
        for key in keys {
            if let plain = try? AES.GCM.open(box, using: key) { return String(decoding: plain, as: UTF8.self) }
        }
        return nil
    }

    /// Rotates the repository (the staged key becomes primary) and re-encrypts every stored
    /// credential under the new primary, as `keystone-manage credential_rotate` followed by
    /// `credential_migrate` do, so that the next rotation can prune the old primary without
    /// losing a credential. Refuses, changing nothing, when a stored blob opens with no key.
    /// Returns the new primary index and how many credentials were re-encrypted.
    public static func rotate(_ repository: KeyRepository, db: any Database) async throws -> (primary: Int, reencrypted: Int) {
        try repository.setUpIfNeeded()
        let before = try repository.loadKeys()
        let unreadable = try await db.query("SELECT id, blob FROM identity_credential", []).filter { open($0.string("blob"), keys: before) == nil }
        guard unreadable.isEmpty else {
            throw TokenError.keyRepository("\(unreadable.count) credential(s) open with no key in \(repository.path) (first: \(unreadable[0].string("id"))); not rotating")
        }
        let primary = try repository.rotate()
        guard let newPrimary = try repository.loadKeys().first else { throw TokenError.keyRepository("no primary key after rotation") }
        // Sealed outside the transaction (keys are not Sendable); each row is replaced only if
        // nobody changed it meanwhile. A row written meanwhile by a server still encrypting
        // with the old primary stays readable (that key is now a secondary one) and is
        // re-encrypted by the next rotation, which checks every blob first.
        var updates: [(id: String, old: String, new: String)] = []
        for row in try await db.query("SELECT id, blob FROM identity_credential", []) {
            guard let plain = open(row.string("blob"), keys: before + [newPrimary]) else { continue }
            updates.append((row.string("id"), row.string("blob"), try seal(plain, key: newPrimary)))
        }
        let planned = updates
        let count = try await db.transaction { x -> Int in
            var count = 0
            for update in planned {
                count += try await x.execute("UPDATE identity_credential SET blob = ? WHERE id = ? AND blob = ?",
                                             [.text(update.new), .text(update.id), .text(update.old)])
            }
            return count
        }
        return (primary, count)
    }
}
