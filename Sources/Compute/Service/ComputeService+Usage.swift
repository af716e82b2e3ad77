import Foundation
import NimbusCore

/// `os-simple-tenant-usage` (the seed's `nova usage-list`, `openstack usage list/show`): how
/// many hours each project's servers ran in a period, and what they held while running.
/// Computed from the servers' launch and termination times, deleted servers included.
extension ComputeService {
    public struct UsagePeriod: Sendable {
        var start: Date
        var stop: Date
    }

    /// `start` and `end` from the query; either missing is now, as in Nova.
    public static func usagePeriod(_ query: [String: String]) throws -> UsagePeriod {
        let now = Date()
        func parse(_ key: String) throws -> Date {
            guard let raw = query[key] else { return now }
            guard let date = Timestamps.parse(raw) else { throw APIError.badRequest("Invalid \(key) time: \(raw)") }
            return date
        }
        let period = UsagePeriod(start: try parse("start"), stop: try parse("end"))
        guard period.start <= period.stop else {
            throw APIError.badRequest("Invalid start time. The start time cannot occur after the end time.")
        }
        return period
    }

    /// Every project's usage (admin); with `detailed` each includes its servers.
    public func usages(_ query: [String: String], version: Microversion, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-simple-tenant-usage:list", caller)
        let period = try Self.usagePeriod(query)
        let detailed = Self.truthy(query["detailed"] ?? "0")
        let instances = try await usageInstances(project: nil, period: period, query: query, version: version)
        let byProject = Dictionary(grouping: instances, by: \.projectID)
        let usages = byProject.keys.sorted().map { usageJSON(project: $0, byProject[$0] ?? [], period: period, detailed: detailed) }
        var out: [String: JSON] = ["tenant_usages": .array(usages)]
        if let link = try usageLink(instances, query: query, version: version, path: "os-simple-tenant-usage") { out["tenant_usages_links"] = link }
        return .object(out)
    }

    /// One project's usage, always with its servers (the project's own members or an admin).
    public func usage(project: String, _ query: [String: String], version: Microversion, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-simple-tenant-usage:show", caller, project: project)
        let period = try Self.usagePeriod(query)
        let instances = try await usageInstances(project: project, period: period, query: query, version: version)
        var out: [String: JSON] = ["tenant_usage": instances.isEmpty ? [:] : usageJSON(project: project, instances, period: period, detailed: true)]
        if let link = try usageLink(instances, query: query, version: version, path: "os-simple-tenant-usage/\(project)") { out["tenant_usage_links"] = link }
        return .object(out)
    }

    /// Servers that ran at some point of the period, oldest first; paged by server from 2.40.
    func usageInstances(project: String?, period: UsagePeriod, query: [String: String], version: Microversion) async throws -> [Instance] {
        // Servers that never launched used nothing, as in Nova.
        let ran = try await store.instances(project: project, includeDeleted: true, db).reversed().filter { instance in
            guard let started = instance.launchedAt else { return false }
            return started < period.stop && (instance.terminatedAt ?? .distantFuture) > period.start
        }
        return version >= Microversion(2, 40) ? try Paging.page(Array(ran), query: query, id: \.uuid) : Array(ran)
    }

    func usageLink(_ page: [Instance], query: [String: String], version: Microversion, path: String) throws -> JSON? {
        guard version >= Microversion(2, 40), query["limit"] != nil, try Paging.isFull(page.count, query: query), let last = page.last else { return nil }
        var params = query.filter { $0.key != "marker" }
        params["marker"] = last.uuid
        let text = params.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0.value)" }
        return [["rel": "next", "href": .string("/compute/v2.1/\(path)?\(text.joined(separator: "&"))")]]
    }

    func usageJSON(project: String, _ instances: [Instance], period: UsagePeriod, detailed: Bool) -> JSON {
        var hours = 0.0, vcpuHours = 0.0, memoryHours = 0.0, diskHours = 0.0
        var servers: [JSON] = []
        let now = Date()
        for instance in instances {
            let started = instance.launchedAt ?? period.start
            let ended = instance.terminatedAt
            let from = max(started, period.start), to = min(ended ?? now, period.stop)
            let ran = max(to.timeIntervalSince(from), 0) / 3600
            let flavor = instance.flavor
            let disk = flavor.disk + flavor.ephemeral
            hours += ran
            vcpuHours += ran * Double(flavor.vcpus)
            memoryHours += ran * Double(flavor.ram)
            diskHours += ran * Double(disk)
            guard detailed else { continue }
            servers.append([
                "instance_id": .string(instance.uuid), "name": .string(instance.name), "hours": .double(ran), "memory_mb": .int(flavor.ram),
                "local_gb": .int(disk), "vcpus": .int(flavor.vcpus), "tenant_id": .string(project), "flavor": .string(flavor.name),
                "started_at": .string(Timestamps.novaTime(started)), "ended_at": ended.map { .string(Timestamps.novaTime($0)) } ?? .null,
                "state": .string(ended == nil ? instance.vmState.rawValue : "terminated"),
                "uptime": .int(Int64((ended ?? now).timeIntervalSince(started))),
            ])
        }
        var out: [String: JSON] = [
            "tenant_id": .string(project), "total_hours": .double(hours), "total_vcpus_usage": .double(vcpuHours),
            "total_memory_mb_usage": .double(memoryHours), "total_local_gb_usage": .double(diskHours),
            "start": .string(Timestamps.novaTime(period.start)), "stop": .string(Timestamps.novaTime(period.stop)),
        ]
        if detailed { out["server_usages"] = .array(servers) }
        return .object(out)
    }
}

/// `os-instance_usage_audit_log`: Nova's record of each host's periodic usage audit for the
/// last completed month. Nimbus runs no such audit (it has no notification bus to send the
/// usage events to), so every compute host is reported as not having run it; usage itself
/// is `os-simple-tenant-usage`'s.
extension ComputeService {
    public func usageAuditLog(before raw: String?, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-instance-usage-audit-log:list", caller)
        var before = Date()
        if let raw {
            let text = raw.removingPercentEncoding ?? raw
            guard let parsed = Timestamps.parse(text.replacingOccurrences(of: " ", with: "T")) else {
                throw APIError.badRequest("Invalid timestamp for date \(text)")
            }
            before = parsed
        }
        let (begin, end) = Self.lastCompletedMonth(before: before)
        let hosts = try await allServices().filter { $0.binary == "nova-compute" }.map(\.host).sorted()
        return ["hosts_not_run": .array(hosts.map { .string($0) }), "log": [:], "num_hosts": .int(Int64(hosts.count)), "num_hosts_done": 0,
                "num_hosts_not_run": .int(Int64(hosts.count)), "num_hosts_running": 0,
                "overall_status": .string("0 of \(hosts.count) hosts done. 0 errors."),
                "period_beginning": .string(Self.auditTime(begin)), "period_ending": .string(Self.auditTime(end)),
                "total_errors": 0, "total_instances": 0]
    }

    /// `2026-10-01 00:00:00`, as Nova prints the period.
    static func auditTime(_ date: Date) -> String {
        String(Timestamps.iso8601(date).dropLast()).replacingOccurrences(of: "T", with: " ")
    }

    /// The calendar month (UTC) before the one `before` falls in: Nova's default audit period.
    static func lastCompletedMonth(before: Date) -> (Date, Date) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let end = calendar.date(from: calendar.dateComponents([.year, .month], from: before))!
        return (calendar.date(byAdding: .month, value: -1, to: end)!, end)
    }
}
