import Foundation
import NimbusCore

/// Placement validates bodies and query strings with JSON schemas per microversion; these
/// helpers give the same outcomes (400 "JSON does not validate: …" naming the problem) for the
/// shapes placement accepts.
struct SchemaBody {
    let fields: [String: JSON]
    let path: String

    static func invalid(_ detail: String) -> APIError { APIError.badRequest("JSON does not validate: \(detail)") }

    init(_ json: JSON, path: String = "") throws {
        guard let fields = json.objectValue else { throw Self.invalid("\(json.shown) is not of type 'object'") }
        self.fields = fields
        self.path = path
    }

    func where_() -> String { path.isEmpty ? "" : " in \(path)" }

    /// Rejects keys outside `allowed` and requires `required`.
    func check(allowed: Set<String>, required: [String] = []) throws {
        if let extra = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw Self.invalid("Additional properties are not allowed ('\(extra)' was unexpected)\(where_())")
        }
        if let missing = required.first(where: { fields[$0] == nil }) {
            throw Self.invalid("'\(missing)' is a required property\(where_())")
        }
    }

    func string(_ key: String, maxLength: Int = 255, pattern: ((String) -> Bool)? = nil) throws -> String? {
        guard let value = fields[key] else { return nil }
        guard let s = value.stringValue else { throw Self.invalid("\(value.shown) is not of type 'string'\(where_())") }
        if s.isEmpty { throw Self.invalid("'' is too short\(where_())") }
        if s.count > maxLength { throw Self.invalid("'\(s.prefix(40))…' is too long\(where_())") }
        if let pattern, !pattern(s) { throw Self.invalid("'\(s)' does not match the required pattern\(where_())") }
        return s
    }

    func int(_ key: String, min: Int64, max: Int64 = Inventory.maxInteger) throws -> Int64? {
        guard let value = fields[key] else { return nil }
        guard case .int(let i) = value else { throw Self.invalid("\(value.shown) is not of type 'integer'\(where_())") }
        if i < min { throw Self.invalid("\(i) is less than the minimum of \(min)\(where_())") }
        if i > max { throw Self.invalid("\(i) is greater than the maximum of \(max)\(where_())") }
        return i
    }

    func number(_ key: String, max: Double) throws -> Double? {
        guard let value = fields[key] else { return nil }
        let d: Double
        switch value {
        case .int(let i): d = Double(i)
        case .double(let v): d = v
        default: throw Self.invalid("\(value.shown) is not of type 'number'\(where_())")
        }
        if d > max { throw Self.invalid("\(d) is greater than the maximum of \(max)\(where_())") }
        if d < 0 { throw Self.invalid("\(d) is less than the minimum of 0\(where_())") }
        return d
    }

    func object(_ key: String) throws -> [String: JSON]? {
        guard let value = fields[key] else { return nil }
        guard let o = value.objectValue else { throw Self.invalid("\(value.shown) is not of type 'object'\(where_())") }
        return o
    }

    func array(_ key: String) throws -> [JSON]? {
        guard let value = fields[key] else { return nil }
        guard let a = value.arrayValue else { throw Self.invalid("\(value.shown) is not of type 'array'\(where_())") }
        return a
    }

    /// A generation: an integer, or (where `nullable`) null, which is returned as `.some(nil)`.
    func generation(_ key: String, nullable: Bool = false) throws -> Int64?? {
        guard let value = fields[key] else { return nil }
        if value.isNull {
            guard nullable else { throw Self.invalid("None is not of type 'integer'\(where_())") }
            return .some(nil)
        }
        guard case .int(let i) = value else { throw Self.invalid("\(value.shown) is not of type 'integer'\(where_())") }
        return .some(i)
    }
}

extension JSON {
    /// The value as a validation message quotes it, shortened.
    var shown: String {
        let text = serialized()
        return text.count > 64 ? String(text.prefix(64)) + "…" : text
    }
}

enum PlacementNames {
    /// `^[A-Z0-9_]+$`: resource class and trait names, consumer types.
    static func isName(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 255 && s.utf8.allSatisfy { PlacementService.isNameByte($0) }
    }

    static func isHex(_ c: Character) -> Bool { c.isASCII && c.isHexDigit }

    /// A UUID in dashed or undashed form, normalised to dashed lower case; nil otherwise.
    static func uuid(_ s: String) -> String? {
        let lower = s.lowercased()
        if lower.count == 32, lower.allSatisfy(isHex) {
            let c = Array(lower)
            return String(c[0..<8]) + "-" + String(c[8..<12]) + "-" + String(c[12..<16]) + "-" + String(c[16..<20]) + "-" + String(c[20..<32])
        }
        guard lower.count == 36, UUID(uuidString: lower) != nil else { return nil }
        return lower
    }

    /// `^[0-9a-fA-F-]{36}$`: how allocation bodies key providers.
    static func isProviderKey(_ s: String) -> Bool {
        s.count == 36 && s.allSatisfy { isHex($0) || $0 == "-" }
    }
}

/// The query string as ordered (name, value) pairs, percent-decoded; names may repeat.
struct QueryString {
    let pairs: [(String, String)]

    init(_ query: String?) {
        guard let query, !query.isEmpty else {
            pairs = []
            return
        }
        pairs = query.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s)
            }
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    var names: [String] { pairs.map(\.0) }

    func values(_ name: String) -> [String] { pairs.filter { $0.0 == name }.map(\.1) }

    /// The last value, as a single-valued schema sees it.
    func last(_ name: String) -> String? { values(name).last }

    /// 400 for a parameter the version does not know.
    func allowOnly(_ allowed: (String) -> Bool) throws {
        if let bad = names.first(where: { !allowed($0) }) {
            throw APIError.badRequest("Invalid query string parameters: Additional properties are not allowed ('\(bad)' was unexpected)")
        }
    }
}

/// Parsers for the query grammar shared by `GET /resource_providers` and
/// `GET /allocation_candidates`.
enum PlacementQuery {
    static func badQuery(_ message: String) -> APIError { APIError.badRequest("Invalid query string parameters: \(message)") }

    /// `RC:amount,RC:amount`.
    static func resources(_ value: String, key: String = "resources") throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        guard !value.isEmpty else {
            throw APIError.badRequest("Badly formed \(key) parameter. Expected \(key) query string parameter in form: ?\(key)=VCPU:2,MEMORY_MB:1024. Got: empty string.")
        }
        for item in value.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw APIError.badRequest("Badly formed \(key) parameter. Expected \(key) query string parameter in form: ?\(key)=VCPU:2,MEMORY_MB:1024. Got: \(item).")
            }
            let rc = String(parts[0]).trimmingCharacters(in: .whitespaces)
            guard let amount = Int64(parts[1].trimmingCharacters(in: .whitespaces)), amount >= 1 else {
                throw APIError.badRequest("Requested resource \(rc) expected positive integer amount. Got: \(parts[1]).")
            }
            guard out[rc] == nil else {
                throw APIError(.badRequest, "Resource class \(rc) listed more than once in \(key) parameter.", code: PlacementService.Code.duplicateKey)
            }
            out[rc] = amount
        }
        return out
    }

    /// `required` values → all-of any-of sets and forbidden traits. Below 1.39 only the last
    /// value counts and `in:` is not understood; `!` needs 1.22.
    static func traits(_ values: [String], key: String, version: Microversion) throws -> (required: [Set<String>], forbidden: Set<String>) {
        let used = version >= Microversion(1, 39) ? values : Array(values.suffix(1))
        var required: [Set<String>] = []
        var forbidden: Set<String> = []
        for value in used {
            if version >= Microversion(1, 39), value.hasPrefix("in:") {
                let names = value.dropFirst(3).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                guard !names.isEmpty, names.allSatisfy({ !$0.isEmpty && !$0.hasPrefix("!") }) else {
                    throw badQuery("Expected '\(key)' parameter value of the form: in:HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: \(value)")
                }
                required.append(Set(names))
                continue
            }
            for item in value.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
                if item.isEmpty || item == "!" {
                    throw badQuery("Expected '\(key)' parameter value of the form: HW_CPU_X86_VMX,!CUSTOM_MAGIC. Got: \(value)")
                }
                if version >= Microversion(1, 22), item.hasPrefix("!") {
                    forbidden.insert(String(item.dropFirst()))
                } else {
                    required.append([item])
                }
            }
        }
        return (required, forbidden)
    }

    /// Every trait a parsed `required` names.
    static func traitNames(_ parsed: (required: [Set<String>], forbidden: Set<String>)) -> Set<String> {
        parsed.required.reduce(parsed.forbidden) { $0.union($1) }
    }

    /// `member_of` values → all-of any-of aggregate sets and forbidden aggregates.
    static func memberOf(_ values: [String], key: String, version: Microversion) throws -> (memberOf: [Set<String>], forbidden: Set<String>) {
        if values.count > 1 && version < Microversion(1, 24) {
            throw APIError.badRequest("Multiple member_of parameters are not supported until microversion 1.24.")
        }
        var memberOf: [Set<String>] = []
        var forbidden: Set<String> = []
        for value in values {
            var text = value
            var negative = false
            if text.hasPrefix("!") {
                guard version >= Microversion(1, 32) else {
                    throw badQuery("Forbidden member_of parameters are not supported in the specified microversion")
                }
                negative = true
                text.removeFirst()
            }
            var list: [String]
            if text.hasPrefix("in:") {
                list = text.dropFirst(3).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            } else {
                if text.contains(",") {
                    throw badQuery("Multiple values for '\(key)' must be prefixed with the 'in:' keyword. Got: \(value)")
                }
                list = [text]
            }
            var uuids: Set<String> = []
            for item in list {
                guard let uuid = PlacementNames.uuid(item) else {
                    throw badQuery("Expected '\(key)' parameter to contain valid UUID(s). Got: \(item)")
                }
                uuids.insert(uuid)
            }
            if negative {
                forbidden.formUnion(uuids)
            } else {
                memberOf.append(uuids)
            }
        }
        return (memberOf, forbidden)
    }

    static func uuid(_ value: String, key: String) throws -> String {
        guard let uuid = PlacementNames.uuid(value) else {
            throw badQuery("Failed validating 'format' in schema['properties']['\(key)']: '\(value)' is not a 'uuid'")
        }
        return uuid
    }
}
