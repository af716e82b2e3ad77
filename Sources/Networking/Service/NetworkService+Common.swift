import Foundation
import NimbusCore
import NimbusStore

/// A resource as stored, rendered to Neutron's JSON, with the attributes policy rules test.
struct Rendered: Sendable {
    var json: [String: JSON]
    var target: [String: String]
}

/// What every resource family shares: Neutron's errors, the retrying transaction, policy on
/// attributes, standard attributes (timestamps, revisions, tags) and JSON columns.
extension NetworkService {
    static func notFound(_ kind: String, _ id: String) -> APIError {
        let names = ["network": "Network", "subnet": "Subnet", "port": "Port", "subnetpool": "Subnet pool", "segment": "Segment",
                     "router": "Router", "floatingip": "Floating IP"]
        let codes = ["subnetpool": "SubnetPoolNotFound", "floatingip": "FloatingIPNotFound"]
        return APIError(.notFound, "\(names[kind] ?? kind) \(id) could not be found.", code: codes[kind] ?? (names[kind] ?? kind) + "NotFound")
    }

    /// Without a code, Neutron's type is webob's `HTTPBadRequest` (unknown attributes, bad bodies).
    static func badRequest(_ message: String, code: String? = nil) -> APIError { APIError(.badRequest, message, code: code) }

    static func conflict(_ message: String, code: String) -> APIError { APIError(.conflict, message, code: code) }

    /// Runs `body` in a transaction, again when it lost an allocation race: a unique key (a
    /// segmentation id, an address, a MAC) another transaction committed first. The retry's
    /// own checks then see that row and answer in Neutron's words.
    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await db.transaction(body)
            } catch DatabaseError.uniqueViolation where attempt < settings.allocationRetries {
                attempt += 1
            } catch let DatabaseError.other(message) where attempt < settings.allocationRetries
                && (message.contains("[40P01]") || message.contains("[40001]")) {
                attempt += 1  // PostgreSQL deadlock or serialization failure: nothing was written.
            }
        }
    }

    static func now() -> SQLValue { .real(Date().timeIntervalSince1970) }

    /// A stored time as Neutron shows it: `2026-11-26T03:00:00Z`.
    static func time(_ row: Row, _ column: String) -> JSON { .string(Timestamps.iso8601(Date(timeIntervalSince1970: row.double(column)))) }

    /// Writes one checked, new resource inside the creating transaction; returns its id.
    typealias Insert = @Sendable (any SQLExecutor) async throws -> String

    /// Creates resources of `kind` (`network`, `subnet`, `subnetpool`, `port`, `router`, `floatingip`) from request
    /// objects in one transaction: a bulk create makes all of them or none, as Neutron's does.
    public func create(_ kind: String, _ items: [JSON], caller: AuthContext) async throws -> [[String: JSON]] {
        let inserts = try items.map { item -> Insert in
            let input = try JSONInput(body: [kind: item], key: kind)
            switch kind {
            case "network": return try networkInsert(input, caller: caller)
            case "subnet": return try subnetInsert(input, caller: caller)
            case "subnetpool": return try subnetPoolInsert(input, caller: caller)
            case "router": return try routerInsert(input, caller: caller)
            case "floatingip": return try floatingIPInsert(input, caller: caller)
            default: return try portInsert(input, project: try Self.owner(input, caller), caller: caller)
            }
        }
        let ids = try await write { x in
            var ids: [String] = []
            for insert in inserts { ids.append(try await insert(x)) }
            return ids
        }
        var created: [[String: JSON]] = []
        for id in ids {
            let item = try await stored(kind, id, db)
            if kind == "network" { await mechanism.networkPostcommit(item.json) }
            if kind == "port" { await mechanism.portPostcommit(item.json) }
            if kind == "floatingip" { await notifier.floatingIPsChanged([item.json]) }
            created.append(visible(kind, item.json, target: item.target, caller: caller) ?? [:])
        }
        return created
    }

    // MARK: Policy

    /// The caller's view of a resource: `get_<kind>` decides whether it exists for them (404
    /// otherwise, never 403), and each `get_<kind>:<attribute>` rule whether they see that attribute.
    func visible(_ kind: String, _ item: [String: JSON], target: [String: String], caller: AuthContext) -> [String: JSON]? {
        let credentials = caller.policyInput
        let target = Self.personalized(target, for: caller.projectID)
        guard policy.enforce("get_\(kind)", credentials: credentials, target: target) else { return nil }
        var shown = item
        if kind == "network" { shown["shared"] = .bool(target["shared"] == "True") }
        for attribute in Self.attributeRules["get_\(kind)"] ?? [] where shown[attribute] != nil {
            if !policy.enforce("get_\(kind):\(attribute)", credentials: credentials, target: target) { shown[attribute] = nil }
        }
        return shown
    }

    /// `action` on a resource the caller can see, and the `action:<attribute>` rule of every
    /// attribute in `input`: 403 when they fail.
    func authorize(_ action: String, _ caller: AuthContext, target: [String: String], attributes input: JSONInput) throws {
        try authorize(action, caller, target: target)
        for attribute in Self.attributeRules[action] ?? [] where Self.restricted(action, attribute, input.fields[attribute]) {
            try authorize("\(action):\(attribute)", caller, target: target)
        }
    }

    /// Whether an attribute's rule applies to this value. A create that asks for the default
    /// asks for nothing (the CLI sends some); only Neutron's own device owners (`network:dhcp`…)
    /// are guarded, since ports it owns are deleted with their network and do not keep subnets in use.
    static func restricted(_ action: String, _ attribute: String, _ value: JSON?) -> Bool {
        guard let value else { return false }
        if attribute == "device_owner" { return value.stringValue?.hasPrefix("network:") == true }
        return !(action.hasPrefix("create_") && value == ["shared": false, "router:external": false, "is_default": false, "distributed": false, "ha": false][attribute])
    }

    /// Attribute rule names by action: `create_network` → [`shared`, `provider:network_type`…].
    static let attributeRules: [String: [String]] = {
        var rules: [String: [String]] = [:]
        for name in NetworkPolicy.defaults.keys {
            guard let colon = name.firstIndex(of: ":"), !name.hasPrefix("network:") else { continue }
            rules[String(name[..<colon]), default: []].append(String(name[name.index(after: colon)...]))
        }
        return rules
    }()

    // MARK: Tags

    func tags(_ ids: [String], _ x: any SQLExecutor) async throws -> [String: [String]] {
        guard !ids.isEmpty else { return [:] }
        var out: [String: [String]] = [:]
        for chunk in stride(from: 0, to: ids.count, by: 500).map({ Array(ids[$0..<min($0 + 500, ids.count)]) }) {
            let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
            for row in try await x.query("SELECT resource_id, tag FROM network_tag WHERE resource_id IN (\(marks)) ORDER BY tag", chunk.map { .text($0) }) {
                out[row.string("resource_id"), default: []].append(row.string("tag"))
            }
        }
        return out
    }

    static func validateTags(_ tags: [String]) throws {
        for tag in tags where tag.isEmpty || tag.count > 255 || tag.contains(",") || tag.contains("/") {
            throw badRequest("Invalid input for operation: '\(tag)' is not a valid tag.", code: "InvalidInput")
        }
    }

    func setTags(_ id: String, _ tags: [String], _ x: any SQLExecutor) async throws {
        try Self.validateTags(tags)
        try await x.execute("DELETE FROM network_tag WHERE resource_id = ?", .text(id))
        for tag in Set(tags).sorted() { try await x.execute("INSERT INTO network_tag (resource_id, tag) VALUES (?, ?)", .text(id), .text(tag)) }
    }

    /// One resource of `kind` (`network`, `subnet`, `subnetpool`, `port`, `router`, `floatingip`), whatever the caller may see.
    func stored(_ kind: String, _ id: String, _ x: any SQLExecutor) async throws -> Rendered {
        let found: Rendered?
        switch kind {
        case "network": found = try await networks(where: "WHERE id = ?", [.text(id)], x).first
        case "subnet": found = try await subnets(where: "WHERE s.id = ?", [.text(id)], x).first
        case "subnetpool": found = try await subnetPools(where: "WHERE id = ?", [.text(id)], x).first
        case "router": found = try await routers(where: "WHERE id = ?", [.text(id)], x).first
        case "floatingip": found = try await floatingIPs(where: "WHERE f.id = ?", [.text(id)], x).first
        default: found = try await ports(where: "WHERE p.id = ?", [.text(id)], x).first
        }
        guard let found else { throw Self.notFound(kind, id) }
        return found
    }

    /// One resource as the caller sees it; 404 when they may not.
    func shown(_ kind: String, _ id: String, caller: AuthContext) async throws -> [String: JSON] {
        let item = try await stored(kind, id, db)
        guard let json = visible(kind, item.json, target: item.target, caller: caller) else { throw Self.notFound(kind, id) }
        return json
    }

    /// The resource `action` (`update_port`) is about, after checking the caller may do it.
    func forWrite(_ kind: String, _ id: String, _ action: String, caller: AuthContext, input: JSONInput? = nil, _ x: any SQLExecutor) async throws -> Rendered {
        let item = try await stored(kind, id, x)
        try authorizeVisible(action, kind, item, id: id, caller: caller, input: input)
        return item
    }

    /// Replaces a resource's tags with `change(current)`; changing tags is updating the resource.
    public func changeTags(_ kind: String, _ id: String, caller: AuthContext,
                           _ change: @escaping @Sendable ([String]) throws -> [String]) async throws -> [String: JSON] {
        try await write { x in
            let item = try await self.forWrite(kind, id, "update_\(kind)", caller: caller, x)
            try await self.setTags(id, try change((item.json["tags"]?.arrayValue ?? []).compactMap(\.stringValue)), x)
            try await self.touch("network_\(kind)", id, x)
        }
        return try await shown(kind, id, caller: caller)
    }

    /// Holds a row until the transaction ends, so writers that check then insert under it take
    /// turns on PostgreSQL (SQLite's single writer already serialises them).
    func lock(_ table: String, _ id: String, _ x: any SQLExecutor) async throws {
        _ = try await x.query("SELECT id FROM \(table) WHERE id = ?\(x.dialect.forUpdate)", .text(id))
    }

    /// Moves a resource's revision and `updated_at`, as every change to it does in Neutron.
    func touch(_ table: String, _ id: String, _ x: any SQLExecutor) async throws {
        try await x.execute("UPDATE \(table) SET revision_number = revision_number + 1, updated_at = ? WHERE id = ?", Self.now(), .text(id))
    }

    /// The standard attributes every resource shows.
    static func standard(_ row: Row, tags: [String]) -> [String: JSON] {
        ["id": .string(row.string("id")), "project_id": .string(row.string("project_id")), "tenant_id": .string(row.string("project_id")),
         "name": .string(row.string("name")), "description": .string(row.string("description")),
         "created_at": time(row, "created_at"), "updated_at": time(row, "updated_at"),
         "revision_number": .int(row.int("revision_number")), "tags": .array(tags.map { .string($0) })]
    }

    // MARK: JSON columns

    static func encode(_ value: JSON) -> SQLValue { .text(value.serialized()) }
    static func decode(_ row: Row, _ column: String) -> JSON { (try? JSON.parse(row.string(column))) ?? .null }

    /// The owner a create names: the caller's project, or (admins only) another one.
    static func owner(_ input: JSONInput, _ caller: AuthContext) throws -> String {
        let asked = try input.optionalString("project_id") ?? input.optionalString("tenant_id")
        guard let project = asked ?? caller.projectID else { throw badRequest("A project_id is required: the token is not project-scoped.") }
        if project != caller.projectID && !caller.isAdmin {
            throw APIError(.forbidden, "(rule:create) is disallowed by policy: only admins create resources for other projects", code: "PolicyNotAuthorized")
        }
        return project
    }
}
