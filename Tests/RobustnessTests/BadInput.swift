import Foundation
import NimbusCore

/// A seeded generator (SplitMix64), so a run's requests are the same on every machine and a
/// failure can be replayed from the seed the test prints.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Up to `count` elements of `items`, in a seeded order (all of them when there are fewer).
    mutating func sample<T>(_ items: [T], _ count: Int) -> [T] {
        items.count <= count ? items : Array(items.shuffled(using: &self).prefix(count))
    }
}

/// The malformed values a request is built from: the boundaries and wrong types OpenStack's
/// JSON schemas and query validators refuse.
enum BadValues {
    static let long = String(repeating: "a", count: 70_000)

    /// Replacements for one body field, whatever its expected type.
    static func forField(_ kind: JSONFieldLog.Kind) -> [JSON] {
        var values: [JSON] = [.int(-1), .int(0), .int(2_147_483_648), .int(Int64.max), .int(Int64.min), .double(1e30), .double(-0.5),
                              .string(""), .string(long), .string("名前ü🙂"), .string("a\u{0}b"), .string("-1"), .string("../../x"),
                              .null, .bool(true), .array([]), .object([:]), .array([.null]), .object(["": .null])]
        switch kind {
        case .objectList: values.append(.array([.object([:]), .int(1)]))
        case .string: values.append(.string(" "))
        default: break
        }
        return values
    }

    /// Values for a query parameter.
    static let query: [String] = ["-1", "0", "2147483648", "9223372036854775807", "99999999999999999999999999999999", "1e30", "",
                                  "abc", "ü", "%00", String(repeating: "z", count: 5_000), "in:", "gt:bogus", "in:a,,b", ",,,",
                                  "true&x", "-", "null", "[]", "2026-13-45T99:99:99Z"]

    /// Path-parameter values other than a real id.
    static let ids: [String] = ["00000000-0000-0000-0000-000000000000", "-1", "0", String(repeating: "x", count: 300),
                                "%C3%BC%F0%9F%99%82", "%00", "..", "a%2Fb", "9223372036854775808"]

    /// Whole bodies that are not what any route expects.
    static let bodies: [String] = {
        var bodies = ["", "{", "{\"a\":", "[", "nul", "{}", "[]", "\"text\"", "1", "-1", "null", "true", "1e999999",
                      "{\"a\":1,\"a\":2}", "{\"\":{}}", "\u{FEFF}{}", "{\"a\":\"\\ud800\"}", "[{}]", "{\"a\":[1,{\"b\":null}]}",
                      String(repeating: "[", count: 100_000), String(repeating: "{\"a\":", count: 50_000) + "1" + String(repeating: "}", count: 50_000),
                      "{\"x\":\"" + long + "\"}"]
        bodies.append(String(decoding: [0x7B, 0xFF, 0xFE, 0x7D], as: UTF8.self))
        return bodies
    }()

    /// `OpenStack-API-Version` values per service that has microversions, good and bad.
    static let microversions: [String: [String]] = [
        "compute": ["compute 2.1", "compute 2.37", "compute 2.100", "compute 2.101", "compute 2.-1", "compute 99999999999999999999.1",
                    "compute 2.", "compute latest latest", "compute", "", "placement 1.1"],
        "placement": ["placement 1.0", "placement 1.10", "placement 1.39", "placement 1.40", "placement 1.-1",
                      "placement 1.99999999999999999999", "placement x.y", "placement", "compute 2.1"],
    ]

    static let contentTypes = ["text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                               "application/json; charset=utf-16", "application/json-patch+json",
                               "application/openstack-images-v2.1-json-patch", "application/octet-stream", ""]
}

/// One route as the router registered it: a method and a template whose `{name}` segments are
/// path parameters.
struct RouteTemplate: Hashable, CustomStringConvertible {
    let method: String
    let template: String

    var description: String { "\(method) \(template)" }

    var segments: [Substring] { template.split(separator: "/") }

    /// The service the route belongs to, by its first path segment.
    var service: String { segments.first.map(String.init) ?? "" }

    var takesBody: Bool { ["POST", "PUT", "PATCH"].contains(method) }

    var parameterCount: Int { segments.filter { $0.contains("{") || $0.hasPrefix("*") }.count }

    /// The path with each parameter filled in by `value(collection, index)`, where `collection`
    /// is the literal segment before the parameter (`servers` for `/servers/{id}`).
    func path(_ value: (String, Int) -> String) -> String {
        var out: [String] = []
        var previous = ""
        var index = 0
        for segment in segments {
            if let open = segment.firstIndex(of: "{"), let close = segment.firstIndex(of: "}") {
                out.append(String(segment[..<open]) + value(previous, index) + String(segment[segment.index(after: close)...]))
                index += 1
            } else if segment.hasPrefix("*") {
                out.append(value(previous, index))
                index += 1
            } else {
                out.append(String(segment))
                previous = String(segment)
            }
        }
        return "/" + out.joined(separator: "/")
    }
}

extension JSON {
    /// A copy with the value at a dotted field path (`server.networks[0].uuid`) replaced,
    /// creating objects and one-element lists on the way.
    func setting(_ path: [PathStep], to value: JSON) -> JSON {
        guard let step = path.first else { return value }
        let rest = Array(path.dropFirst())
        switch step {
        case .key(let key):
            var object = objectValue ?? [:]
            object[key] = (object[key] ?? .null).setting(rest, to: value)
            return .object(object)
        case .index(let index):
            var array = arrayValue ?? []
            while array.count <= index { array.append(.null) }
            array[index] = array[index].setting(rest, to: value)
            return .array(array)
        }
    }

    func value(at path: [PathStep]) -> JSON? {
        guard let step = path.first else { return self }
        switch step {
        case .key(let key): return objectValue?[key]?.value(at: Array(path.dropFirst()))
        case .index(let index):
            guard let array = arrayValue, array.indices.contains(index) else { return nil }
            return array[index].value(at: Array(path.dropFirst()))
        }
    }
}

enum PathStep: Hashable {
    case key(String)
    case index(Int)

    /// `a.b[0].c` → key a, key b, index 0, key c (the form `JSONInput` names fields in).
    static func parse(_ dotted: String) -> [PathStep] {
        var steps: [PathStep] = []
        for part in dotted.split(separator: ".", omittingEmptySubsequences: false) {
            var name = Substring(part)
            var indices: [Int] = []
            while name.hasSuffix("]"), let open = name.lastIndex(of: "[") {
                if let i = Int(name[name.index(after: open)..<name.index(before: name.endIndex)]) { indices.insert(i, at: 0) }
                name = name[..<open]
            }
            steps.append(.key(String(name)))
            steps += indices.map(PathStep.index)
        }
        return steps
    }
}
