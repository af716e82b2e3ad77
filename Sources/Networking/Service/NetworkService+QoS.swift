import Foundation
import NimbusCore
import NimbusStore

/// One QoS rule type as the API takes it: its collection under a policy, its integer
/// parameters (with Neutron's bounds and defaults) and the directions it may apply in.
struct QoSRuleType: Sendable {
    /// Neutron's rule type name: `bandwidth_limit`.
    let type: String
    /// Parameters with their bounds; `required` ones have no default.
    let parameters: [(name: String, range: ClosedRange<Int64>, defaultValue: Int64?)]
    /// Directions the rule may have, the first the default; empty for rules without one (DSCP).
    let directions: [String]
    /// Values the rule's single parameter may take, when Neutron lists them (DSCP marks).
    let allowed: Set<Int64>?

    var collection: String { type + "_rules" }
    var key: String { type + "_rule" }
    /// Neutron's `qos-rules-alias` path for rules found by id alone: `alias-bandwidth-limit-rules`.
    var aliasCollection: String { "alias-" + collection.replacingOccurrences(of: "_", with: "-") }

    static let maxInt: Int64 = 2_147_483_647
    /// Neutron's valid DSCP marks: the even values of the standard classes.
    static let dscpMarks: Set<Int64> = [0, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 44, 46, 48, 56]

    static let all: [QoSRuleType] = [
        QoSRuleType(type: "bandwidth_limit", parameters: [("max_kbps", 0...maxInt, nil), ("max_burst_kbps", 0...maxInt, 0)],
                    directions: ["egress", "ingress"], allowed: nil),
        QoSRuleType(type: "dscp_marking", parameters: [("dscp_mark", 0...56, nil)], directions: [], allowed: dscpMarks),
        QoSRuleType(type: "minimum_bandwidth", parameters: [("min_kbps", 0...maxInt, nil)], directions: ["egress", "ingress"], allowed: nil),
        QoSRuleType(type: "minimum_packet_rate", parameters: [("min_kpps", 0...maxInt, nil)], directions: ["egress", "ingress", "any"], allowed: nil),
        QoSRuleType(type: "packet_rate_limit", parameters: [("max_kpps", 0...maxInt, nil), ("max_burst_kpps", 0...maxInt, 0)],
                    directions: ["egress", "ingress"], allowed: nil),
    ]

    static func named(_ type: String) -> QoSRuleType? { all.first { $0.type == type } }
}

/// The resources a QoS policy can be attached to, each with its own binding table.
enum QoSBound: String, Sendable, CaseIterable {
    case network, port, floatingip, router

    var table: String { "network_qos_\(rawValue)_binding" }
    /// How Neutron names the resource in QosPolicyInUse.
    var objectType: String { self == .router ? "router gateway" : rawValue }
}

/// QoS (Neutron's `qos` service plugin): policies, their rules, the rule types, and the
/// `qos_policy_id` of networks, ports, floating IPs and router gateways. Nimbus stores and
/// validates all of it; no driver enforces any rule yet (tc on the taps is a later step), so
/// `/qos/rule-types` lists no type as supported and each type shows no driver.
extension NetworkService {
    static let qosPolicyAttributes: Set<String> = ["name", "description", "shared", "is_default", "tags", "project_id", "tenant_id"]

    static func qosPolicyNotFound(_ id: String) -> APIError {
        APIError(.notFound, "QoS policy \(id) could not be found.", code: "QosPolicyNotFound")
    }

    static func qosRuleNotFound(_ id: String, policy: String) -> APIError {
        APIError(.notFound, "QoS rule \(id) for policy \(policy) could not be found.", code: "QosRuleNotFound")
    }

    func qosPolicies(where clause: String = "", _ binds: [SQLValue] = [], _ x: any SQLExecutor) async throws -> [Rendered] {
        let rows = try await x.query("SELECT * FROM network_qos_policy \(clause)", binds)
        let ids = rows.map { $0.string("id") }
        let tags = try await tags(ids, x)
        var rules: [String: [JSON]] = [:]
        if !ids.isEmpty {
            let filter = clause.isEmpty ? "" : "WHERE policy_id IN (SELECT id FROM network_qos_policy \(clause))"
            for row in try await x.query("SELECT * FROM network_qos_rule \(filter) ORDER BY created_at, id", binds) {
                var rule = Self.qosRule(row)
                rule["type"] = .string(row.string("rule_type"))
                rules[row.string("policy_id"), default: []].append(.object(rule))
            }
        }
        return rows.map { row in
            let id = row.string("id"), project = row.string("project_id")
            var json = Self.standard(row, tags: tags[id] ?? [])
            json["shared"] = .bool(row.bool("shared"))
            json["is_default"] = .bool(row.bool("is_default"))
            json["rules"] = .array(rules[id] ?? [])
            return Rendered(json: json, target: ["project_id": project, "tenant_id": project, "shared": Self.flag(row.bool("shared"))])
        }
    }

    static func qosRule(_ row: Row) -> [String: JSON] {
        var rule: [String: JSON] = ["id": .string(row.string("id")), "qos_policy_id": .string(row.string("policy_id"))]
        for (key, value) in decode(row, "parameters").objectValue ?? [:] { rule[key] = value }
        if !row.string("direction").isEmpty { rule["direction"] = .string(row.string("direction")) }
        return rule
    }

    /// The policy the caller may see; 404 QosPolicyNotFound when they may not.
    func visibleQoSPolicy(_ id: String, caller: AuthContext?, _ x: any SQLExecutor) async throws -> Rendered {
        guard let policy = try await qosPolicies(where: "WHERE id = ?", [.text(id)], x).first,
              caller.map({ visible("policy", policy.json, target: policy.target, caller: $0) != nil }) ?? true else {
            throw Self.qosPolicyNotFound(id)
        }
        return policy
    }

    // MARK: Policies

    public func listQoSPolicies(caller: AuthContext) async throws -> [[String: JSON]] {
        try await qosPolicies(where: "ORDER BY created_at, id", [], db).compactMap { visible("policy", $0.json, target: $0.target, caller: caller) }
    }

    public func qosPolicy(_ id: String, caller: AuthContext) async throws -> [String: JSON] {
        let policy = try await visibleQoSPolicy(id, caller: caller, db)
        return visible("policy", policy.json, target: policy.target, caller: caller) ?? [:]
    }

    public func createQoSPolicy(_ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try Self.allowOnly(input, Self.qosPolicyAttributes)
        let project = try Self.owner(input, caller)
        try authorize("create_policy", caller, target: ["project_id": project, "tenant_id": project], attributes: input)
        let isDefault = try input.bool("is_default") ?? false
        let shared = try input.bool("shared") ?? false
        let tags = try input.stringArray("tags") ?? []
        try Self.validateTags(tags)
        let id = Identifiers.uuid(), now = Self.now()
        try await write { x in
            if isDefault { try await self.requireNoDefaultQoSPolicy(project: project, except: nil, x) }
            try await x.execute("""
                INSERT INTO network_qos_policy (id, project_id, name, description, shared, is_default, revision_number, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)
                """, [.text(id), .text(project), .text(try input.optionalString("name") ?? ""), .text(try input.optionalString("description") ?? ""),
                      .bool(shared), .bool(isDefault), now, now])
            try await self.setTags(id, tags, x)
        }
        return try await qosPolicy(id, caller: caller)
    }

    /// One default policy per project (`qos-default`): it is what new networks of the project get.
    func requireNoDefaultQoSPolicy(project: String, except id: String?, _ x: any SQLExecutor) async throws {
        if let row = try await x.first("SELECT id FROM network_qos_policy WHERE project_id = ? AND is_default = 1", .text(project)),
           row.string("id") != id {
            throw Self.conflict("A default QoS policy exists for project \(project).", code: "QoSPolicyDefaultAlreadyExists")
        }
    }

    public func updateQoSPolicy(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try Self.allowOnly(input, ["name", "description", "shared", "is_default"])
        try await write { x in
            let policy = try await self.visibleQoSPolicy(id, caller: caller, x)
            try self.authorize("update_policy", caller, target: policy.target, attributes: input)
            let project = policy.target["project_id"] ?? ""
            var sets: [(String, SQLValue)] = []
            if let name = try input.optionalString("name") { sets.append(("name", .text(name))) }
            if let description = try input.optionalString("description") { sets.append(("description", .text(description))) }
            if let isDefault = try input.bool("is_default") {
                if isDefault { try await self.requireNoDefaultQoSPolicy(project: project, except: id, x) }
                sets.append(("is_default", .bool(isDefault)))
            }
            if let shared = try input.bool("shared") {
                // Unsharing cannot strand another project's resource on a policy it no longer sees.
                if !shared, let user = try await self.qosPolicyUser(id, otherThan: project, x) {
                    throw Self.conflict("QoS Policy \(id) is used by \(user.0.objectType) \(user.1).", code: "QosPolicyInUse")
                }
                sets.append(("shared", .bool(shared)))
            }
            guard !sets.isEmpty else { return }
            try await x.execute("UPDATE network_qos_policy SET \(sets.map { "\($0.0) = ?" }.joined(separator: ", ")) WHERE id = ?", sets.map(\.1) + [.text(id)])
            try await self.touch("network_qos_policy", id, x)
        }
        return try await qosPolicy(id, caller: caller)
    }

    public func deleteQoSPolicy(_ id: String, caller: AuthContext) async throws {
        try await write { x in
            let policy = try await self.visibleQoSPolicy(id, caller: caller, x)
            try self.authorize("delete_policy", caller, target: policy.target)
            if let user = try await self.qosPolicyUser(id, otherThan: nil, x) {
                throw Self.conflict("QoS Policy \(id) is used by \(user.0.objectType) \(user.1).", code: "QosPolicyInUse")
            }
            try await x.execute("DELETE FROM network_tag WHERE resource_id = ?", .text(id))
            try await x.execute("DELETE FROM network_qos_policy WHERE id = ?", .text(id))
        }
    }

    /// A resource the policy is attached to (of a project other than `otherThan`, when given).
    func qosPolicyUser(_ id: String, otherThan project: String?, _ x: any SQLExecutor) async throws -> (QoSBound, String)? {
        let owners: [QoSBound: String] = [.network: "network_network", .port: "network_port", .floatingip: "network_floatingip", .router: "network_router"]
        for bound in QoSBound.allCases {
            var sql = "SELECT b.resource_id FROM \(bound.table) b JOIN \(owners[bound] ?? "") r ON r.id = b.resource_id WHERE b.policy_id = ?"
            var binds: [SQLValue] = [.text(id)]
            if let project {
                // Neutron's own ports (router gateways, floating IPs' ports) belong to no project.
                sql += " AND r.project_id <> ? AND r.project_id <> ''"
                binds.append(.text(project))
            }
            if let row = try await x.query(sql + " ORDER BY b.resource_id", binds).first { return (bound, row.string("resource_id")) }
        }
        return nil
    }

    // MARK: Rules

    func qosRules(_ type: QoSRuleType, policy policyID: String, caller: AuthContext) async throws -> [[String: JSON]] {
        let policy = try await visibleQoSPolicy(policyID, caller: caller, db)
        try authorize("get_policy_\(type.key)", caller, target: policy.target)
        return try await db.query("SELECT * FROM network_qos_rule WHERE policy_id = ? AND rule_type = ? ORDER BY created_at, id",
                                  .text(policyID), .text(type.type)).map(Self.qosRule)
    }

    /// One rule; `policyID` nil finds it by id alone (the `qos-rules-alias` routes).
    func qosRule(_ type: QoSRuleType, _ id: String, policy policyID: String?, caller: AuthContext) async throws -> [String: JSON] {
        let (rule, policy) = try await storedQoSRule(type, id, policy: policyID, caller: caller, db)
        try authorize(policyID == nil ? "get_alias_\(type.key)" : "get_policy_\(type.key)", caller, target: policy.target)
        return rule
    }

    func storedQoSRule(_ type: QoSRuleType, _ id: String, policy policyID: String?, caller: AuthContext,
                       _ x: any SQLExecutor) async throws -> ([String: JSON], Rendered) {
        guard let row = try await x.first("SELECT * FROM network_qos_rule WHERE id = ? AND rule_type = ?", .text(id), .text(type.type)) else {
            if let policyID { _ = try await visibleQoSPolicy(policyID, caller: caller, x) }
            throw Self.qosRuleNotFound(id, policy: policyID ?? "")
        }
        let owner = row.string("policy_id")
        if let policyID, policyID != owner {
            _ = try await visibleQoSPolicy(policyID, caller: caller, x)
            throw Self.qosRuleNotFound(id, policy: policyID)
        }
        let policy: Rendered
        do { policy = try await visibleQoSPolicy(owner, caller: caller, x) } catch { throw Self.qosRuleNotFound(id, policy: policyID ?? owner) }
        return (Self.qosRule(row), policy)
    }

    /// The rule's parameters and direction from a create (`current` nil: defaults fill the
    /// gaps, required ones must be there) or an update (`current`: the rule as stored).
    static func qosRuleValues(_ type: QoSRuleType, _ input: JSONInput, current: [String: JSON]?) throws -> ([String: JSON], String) {
        try allowOnly(input, Set(type.parameters.map(\.name) + (type.directions.isEmpty ? [] : ["direction"])))
        var values: [String: JSON] = [:]
        for parameter in type.parameters {
            if let value = try input.int(parameter.name, in: parameter.range) {
                if let allowed = type.allowed, !allowed.contains(value) {
                    throw badRequest("Invalid input for \(parameter.name). Reason: \(value) is not in valid_values \(allowed.sorted()).", code: "InvalidInput")
                }
                values[parameter.name] = .int(value)
            } else if let old = current?[parameter.name] {
                values[parameter.name] = old
            } else if let fallback = parameter.defaultValue {
                values[parameter.name] = .int(fallback)
            } else {
                throw badRequest("Failed to parse request. Required attribute '\(parameter.name)' not specified", code: "InvalidInput")
            }
        }
        var direction = current?["direction"]?.stringValue ?? type.directions.first ?? ""
        if let asked = try input.string("direction") {
            guard type.directions.contains(asked) else {
                throw badRequest("Invalid input for direction. Reason: '\(asked)' is not in \(type.directions).", code: "InvalidInput")
            }
            direction = asked
        }
        return (values, direction)
    }

    /// A second rule of one type in one direction is a conflict; a `minimum_packet_rate` rule
    /// in direction `any` also conflicts with one in either direction, as in Neutron.
    func requireNoConflictingRule(_ type: QoSRuleType, policy: String, direction: String, except id: String?, _ x: any SQLExecutor) async throws {
        let clashing = type.type == "minimum_packet_rate" && direction == "any" ? type.directions
            : type.type == "minimum_packet_rate" ? [direction, "any"] : [direction]
        let marks = clashing.map { _ in "?" }.joined(separator: ",")
        if let row = try await x.query("SELECT id FROM network_qos_rule WHERE policy_id = ? AND rule_type = ? AND direction IN (\(marks)) AND id <> ?",
                                       [.text(policy), .text(type.type)] + clashing.map { .text($0) } + [.text(id ?? "")]).first {
            throw Self.conflict("Rule \(type.type) conflicts with rule \(row.string("id")) in QoS policy \(policy): one rule of a type per direction.",
                                code: "QoSRulesConflict")
        }
    }

    func createQoSRule(_ type: QoSRuleType, policy policyID: String, _ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        let (values, direction) = try Self.qosRuleValues(type, input, current: nil)
        let id = Identifiers.uuid()
        try await write { x in
            let policy = try await self.visibleQoSPolicy(policyID, caller: caller, x)
            try self.authorize("create_policy_\(type.key)", caller, target: policy.target)
            try await self.lock("network_qos_policy", policyID, x)
            try await self.requireNoConflictingRule(type, policy: policyID, direction: direction, except: nil, x)
            try await x.execute("INSERT INTO network_qos_rule (id, policy_id, rule_type, direction, parameters, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                                .text(id), .text(policyID), .text(type.type), .text(direction), Self.encode(.object(values)), Self.now())
            try await self.touch("network_qos_policy", policyID, x)
        }
        return try await qosRule(type, id, policy: policyID, caller: caller)
    }

    func updateQoSRule(_ type: QoSRuleType, _ id: String, policy policyID: String?, _ input: JSONInput,
                              caller: AuthContext) async throws -> [String: JSON] {
        try await write { x in
            let (rule, policy) = try await self.storedQoSRule(type, id, policy: policyID, caller: caller, x)
            try self.authorize(policyID == nil ? "update_alias_\(type.key)" : "update_policy_\(type.key)", caller, target: policy.target)
            let (values, direction) = try Self.qosRuleValues(type, input, current: rule)
            let owner = policy.json["id"]?.stringValue ?? ""
            try await self.requireNoConflictingRule(type, policy: owner, direction: direction, except: id, x)
            try await x.execute("UPDATE network_qos_rule SET direction = ?, parameters = ? WHERE id = ?",
                                .text(direction), Self.encode(.object(values)), .text(id))
            try await self.touch("network_qos_policy", owner, x)
        }
        return try await qosRule(type, id, policy: policyID, caller: caller)
    }

    func deleteQoSRule(_ type: QoSRuleType, _ id: String, policy policyID: String?, caller: AuthContext) async throws {
        try await write { x in
            let (_, policy) = try await self.storedQoSRule(type, id, policy: policyID, caller: caller, x)
            try self.authorize(policyID == nil ? "delete_alias_\(type.key)" : "delete_policy_\(type.key)", caller, target: policy.target)
            try await x.execute("DELETE FROM network_qos_rule WHERE id = ?", .text(id))
            try await self.touch("network_qos_policy", policy.json["id"]?.stringValue ?? "", x)
        }
    }

    // MARK: Rule types

    /// The rule types the loaded drivers enforce. No Nimbus driver enforces QoS yet, so the
    /// list is empty unless `all_rules` asks for every type Neutron's API knows
    /// (`qos-rule-type-filter`); `all_supported` asks for the enforced ones, also none.
    public func qosRuleTypes(allRules: Bool, caller: AuthContext) throws -> [[String: JSON]] {
        try authorize("get_rule_type", caller)
        return allRules ? QoSRuleType.all.map { ["type": .string($0.type)] } : []
    }

    /// A rule type and the drivers that enforce it, with each driver's supported parameters: none.
    public func qosRuleType(_ name: String, caller: AuthContext) throws -> [String: JSON] {
        try authorize("get_rule_type", caller)
        guard QoSRuleType.named(name) != nil else {
            throw APIError(.notFound, "Rule type \(name) could not be found.", code: "NotFound")
        }
        return ["type": .string(name), "drivers": []]
    }

    // MARK: Bindings

    /// The policy attached to each of `ids` (resources of one kind).
    func qosBindings(_ bound: QoSBound, _ ids: [String], _ x: any SQLExecutor) async throws -> [String: String] {
        guard !ids.isEmpty else { return [:] }
        var out: [String: String] = [:]
        for chunk in stride(from: 0, to: ids.count, by: 500).map({ Array(ids[$0..<min($0 + 500, ids.count)]) }) {
            let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
            for row in try await x.query("SELECT resource_id, policy_id FROM \(bound.table) WHERE resource_id IN (\(marks))", chunk.map { .text($0) }) {
                out[row.string("resource_id")] = row.string("policy_id")
            }
        }
        return out
    }

    /// Attaches the policy `value` names to a resource (JSON null detaches; nil leaves it).
    /// The policy must be one the caller sees (its project's or shared; any for admins and for
    /// Nova's in-process calls, `caller` nil): 404 QosPolicyNotFound otherwise, as Neutron.
    /// Returns whether the binding changed.
    @discardableResult
    func bindQoSPolicy(_ bound: QoSBound, _ id: String, _ value: JSON?, caller: AuthContext?, _ x: any SQLExecutor) async throws -> Bool {
        guard let value else { return false }
        let current = try await qosBindings(bound, [id], x)[id]
        if value.isNull {
            guard current != nil else { return false }
            try await x.execute("DELETE FROM \(bound.table) WHERE resource_id = ?", .text(id))
            return true
        }
        guard let policyID = value.stringValue else {
            throw Self.badRequest("Invalid input for qos_policy_id. Reason: '\(value.serialized())' is not a valid UUID.", code: "InvalidInput")
        }
        guard policyID != current else { return false }
        _ = try await visibleQoSPolicy(policyID, caller: caller, x)
        try await x.execute("DELETE FROM \(bound.table) WHERE resource_id = ?", .text(id))
        try await x.execute("INSERT INTO \(bound.table) (resource_id, policy_id) VALUES (?, ?)", .text(id), .text(policyID))
        return true
    }

    /// A new network's policy: the one asked for, else its project's default policy (`qos-default`).
    func bindNewNetworkQoSPolicy(_ id: String, project: String, _ input: JSONInput, caller: AuthContext, _ x: any SQLExecutor) async throws {
        if input.has("qos_policy_id") {
            try await bindQoSPolicy(.network, id, input.fields["qos_policy_id"], caller: caller, x)
        } else if let row = try await x.first("SELECT id FROM network_qos_policy WHERE project_id = ? AND is_default = 1", .text(project)) {
            try await bindQoSPolicy(.network, id, .string(row.string("id")), caller: nil, x)
        }
    }
}

extension NetworkService {
    /// The `qos_policy_id` of `external_gateway_info` (`qos-gateway-ip`): a gateway that is
    /// cleared loses its policy; one that is set keeps it unless the request names another.
    func bindRouterGatewayQoSPolicy(_ id: String, _ input: JSONInput, caller: AuthContext, _ x: any SQLExecutor) async throws {
        guard let info = input.fields["external_gateway_info"] else { return }
        guard let fields = info.objectValue, !fields.isEmpty else {
            try await bindQoSPolicy(.router, id, .null, caller: caller, x)
            return
        }
        try await bindQoSPolicy(.router, id, fields["qos_policy_id"], caller: caller, x)
    }
}
