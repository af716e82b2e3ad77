import Foundation
import NimbusCore
import NimbusStore

/// Default security group rules (`/v2.0/default-security-group-rules`): the templates a new
/// security group's rules are made from — a project's default group takes those
/// `used_in_default_sg`, any other new group those `used_in_non_default_sg`. Changing them
/// changes groups made afterwards, never existing ones.
extension NetworkService {
    static let parentGroup = "PARENT"

    static func defaultRuleJSON(_ row: Row) -> [String: JSON] {
        ["id": .string(row.string("id")), "direction": .string(row.string("direction")), "ethertype": .string(row.string("ethertype")),
         "protocol": .optional(row.optionalString("protocol")),
         "port_range_min": row.optionalInt("port_range_min").map { .int($0) } ?? .null,
         "port_range_max": row.optionalInt("port_range_max").map { .int($0) } ?? .null,
         "remote_ip_prefix": .optional(row.optionalString("remote_ip_prefix")), "remote_group_id": .optional(row.optionalString("remote_group_id")),
         "remote_address_group_id": .null, "description": .string(row.string("description")),
         "used_in_default_sg": .bool(row.bool("used_in_default_sg")), "used_in_non_default_sg": .bool(row.bool("used_in_non_default_sg"))]
    }

    static func defaultRuleNotFound(_ id: String) -> APIError {
        APIError(.notFound, "Default Security Group rule \(id) does not exist", code: "DefaultSecurityGroupRuleNotFound")
    }

    public func listDefaultSecurityGroupRules(caller: AuthContext) async throws -> [[String: JSON]] {
        try authorize("get_default_security_group_rule", caller)
        return try await db.query("SELECT * FROM network_default_security_group_rule ORDER BY direction, ethertype, id").map(Self.defaultRuleJSON)
    }

    public func defaultSecurityGroupRule(_ id: String, caller: AuthContext) async throws -> [String: JSON] {
        try authorize("get_default_security_group_rule", caller)
        guard let row = try await db.first("SELECT * FROM network_default_security_group_rule WHERE id = ?", .text(id)) else {
            throw Self.defaultRuleNotFound(id)
        }
        return Self.defaultRuleJSON(row)
    }

    /// Validated as a security group rule is; `remote_group_id` may only be `PARENT`.
    public func createDefaultSecurityGroupRule(_ body: JSON, caller: AuthContext) async throws -> [String: JSON] {
        try authorize("create_default_security_group_rule", caller)
        let input = try JSONInput(body: body, key: "default_security_group_rule")
        try Self.allowOnly(input, ["direction", "ethertype", "protocol", "port_range_min", "port_range_max", "remote_ip_prefix", "remote_group_id",
                                   "remote_address_group_id", "description", "used_in_default_sg", "used_in_non_default_sg"])
        if let remote = try input.optionalString("remote_group_id"), remote != Self.parentGroup {
            throw Self.badRequest("Invalid input for remote_group_id. Reason: a default rule's remote group can only be \(Self.parentGroup).", code: "InvalidInput")
        }
        var fields = input.fields
        fields["security_group_id"] = .string(Self.parentGroup)
        let rule = try Self.parseRule(JSONInput(fields, path: "default_security_group_rule"), at: Date())
        let inDefault = try input.bool("used_in_default_sg") ?? true, inOthers = try input.bool("used_in_non_default_sg") ?? true
        try await write { x in
            for row in try await x.query("SELECT * FROM network_default_security_group_rule") {
                var existing = SecurityGroupRule(row: row)
                existing.securityGroupID = Self.parentGroup
                if existing.identity == rule.identity {
                    throw Self.conflict("Default security group rule already exists. Rule id is \(row.string("id")).", code: "DefaultSecurityGroupRuleExists")
                }
            }
            try await x.execute("""
                INSERT INTO network_default_security_group_rule (id, direction, ethertype, protocol, port_range_min, port_range_max, remote_ip_prefix,
                    remote_group_id, description, used_in_default_sg, used_in_non_default_sg)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, .text(rule.id), .text(rule.direction.rawValue), .text(rule.etherType.rawValue), .optional(rule.protocol),
                rule.portRangeMin.map { .integer($0) } ?? .null, rule.portRangeMax.map { .integer($0) } ?? .null, .optional(rule.remoteIPPrefix),
                .optional(rule.remoteGroupID), .text(rule.description), .bool(inDefault), .bool(inOthers))
        }
        return try await defaultSecurityGroupRule(rule.id, caller: caller)
    }

    public func deleteDefaultSecurityGroupRule(_ id: String, caller: AuthContext) async throws {
        try authorize("delete_default_security_group_rule", caller)
        guard try await db.execute("DELETE FROM network_default_security_group_rule WHERE id = ?", .text(id)) == 1 else {
            throw Self.defaultRuleNotFound(id)
        }
    }

    /// The rules a new group `group` of `project` starts with, from the templates.
    func templateRules(group: String, project: String, isDefault: Bool, at now: Date, _ x: any SQLExecutor) async throws -> [SecurityGroupRule] {
        try await x.query("SELECT * FROM network_default_security_group_rule WHERE \(isDefault ? "used_in_default_sg" : "used_in_non_default_sg") = 1 ORDER BY id")
            .map { row in
                var rule = SecurityGroupRule(row: row)
                (rule.id, rule.securityGroupID, rule.projectID) = (Identifiers.uuid(), group, project)
                (rule.createdAt, rule.updatedAt) = (now, now)
                if rule.remoteGroupID == Self.parentGroup { rule.remoteGroupID = group }
                return rule
            }
    }
}
