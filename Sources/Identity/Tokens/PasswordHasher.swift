import CCrypt
import Foundation

/// bcrypt through libxcrypt, as Keystone hashes passwords (its default: bcrypt, cost 12). The
/// cost is deliberate: it bounds how fast a stolen hash can be attacked, and so how fast the
/// `password` method can issue tokens.
public struct PasswordHasher: Sendable {
    public let rounds: Int

    public init(rounds: Int = 12) { self.rounds = min(max(rounds, 4), 31) }

    /// bcrypt reads at most 72 bytes; Keystone truncates the same way.
    static let maxPasswordBytes = 72

    public func hash(_ password: String) throws -> String {
        var settingBuffer = [CChar](repeating: 0, count: 128)
        guard crypt_gensalt_rn("$2b$", UInt(rounds), nil, 0, &settingBuffer, Int32(settingBuffer.count)) != nil else {
            throw PasswordHashError.failed("crypt_gensalt_rn: errno \(errno)")
        }
        let setting = String(decoding: settingBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let hashed = Self.crypt(password, setting: setting), hashed.hasPrefix("$2b$") else {
            throw PasswordHashError.failed("bcrypt is not available in libcrypt")
        }
        return hashed
    }

    /// Constant-time comparison of the recomputed hash.
    public func verify(_ password: String, hash: String) -> Bool {
        guard hash.hasPrefix("$2"), let computed = Self.crypt(password, setting: hash) else { return false }
        let a = Array(computed.utf8), b = Array(hash.utf8)
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    static func crypt(_ password: String, setting: String) -> String? {
        let truncated = String(decoding: Array(password.utf8.prefix(maxPasswordBytes)).filter { $0 != 0 }, as: UTF8.self)
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        defer { data.deallocate() }
        memset(data, 0, MemoryLayout<crypt_data>.size)
        guard let result = crypt_r(truncated, setting, data) else { return nil }
        let out = String(cString: result)
        return out.hasPrefix("*") ? nil : out
    }
}

public enum PasswordHashError: Error, CustomStringConvertible {
    case failed(String)
    public var description: String {
        switch self {
        case .failed(let m): return "password hashing failed: \(m)"
        }
    }
}
