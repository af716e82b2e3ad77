/// A JSON value, built only for the members the benchmark reads.
enum JSONValue {
    case string(String)
    case number(Double)
    case bool(Bool)
    case null
    indirect case object([String: JSONValue])
    indirect case array([JSONValue])

    var string: String? { if case .string(let s) = self { s } else { nil } }
    subscript(key: String) -> JSONValue? { if case .object(let o) = self { o[key] } else { nil } }
}

/// Reads a few members out of `{"server": {...}}` without building the rest: every polling
/// GET answer goes through here, and a full parse into dictionaries (what JSONSerialization
/// would do) would cost more than the request's system calls.
struct JSONScan {
    private let b: UnsafeRawBufferPointer
    private var i = 0

    private init(_ bytes: UnsafeRawBufferPointer) { b = bytes }

    /// The member names to read, as bytes once rather than on every answer.
    struct Keys {
        let outer: [UInt8]
        let names: [String]
        let bytes: [[UInt8]]
        init(outer: String, _ names: [String]) {
            self.outer = Array(outer.utf8)
            self.names = names
            self.bytes = names.map { Array($0.utf8) }
        }
    }

    /// The members of the object under `keys.outer` (a member of the top-level object) that
    /// are named in `keys`; the other members, and the other top-level members, are skipped.
    static func members(_ keys: Keys, in body: [UInt8]) throws -> [String: JSONValue] {
        try body.withUnsafeBytes { raw in
            var scan = JSONScan(raw)
            var found: [String: JSONValue]?
            try scan.eachMember { scan, name in
                if found == nil && scan.keyEquals(name, keys.outer) {
                    var members: [String: JSONValue] = [:]
                    try scan.eachMember { scan, name in
                        if let k = keys.bytes.firstIndex(where: { scan.keyEquals(name, $0) }) {
                            members[keys.names[k]] = try scan.value()
                        } else {
                            try scan.skip()
                        }
                    }
                    found = members
                } else {
                    try scan.skip()
                }
            }
            try scan.end()
            guard let found else {
                throw LoadError("no \"\(String(decoding: keys.outer, as: UTF8.self))\" object in the answer")
            }
            return found
        }
    }

    // --- the scanner -------------------------------------------------------------------

    /// A member name as it appears between its quotes.
    private struct Key {
        let start: Int
        let end: Int
        let escaped: Bool
    }

    private func fail(_ what: String) -> LoadError {
        LoadError("malformed JSON at byte \(i): \(what)")
    }

    private mutating func spaces() {
        while i < b.count {
            switch b[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    private mutating func expect(_ c: UInt8) throws {
        spaces()
        guard i < b.count, b[i] == c else { throw fail("expected '\(Character(Unicode.Scalar(c)))'") }
        i += 1
    }

    private mutating func end() throws {
        spaces()
        guard i == b.count else { throw fail("trailing data") }
    }

    /// Calls `body` for each member of the object that starts here, positioned at its value;
    /// `body` must consume the value.
    private mutating func eachMember(_ body: (inout JSONScan, Key) throws -> Void) throws {
        try expect(0x7B)  // {
        spaces()
        if i < b.count && b[i] == 0x7D { i += 1; return }
        while true {
            spaces()
            let key = try keySpan()
            try expect(0x3A)  // :
            spaces()
            try body(&self, key)
            spaces()
            guard i < b.count else { throw fail("unterminated object") }
            if b[i] == 0x2C { i += 1; continue }
            if b[i] == 0x7D { i += 1; return }
            throw fail("expected ',' or '}'")
        }
    }

    private mutating func keySpan() throws -> Key {
        guard i < b.count, b[i] == 0x22 else { throw fail("expected a member name") }
        let start = i + 1
        let escaped = try skipString()
        return Key(start: start, end: i - 1, escaped: escaped)
    }

    private func keyEquals(_ key: Key, _ name: [UInt8]) -> Bool {
        if key.escaped {
            var copy = JSONScan(b)
            copy.i = key.start - 1
            guard let decoded = try? copy.string() else { return false }
            return Array(decoded.utf8) == name
        }
        guard key.end - key.start == name.count else { return false }
        for (k, c) in name.enumerated() where b[key.start + k] != c { return false }
        return true
    }

    /// Moves past the string that starts here; whether it held escapes.
    @discardableResult
    private mutating func skipString() throws -> Bool {
        i += 1  // the opening quote
        var escaped = false
        while i < b.count {
            switch b[i] {
            case 0x22:
                i += 1
                return escaped
            case 0x5C:
                escaped = true
                i += 2
            default:
                i += 1
            }
        }
        throw fail("unterminated string")
    }

    private mutating func skip() throws {
        spaces()
        guard i < b.count else { throw fail("expected a value") }
        switch b[i] {
        case 0x22:
            try skipString()
        case 0x7B, 0x5B:  // { [ : skip to the matching bracket, stepping over strings
            var depth = 0
            repeat {
                guard i < b.count else { throw fail("unterminated object or array") }
                switch b[i] {
                case 0x22: try skipString(); continue
                case 0x7B, 0x5B: depth += 1
                case 0x7D, 0x5D: depth -= 1
                default: break
                }
                i += 1
            } while depth > 0
        default:  // number, true, false, null
            let start = i
            while i < b.count, !Self.isDelimiter(b[i]) { i += 1 }
            guard i > start else { throw fail("expected a value") }
        }
    }

    private static func isDelimiter(_ c: UInt8) -> Bool {
        c == 0x2C || c == 0x7D || c == 0x5D || c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D
    }

    private mutating func value() throws -> JSONValue {
        spaces()
        guard i < b.count else { throw fail("expected a value") }
        switch b[i] {
        case 0x22:
            return .string(try string())
        case 0x7B:
            var members: [String: JSONValue] = [:]
            try eachMember { scan, key in
                var name = JSONScan(scan.b)
                name.i = key.start - 1
                members[try name.string()] = try scan.value()
            }
            return .object(members)
        case 0x5B:
            i += 1
            var items: [JSONValue] = []
            spaces()
            if i < b.count && b[i] == 0x5D { i += 1; return .array(items) }
            while true {
                items.append(try value())
                spaces()
                guard i < b.count else { throw fail("unterminated array") }
                if b[i] == 0x2C { i += 1; continue }
                if b[i] == 0x5D { i += 1; return .array(items) }
                throw fail("expected ',' or ']'")
            }
        default:
            let start = i
            while i < b.count, !Self.isDelimiter(b[i]) { i += 1 }
            let word = String(decoding: UnsafeRawBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
            switch word {
            case "true": return .bool(true)
            case "false": return .bool(false)
            case "null": return .null
            default:
                guard let number = Double(word) else { throw fail("unexpected \(word)") }
                return .number(number)
            }
        }
    }

    private mutating func string() throws -> String {
        guard i < b.count, b[i] == 0x22 else { throw fail("expected a string") }
        i += 1
        let start = i
        while i < b.count, b[i] != 0x22, b[i] != 0x5C { i += 1 }
        if i < b.count, b[i] == 0x22 {  // no escapes: the common case
            defer { i += 1 }
            return String(decoding: UnsafeRawBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
        }
        var bytes = Array(b[start..<i])
        while i < b.count {
            let c = b[i]
            i += 1
            if c == 0x22 { return String(decoding: bytes, as: UTF8.self) }
            guard c == 0x5C else { bytes.append(c); continue }
            guard i < b.count else { break }
            let e = b[i]
            i += 1
            switch e {
            case 0x62: bytes.append(0x08)  // b
            case 0x66: bytes.append(0x0C)  // f
            case 0x6E: bytes.append(0x0A)  // n
            case 0x72: bytes.append(0x0D)  // r
            case 0x74: bytes.append(0x09)  // t
            case 0x75:  // uXXXX, possibly a surrogate pair
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar), i + 1 < b.count, b[i] == 0x5C, b[i + 1] == 0x75 {
                    i += 2
                    let low = try hex4()
                    scalar = (0xDC00..<0xE000).contains(low) ? 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00) : 0xFFFD
                }
                bytes.append(contentsOf: String(Character(Unicode.Scalar(scalar) ?? "\u{FFFD}")).utf8)
            default: bytes.append(e)  // " \ /
            }
        }
        throw fail("unterminated string")
    }

    private mutating func hex4() throws -> UInt32 {
        guard i + 4 <= b.count else { throw fail("short \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = b[i]
            i += 1
            switch c {
            case 0x30...0x39: v = v * 16 + UInt32(c - 0x30)
            case 0x41...0x46: v = v * 16 + UInt32(c - 0x41 + 10)
            case 0x61...0x66: v = v * 16 + UInt32(c - 0x61 + 10)
            default: throw fail("bad \\u escape")
            }
        }
        return v
    }
}
