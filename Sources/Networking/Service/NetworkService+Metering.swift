import Foundation
import NimbusCore
import NimbusStore

/// Metering (Neutron's `metering` service plugin): labels, and rules saying which addresses'
/// traffic in which direction a label counts. Stored and checked as Neutron does; no metering
/// agent counts anything on Nimbus's routers yet, so there are no measurements to report.
extension NetworkService {
    static func meteringLabelNotFound(_ id: String) -> APIError {
        APIError(.notFound, "Metering label \(id) does not exist", code: "MeteringLabelNotFound")
    }

    func meteringLabels(where clause: String = "", _ binds: [SQLValue] = [], _ x: any SQLExecutor) async throws -> [Rendered] {
        try await x.query("SELECT * FROM network_metering_label \(clause)", binds).map { row in
            let project = row.string("project_id")
            return Rendered(json: ["id": .string(row.string("id")), "project_id": .string(project), "tenant_id": .string(project),
                                   "name": .string(row.string("name")), "description": .string(row.string("description")),
                                   "shared": .bool(row.bool("shared"))],
                            target: ["project_id": project, "tenant_id": project, "shared": Self.flag(row.bool("shared"))])
        }
    }

    func meteringRules(where clause: String = "", _ binds: [SQLValue] = [], _ x: any SQLExecutor) async throws -> [Rendered] {
        try await x.query("""
            SELECT r.*, l.project_id, l.shared FROM network_metering_label_rule r JOIN network_metering_label l ON l.id = r.label_id \(clause)
            """, binds).map { row in
            let project = row.string("project_id")
            return Rendered(json: ["id": .string(row.string("id")), "metering_label_id": .string(row.string("label_id")),
                                   "project_id": .string(project), "tenant_id": .string(project),
                                   "direction": .string(row.string("direction")), "excluded": .bool(row.bool("excluded")),
                                   "remote_ip_prefix": .optional(row.optionalString("remote_ip_prefix")),
                                   "source_ip_prefix": .optional(row.optionalString("source_ip_prefix")),
                                   "destination_ip_prefix": .optional(row.optionalString("destination_ip_prefix"))],
                            target: ["project_id": project, "tenant_id": project, "shared": Self.flag(row.bool("shared"))])
        }
    }

    public func listMeteringLabels(caller: AuthContext) async throws -> [[String: JSON]] {
        try await meteringLabels(where: "ORDER BY created_at, id", [], db).compactMap { visible("metering_label", $0.json, target: $0.target, caller: caller) }
    }

    public func meteringLabel(_ id: String, caller: AuthContext) async throws -> [String: JSON] {
        guard let label = try await meteringLabels(where: "WHERE id = ?", [.text(id)], db).first,
              let json = visible("metering_label", label.json, target: label.target, caller: caller) else { throw Self.meteringLabelNotFound(id) }
        return json
    }

    public func createMeteringLabel(_ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try Self.allowOnly(input, ["name", "description", "shared", "project_id", "tenant_id"])
        let project = try Self.owner(input, caller)
        try authorize("create_metering_label", caller, target: ["project_id": project, "tenant_id": project], attributes: input)
        let id = Identifiers.uuid()
        try await db.execute("INSERT INTO network_metering_label (id, project_id, name, description, shared, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                             .text(id), .text(project), .text(try input.optionalString("name") ?? ""), .text(try input.optionalString("description") ?? ""),
                             .bool(try input.bool("shared") ?? false), Self.now())
        return try await meteringLabel(id, caller: caller)
    }

    public func deleteMeteringLabel(_ id: String, caller: AuthContext) async throws {
        try await write { x in
            guard let label = try await self.meteringLabels(where: "WHERE id = ?", [.text(id)], x).first,
                  self.visible("metering_label", label.json, target: label.target, caller: caller) != nil else { throw Self.meteringLabelNotFound(id) }
            try self.authorize("delete_metering_label", caller, target: label.target)
            try await x.execute("DELETE FROM network_metering_label WHERE id = ?", .text(id))
        }
    }

    public func listMeteringLabelRules(caller: AuthContext) async throws -> [[String: JSON]] {
        try await meteringRules(where: "ORDER BY r.created_at, r.id", [], db).compactMap {
            visible("metering_label_rule", $0.json, target: $0.target, caller: caller)
        }
    }

    public func meteringLabelRule(_ id: String, caller: AuthContext) async throws -> [String: JSON] {
        guard let rule = try await meteringRules(where: "WHERE r.id = ?", [.text(id)], db).first,
              let json = visible("metering_label_rule", rule.json, target: rule.target, caller: caller) else {
            throw APIError(.notFound, "Metering label rule \(id) does not exist", code: "MeteringLabelRuleNotFound")
        }
        return json
    }

    /// A rule names addresses either the old way (`remote_ip_prefix`) or the new one (source
    /// and/or destination), never both; rules of one label, direction and exclusion do not overlap.
    public func createMeteringLabelRule(_ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try Self.allowOnly(input, ["metering_label_id", "direction", "excluded", "remote_ip_prefix", "source_ip_prefix", "destination_ip_prefix",
                                   "project_id", "tenant_id"])
        let labelID = try input.requiredString("metering_label_id")
        let direction = try input.string("direction") ?? "ingress"
        guard ["ingress", "egress"].contains(direction) else {
            throw Self.badRequest("Invalid input for direction. Reason: '\(direction)' is not in ['ingress', 'egress'].", code: "InvalidInput")
        }
        let excluded = try input.bool("excluded") ?? false
        var asked: [String: IPNetwork] = [:]
        for key in ["remote_ip_prefix", "source_ip_prefix", "destination_ip_prefix"] {
            guard let text = try input.string(key) else { continue }
            guard let prefix = IPNetwork(text) else {
                throw Self.badRequest("Invalid input for \(key). Reason: '\(text)' is not a valid IP subnet.", code: "InvalidInput")
            }
            asked[key] = IPNetwork(address: prefix.first, prefixLength: prefix.prefixLength)
        }
        let prefixes = asked
        if prefixes["remote_ip_prefix"] != nil && prefixes.count > 1 {
            throw Self.badRequest("Cannot use 'remote-ip-prefix' in conjunction with 'source-ip-prefix' or 'destination-ip-prefix'.", code: "BadRequest")
        }
        if prefixes.isEmpty {
            throw Self.badRequest("You must define at least one of the following parameters 'remote_ip_prefix', or 'source_ip_prefix' or 'destination_ip_prefix'.",
                                  code: "BadRequest")
        }
        let id = Identifiers.uuid()
        try await write { x in
            guard let label = try await self.meteringLabels(where: "WHERE id = ?", [.text(labelID)], x).first,
                  self.visible("metering_label", label.json, target: label.target, caller: caller) != nil else { throw Self.meteringLabelNotFound(labelID) }
            try self.authorize("create_metering_label_rule", caller, target: label.target)
            try await self.lock("network_metering_label", labelID, x)
            if let remote = prefixes["remote_ip_prefix"] {
                for row in try await x.query("""
                    SELECT remote_ip_prefix FROM network_metering_label_rule WHERE label_id = ? AND direction = ? AND excluded = ? AND remote_ip_prefix IS NOT NULL
                    """, .text(labelID), .text(direction), .bool(excluded)) where IPNetwork(row.string("remote_ip_prefix"))?.overlaps(remote) == true {
                    throw Self.conflict("Metering label rule with remote_ip_prefix \(remote) overlaps another.", code: "MeteringLabelRuleOverlaps")
                }
            }
            try await x.execute("""
                INSERT INTO network_metering_label_rule (id, label_id, direction, excluded, remote_ip_prefix, source_ip_prefix, destination_ip_prefix, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, [.text(id), .text(labelID), .text(direction), .bool(excluded)]
                    + ["remote_ip_prefix", "source_ip_prefix", "destination_ip_prefix"].map { prefixes[$0].map { .text($0.description) } ?? .null }
                    + [Self.now()])
        }
        return try await meteringLabelRule(id, caller: caller)
    }

    public func deleteMeteringLabelRule(_ id: String, caller: AuthContext) async throws {
        try await write { x in
            guard let rule = try await self.meteringRules(where: "WHERE r.id = ?", [.text(id)], x).first,
                  self.visible("metering_label_rule", rule.json, target: rule.target, caller: caller) != nil else {
                throw APIError(.notFound, "Metering label rule \(id) does not exist", code: "MeteringLabelRuleNotFound")
            }
            try self.authorize("delete_metering_label_rule", caller, target: rule.target)
            try await x.execute("DELETE FROM network_metering_label_rule WHERE id = ?", .text(id))
        }
    }
}
