import Crypto
import Foundation
import Synchronization
import NimbusCore

/// A service record (`nova-compute` on a host, or the control plane's `nova-scheduler` and
/// `nova-conductor`), with its heartbeat. Up or down is derived from the heartbeat age.
public struct ServiceRecord: Sendable {
    public var id: String
    public var host: String
    public var binary: String
    public var disabled: Bool
    public var disabledReason: String?
    public var forcedDown: Bool
    public var lastSeenUp: Date?
    public var createdAt: Date
    public var updatedAt: Date

    public func isUp(now: Date = Date(), timeout: TimeInterval) -> Bool {
        guard !forcedDown, let lastSeenUp else { return false }
        return now.timeIntervalSince(lastSeenUp) <= timeout
    }
}

/// A hypervisor: one compute node's resources, as its agent last reported them. Its uuid is
/// also its resource provider's uuid in placement.
public struct ComputeNode: Sendable {
    public var uuid: String
    public var host: String
    public var hypervisorHostname: String
    public var hypervisorType: String
    public var hypervisorVersion: Int64
    public var hostIP: String
    public var vcpus: Int64
    public var memoryMB: Int64
    public var localGB: Int64
    /// What the host keeps for itself, out of the totals above (placement's `reserved`).
    public var reservedVCPUs: Int64
    public var reservedMemoryMB: Int64
    public var reservedDiskGB: Int64
    /// What the driver declares it can do, as data: `{"supports_live_migration": true, …}`
    /// plus the `cpu_info` and traits the scheduler matches flavors and images against.
    public var capabilities: [String: JSON]
    public var updatedAt: Date
}

/// A host aggregate; an `availability_zone` key in its metadata makes it an AZ.
public struct Aggregate: Sendable {
    public var id: Int64
    public var uuid: String
    public var name: String
    public var metadata: [String: String]
    public var hosts: [String]
    public var createdAt: Date
    public var updatedAt: Date?

    public var availabilityZone: String? { metadata["availability_zone"] }

    /// A host's zone: that of an aggregate it is in which names one, else the default zone.
    static func zone(of host: String, in aggregates: [Aggregate], default defaultZone: String) -> String {
        aggregates.first { $0.hosts.contains(host) && $0.availabilityZone != nil }?.availabilityZone ?? defaultZone
    }

    /// The full view; `uuid` from 2.41.
    public func json(_ version: Microversion) -> JSON {
        var out: [String: JSON] = [
            "id": .int(id), "name": .string(name), "availability_zone": .optional(availabilityZone),
            "metadata": .object(metadata.mapValues { .string($0) }), "hosts": .array(hosts.map { .string($0) }),
            "created_at": .string(Timestamps.novaTime(createdAt)), "updated_at": updatedAt.map { .string(Timestamps.novaTime($0)) } ?? .null,
            "deleted_at": .null, "deleted": false]
        if version >= Microversion(2, 41) { out["uuid"] = .string(uuid) }
        return .object(out)
    }
}

/// A server group and the policy its members keep.
public struct ServerGroup: Sendable {
    public var uuid: String
    public var name: String
    public var projectID: String
    public var userID: String
    /// affinity, anti-affinity, soft-affinity or soft-anti-affinity.
    public var policy: String
    /// `max_server_per_host` for anti-affinity (2.64+).
    public var rules: [String: Int64]
    public var members: [String]
    public var createdAt: Date

    public static let policies: Set<String> = ["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"]

    public func json(_ version: Microversion) -> JSON {
        var out: [String: JSON] = ["id": .string(uuid), "name": .string(name), "members": .array(members.map { .string($0) })]
        if version >= Microversion(2, 64) {
            out["policy"] = .string(policy)
            out["rules"] = .object(rules.mapValues { .int($0) })
        } else {
            out["policies"] = [.string(policy)]
            out["metadata"] = [:]
        }
        if version >= Microversion(2, 13) {
            out["project_id"] = .string(projectID)
            out["user_id"] = .string(userID)
        }
        return .object(out)
    }
}

/// One user-visible operation on a server (`openstack server event list`), and its steps.
public struct InstanceAction: Sendable {
    public var id: Int64
    public var instanceUUID: String
    public var action: String
    public var requestID: String
    public var userID: String
    public var projectID: String
    public var startTime: Date
    public var updatedAt: Date
    public var message: String?
    public var events: [InstanceActionEvent]

    public func json(_ version: Microversion, showDetails: Bool) -> JSON {
        var out: [String: JSON] = ["action": .string(action), "instance_uuid": .string(instanceUUID), "request_id": .string(requestID),
                                   // Actions the system started (a power-state sync's stop) have no user or project, as in Nova.
                                   "user_id": .optional(userID.isEmpty ? nil : userID), "project_id": .optional(projectID.isEmpty ? nil : projectID),
                                   "start_time": .string(Timestamps.novaTime(startTime)), "message": .optional(message)]
        if version >= Microversion(2, 58) { out["updated_at"] = .string(Timestamps.novaTime(updatedAt)) }
        return .object(out)
    }
}

public struct InstanceActionEvent: Sendable {
    public var event: String
    public var startTime: Date
    public var finishTime: Date?
    /// "Success" or "Error"; nil while the step runs.
    public var result: String?
    public var traceback: String?
    public var host: String?
    public var details: String?

    public func json(_ version: Microversion, admin: Bool) -> JSON {
        var out: [String: JSON] = ["event": .string(event), "start_time": .string(Timestamps.novaTime(startTime)),
                                   "finish_time": finishTime.map { .string(Timestamps.novaTime($0)) } ?? .null, "result": .optional(result)]
        if admin { out["traceback"] = .optional(traceback) }
        if version >= Microversion(2, 62) {
            if admin { out["host"] = .optional(host) }
            // Non-admins see an obfuscated host id, as Nova does.
            out["hostId"] = .string(host.map { ComputeIdentity.hostID(host: $0, project: "") } ?? "")
        }
        if version >= Microversion(2, 84) { out["details"] = .optional(details) }
        return .object(out)
    }
}

public enum ComputeIdentity {
    /// Nova's `hostId`: a hash of project id + host (56 hex digits, as Nova's sha224), so users
    /// can tell whether two of their servers share a host without learning host names.
    public static func hostID(host: String, project: String) -> String {
        let key = project + host
        if let known = hostIDs.withLock({ $0[key] }) { return known }
        let id = String(Hex.encode(SHA256.hash(data: Data(key.utf8))).prefix(56))
        hostIDs.withLock { cache in
            // Bounded by clearing: a cloud has few enough project-host pairs in use at once.
            if cache.count >= 10_000 { cache.removeAll() }
            cache[key] = id
        }
        return id
    }

    /// Every server shown hashes its project and host: clients polling servers would redo it
    /// each time.
    private static let hostIDs = Mutex<[String: String]>([:])
}
