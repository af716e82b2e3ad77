import Foundation

/// One request an application credential's tokens may make (Keystone's access rule): a
/// service type from the catalog, an HTTP method, and a path pattern relative to the service's
/// endpoint, in which `*` (and `{name}`) stands for exactly one non-empty path segment and `**`
/// for any run of characters, slashes included.
public struct AccessRule: Sendable, Hashable {
    public var id: String
    public var service: String
    public var method: String
    public var path: String

    public init(id: String, service: String, method: String, path: String) {
        self.id = id
        self.service = service
        self.method = method
        self.path = path
    }

    public static let methods: Set<String> = ["DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"]

    /// True when `path` (relative to the service's endpoint, percent-decoded) matches `pattern`
    /// as keystonemiddleware reads it.
    public static func pathMatches(_ path: String, pattern: String) -> Bool {
        PathPattern(pattern).matches(Array(path.utf8))
    }
}

/// A service's identity as access rules name it: its catalog type, and the prefix its routes are
/// mounted under on the listener (`/compute` for `/compute/v2.1/servers`), which a rule's path
/// leaves out as the endpoint URL in the catalog already holds it.
public struct ServiceMount: Sendable {
    public let type: String
    public let prefix: String

    public init(type: String, prefix: String) {
        self.type = type
        self.prefix = prefix
    }

    public static let identity = ServiceMount(type: "identity", prefix: "/identity")
    public static let image = ServiceMount(type: "image", prefix: "/image")
    public static let compute = ServiceMount(type: "compute", prefix: "/compute")
    public static let network = ServiceMount(type: "network", prefix: "/networking")
    public static let placement = ServiceMount(type: "placement", prefix: "/placement")

    /// `rawPath` without the mount prefix, percent-decoded.
    public func relativePath(_ rawPath: String) -> String {
        let decoded = rawPath.removingPercentEncoding ?? rawPath
        guard decoded.hasPrefix(prefix) else { return decoded }
        let rest = String(decoded.dropFirst(prefix.count))
        return rest.isEmpty ? "/" : rest
    }
}

extension AuthContext {
    /// Throws 401 unless this token may make the request: a token without access rules may
    /// make any; one with rules only a request whose service type, method and path one rule
    /// matches (keystonemiddleware's check). `service` nil is a route group no access rule can
    /// name (the agents' APIs): rule-bound tokens are refused there, as keystonemiddleware
    /// refuses them when it has no service type configured. The identity service always lets a
    /// token validate tokens (`GET /v3/auth/tokens`).
    public func enforceAccessRules(service: ServiceMount?, method: String, rawPath: String) throws {
        guard let rules = accessRules else { return }
        guard let service else { throw APIError.unauthorized() }
        let path = service.relativePath(rawPath)
        if service.type == "identity" && method == "GET" && path.hasSuffix("/v3/auth/tokens") { return }
        for rule in rules where rule.service == service.type && rule.method == method {
            if AccessRule.pathMatches(path, pattern: rule.path) { return }
        }
        throw APIError.unauthorized()
    }
}

/// A compiled access-rule path: literal bytes, one-segment wildcards and any-run wildcards,
/// matched by backtracking (patterns are at most a few hundred bytes).
struct PathPattern {
    enum Token: Equatable {
        case literal(UInt8)
        /// One or more bytes other than `/`.
        case segment
        /// Zero or more bytes of any kind.
        case anything
    }
    let tokens: [Token]

    init(_ pattern: String) {
        let bytes = Array(pattern.utf8)
        var tokens: [Token] = []
        var i = 0
        let star = UInt8(ascii: "*"), open = UInt8(ascii: "{"), close = UInt8(ascii: "}")
        while i < bytes.count {
            let b = bytes[i]
            if b == star {
                // A star followed by another is `**`; a lone star is one segment.
                if i + 1 < bytes.count, bytes[i + 1] == star {
                    tokens.append(.anything)
                    i += 2
                } else {
                    tokens.append(.segment)
                    i += 1
                }
            } else if b == open, let end = bytes[(i + 1)...].firstIndex(of: close) {
                tokens.append(.segment)
                i = end + 1
            } else if b == open || b == close {
                // An unpaired brace matches nothing, as in keystonemiddleware's tokenizer.
                i += 1
            } else {
                tokens.append(.literal(b))
                i += 1
            }
        }
        self.tokens = tokens
    }

    func matches(_ path: [UInt8]) -> Bool {
        var memo = Set<Int>()
        return match(0, 0, path, &memo)
    }

    private func match(_ t: Int, _ p: Int, _ path: [UInt8], _ failed: inout Set<Int>) -> Bool {
        if t == tokens.count { return p == path.count }
        let key = t &* (path.count + 1) &+ p
        if failed.contains(key) { return false }
        var ok = false
        switch tokens[t] {
        case .literal(let b):
            ok = p < path.count && path[p] == b && match(t + 1, p + 1, path, &failed)
        case .segment:
            var end = p
            while end < path.count, path[end] != UInt8(ascii: "/") {
                end += 1
                if match(t + 1, end, path, &failed) { ok = true; break }
            }
        case .anything:
            var end = p
            while true {
                if match(t + 1, end, path, &failed) { ok = true; break }
                if end == path.count { break }
                end += 1
            }
        }
        if !ok { failed.insert(key) }
        return ok
    }
}
