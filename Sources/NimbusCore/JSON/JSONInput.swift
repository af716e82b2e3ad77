import Synchronization

/// Typed access to a request body's fields. Each accessor throws a 400 naming the field when the
/// value has the wrong type, the way OpenStack's JSON-schema validation answers, so handlers
/// never see a half-checked body.
public struct JSONInput: Sendable {
    public let fields: [String: JSON]
    /// Dotted path of this object inside the body, for messages (`user`, `auth.identity`).
    public let path: String

    public init(_ fields: [String: JSON], path: String) {
        self.fields = fields
        self.path = path
    }

    /// The object under `key` of a whole body: `{"user": {...}}`.
    public init(body: JSON, key: String) throws {
        JSONFieldLog.current?.note(key, .object)
        guard let object = body.objectValue else {
            throw APIError.badRequest("Invalid input: the request body must be a JSON object.")
        }
        guard let inner = object[key] else {
            throw APIError.badRequest("Invalid input for field '\(key)': '\(key)' is a required property.")
        }
        guard let fields = inner.objectValue else {
            throw APIError.badRequest("Invalid input for field '\(key)': \(inner.serialized()) is not of type 'object'.")
        }
        self.init(fields, path: key)
    }

    /// The objects of a list under `key` of a whole body: `{"limits": [{...}, ...]}`, for the
    /// APIs that create in batches. The list must not be empty; each item's path is
    /// `key[index]`.
    public static func list(body: JSON, key: String) throws -> [JSONInput] {
        JSONFieldLog.current?.note(key, .objectList)
        guard let object = body.objectValue else {
            throw APIError.badRequest("Invalid input: the request body must be a JSON object.")
        }
        guard let inner = object[key] else {
            throw APIError.badRequest("Invalid input for field '\(key)': '\(key)' is a required property.")
        }
        guard let items = inner.arrayValue else {
            throw APIError.badRequest("Invalid input for field '\(key)': \(shortened(inner)) is not of type 'array'.")
        }
        guard !items.isEmpty else { throw APIError.badRequest("Invalid input for field '\(key)': [] is too short.") }
        return try items.enumerated().map { index, item in
            guard let fields = item.objectValue else {
                throw APIError.badRequest("Invalid input for field '\(key)[\(index)]': \(shortened(item)) is not of type 'object'.")
            }
            return JSONInput(fields, path: "\(key)[\(index)]")
        }
    }

    static func shortened(_ value: JSON) -> String {
        let shown = value.serialized()
        return shown.count > 64 ? String(shown.prefix(64)) + "…" : shown
    }

    func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// Rejects fields outside `allowed`, as a schema with `additionalProperties: false` does.
    public func rejectUnknown(_ allowed: Set<String>) throws {
        if let log = JSONFieldLog.current {
            for key in allowed where !log.knows(name(key)) { log.note(name(key), .unknown) }
        }
        let unknown = fields.keys.filter { !allowed.contains($0) }.sorted()
        guard unknown.isEmpty else {
            let listed = unknown.map { "'\($0)'" }.joined(separator: ", ")
            throw APIError.badRequest("Invalid input for field '\(path)': Additional properties are not allowed (\(listed) \(unknown.count == 1 ? "was" : "were") unexpected).")
        }
    }

    func typeError(_ key: String, _ value: JSON, _ type: String) -> APIError {
        APIError.badRequest("Invalid input for field '\(name(key))': \(Self.shortened(value)) is not of type '\(type)'.")
    }

    public func has(_ key: String) -> Bool { fields[key] != nil }

    /// Notes a field a handler asks for, when a `JSONFieldLog` is listening.
    func read(_ key: String, as kind: JSONFieldLog.Kind) {
        JSONFieldLog.current?.note(name(key), kind)
    }

    /// Present and not null.
    public func string(_ key: String) throws -> String? {
        read(key, as: .string)
        guard let value = fields[key], !value.isNull else { return nil }
        guard let s = value.stringValue else { throw typeError(key, value, "string") }
        return s
    }

    /// Present, a string, and within length bounds.
    public func requiredString(_ key: String, maxLength: Int = 255, allowEmpty: Bool = false) throws -> String {
        guard let s = try string(key) else {
            throw APIError.badRequest("Invalid input for field '\(name(key))': '\(key)' is a required property.")
        }
        try checkLength(key, s, maxLength: maxLength, allowEmpty: allowEmpty)
        return s
    }

    public func optionalString(_ key: String, maxLength: Int = 255, allowEmpty: Bool = true) throws -> String? {
        guard let s = try string(key) else { return nil }
        try checkLength(key, s, maxLength: maxLength, allowEmpty: allowEmpty)
        return s
    }

    func checkLength(_ key: String, _ s: String, maxLength: Int, allowEmpty: Bool) throws {
        if !allowEmpty && s.trimmingCharacters(in: .whitespaces).isEmpty {
            throw APIError.badRequest("Invalid input for field '\(name(key))': '\(s)' is too short.")
        }
        if s.count > maxLength {
            throw APIError.badRequest("Invalid input for field '\(name(key))': '\(s.prefix(32))…' is too long (maximum \(maxLength)).")
        }
    }

    public func bool(_ key: String) throws -> Bool? {
        read(key, as: .boolean)
        guard let value = fields[key], !value.isNull else { return nil }
        guard let b = value.boolValue else { throw typeError(key, value, "boolean") }
        return b
    }

    public func int(_ key: String) throws -> Int64? {
        read(key, as: .integer)
        guard let value = fields[key], !value.isNull else { return nil }
        guard let i = value.intValue else { throw typeError(key, value, "integer") }
        return i
    }

    /// An integer within `range`, as JSON Schema's `minimum` and `maximum` bound it.
    public func int(_ key: String, in range: ClosedRange<Int64>) throws -> Int64? {
        guard let i = try int(key) else { return nil }
        if i < range.lowerBound {
            throw APIError.badRequest("Invalid input for field '\(name(key))': \(i) is less than the minimum of \(range.lowerBound).")
        }
        if i > range.upperBound {
            throw APIError.badRequest("Invalid input for field '\(name(key))': \(i) is greater than the maximum of \(range.upperBound).")
        }
        return i
    }

    public func requiredInt(_ key: String, in range: ClosedRange<Int64>) throws -> Int64 {
        guard let i = try int(key, in: range) else {
            throw APIError.badRequest("Invalid input for field '\(name(key))': '\(key)' is a required property.")
        }
        return i
    }

    public func object(_ key: String) throws -> JSONInput? {
        read(key, as: .object)
        guard let value = fields[key], !value.isNull else { return nil }
        guard let o = value.objectValue else { throw typeError(key, value, "object") }
        return JSONInput(o, path: name(key))
    }

    public func requiredObject(_ key: String) throws -> JSONInput {
        guard let o = try object(key) else {
            throw APIError.badRequest("Invalid input for field '\(name(key))': '\(key)' is a required property.")
        }
        return o
    }

    public func array(_ key: String) throws -> [JSON]? {
        read(key, as: .array)
        guard let value = fields[key], !value.isNull else { return nil }
        guard let a = value.arrayValue else { throw typeError(key, value, "array") }
        return a
    }

    public func stringArray(_ key: String) throws -> [String]? {
        guard let items = try array(key) else { return nil }
        return try items.map { item in
            guard let s = item.stringValue else { throw typeError(key, item, "string") }
            return s
        }
    }

    /// Fields not in `known`, for services that keep unknown attributes as "extra" (Keystone).
    public func extras(excluding known: Set<String>) -> [String: JSON] {
        fields.filter { !known.contains($0.key) }
    }
}

/// The body fields request handlers ask `JSONInput` for, by dotted path (`server.flavorRef`,
/// `security_group_rules[0].protocol`) and expected type. Nothing listens in a running cloud;
/// the route-wide bad-input test installs one around each request, so it learns every route's
/// request fields from the handlers themselves and a new field is fuzzed the day it is added.
public final class JSONFieldLog: Sendable {
    public enum Kind: String, Sendable {
        case string, boolean, integer, object, array
        /// A non-empty list of objects (`JSONInput.list`).
        case objectList
        /// Named by `rejectUnknown` as allowed, type not known.
        case unknown
    }

    @TaskLocal public static var current: JSONFieldLog?

    private let seen = Mutex<[String: Kind]>([:])

    public init() {}

    public func note(_ path: String, _ kind: Kind) {
        seen.withLock { fields in
            if fields[path] == nil || fields[path] == .unknown { fields[path] = kind }
        }
    }

    public func knows(_ path: String) -> Bool { seen.withLock { $0[path] != nil } }

    /// Every field asked for so far, path → type.
    public var fields: [String: Kind] { seen.withLock { $0 } }
}
