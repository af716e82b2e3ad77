import Foundation
import NimbusCore
import NimbusStore

/// Nova's quota resources and defaults (`[quota]` in nova.conf).
public enum ComputeQuotas {
    public static let instances = "instances", cores = "cores", ram = "ram", keyPairs = "key_pairs"
    public static let serverGroups = "server_groups", serverGroupMembers = "server_group_members", metadataItems = "metadata_items"

    public static let defaults: [String: Int64] = [
        instances: 10, cores: 20, ram: 51200, keyPairs: 100, serverGroups: 10, serverGroupMembers: 10, metadataItems: 128,
        "injected_files": 5, "injected_file_content_bytes": 10240, "injected_file_path_bytes": 255,
        // Nova-network's quotas, still shown before 2.36 (Neutron enforces its own).
        "floating_ips": 10, "fixed_ips": -1, "security_groups": 10, "security_group_rules": 20,
    ]

    /// The range of a quota limit, as Nova's quota schemas have it: -1 (unlimited) up to the
    /// largest value its database column holds. Limits are multiplied and summed with
    /// request counts, so they stay far from `Int64`'s edge.
    public static let limitRange: ClosedRange<Int64> = -1...Int64(Int32.max)

    /// A limit as a quota update gives it: an integer or its decimal string, in `limitRange`.
    static func limit(_ key: String, _ value: JSON) throws -> Int64 {
        let limit: Int64?
        if let i = value.intValue { limit = i } else if let s = value.stringValue { limit = Int64(s) } else { limit = nil }
        guard let limit, limit >= limitRange.lowerBound else {
            throw APIError.badRequest("Invalid input for field/attribute \(key). Value: \(value.serialized()). must be an integer of at least -1")
        }
        guard limit <= limitRange.upperBound else {
            throw APIError.badRequest("Invalid input for field/attribute \(key). Value: \(value.serialized()). \(limit) is greater than the maximum of \(limitRange.upperBound)")
        }
        return limit
    }

    static let networkQuotas: Set<String> = ["floating_ips", "fixed_ips", "security_groups", "security_group_rules"]

    /// Resources shown at a microversion: the network ones went away in 2.36 (2.50 for quota
    /// classes, which gained the server-group ones then), injected files in 2.57.
    static func shown(_ version: Microversion, quotaClass: Bool = false) -> [String] {
        defaults.keys.sorted().filter { resource in
            if networkQuotas.contains(resource) { return version < Microversion(2, quotaClass ? 50 : 36) }
            if resource.hasPrefix("injected_file") { return version < Microversion(2, 57) }
            if quotaClass && resource.hasPrefix("server_group") { return version >= Microversion(2, 50) }
            return true
        }
    }
}

extension ComputeService {
    /// A project's limit: its own, else the `default` quota class's, else the configured default.
    func quotaLimit(_ resource: String, project: String) async throws -> Int64 {
        if let own = try await store.quotaLimits(project: project, db)[resource] { return own }
        if let classLimit = try await store.classLimits("default", db)[resource] { return classLimit }
        return settings.quotaDefaults[resource] ?? -1
    }

    func quotaLimits(project: String) async throws -> [String: Int64] {
        var limits = try await classLimits("default")
        for (k, v) in try await store.quotaLimits(project: project, db) { limits[k] = v }
        return limits
    }

    /// A quota class's limits over the configured defaults.
    func classLimits(_ name: String) async throws -> [String: Int64] {
        settings.quotaDefaults.merging(try await store.classLimits(name, db)) { _, set in set }
    }

    /// The usage the quota APIs report; key pairs count per user.
    func quotaUsage(project: String, user: String) async throws -> [String: Int64] {
        var usage = try await store.usage(project: project, db)
        usage[ComputeQuotas.keyPairs] = try await store.usage(project: "user:\(user)", db)[ComputeQuotas.keyPairs] ?? 0
        usage[ComputeQuotas.serverGroups] = Int64(try await store.serverGroups(project: project, db).count)
        return usage
    }

    /// Reserves a server's instances/cores/ram inside the transaction that creates it, so the
    /// usage change and the server commit or roll back together.
    /// All three or none: a caller may retry with fewer servers in the same transaction.
    func reserveServer(_ flavor: Flavor, count: Int64, project: String, limits: [String: Int64], _ x: any SQLExecutor) async throws {
        // Checked before anything is reserved: only a min_count past `mostServers` overflows here.
        let amounts = try Self.perServer(flavor).map { resource, perServer in
            let (amount, overflow) = perServer.multipliedReportingOverflow(by: count)
            guard !overflow else { throw APIError.forbidden("Quota exceeded for \(resource): Requested \(count) servers of \(perServer) \(resource) each") }
            return (resource, amount)
        }
        var reserved: [(String, Int64)] = []
        for (resource, amount) in amounts {
            let limit = limits[resource] ?? -1
            guard try await store.reserve(project: project, resource: resource, amount: amount, limit: limit, x) else {
                for (done, doneAmount) in reserved { try await store.release(project: project, resource: done, amount: doneAmount, x) }
                let used = try await store.usage(project: project, x)[resource] ?? 0
                throw APIError.forbidden("Quota exceeded for \(resource): Requested \(amount), but already used \(used) of \(limit) \(resource)")
            }
            reserved.append((resource, amount))
        }
    }

    /// What one server of the flavor holds of each resource the server quota counts.
    static func perServer(_ flavor: Flavor) -> [(String, Int64)] {
        [(ComputeQuotas.instances, 1), (ComputeQuotas.cores, flavor.vcpus), (ComputeQuotas.ram, flavor.ram)]
    }

    /// The most servers of the flavor one request can hold: no more than the smallest limit
    /// allows on its own (more could never be reserved, whatever is in use), nor than keeps
    /// every total inside `Int64`. `max_count` is any positive integer the client sends, so
    /// without this bound `vcpus × max_count` overflowed (a trap) and the create loop, which
    /// tries one server fewer at a time, could step down from 2^63.
    static func mostServers(_ flavor: Flavor, limits: [String: Int64]) -> Int64 {
        perServer(flavor).reduce(Int64.max) { most, entry in
            let (resource, perServer) = entry
            guard perServer > 0 else { return most }
            let limit = limits[resource] ?? -1
            return min(most, limit >= 0 ? limit / perServer : Int64.max / perServer)
        }
    }

    func releaseServer(_ flavor: Flavor, project: String, _ x: any SQLExecutor) async throws {
        try await store.release(project: project, resource: ComputeQuotas.instances, amount: 1, x)
        try await store.release(project: project, resource: ComputeQuotas.cores, amount: flavor.vcpus, x)
        try await store.release(project: project, resource: ComputeQuotas.ram, amount: flavor.ram, x)
    }

    // MARK: os-quota-sets

    public func quotaSet(project: String, detail: Bool, version: Microversion, caller: AuthContext) async throws -> JSON {
        try authorize(detail ? "os_compute_api:os-quota-sets:detail" : "os_compute_api:os-quota-sets:show", caller, project: project)
        let limits = try await quotaLimits(project: project)
        let usage = detail ? try await quotaUsage(project: project, user: caller.userID) : [:]
        var out: [String: JSON] = ["id": .string(project)]
        for resource in ComputeQuotas.shown(version) {
            let limit = limits[resource] ?? -1
            out[resource] = detail ? ["limit": .int(limit), "in_use": .int(usage[resource] ?? 0), "reserved": 0] : .int(limit)
        }
        return ["quota_set": .object(out)]
    }

    public func quotaDefaults(project: String, version: Microversion, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-quota-sets:defaults", caller, project: project)
        let limits = try await classLimits("default")
        var out: [String: JSON] = ["id": .string(project)]
        for resource in ComputeQuotas.shown(version) { out[resource] = .int(limits[resource] ?? -1) }
        return ["quota_set": .object(out)]
    }

    public func updateQuotaSet(project: String, _ body: JSON, version: Microversion, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-quota-sets:update", caller, project: project)
        let input = try JSONInput(body: body, key: "quota_set")
        let force = input.fields["force"]?.boolValue ?? (input.fields["force"]?.stringValue?.lowercased() == "true")
        let allowed = Set(ComputeQuotas.shown(version))
        var changes: [String: Int64] = [:]
        for (key, value) in input.fields where key != "force" {
            guard allowed.contains(key) else { throw APIError.badRequest("Invalid input for field/attribute quota_set. Additional properties are not allowed ('\(key)' was unexpected)") }
            changes[key] = try ComputeQuotas.limit(key, value)
        }
        if !force {
            let usage = try await quotaUsage(project: project, user: caller.userID)
            for (resource, limit) in changes where limit >= 0 && (usage[resource] ?? 0) > limit {
                throw APIError.badRequest("Quota limit \(limit) for \(resource) must be greater than or equal to already used and reserved \(usage[resource] ?? 0).")
            }
        }
        let validated = changes
        try await db.transaction { x in
            for (resource, limit) in validated { try await self.store.setQuota(project: project, resource: resource, limit: limit, x) }
        }
        var shown = try await quotaSet(project: project, detail: false, version: version, caller: caller)
        if case .object(var set) = shown["quota_set"] {
            set["id"] = nil
            shown = ["quota_set": .object(set)]
        }
        return shown
    }

    public func resetQuotaSet(project: String, caller: AuthContext) async throws {
        try authorize("os_compute_api:os-quota-sets:delete", caller, project: project)
        try await store.deleteQuotas(project: project, db)
    }

    public func quotaClassSet(_ name: String, version: Microversion, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-quota-class-sets:show", caller)
        let limits = try await classLimits(name)
        var out: [String: JSON] = ["id": .string(name)]
        for resource in ComputeQuotas.shown(version, quotaClass: true) { out[resource] = .int(limits[resource] ?? -1) }
        return ["quota_class_set": .object(out)]
    }

    public func updateQuotaClassSet(_ name: String, _ body: JSON, version: Microversion, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-quota-class-sets:update", caller)
        let input = try JSONInput(body: body, key: "quota_class_set")
        let allowed = Set(ComputeQuotas.shown(version, quotaClass: true))
        try await db.transaction { x in
            for (key, value) in input.fields {
                guard allowed.contains(key) else { throw APIError.badRequest("Invalid input for field/attribute quota_class_set. '\(key)' was unexpected") }
                try await self.store.setClassLimit(name, resource: key, limit: try ComputeQuotas.limit(key, value), x)
            }
        }
        var shown = try await quotaClassSet(name, version: version, caller: caller)
        if case .object(var set) = shown["quota_class_set"] {
            set["id"] = nil
            shown = ["quota_class_set": .object(set)]
        }
        return shown
    }

    /// `GET /limits`: absolute limits with what is used, as `openstack limits show --absolute`
    /// prints them.
    public func limits(caller: AuthContext, projectID: String?, version: Microversion) async throws -> JSON {
        let project = projectID ?? caller.projectID ?? ""
        if project != caller.projectID { try authorize("os_compute_api:limits:other_project", caller, project: project) }
        let limits = try await quotaLimits(project: project)
        let usage = try await quotaUsage(project: project, user: caller.userID)
        var absolute: [String: JSON] = [
            "maxTotalInstances": .int(limits[ComputeQuotas.instances] ?? -1), "totalInstancesUsed": .int(usage[ComputeQuotas.instances] ?? 0),
            "maxTotalCores": .int(limits[ComputeQuotas.cores] ?? -1), "totalCoresUsed": .int(usage[ComputeQuotas.cores] ?? 0),
            "maxTotalRAMSize": .int(limits[ComputeQuotas.ram] ?? -1), "totalRAMUsed": .int(usage[ComputeQuotas.ram] ?? 0),
            "maxTotalKeypairs": .int(limits[ComputeQuotas.keyPairs] ?? -1),
            "maxServerMeta": .int(limits[ComputeQuotas.metadataItems] ?? -1),
            "maxServerGroups": .int(limits[ComputeQuotas.serverGroups] ?? -1), "totalServerGroupsUsed": .int(usage[ComputeQuotas.serverGroups] ?? 0),
            "maxServerGroupMembers": .int(limits[ComputeQuotas.serverGroupMembers] ?? -1),
        ]
        if version < Microversion(2, 36) {
            absolute["maxSecurityGroups"] = .int(limits["security_groups"] ?? -1)
            absolute["maxSecurityGroupRules"] = .int(limits["security_group_rules"] ?? -1)
            absolute["maxTotalFloatingIps"] = .int(limits["floating_ips"] ?? -1)
            absolute["totalFloatingIpsUsed"] = 0
            absolute["totalSecurityGroupsUsed"] = 0
        }
        if version < Microversion(2, 39) { absolute["maxImageMeta"] = .int(limits[ComputeQuotas.metadataItems] ?? -1) }
        if version < Microversion(2, 57) {
            absolute["maxPersonality"] = .int(limits["injected_files"] ?? -1)
            absolute["maxPersonalitySize"] = .int(limits["injected_file_content_bytes"] ?? -1)
        }
        return ["limits": ["rate": [], "absolute": .object(absolute)]]
    }
}
