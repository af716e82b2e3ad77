import Foundation
import HostAPI
import NimbusCore

/// What the compute service needs from placement. Nimbus wires the in-process placement
/// service behind it; compute never reads placement's tables.
public protocol PlacementClient: Sendable {
    /// Providers that can hold the request, each with the allocation that would hold it and its
    /// capacity and use (Nova's `GET /allocation_candidates`).
    func candidates(_ request: PlacementRequest) async throws -> [ProviderCandidate]
    /// Replaces the consumer's allocations in one step; false, with nothing written, when a
    /// provider lacks the capacity.
    func claim(consumer: String, project: String, user: String, allocations: [String: [String: Int64]]) async throws -> Bool
    func allocations(consumer: String) async throws -> [String: [String: Int64]]
    func deleteAllocations(consumer: String) async throws
    /// Moves everything `from` holds to `to` (a server's allocation to its migration record
    /// while it moves, as Nova does), in one step.
    func moveAllocations(from: String, to: String, project: String, user: String) async throws
    /// Creates or updates a compute node's provider with its inventory and traits.
    func syncProvider(uuid: String, name: String, inventory: [String: ProviderInventory], traits: Set<String>) async throws
    /// The placement aggregates a provider belongs to (the host aggregates it is in).
    func setAggregates(provider: String, aggregates: Set<String>) async throws
    func deleteProvider(uuid: String) async throws
}

public struct PlacementRequest: Sendable {
    public var resources: [String: Int64]
    public var requiredTraits: Set<String> = []
    public var forbiddenTraits: Set<String> = []
    /// Each inner list is an any-of set of aggregate uuids; all lists must match.
    public var memberOf: [[String]] = []
    /// Only this provider (a forced host).
    public var inTree: String?
    public var limit: Int?

    public init(resources: [String: Int64]) { self.resources = resources }
}

public struct ProviderCandidate: Sendable {
    public var uuid: String
    public var allocation: [String: Int64]
    public var capacity: [String: Int64]
    public var used: [String: Int64]

    public init(uuid: String, allocation: [String: Int64], capacity: [String: Int64], used: [String: Int64]) {
        (self.uuid, self.allocation, self.capacity, self.used) = (uuid, allocation, capacity, used)
    }

    public func free(_ resourceClass: String) -> Int64 { (capacity[resourceClass] ?? 0) - (used[resourceClass] ?? 0) }
}

public struct ProviderInventory: Sendable, Equatable {
    public var total: Int64
    public var reserved: Int64
    public var allocationRatio: Double
    public var maxUnit: Int64

    public init(total: Int64, reserved: Int64 = 0, allocationRatio: Double = 1.0, maxUnit: Int64? = nil) {
        (self.total, self.reserved, self.allocationRatio, self.maxUnit) = (total, reserved, allocationRatio, maxUnit ?? total)
    }
}

/// What the compute service needs from the image service.
public protocol ImageClient: Sendable {
    /// The image if the caller may see it; nil otherwise.
    func image(_ id: String, caller: AuthContext) async throws -> ImageInfo?
    /// Creates a queued image for a snapshot of a server, owned by the caller's project.
    func createImage(name: String, properties: [String: String], caller: AuthContext) async throws -> String
    /// Deletes an image the compute service created (a shelved server's snapshot).
    func deleteImage(_ id: String) async throws
    /// The server's backups of `type` (`createBackup`'s images), newest first.
    func backups(instance: String, type: String) async throws -> [String]
    /// Every image the caller may see, newest first (the compute API's image proxy).
    func images(caller: AuthContext) async throws -> [ImageInfo]
    /// Deletes an image as the caller (the proxy's `DELETE /images/{id}`).
    func deleteImage(_ id: String, caller: AuthContext) async throws
    /// Sets and removes free-form properties as the caller; the image as it then is.
    func changeProperties(_ id: String, set: [String: String], remove: [String], caller: AuthContext) async throws -> ImageInfo
}

public struct ImageInfo: Sendable {
    public var id: String
    public var name: String?
    public var status: String
    public var minRAM: Int64
    public var minDisk: Int64
    public var size: Int64?
    public var diskFormat: String?
    public var properties: [String: String]
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: String, name: String?, status: String, minRAM: Int64, minDisk: Int64, size: Int64?, diskFormat: String?,
                properties: [String: String], createdAt: Date = Date(timeIntervalSince1970: 0), updatedAt: Date = Date(timeIntervalSince1970: 0)) {
        (self.id, self.name, self.status, self.minRAM, self.minDisk, self.size, self.diskFormat, self.properties) =
            (id, name, status, minRAM, minDisk, size, diskFormat, properties)
        (self.createdAt, self.updatedAt) = (createdAt, updatedAt)
    }
}

/// What the compute service needs from the network service (Neutron's role in Nova's boot):
/// requested networks checked at the API, ports created or bound on the chosen host before
/// the guest starts, and released when it is deleted. Nimbus wires the in-process networking
/// service behind it; without one, servers boot without NICs.
public protocol NetworkClient: Sendable {
    /// Checks what a server asks for, as the caller, and resolves `auto` into concrete networks
    /// (the project's only usable network, or none when there is no network at all). Errors
    /// are the API's 400/404/409 answers.
    func resolve(_ request: NetworkRequest, caller: AuthContext) async throws -> [RequestedNIC]
    /// The instance's ports, bound to `host`: created on the requested networks (with their
    /// fixed IPs) or taken over from the requested ports. Idempotent: ports the instance
    /// already has are rebound rather than created again, so a resumed or rescheduled build
    /// does not leak ports.
    func allocate(_ nics: [RequestedNIC], instance: String, project: String, host: String, zone: String,
                  securityGroups: [String]) async throws -> [AttachedNIC]
    /// The caller's project's security groups named (by name or id) in a server create, as
    /// (id, name); 400 naming the first that is not there.
    func securityGroups(_ names: [String], caller: AuthContext) async throws -> [(id: String, name: String)]
    /// Adds (or removes) the group, named or by id and of the server's project, on every port
    /// of the instance, as the caller; returns the group's name. 404 when there is no such
    /// group, 400 when a port already has it (or does not).
    func changeSecurityGroup(_ group: String, instance: String, project: String, adding: Bool, caller: AuthContext) async throws -> String
    /// A port for an interface attach, bound to `host` for the instance (Nova's
    /// `allocate_port_for_instance`): the requested port taken over, or one made on the
    /// requested network (with its fixed IP), or — naming neither — on the one network the
    /// caller can use. Checked as the caller, with Nova's `os-interface` errors: an unknown
    /// port or network 404, a port in use 409, several usable networks or none 400, no free
    /// address 400, an address taken 409, the port quota spent 403. Returns the port, the
    /// request as it is kept with the server's (its network resolved), and whether the port was
    /// made here. On throw nothing is left made or bound.
    func attachPort(_ request: RequestedNIC, instance: String, project: String, host: String, zone: String, securityGroups: [String],
                    caller: AuthContext) async throws -> (nic: AttachedNIC, request: RequestedNIC, created: Bool)
    /// Lets go of one of the instance's ports: deleted when `delete` (compute made it),
    /// otherwise unbound, keeping its addresses. A port gone or no longer the instance's is
    /// left alone.
    func releasePort(_ port: String, instance: String, delete: Bool) async throws
    /// Deletes the ports compute created for the instance and unbinds the ones in `keep`
    /// (ports the user gave it), which keep their addresses.
    func deallocate(instance: String, keep: Set<String>) async throws
    /// A compute host's agent registered or heartbeat: the host's L2 agent is alive too
    /// (Nimbus runs no separate one).
    func hostAlive(_ host: String) async
    /// The instance's ports as they are now (addresses, floating IPs), for Nova's
    /// `network-changed` refresh of what the server shows.
    func attached(instance: String) async throws -> [AttachedNIC]
    /// The security groups of the instance's ports that the caller may see, each once, in the
    /// order the ports name them, with their ingress rules as Nova converts Neutron's; a rule
    /// whose remote group the caller cannot see is left out (Nova drops it too).
    func instanceSecurityGroups(instance: String, caller: AuthContext) async throws -> [InstanceSecurityGroup]
}

/// A security group as Nova's `os-security-groups` proxies show it.
public struct InstanceSecurityGroup: Sendable, Equatable {
    public struct Rule: Sendable, Equatable {
        public var id: String
        /// `icmpv6` for an IPv6 ICMP rule, as Nova names it; nil for any protocol.
        public var ipProtocol: String?
        /// Nova's reading of Neutron's range: a protocol without one is 1–65535 for TCP and
        /// UDP and -1 otherwise; no protocol and no range is null.
        public var fromPort: Int64?
        public var toPort: Int64?
        /// The remote prefix (`0.0.0.0/0` for none), when the rule names no remote group.
        public var cidr: String?
        /// The remote group's name and project, when it names one.
        public var group: (name: String, projectID: String)?

        public init(id: String, ipProtocol: String?, fromPort: Int64?, toPort: Int64?, cidr: String?, group: (name: String, projectID: String)?) {
            (self.id, self.ipProtocol, self.fromPort, self.toPort, self.cidr, self.group) = (id, ipProtocol, fromPort, toPort, cidr, group)
        }

        public static func == (a: Rule, b: Rule) -> Bool {
            a.id == b.id && a.ipProtocol == b.ipProtocol && a.fromPort == b.fromPort && a.toPort == b.toPort && a.cidr == b.cidr
                && a.group?.name == b.group?.name && a.group?.projectID == b.group?.projectID
        }
    }

    public var id: String
    public var name: String
    public var description: String
    public var projectID: String
    public var rules: [Rule]

    public init(id: String, name: String, description: String, projectID: String, rules: [Rule]) {
        (self.id, self.name, self.description, self.projectID, self.rules) = (id, name, description, projectID, rules)
    }

    /// Nova's body for one group (`tenant_id`, rules with `ip_protocol`, `group` and `ip_range`).
    public var json: JSON {
        ["id": .string(id), "name": .string(name), "description": .string(description), "tenant_id": .string(projectID),
         "rules": .array(rules.map { $0.json(parent: id) })]
    }
}

extension InstanceSecurityGroup.Rule {
    /// Nova's body for one rule of the group `parent`.
    public func json(parent: String) -> JSON {
        ["id": .string(id), "parent_group_id": .string(parent), "ip_protocol": .optional(ipProtocol),
         "from_port": fromPort.map(JSON.int) ?? .null, "to_port": toPort.map(JSON.int) ?? .null,
         "group": group.map { ["name": .string($0.name), "tenant_id": .string($0.projectID)] } ?? [:],
         "ip_range": cidr.map { ["cidr": .string($0)] } ?? [:]]
    }
}

/// The server body's `networks`: `auto`, `none`, or a list.
public enum NetworkRequest: Sendable, Equatable {
    case auto, none
    case list([RequestedNIC])
}

/// One entry of the server body's `networks`: a network (optionally with a fixed IP) or a port.
public struct RequestedNIC: Sendable, Equatable {
    public var networkID: String?
    public var fixedIP: String?
    public var portID: String?
    public var tag: String?

    public init(networkID: String? = nil, fixedIP: String? = nil, portID: String? = nil, tag: String? = nil) {
        (self.networkID, self.fixedIP, self.portID, self.tag) = (networkID, fixedIP, portID, tag)
    }

    var json: JSON {
        var out: [String: JSON] = [:]
        if let networkID { out["uuid"] = .string(networkID) }
        if let fixedIP { out["fixed_ip"] = .string(fixedIP) }
        if let portID { out["port"] = .string(portID) }
        if let tag { out["tag"] = .string(tag) }
        return .object(out)
    }

    init(json: JSON) {
        self.init(networkID: json["uuid"]?.stringValue, fixedIP: json["fixed_ip"]?.stringValue, portID: json["port"]?.stringValue,
                  tag: json["tag"]?.stringValue)
    }
}

/// A port attached to a server, as the driver wires it and as `addresses` shows it.
public struct AttachedNIC: Sendable, Equatable {
    public var portID: String
    public var networkID: String
    public var networkName: String
    public var macAddress: String
    public var fixedIPs: [String]
    /// The port's binding details for the driver (`binding:vif_type`, `binding:vif_details`, MTU…).
    public var binding: [String: String]
    /// Floating addresses NATed to this port, by the fixed address they reach.
    public var floatingIPs: [String: String]
    /// The subnet of each fixed address.
    public var subnets: [String: String]
    /// The port's `status` (ACTIVE once its host wired it), as `os-interface` shows it.
    public var status: String

    public init(portID: String, networkID: String, networkName: String, macAddress: String, fixedIPs: [String], binding: [String: String] = [:],
                floatingIPs: [String: String] = [:], subnets: [String: String] = [:], status: String = "") {
        (self.portID, self.networkID, self.networkName, self.macAddress, self.fixedIPs, self.binding, self.floatingIPs) =
            (portID, networkID, networkName, macAddress, fixedIPs, binding, floatingIPs)
        (self.subnets, self.status) = (subnets, status)
    }

    var json: JSON {
        ["port_id": .string(portID), "network_id": .string(networkID), "network_name": .string(networkName), "mac_address": .string(macAddress),
         "fixed_ips": .array(fixedIPs.map { .string($0) }), "binding": .object(binding.mapValues { .string($0) }),
         "floating_ips": .object(floatingIPs.mapValues { .string($0) }), "subnets": .object(subnets.mapValues { .string($0) }),
         "status": .string(status)]
    }

    init?(json: JSON) {
        guard let port = json["port_id"]?.stringValue else { return nil }
        self.init(portID: port, networkID: json["network_id"]?.stringValue ?? "", networkName: json["network_name"]?.stringValue ?? "",
                  macAddress: json["mac_address"]?.stringValue ?? "", fixedIPs: json["fixed_ips"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                  binding: json["binding"]?.objectValue?.compactMapValues(\.stringValue) ?? [:],
                  floatingIPs: json["floating_ips"]?.objectValue?.compactMapValues(\.stringValue) ?? [:],
                  subnets: json["subnets"]?.objectValue?.compactMapValues(\.stringValue) ?? [:], status: json["status"]?.stringValue ?? "")
    }

    /// Nova's `os-interface` view of the port.
    var interfaceAttachment: JSON {
        ["port_id": .string(portID), "net_id": .string(networkID), "mac_addr": .string(macAddress), "port_state": .string(status),
         "fixed_ips": .array(fixedIPs.map { ["ip_address": .string($0), "subnet_id": subnets[$0].map(JSON.string) ?? .null] })]
    }

    /// The port as the host's driver plugs it (the MTU is the network's, carried in the binding).
    var vif: VIF {
        VIF(portID: portID, networkID: networkID, macAddress: macAddress, mtu: binding["mtu"].flatMap { Int($0) } ?? 1500, fixedIPs: fixedIPs)
    }

    /// Nova's `addresses`: network name → `[{version, addr, OS-EXT-IPS:type, OS-EXT-IPS-MAC:mac_addr}]`,
    /// each floating address right after the fixed one it reaches.
    static func addresses(_ nics: [AttachedNIC]) -> JSON {
        var out: [String: [JSON]] = [:]
        for nic in nics {
            for ip in nic.fixedIPs {
                for (addr, type) in [(ip, "fixed"), (nic.floatingIPs[ip], "floating")] {
                    guard let addr else { continue }
                    out[nic.networkName, default: []].append(["version": .int(addr.contains(":") ? 6 : 4), "addr": .string(addr),
                                                              "OS-EXT-IPS:type": .string(type), "OS-EXT-IPS-MAC:mac_addr": .string(nic.macAddress)])
                }
            }
        }
        return .object(out.mapValues { .array($0) })
    }
}
