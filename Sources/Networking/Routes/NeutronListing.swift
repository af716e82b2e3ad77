import Foundation
import Hummingbird
import NimbusCore

/// Neutron's collection GET, applied to resources already rendered as JSON: attribute filters
/// (repeated values are alternatives), tag filters, `sort_key`/`sort_dir`, `limit`/`marker`/
/// `page_reverse` with `<collection>_links`, and `fields`. Every resource list goes through
/// this one place so all of them page, sort and filter alike, as clients expect.
///
/// Filters on attributes an item does not have are ignored (Neutron without the
/// `filter-validation` extension does the same). A filter on a list of plain values (a port's
/// `security_groups`) keeps items whose list holds any of the values asked for; filters on
/// lists of objects or on objects (`fixed_ips`, `allowed_address_pairs`) are left to the
/// resource's own code, which can read them with `values` before calling this. A value that
/// Neutron's converter for a boolean or integer attribute refuses is a 400 `InvalidInput`,
/// whatever the items are.
public struct NeutronListing: Sendable {
    /// The collection's name, as in the response key: `networks`.
    public let collection: String
    public let base: String
    let pairs: [(String, String)]

    static let reserved: Set<String> = ["fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse",
                                        "tags", "tags-any", "not-tags", "not-tags-any"]

    /// Paging links point at the path the request was made to, as Neutron's do: the key and the
    /// path differ for many collections (`rbac_policies` at `rbac-policies`, `policies` at
    /// `qos/policies`, rules under their policy).
    public init(collection: String, request: Request) {
        self.collection = collection
        self.base = request.baseURL(fallback: "http://localhost") + request.uri.path
        var pairs: [(String, String)] = []
        for pair in (request.uri.query ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String { String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s) }
            pairs.append((decode(parts[0]), parts.count > 1 ? decode(parts[1]) : ""))
        }
        self.pairs = pairs
    }

    public func values(_ name: String) -> [String] { pairs.filter { $0.0 == name }.map(\.1) }

    /// The requested `fields`, or nil for all of them.
    public var fields: Set<String>? {
        let names = values("fields").flatMap { $0.split(separator: ",").map(String.init) }
        return names.isEmpty ? nil : Set(names)
    }

    /// Filters, sorts, pages and projects `items`; the response body `{collection: […], collection_links: […]}`.
    public func response(_ items: [[String: JSON]]) throws -> Response {
        JSONResponse(try body(items)).response()
    }

    public func body(_ items: [[String: JSON]]) throws -> JSON {
        try checkFilterValues(items)
        var rows = try sorted(items.filter(matches))
        var links: [JSON] = []
        let limit = try self.limit
        let reverse = Self.truthy(values("page_reverse").last ?? "false")
        if let marker = values("marker").last, !marker.isEmpty {
            // The marker is the last item of the previous page (the first, paging backwards).
            guard let index = rows.firstIndex(where: { $0["id"]?.stringValue == marker }) else {
                throw APIError.notFound("Marker \(marker) could not be found.")
            }
            rows = reverse ? Array(rows[..<index]) : Array(rows[(index + 1)...])
        }
        if let limit, limit > 0 {
            let more = rows.count > limit
            rows = reverse ? Array(rows.suffix(limit)) : Array(rows.prefix(limit))
            if more, let edge = (reverse ? rows.first : rows.last)?["id"]?.stringValue {
                links.append(link(reverse ? "previous" : "next", marker: edge, limit: limit, reverse: reverse))
            }
            if !values("marker").isEmpty, let edge = (reverse ? rows.last : rows.first)?["id"]?.stringValue {
                links.append(link(reverse ? "next" : "previous", marker: edge, limit: limit, reverse: !reverse))
            }
        }
        var out: [String: JSON] = [collection: .array(rows.map { .object(project($0)) })]
        if !links.isEmpty { out[collection + "_links"] = .array(links) }
        return .object(out)
    }

    /// One resource with only the requested `fields`.
    public func project(_ item: [String: JSON]) -> [String: JSON] {
        guard let fields else { return item }
        return item.filter { fields.contains($0.key) }
    }

    var limit: Int? {
        get throws {
            guard let raw = values("limit").last, !raw.isEmpty else { return nil }
            guard let value = Int(raw), value >= 0 else { throw APIError.badRequest("Limit must be an integer 0 or greater and not '\(raw)'") }
            return value
        }
    }

    func link(_ rel: String, marker: String, limit: Int, reverse: Bool) -> JSON {
        var query = pairs.filter { !["limit", "marker", "page_reverse"].contains($0.0) }
        query.append(("limit", String(limit)))
        query.append(("marker", marker))
        if reverse { query.append(("page_reverse", "True")) }
        let text = query.map { "\(Self.escape($0.0))=\(Self.escape($0.1))" }.joined(separator: "&")
        return ["rel": .string(rel), "href": .string("\(base)?\(text)")]
    }

    static func escape(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s
    }

    static func truthy(_ s: String) -> Bool { ["true", "1", "yes", "on"].contains(s.lowercased()) }

    // MARK: Filters

    /// The attribute filters: each name with the values asked for (alternatives).
    var attributeFilters: [String: [String]] {
        var byName: [String: [String]] = [:]
        for (name, value) in pairs where !Self.reserved.contains(name) { byName[name, default: []].append(value) }
        return byName
    }

    /// Attributes Neutron declares boolean or integer (converted with `convert_to_boolean` and
    /// `convert_to_int`), so that a bad value is refused even when no item shows the attribute.
    static let booleanAttributes: Set<String> = ["admin_state_up", "shared", "router:external", "port_security_enabled", "enable_dhcp",
                                                 "is_default", "stateful", "vlan_transparent", "ha", "distributed", "alive",
                                                 "enable_ndp_proxy"]
    static let integerAttributes: Set<String> = ["mtu", "ip_version", "revision_number", "provider:segmentation_id", "default_prefixlen",
                                                 "min_prefixlen", "max_prefixlen", "port_range_min", "port_range_max", "segmentation_id"]

    /// Attributes holding lists of objects, even when a list is empty.
    static let objectListAttributes: Set<String> = ["fixed_ips", "allowed_address_pairs", "extra_dhcp_opts", "dns_assignment", "host_routes",
                                                    "allocation_pools", "routes", "external_fixed_ips", "segments",
                                                    "external_gateways"]

    /// Refuses filter values the attribute's type cannot take: booleans are `true`, `false`,
    /// `1` or `0` in any case, integers decimal.
    func checkFilterValues(_ items: [[String: JSON]]) throws {
        for (name, wanted) in attributeFilters.sorted(by: { $0.key < $1.key }) {
            let sample = items.lazy.compactMap { $0[name] }.first { $0 != .null }
            let isBoolean = Self.booleanAttributes.contains(name) || { if case .bool = sample { return true } else { return false } }()
            let isInteger = Self.integerAttributes.contains(name) || { if case .int = sample { return true } else { return false } }()
            for value in wanted {
                if isBoolean && Self.boolean(value) == nil {
                    throw APIError(.badRequest, "Invalid input for operation: '\(value)' cannot be converted to boolean.", code: "InvalidInput")
                }
                if isInteger && Int64(value) == nil {
                    throw APIError(.badRequest, "Invalid input for operation: '\(value)' is not an integer.", code: "InvalidInput")
                }
            }
        }
    }

    /// Neutron's `convert_to_boolean` of a query value; nil for what it refuses.
    static func boolean(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "true", "1": return true
        case "false", "0": return false
        default: return nil
        }
    }

    func matches(_ item: [String: JSON]) -> Bool {
        for (name, wanted) in attributeFilters {
            guard let value = item[name] else { continue }
            switch value {
            case .array(let list):
                // A list of objects is the resource's to filter.
                if Self.objectListAttributes.contains(name) || list.contains(where: { if case .object = $0 { return true } else { return false } }) {
                    continue
                }
                if !list.contains(where: { element in wanted.contains { Self.equal(element, $0) } }) { return false }
            case .object: continue
            default: if !wanted.contains(where: { Self.equal(value, $0) }) { return false }
            }
        }
        let tags = Set(item["tags"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        func list(_ name: String) -> [Set<String>] { values(name).map { Set($0.split(separator: ",").map(String.init)) } }
        for all in list("tags") where !all.isSubset(of: tags) { return false }
        for any in list("tags-any") where any.isDisjoint(with: tags) { return false }
        for all in list("not-tags") where all.isSubset(of: tags) { return false }
        for any in list("not-tags-any") where !any.isDisjoint(with: tags) { return false }
        return true
    }

    /// A query string against a JSON attribute, as Neutron converts filter values.
    static func equal(_ value: JSON, _ text: String) -> Bool {
        switch value {
        case .string(let s): return s == text
        case .bool(let b): return boolean(text) == b
        case .int(let i): return Int64(text) == i
        case .double(let d): return Double(text) == d
        case .null: return text.isEmpty || text == "None"
        default: return false
        }
    }

    // MARK: Sorting

    func sorted(_ items: [[String: JSON]]) throws -> [[String: JSON]] {
        let keys = values("sort_key")
        var dirs = values("sort_dir")
        for dir in dirs where dir != "asc" && dir != "desc" {
            throw APIError.badRequest("\(dir) is an invalid value for sort_dir, valid value is 'asc' or 'desc'")
        }
        if !keys.isEmpty && !dirs.isEmpty && dirs.count != keys.count {
            throw APIError.badRequest("The number of sort_keys and sort_dirs must be same")
        }
        if dirs.isEmpty { dirs = Array(repeating: "asc", count: keys.count) }
        if let first = items.first {
            for key in keys where first[key] == nil {
                throw APIError.badRequest("\(key) is an invalid attribute for sort_keys")
            }
        }
        // The id breaks ties, so pages are stable.
        let order = zip(keys, dirs).map { ($0, $1 == "asc") } + [("id", dirs.last.map { $0 == "asc" } ?? true)]
        return items.sorted { a, b in
            for (key, ascending) in order {
                let c = Self.compare(a[key] ?? .null, b[key] ?? .null)
                if c != 0 { return ascending ? c < 0 : c > 0 }
            }
            return false
        }
    }

    static func compare(_ a: JSON, _ b: JSON) -> Int {
        switch (a, b) {
        case (.null, .null): return 0
        case (.null, _): return -1
        case (_, .null): return 1
        case let (.string(x), .string(y)): return x == y ? 0 : (x < y ? -1 : 1)
        case let (.bool(x), .bool(y)): return x == y ? 0 : (!x ? -1 : 1)
        default:
            if let x = a.doubleValue, let y = b.doubleValue { return x == y ? 0 : (x < y ? -1 : 1) }
            let x = a.serialized(), y = b.serialized()
            return x == y ? 0 : (x < y ? -1 : 1)
        }
    }
}
