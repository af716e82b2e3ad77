import Crypto
import Foundation

/// What a token says, sealed inside it so that validation needs no token table: who, how they
/// authenticated, on what scope, when it was issued and expires, and its audit chain. Roles are
/// not in the payload; they are looked up at validation so that a removed role stops working at
/// once (as in Keystone's fernet tokens).
public struct TokenPayload: Sendable, Equatable {
    public enum Scope: Sendable, Equatable {
        case unscoped
        case project(String)
        case domain(String)
        case system
        /// Scoped to an OS-TRUST trust (Keystone's trust-scoped payload): the trust's project
        /// and roles, for its trustee. `projectID` is nil for a trust that names no project.
        case trust(id: String, projectID: String?)
    }

    public var userID: String
    public var methods: [String]
    public var scope: Scope
    /// Seconds since the epoch, with microsecond precision.
    public var issuedAt: Double
    public var expiresAt: Double
    /// The token's own audit id, then the audit id of the token it was re-scoped from, if any.
    public var auditIDs: [String]
    public var applicationCredentialID: String?

    /// The trust the token is scoped to, if any.
    public var trustID: String? {
        if case .trust(let id, _) = scope { return id }
        return nil
    }

    /// The project the token acts on: its project scope or its trust's project.
    public var projectID: String? {
        switch scope {
        case .project(let id): return id
        case .trust(_, let project): return project
        default: return nil
        }
    }

    /// Append-only: a method's bit position is part of the token format.
    static let methodBits: [String] = ["password", "token", "application_credential", "totp", "external", "mapped", "ec2credential"]
    static let formatVersion: UInt8 = 1

    public static func newAuditID() -> String {
        Base64URL.encode((0..<16).map { _ in UInt8.random(in: 0...255) })
    }

    // MARK: Sealing

    /// AES-256-GCM over a compact binary encoding; the token is `N` + base64url(nonce ‖ ciphertext ‖ tag).
    /// The prefix lets a future format coexist.
    public func seal(with key: SymmetricKey) throws -> String {
        let box = try AES.GCM.seal(encode(), using: key)
        guard let combined = box.combined else { throw TokenError.keyRepository("AES-GCM produced no combined box") }
        return "N" + Base64URL.encode(Array(combined))
    }

    /// Tries each key (primary first). Returns nil for anything that is not a token sealed by one of them.
    public static func open(_ token: String, keys: [SymmetricKey]) -> TokenPayload? {
        guard token.first == "N", token.utf8.count < 1024, let bytes = Base64URL.decode(String(token.dropFirst())),
              let box = try? AES.GCM.SealedBox(combined: bytes)
        else { return nil }
        for key in keys {
            if let plain = try? AES.GCM.open(box, using: key) {
                return decode(Array(plain))
            }
        }
        return nil
    }

    // MARK: Encoding

    func encode() -> [UInt8] {
        var out: [UInt8] = [Self.formatVersion]
        var bits: UInt8 = 0
        for method in methods { if let i = Self.methodBits.firstIndex(of: method) { bits |= 1 << UInt8(i) } }
        out.append(bits)
        Self.put(userID, &out)
        switch scope {
        case .unscoped: out.append(0)
        case .project(let id): out.append(1); Self.put(id, &out)
        case .domain(let id): out.append(2); Self.put(id, &out)
        case .system: out.append(3)
        case .trust(let id, let project): out.append(4); Self.put(id, &out); Self.put(project ?? "", &out)
        }
        Self.put(UInt64(issuedAt * 1_000_000), &out)
        Self.put(UInt64(expiresAt * 1_000_000), &out)
        out.append(UInt8(auditIDs.count))
        for id in auditIDs { Self.put(id, &out) }
        if let applicationCredentialID {
            out.append(1)
            Self.put(applicationCredentialID, &out)
        } else {
            out.append(0)
        }
        return out
    }

    static func decode(_ bytes: [UInt8]) -> TokenPayload? {
        var reader = Reader(bytes: bytes)
        guard reader.byte() == formatVersion, let bits = reader.byte(), let user = reader.string(), let scopeKind = reader.byte() else { return nil }
        let methods = methodBits.enumerated().filter { bits & (1 << UInt8($0.offset)) != 0 }.map(\.element)
        let scope: Scope
        switch scopeKind {
        case 0: scope = .unscoped
        case 1: guard let id = reader.string() else { return nil }; scope = .project(id)
        case 2: guard let id = reader.string() else { return nil }; scope = .domain(id)
        case 3: scope = .system
        case 4:
            guard let id = reader.string(), let project = reader.string() else { return nil }
            scope = .trust(id: id, projectID: project.isEmpty ? nil : project)
        default: return nil
        }
        guard let issued = reader.uint64(), let expires = reader.uint64(), let auditCount = reader.byte() else { return nil }
        var audits: [String] = []
        for _ in 0..<auditCount {
            guard let id = reader.string() else { return nil }
            audits.append(id)
        }
        var appCred: String?
        guard let hasAppCred = reader.byte() else { return nil }
        if hasAppCred == 1 {
            guard let id = reader.string() else { return nil }
            appCred = id
        }
        return TokenPayload(userID: user, methods: methods, scope: scope, issuedAt: Double(issued) / 1_000_000,
                            expiresAt: Double(expires) / 1_000_000, auditIDs: audits, applicationCredentialID: appCred)
    }

    static func put(_ s: String, _ out: inout [UInt8]) {
        let utf8 = Array(s.utf8.prefix(255))
        out.append(UInt8(utf8.count))
        out.append(contentsOf: utf8)
    }

    static func put(_ v: UInt64, _ out: inout [UInt8]) {
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
    }

    struct Reader {
        let bytes: [UInt8]
        var i = 0
        mutating func byte() -> UInt8? {
            guard i < bytes.count else { return nil }
            defer { i += 1 }
            return bytes[i]
        }
        mutating func string() -> String? {
            guard let n = byte(), i + Int(n) <= bytes.count else { return nil }
            defer { i += Int(n) }
            return String(decoding: bytes[i..<i + Int(n)], as: UTF8.self)
        }
        mutating func uint64() -> UInt64? {
            guard i + 8 <= bytes.count else { return nil }
            var v: UInt64 = 0
            for _ in 0..<8 { v = v << 8 | UInt64(bytes[i]); i += 1 }
            return v
        }
    }
}
