import Foundation
import NimbusCore
import NimbusStore

/// Neutron's quota resources, their defaults (`[quotas] quota_<resource>`) and where each is counted.
public enum NetworkQuotas {
    public static let defaults: [String: Int64] = [
        "network": 100, "subnet": 100, "port": 500, "router": 10, "floatingip": 50,
        "security_group": 10, "security_group_rule": 100, "subnetpool": -1, "rbac_policy": 10,
    ]

    /// The table whose rows (by `project_id`) a resource's usage counts. A resource family adds
    /// its table here with the family; resources without one report 0 in use.
    static let tables: [String: String] = [
        "network": "network_network", "subnet": "network_subnet", "port": "network_port", "subnetpool": "network_subnetpool",
        "security_group": "network_security_group", "security_group_rule": "network_security_group_rule",
        "router": "network_router", "floatingip": "network_floatingip",
    ]
}

extension NetworkService {
    /// A project's limits: its own over the configured defaults.
    func quotaLimits(project: String, _ x: any SQLExecutor) async throws -> [String: Int64] {
        var limits = settings.quotaDefaults
        for row in try await x.query("SELECT resource, hard_limit FROM network_quota WHERE project_id = ?", .text(project)) {
            limits[row.string("resource")] = row.int("hard_limit")
        }
        return limits
    }

    func quotaUsage(_ resource: String, project: String, _ x: any SQLExecutor) async throws -> Int64 {
        guard let table = NetworkQuotas.tables[resource] else { return 0 }
        return try await x.first("SELECT COUNT(*) AS n FROM \(table) WHERE project_id = ?", .text(project))?.int("n") ?? 0
    }

    /// Refuses to create `adding` more of `resource` for `project` past its limit (409 OverQuota).
    /// Call it inside the transaction that inserts the rows: it locks the project's quota row
    /// first, so concurrent creates in one project count one after another and cannot overshoot.
    public func enforceQuota(_ resource: String, project: String, adding: Int64 = 1, _ x: any SQLExecutor) async throws {
        let limit = try await quotaLimits(project: project, x)[resource] ?? -1
        guard limit >= 0 else { return }
        try await x.execute("INSERT INTO network_quota_lock (project_id) VALUES (?) ON CONFLICT DO NOTHING", .text(project))
        _ = try await x.query("SELECT project_id FROM network_quota_lock WHERE project_id = ?\(x.dialect.forUpdate)", .text(project))
        let used = try await quotaUsage(resource, project: project, x)
        if used + adding > limit {
            throw Self.conflict("Quota exceeded for resources: ['\(resource)'].", code: "OverQuota")
        }
    }

    // MARK: /v2.0/quotas

    func quotaTarget(_ project: String) -> [String: String] { ["project_id": project, "tenant_id": project] }

    /// `{"quota": {resource: limit}}`, or with `details` `{resource: {limit, used, reserved}}`.
    public func quota(project: String, details: Bool, caller: AuthContext) async throws -> JSON {
        try authorize("get_quota", caller, target: quotaTarget(project))
        let limits = try await quotaLimits(project: project, db)
        var out: [String: JSON] = [:]
        for (resource, limit) in limits {
            out[resource] = details ? ["limit": .int(limit), "used": .int(try await quotaUsage(resource, project: project, db)), "reserved": 0] : .int(limit)
        }
        return ["quota": .object(out)]
    }

    public func defaultQuota(project: String, caller: AuthContext) throws -> JSON {
        try authorize("get_quota", caller, target: quotaTarget(project))
        return ["quota": .object(settings.quotaDefaults.mapValues { .int($0) })]
    }

    /// Projects with limits of their own (admins only), each over the defaults.
    public func quotas(caller: AuthContext) async throws -> JSON {
        try authorize("update_quota", caller)
        var out: [JSON] = []
        for row in try await db.query("SELECT DISTINCT project_id FROM network_quota ORDER BY project_id") {
            let project = row.string("project_id")
            var quota = try await quotaLimits(project: project, db).mapValues { JSON.int($0) }
            quota["project_id"] = .string(project)
            quota["tenant_id"] = .string(project)
            out.append(.object(quota))
        }
        return ["quotas": .array(out)]
    }

    public func updateQuota(project: String, _ body: JSON, caller: AuthContext) async throws -> JSON {
        try authorize("update_quota", caller, target: quotaTarget(project))
        let input = try JSONInput(body: body, key: "quota")
        // quota-check-limit: refuse a limit below what the project already uses.
        let checkLimit = try input.bool("check_limit") ?? false
        var asked: [(String, Int64)] = []
        for (resource, value) in input.fields.sorted(by: { $0.key < $1.key }) where resource != "check_limit" {
            guard settings.quotaDefaults[resource] != nil else {
                throw Self.badRequest("Unrecognized attribute(s) '\(resource)'")
            }
            guard let limit = value.intValue ?? value.stringValue.flatMap({ Int64($0) }), limit >= -1 else {
                throw Self.badRequest("Invalid input for \(resource). Reason: '\(value.serialized())' is not a valid quota limit.", code: "InvalidInput")
            }
            asked.append((resource, limit))
        }
        let limits = asked
        try await db.transaction { x in
            for (resource, limit) in limits {
                if checkLimit, limit >= 0, case let used = try await self.quotaUsage(resource, project: project, x), used > limit {
                    throw Self.badRequest("Quota limit \(limit) for \(resource) must be greater than or equal to already used \(used).", code: "InvalidQuotaValue")
                }
                try await x.execute("DELETE FROM network_quota WHERE project_id = ? AND resource = ?", .text(project), .text(resource))
                try await x.execute("INSERT INTO network_quota (project_id, resource, hard_limit) VALUES (?, ?, ?)", .text(project), .text(resource), .integer(limit))
            }
        }
        return ["quota": .object(try await quotaLimits(project: project, db).mapValues { .int($0) })]
    }

    public func deleteQuota(project: String, caller: AuthContext) async throws {
        try authorize("delete_quota", caller, target: quotaTarget(project))
        try await db.execute("DELETE FROM network_quota WHERE project_id = ?", .text(project))
    }
}
