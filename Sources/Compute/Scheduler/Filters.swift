import Foundation
import NimbusCore

/// What the scheduler knows about one candidate host while it decides (Nova's HostState):
/// the compute node, its service, its aggregates, and placement's view of its capacity.
final class HostState: Sendable {
    let record: HostRecord
    let candidate: ProviderCandidate
    /// Servers on the host (only loaded when a filter or weigher needs them).
    let instances: Set<String>
    let failedBuilds: Int

    /// What the weighers read, worked out once: they read it for every host of every boot.
    let freeRAM: Double
    let freeVCPUs: Double
    let freeDisk: Double

    init(record: HostRecord, candidate: ProviderCandidate, instances: Set<String>, failedBuilds: Int) {
        (self.record, self.candidate, self.instances, self.failedBuilds) = (record, candidate, instances, failedBuilds)
        freeRAM = Double(max(record.node.memoryMB - record.node.reservedMemoryMB - (candidate.used["MEMORY_MB"] ?? 0), 0))
        freeVCPUs = Double(max(candidate.free("VCPU"), 0))
        freeDisk = Double(max(candidate.free("DISK_GB"), 0)) * 1024
    }

    var node: ComputeNode { record.node }
    var aggregates: [Aggregate] { record.aggregates }
    var host: String { record.node.host }

    var availabilityZones: Set<String> { Set(aggregates.compactMap(\.availabilityZone)) }
}

/// A host's node, aggregates and service state: what does not change from one boot to the
/// next, so the host cache builds it once for all of them.
final class HostRecord: Sendable {
    let node: ComputeNode
    let aggregates: [Aggregate]

    /// Of the service, what ComputeFilter tests on every host: `ServiceRecord.isUp`'s inputs,
    /// kept as plain values so the test copies no record.
    private let disabled: Bool
    private let lastSeenUp: Date?

    init(node: ComputeNode, service: ServiceRecord?, aggregates: [Aggregate]) {
        (self.node, self.aggregates) = (node, aggregates)
        disabled = service?.disabled ?? true
        lastSeenUp = service.flatMap { $0.forcedDown ? nil : $0.lastSeenUp }
    }

    /// Enabled and up: heartbeat within `timeout`, not forced down (a host without a
    /// service is neither).
    func isUsable(now: Date, timeout: TimeInterval) -> Bool {
        guard !disabled, let lastSeenUp else { return false }
        return now.timeIntervalSince(lastSeenUp) <= timeout
    }
}

/// What is being placed: Nova's RequestSpec.
public struct RequestSpec: Sendable {
    public var instanceUUID: String
    public var projectID: String
    public var userID: String
    public var flavor: Flavor
    public var image: ImageInfo?
    public var availabilityZone: String?
    /// `az:host[:node]` (admins) or a move's target host: filters are skipped for a forced host.
    public var forcedHost: String?
    public var requestedHost: String?
    public var group: ServerGroup?
    /// Hosts of the group's members, including those chosen earlier in this request.
    public var groupHosts: [String: Int] = [:]
    public var hints: [String: JSON]
    /// Hosts not to use (a move's source).
    public var ignoreHosts: Set<String> = []

    public init(instanceUUID: String, projectID: String, userID: String, flavor: Flavor, image: ImageInfo?, availabilityZone: String?,
                forcedHost: String? = nil, requestedHost: String? = nil, group: ServerGroup? = nil, hints: [String: JSON] = [:]) {
        (self.instanceUUID, self.projectID, self.userID, self.flavor, self.image, self.availabilityZone) =
            (instanceUUID, projectID, userID, flavor, image, availabilityZone)
        (self.forcedHost, self.requestedHost, self.group, self.hints) = (forcedHost, requestedHost, group, hints)
    }

    func hintList(_ key: String) -> [String] {
        if let s = hints[key]?.stringValue { return [s] }
        return hints[key]?.arrayValue?.compactMap(\.stringValue) ?? []
    }
}

/// One filter of the filter scheduler: keeps or drops a host for a request.
protocol HostFilter: Sendable {
    static var name: String { get }
    func passes(_ host: HostState, _ spec: RequestSpec, _ context: FilterContext) -> Bool
}

struct FilterContext: Sendable {
    var now: Date
    var serviceDownTime: TimeInterval
    var defaultAvailabilityZone: String
}

/// The compute service is up (heartbeat within `service_down_time`, not forced down) and enabled.
struct ComputeFilter: HostFilter {
    static let name = "ComputeFilter"
    func passes(_ host: HostState, _ spec: RequestSpec, _ context: FilterContext) -> Bool {
        host.record.isUsable(now: context.now, timeout: context.serviceDownTime)
    }
}

/// The host is in the requested availability zone (hosts in no AZ aggregate are in the default one).
struct AvailabilityZoneFilter: HostFilter {
    static let name = "AvailabilityZoneFilter"
    func passes(_ host: HostState, _ spec: RequestSpec, _ context: FilterContext) -> Bool {
        guard let zone = spec.availabilityZone else { return true }
        let zones = host.availabilityZones
        return zones.isEmpty ? zone == context.defaultAvailabilityZone : zones.contains(zone)
    }
}

/// Flavor extra specs `capabilities:<path>` match what the host's driver reported.
struct ComputeCapabilitiesFilter: HostFilter {
    static let name = "ComputeCapabilitiesFilter"
    func passes(_ host: HostState, _ spec: RequestSpec, _ context: FilterContext) -> Bool {
        for (key, wanted) in spec.flavor.extraSpecs {
            // Empty parts kept, as Python's `split(':')` keeps them: a key of ":" (which the extra
            // spec pattern admits) split to no parts at all and trapped on `path[0]` below.
            let path = key.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            let steps: [String]
            if path.count == 1 {
                // An unscoped key counts only when the host has such a capability.
                guard host.node.capabilities[key] != nil || Self.attribute(host, key) != nil else { continue }
                steps = path
            } else {
                guard path[0] == "capabilities" else { continue }
                steps = Array(path.dropFirst())
            }
            guard let value = Self.lookup(host, steps), ExtraSpecOperators.match(value, wanted) else { return false }
        }
        return true
    }

    static func attribute(_ host: HostState, _ name: String) -> String? {
        switch name {
        case "hypervisor_type": return host.node.hypervisorType
        case "hypervisor_version": return String(host.node.hypervisorVersion)
        case "hypervisor_hostname": return host.node.hypervisorHostname
        case "vcpus_total", "vcpus": return String(host.node.vcpus)
        case "memory_mb", "total_usable_ram_mb": return String(host.node.memoryMB)
        case "free_ram_mb": return String(Int64(host.freeRAM))
        case "host_ip": return host.node.hostIP
        default: return nil
        }
    }

    static func lookup(_ host: HostState, _ steps: [String]) -> String? {
        guard let first = steps.first else { return nil }
        if steps.count == 1, let direct = attribute(host, first) { return direct }
        var current: JSON? = host.node.capabilities[first]
        for step in steps.dropFirst() { current = current?[step] }
        switch current {
        case .string(let s)?: return s
        case .int(let i)?: return String(i)
        case .double(let d)?: return String(d)
        case .bool(let b)?: return b ? "True" : "False"
        case .array(let items)?: return "[" + items.map { $0.stringValue.map { "'\($0)'" } ?? $0.serialized() }.joined(separator: ", ") + "]"
        default: return nil
        }
    }
}

/// Image properties `hw_architecture`, `img_hv_type` and `hw_vm_mode` match what the host supports.
struct ImagePropertiesFilter: HostFilter {
    static let name = "ImagePropertiesFilter"
    func passes(_ host: HostState, _ spec: RequestSpec, _ context: FilterContext) -> Bool {
        guard let properties = spec.image?.properties else { return true }
        let arch = properties["hw_architecture"].map(Self.canonicalArch)
        let hvType = properties["img_hv_type"].map { $0.lowercased() == "xapi" ? "xen" : $0.lowercased() }
        let vmMode = properties["hw_vm_mode"].map { ["hv", "baremetal"].contains($0.lowercased()) ? "hvm" : $0.lowercased() == "pv" ? "xen" : $0.lowercased() }
        if arch == nil && hvType == nil && vmMode == nil { return true }
        let hostArch = host.node.capabilities["cpu_info"]?["arch"]?.stringValue.map(Self.canonicalArch)
        if let arch, let hostArch, arch != hostArch { return false }
        if let hvType, hvType != host.node.hypervisorType.lowercased() && !(hvType == "qemu" && host.node.hypervisorType.lowercased() == "kvm") {
            return false
        }
        if let vmMode, vmMode != "hvm" { return false }
        return true
    }

    static func canonicalArch(_ raw: String) -> String {
        let arch = raw.lowercased()
        if ["i386", "i486", "i586", "x86_32", "x86_32p"].contains(arch) { return "i686" }
        return arch == "amd64" ? "x86_64" : arch
    }
}

/// Members of an affinity group land on the host its other members are on.
struct ServerGroupAffinityFilter: HostFilter {
    static let name = "ServerGroupAffinityFilter"
    func passes(_ host: HostState, _ spec: RequestSpec, _ context: FilterContext) -> Bool {
        guard spec.group?.policy == "affinity", !spec.groupHosts.isEmpty else { return true }
        return spec.groupHosts[host.host] != nil
    }
}

/// Members of an anti-affinity group never share a host (up to `max_server_per_host`).
struct ServerGroupAntiAffinityFilter: HostFilter {
    static let name = "ServerGroupAntiAffinityFilter"
    func passes(_ host: HostState, _ spec: RequestSpec, _ context: FilterContext) -> Bool {
        guard let group = spec.group, group.policy == "anti-affinity" else { return true }
        return (spec.groupHosts[host.host] ?? 0) < Int(group.rules["max_server_per_host"] ?? 1)
    }
}

/// Flavor extra specs (`aggregate_instance_extra_specs:<key>` or unscoped) match the metadata
/// of the host's aggregates.
struct AggregateInstanceExtraSpecsFilter: HostFilter {
    static let name = "AggregateInstanceExtraSpecsFilter"
    static let prefix = "aggregate_instance_extra_specs"
    func passes(_ host: HostState, _ spec: RequestSpec, _ context: FilterContext) -> Bool {
        var metadata: [String: Set<String>] = [:]
        for aggregate in host.aggregates {
            for (key, value) in aggregate.metadata {
                for part in value.split(separator: ",") { metadata[key, default: []].insert(part.trimmingCharacters(in: .whitespaces)) }
            }
        }
        for (key, wanted) in spec.flavor.extraSpecs {
            // Empty parts kept (Python's `split(':', 1)`): a key of ":" split to nothing and trapped on `parts[0]`.
            let parts = key.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let metadataKey: String
            if parts.count == 1 { metadataKey = key } else if parts[0] == Self.prefix { metadataKey = parts[1] } else { continue }
            guard let values = metadata[metadataKey], values.contains(where: { ExtraSpecOperators.match($0, wanted) }) else { return false }
        }
        return true
    }
}

/// Scheduler hint `same_host`: the host runs one of the named servers.
struct SameHostFilter: HostFilter {
    static let name = "SameHostFilter"
    func passes(_ host: HostState, _ spec: RequestSpec, _ context: FilterContext) -> Bool {
        let wanted = spec.hintList("same_host")
        return wanted.isEmpty || wanted.contains(where: host.instances.contains)
    }
}

/// Scheduler hint `different_host`: the host runs none of the named servers.
struct DifferentHostFilter: HostFilter {
    static let name = "DifferentHostFilter"
    func passes(_ host: HostState, _ spec: RequestSpec, _ context: FilterContext) -> Bool {
        !spec.hintList("different_host").contains(where: host.instances.contains)
    }
}

enum HostFilters {
    static let all: [String: any HostFilter] = [
        ComputeFilter.name: ComputeFilter(), AvailabilityZoneFilter.name: AvailabilityZoneFilter(),
        ComputeCapabilitiesFilter.name: ComputeCapabilitiesFilter(), ImagePropertiesFilter.name: ImagePropertiesFilter(),
        ServerGroupAffinityFilter.name: ServerGroupAffinityFilter(), ServerGroupAntiAffinityFilter.name: ServerGroupAntiAffinityFilter(),
        AggregateInstanceExtraSpecsFilter.name: AggregateInstanceExtraSpecsFilter(), SameHostFilter.name: SameHostFilter(),
        DifferentHostFilter.name: DifferentHostFilter(),
    ]
}

/// Nova's extra-spec comparison grammar: `= 4` (at least 4), `== 4`, `!= 4`, `>= 4`, `<= 4`,
/// `s== x` and the other string comparisons, `<in> x` (substring), `<all-in> a b`,
/// `<or> a <or> b`; anything else is string equality with the whole value.
enum ExtraSpecOperators {
    static func match(_ value: String, _ requirement: String) -> Bool {
        let words = requirement.split(whereSeparator: \.isWhitespace).map(String.init)
        guard let op = words.first else { return value == requirement }
        let operand = words.count > 1 ? words[1] : nil
        func numeric(_ compare: (Double, Double) -> Bool) -> Bool {
            guard let operand, let a = Double(value), let b = Double(operand) else { return false }
            return compare(a, b)
        }
        func string(_ compare: (String, String) -> Bool) -> Bool {
            guard let operand else { return false }
            return compare(value, operand)
        }
        switch op {
        case "=": return numeric(>=)
        case "==": return numeric(==)
        case "!=": return numeric(!=)
        case ">=": return numeric(>=)
        case "<=": return numeric(<=)
        case "s==": return string(==)
        case "s!=": return string(!=)
        case "s<": return string(<)
        case "s<=": return string(<=)
        case "s>": return string(>)
        case "s>=": return string(>=)
        case "<in>": return string { $0.contains($1) }
        case "<all-in>": return words.count > 1 && words.dropFirst().allSatisfy { value.contains($0) }
        case "<or>":
            let options = stride(from: 1, to: words.count, by: 2).map { words[$0] }
            return options.contains(value)
        default: return value == requirement
        }
    }
}
