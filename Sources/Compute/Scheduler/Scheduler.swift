import Foundation
import Logging
import NimbusCore

/// `[filter_scheduler]` and `[scheduler]` of nova.conf, under the same names.
public struct SchedulerSettings: Sendable {
    public var enabledFilters = ["AvailabilityZoneFilter", "ComputeFilter", "ComputeCapabilitiesFilter", "ImagePropertiesFilter",
                                 "ServerGroupAntiAffinityFilter", "ServerGroupAffinityFilter"]
    public var ramWeightMultiplier = 1.0
    public var cpuWeightMultiplier = 1.0
    public var diskWeightMultiplier = 1.0
    public var softAffinityWeightMultiplier = 1.0
    public var softAntiAffinityWeightMultiplier = 1.0
    public var buildFailureWeightMultiplier = 1_000_000.0
    /// Pick at random among this many best hosts (1: always the best).
    public var hostSubsetSize = 1
    /// Hosts tried for one server: the chosen one plus alternates for reschedules.
    public var maxAttempts = 3
    public var maxPlacementResults = 1000
    public init() {}
}

/// A placement decision: the host whose resources are claimed, and unclaimed alternates to
/// try if the build there fails (Nova's Selection list).
struct Selection: Sendable {
    var host: String
    var node: ComputeNode
    var allocation: [String: [String: Int64]]
}

public struct NoValidHost: Error, CustomStringConvertible, Sendable {
    public let reason: String
    public var description: String { "No valid host was found. \(reason)" }
}

/// Nova's filter scheduler: ask placement for hosts that can hold the request, drop those a
/// filter rejects, order the rest by weight, and claim on the best one; claims are atomic
/// in placement, so a lost race just moves on to the next host.
struct FilterScheduler: Sendable {
    let settings: SchedulerSettings
    let filters: [any HostFilter]
    let placement: any PlacementClient
    let logger: Logger

    init(settings: SchedulerSettings, placement: any PlacementClient, logger: Logger) throws {
        self.settings = settings
        self.placement = placement
        self.logger = logger
        filters = try settings.enabledFilters.map { name in
            guard let filter = HostFilters.all[name] else { throw StartupError("unknown scheduler filter \(name) in [filter_scheduler] enabled_filters") }
            return filter
        }
    }

    /// The placement query for a server: its flavor's resources and trait extra specs, its
    /// zone's aggregates, and a forced host.
    func placementRequest(_ spec: RequestSpec, zoneAggregates: [String], forcedNode: ComputeNode?) -> PlacementRequest {
        var request = PlacementRequest(resources: Instance.resources(of: spec.flavor))
        for (key, value) in spec.flavor.extraSpecs {
            if key.hasPrefix("resources:") {
                let rc = String(key.dropFirst("resources:".count))
                if let amount = Int64(value) { request.resources[rc] = amount == 0 ? nil : amount }
            } else if key.hasPrefix("trait:") {
                let trait = String(key.dropFirst("trait:".count))
                if value == "required" { request.requiredTraits.insert(trait) } else if value == "forbidden" { request.forbiddenTraits.insert(trait) }
            }
        }
        for (key, value) in spec.image?.properties ?? [:] where key.hasPrefix("trait:") && value == "required" {
            request.requiredTraits.insert(String(key.dropFirst("trait:".count)))
        }
        request.forbiddenTraits.insert("COMPUTE_STATUS_DISABLED")
        if !zoneAggregates.isEmpty { request.memberOf = [zoneAggregates] }
        if let forcedNode { request.inTree = forcedNode.uuid }
        // Affinity needs every host, not the first few hundred.
        let needsAll = spec.group != nil || !spec.hintList("same_host").isEmpty || !spec.hintList("different_host").isEmpty
        request.limit = needsAll ? nil : settings.maxPlacementResults
        return request
    }

    /// Filters and weighs `hosts` for `spec`, claims on the best host that accepts the claim,
    /// and returns it with alternates. Throws NoValidHost when nothing fits.
    func select(_ spec: RequestSpec, hosts: [HostState], context: FilterContext) async throws -> [Selection] {
        var remaining = spec.ignoreHosts.isEmpty ? hosts : hosts.filter { !spec.ignoreHosts.contains($0.host) }
        if let forced = spec.forcedHost {
            // A forced host skips the filters, as in Nova.
            remaining = remaining.filter { $0.host == forced }
        } else {
            if let requested = spec.requestedHost { remaining = remaining.filter { $0.host == requested } }
            for filter in filters {
                // Most filters pass every host: only then is the list copied.
                guard !remaining.allSatisfy({ filter.passes($0, spec, context) }) else { continue }
                remaining = remaining.filter { filter.passes($0, spec, context) }
                if remaining.isEmpty {
                    logger.debug("scheduler: \(type(of: filter).name) left no host for \(spec.instanceUUID)")
                    break
                }
            }
        }
        guard !remaining.isEmpty else { throw NoValidHost(reason: "There are not enough hosts available.") }
        var ordered = weigh(remaining, spec)
        if settings.hostSubsetSize > 1 {
            let pick = Int.random(in: 0..<min(settings.hostSubsetSize, ordered.count))
            ordered.insert(ordered.remove(at: pick), at: 0)
        }
        for (index, host) in ordered.enumerated() {
            let allocation = [host.candidate.uuid: host.candidate.allocation]
            if try await placement.claim(consumer: spec.instanceUUID, project: spec.projectID, user: spec.userID, allocations: allocation) {
                let alternates = ordered[(index + 1)...].prefix(max(settings.maxAttempts - 1, 0)).map {
                    Selection(host: $0.host, node: $0.node, allocation: [$0.candidate.uuid: $0.candidate.allocation])
                }
                return [Selection(host: host.host, node: host.node, allocation: allocation)] + alternates
            }
        }
        throw NoValidHost(reason: "There are not enough hosts available.")
    }

    /// Sum of each weigher's normalised weight times its multiplier; best first. RAM, CPU and
    /// disk are normalised from zero (value / max), as Nova's weighers with `minval = 0`.
    func weigh(_ hosts: [HostState], _ spec: RequestSpec) -> [HostState] {
        guard hosts.count > 1 else { return hosts }
        func fromZero(_ values: [Double]) -> [Double] {
            let top = values.max() ?? 0
            return top > 0 ? values.map { max($0, 0) / top } : values.map { _ in 0 }
        }
        func minMax(_ values: [Double]) -> [Double] {
            guard let low = values.min(), let high = values.max(), high > low else { return values.map { _ in 0 } }
            return values.map { ($0 - low) / (high - low) }
        }
        var total = [Double](repeating: 0, count: hosts.count)
        func add(_ normalised: [Double], _ multiplier: Double) {
            guard multiplier != 0 else { return }
            for i in total.indices { total[i] += normalised[i] * multiplier }
        }
        add(fromZero(hosts.map(\.freeRAM)), settings.ramWeightMultiplier)
        add(fromZero(hosts.map(\.freeVCPUs)), settings.cpuWeightMultiplier)
        add(fromZero(hosts.map(\.freeDisk)), settings.diskWeightMultiplier)
        add(minMax(hosts.map { Double($0.failedBuilds) }), -settings.buildFailureWeightMultiplier)
        if let group = spec.group, group.policy == "soft-affinity" || group.policy == "soft-anti-affinity" {
            let members = hosts.map { Double(spec.groupHosts[$0.host] ?? 0) }
            if group.policy == "soft-affinity" {
                add(minMax(members), settings.softAffinityWeightMultiplier)
            } else {
                add(minMax(members.map { -$0 }), settings.softAntiAffinityWeightMultiplier)
            }
        }
        // Positions, not the hosts, are sorted: a thousand-host sort then moves integers.
        return hosts.indices.sorted { total[$0] > total[$1] }.map { hosts[$0] }
    }
}
