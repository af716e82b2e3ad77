import Crypto
import Foundation

/// The token key repository, laid out as Keystone's fernet repository is: files named by
/// integers in one directory, each holding a base64url 256-bit key. `0` is the staged key (known
/// to every controller before it becomes primary, so a token encrypted by a controller that
/// rotated first can still be read), the highest number is the primary key that encrypts new
/// tokens, and the others are secondary keys that only decrypt.
public struct KeyRepository: Sendable {
    public let path: String
    public let maxActiveKeys: Int

    public init(path: String, maxActiveKeys: Int = 3) {
        self.path = path
        self.maxActiveKeys = max(maxActiveKeys, 2)
    }

    /// Creates the repository with a staged and a primary key if it has no keys.
    public func setUpIfNeeded() throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        if try keyIndexes().isEmpty {
            try writeKey(index: 0)
            try writeKey(index: 1)
        }
    }

    /// Promotes the staged key to primary, stages a new key, and drops the oldest secondary keys
    /// beyond `maxActiveKeys`. Returns the new primary index.
    @discardableResult
    public func rotate() throws -> Int {
        var indexes = try keyIndexes()
        if indexes.isEmpty {
            try setUpIfNeeded()
            indexes = try keyIndexes()
        }
        let newPrimary = (indexes.max() ?? 0) + 1
        try FileManager.default.moveItem(atPath: file(0), toPath: file(newPrimary))
        try writeKey(index: 0)
        let secondaries = try keyIndexes().filter { $0 != 0 && $0 != newPrimary }.sorted()
        let excess = secondaries.count - (maxActiveKeys - 2)
        if excess > 0 {
            for index in secondaries.prefix(excess) { try FileManager.default.removeItem(atPath: file(index)) }
        }
        return newPrimary
    }

    /// Keys ordered primary first, then the others from newest to oldest, staged last.
    public func loadKeys() throws -> [SymmetricKey] {
        let indexes = try keyIndexes().sorted(by: >)
        guard indexes.contains(where: { $0 != 0 }) else {
            throw TokenError.keyRepository("no primary key in \(path); run `nimbus manage token setup`")
        }
        let ordered = indexes.filter { $0 != 0 } + (indexes.contains(0) ? [0] : [])
        return try ordered.map { index in
            let text = try String(contentsOfFile: file(index), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            guard let data = Base64URL.decode(text), data.count == 32 else {
                throw TokenError.keyRepository("key file \(file(index)) does not hold a base64url 256-bit key")
            }
            return SymmetricKey(data: data)
        }
    }

    func keyIndexes() throws -> [Int] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: path).compactMap { Int($0) }
    }

    func file(_ index: Int) -> String { "\(path)/\(index)" }

    func writeKey(index: Int) throws {
        let key = SymmetricKey(size: .bits256).withUnsafeBytes { Base64URL.encode(Array($0)) }
        let temporary = file(index) + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(key.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw TokenError.keyRepository("cannot write key file in \(path)")
        }
        try? FileManager.default.removeItem(atPath: file(index))
        try FileManager.default.moveItem(atPath: temporary, toPath: file(index))
    }
}

public enum TokenError: Error, CustomStringConvertible {
    case keyRepository(String)
    public var description: String {
        switch self {
        case .keyRepository(let m): return m
        }
    }
}

/// URL-safe base64 without padding, as tokens and keys travel in headers and file names.
enum Base64URL {
    static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String) -> [UInt8]? {
        var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.count % 4 != 0 { s += "=" }
        return Data(base64Encoded: s).map { Array($0) }
    }
}
