import Foundation
import NimbusCore

// What the controller and a host's agent say to each other. In one process the link is a direct
// call; a separate `nimbus agent` sends the same values as JSON over `/compute-agent/v1`.

/// A unit of work for a host's agent, read from the durable outbox.
public struct AgentMessage: Sendable {
    /// What a message asks of the agent. The conductor writes these and the agent switches
    /// over them; the raw values are the names in the outbox and on the wire.
    public enum Kind: String, Sendable, CaseIterable {
        /// A guest comes to be on this host (a boot, an evacuation's or an unshelve's rebuild).
        case build, evacuate, unshelve
        /// The guest is made again from its (new) image.
        case rebuild
        /// The guest goes: deleted, offloaded, left behind by a confirmed move, or a leftover.
        case destroy, shelveOffload = "shelve_offload", confirmResize = "confirm_resize", cleanup
        case stop, start, reboot, pause, unpause, suspend, resume, rescue, unrescue
        /// Cold migration and resize: the source quiesces and offers its disks, the
        /// destination takes them (or the source, on revert).
        case migrateOut = "migrate_out", resizeIn = "resize_in", revertResize = "revert_resize"
        /// Live migration: the destination listens, the source sends, the destination adopts
        /// (or lets go when the send failed).
        case liveMigrationPrepare = "live_migration_prepare", liveMigrate = "live_migrate", adopt
        case liveMigrationAbort = "live_migration_abort"
        /// Live migration, sent to the source while `live_migrate` runs there (ordered by the
        /// migration, not the instance): pause the guest so the copy converges, or cancel it.
        case liveMigrationForceComplete = "live_migration_force_complete", liveMigrationCancel = "live_migration_cancel"
        /// The guest is sent a non-maskable interrupt (Nova's `trigger_crash_dump`).
        case triggerCrashDump = "trigger_crash_dump"
        /// Host-wide: images put in the host's base image cache ahead of boots (Nova's precache).
        case cacheImages = "cache_images"
        /// The host uploads the guest's disk to an image the conductor created.
        case snapshot
        /// Synchronous calls: the caller waits for the report (`Conductor.call`).
        case console, getVNCConsole = "get_vnc_console", diagnostics
        /// A port is hot-plugged into the guest (synchronous) or unplugged from it.
        case attachInterface = "attach_interface", detachInterface = "detach_interface"
        /// The guest's administrator password is set (synchronous).
        case setAdminPassword = "set_admin_password"
    }

    public var id: Int64
    /// What the agent keeps this message in order with: messages with the same key run one
    /// after another in id order, messages with different keys run concurrently. The sender
    /// chooses it: an instance's messages share `orderingKey(instance:)`, host-wide messages
    /// share `hostOrderingKey`, and work on another object (a port's wiring, a volume's
    /// connection) would name that object (`port:<id>`, `volume:<id>`).
    public var orderingKey: String
    /// The kind as the outbox and the wire name it. A controller newer than this agent may
    /// send one it does not know: `kind` is nil then, and the agent answers with an error.
    public var kindName: String
    public var instanceUUID: String?
    public var payload: JSON

    /// The kind, if this build knows it.
    public var kind: Kind? { Kind(rawValue: kindName) }

    /// The key of host-wide messages (about no instance or other object).
    public static let hostOrderingKey = "host"

    /// The key of an instance's messages; `hostOrderingKey` without one.
    public static func orderingKey(instance: String?) -> String { instance.map { "instance:\($0)" } ?? hostOrderingKey }

    public init(id: Int64, kind: Kind, instanceUUID: String?, orderingKey: String? = nil, payload: JSON) {
        self.init(id: id, kindName: kind.rawValue, instanceUUID: instanceUUID, orderingKey: orderingKey, payload: payload)
    }

    /// A message as read from the outbox or the wire, whatever its kind. Without an
    /// `orderingKey` it is ordered with its instance's messages.
    public init(id: Int64, kindName: String, instanceUUID: String?, orderingKey: String? = nil, payload: JSON) {
        (self.id, self.kindName, self.instanceUUID, self.payload) = (id, kindName, instanceUUID, payload)
        self.orderingKey = orderingKey ?? Self.orderingKey(instance: instanceUUID)
    }

    public var json: JSON {
        ["id": .int(id), "kind": .string(kindName), "instance_uuid": .optional(instanceUUID), "ordering_key": .string(orderingKey),
         "payload": payload]
    }

    /// Nil only without an id or a kind name: an unknown kind still reads, to be answered.
    public init?(json: JSON) {
        guard let id = json["id"]?.intValue, let kind = json["kind"]?.stringValue else { return nil }
        self.init(id: id, kindName: kind, instanceUUID: json["instance_uuid"]?.stringValue, orderingKey: json["ordering_key"]?.stringValue,
                  payload: json["payload"] ?? .null)
    }
}

/// What the agent did with a message. Reporting it also acknowledges the message, in the same
/// transaction as the state change it causes.
public struct AgentReport: Sendable {
    public var messageID: Int64
    public var host: String
    /// nil on success.
    public var error: String?
    public var output: JSON

    public init(messageID: Int64, host: String, error: String?, output: JSON = .null) {
        (self.messageID, self.host, self.error, self.output) = (messageID, host, error, output)
    }

    public var json: JSON { ["message_id": .int(messageID), "host": .string(host), "error": .optional(error), "output": output] }

    public init?(json: JSON) {
        guard let id = json["message_id"]?.intValue, let host = json["host"]?.stringValue else { return nil }
        self.init(messageID: id, host: host, error: json["error"]?.stringValue, output: json["output"] ?? .null)
    }
}

/// A host announcing itself: what it has and what its driver can do.
public struct AgentRegistration: Sendable {
    public var host: String
    public var hostIP: String
    public var resources: HostResources
    public var capabilities: DriverCapabilities

    public init(host: String, hostIP: String, resources: HostResources, capabilities: DriverCapabilities) {
        (self.host, self.hostIP, self.resources, self.capabilities) = (host, hostIP, resources, capabilities)
    }
}

/// How an agent reaches the control plane. In one process it is a direct call; a separate
/// `nimbus agent` speaks the same five calls over HTTP with its own credentials. Either way
/// the agent never touches the database.
public protocol AgentLink: Sendable {
    func register(_ registration: AgentRegistration) async throws
    func heartbeat(host: String) async throws
    /// The host's unacknowledged messages (those whose report was not applied yet) in id
    /// order, except those in `excluding` (the agent has them already), waiting up to `wait`
    /// for one to arrive. Not a cursor: on PostgreSQL a message may commit after one with a
    /// higher id was fetched, and it is still returned.
    func fetch(host: String, excluding: Set<Int64>, wait: Duration) async throws -> [AgentMessage]
    func report(_ report: AgentReport) async throws
    /// The power states of the host's guests as the hypervisor sees them (see `PowerStateReport`).
    func syncPowerStates(_ report: PowerStateReport) async throws
}

extension AgentRegistration {
    public var json: JSON {
        let r = resources
        return ["host": .string(host), "host_ip": .string(hostIP),
                "resources": ["vcpus": .int(r.vcpus), "memory_mb": .int(r.memoryMB), "disk_gb": .int(r.diskGB),
                              "reserved_vcpus": .int(r.reservedVCPUs), "reserved_memory_mb": .int(r.reservedMemoryMB),
                              "reserved_disk_gb": .int(r.reservedDiskGB),
                              "hypervisor_type": .string(r.hypervisorType), "hypervisor_version": .int(r.hypervisorVersion),
                              "cpu_info": .object(r.cpuInfo.mapValues { .string($0) })],
                "capabilities": .object(capabilities.json)]
    }

    /// The range of a host's vCPU, memory and disk counts: placement's inventory `total` (and
    /// Nova's compute-node columns) hold no more than 2^31 − 1. Outside it the conductor's
    /// arithmetic on them (reserved host memory, hypervisor statistics' sums) would overflow.
    static let resourceRange: ClosedRange<Int64> = 0...Int64(Int32.max)

    public init?(json: JSON) {
        guard let host = json["host"]?.stringValue, let r = json["resources"], let vcpus = r["vcpus"]?.intValue,
              let memory = r["memory_mb"]?.intValue, let disk = r["disk_gb"]?.intValue,
              [vcpus, memory, disk].allSatisfy(Self.resourceRange.contains) else { return nil }
        // Absent reservations are none (an agent from before they were reported).
        let reserved = ["reserved_vcpus", "reserved_memory_mb", "reserved_disk_gb"].compactMap { r[$0] == nil ? 0 : r[$0]?.intValue }
        guard reserved.count == 3, reserved.allSatisfy(Self.resourceRange.contains) else { return nil }
        let resources = HostResources(vcpus: vcpus, memoryMB: memory, diskGB: disk, hypervisorType: r["hypervisor_type"]?.stringValue ?? "fake",
                                      hypervisorVersion: r["hypervisor_version"]?.intValue ?? 0,
                                      cpuInfo: r["cpu_info"]?.objectValue?.compactMapValues(\.stringValue) ?? [:],
                                      reservedVCPUs: reserved[0], reservedMemoryMB: reserved[1], reservedDiskGB: reserved[2])
        self.init(host: host, hostIP: json["host_ip"]?.stringValue ?? "", resources: resources,
                  capabilities: DriverCapabilities(json: json["capabilities"]?.objectValue ?? [:]))
    }
}

extension GuestSpec {
    public var json: JSON {
        var out: [String: JSON] = [
            "uuid": .string(uuid), "name": .string(name), "hostname": .string(hostname), "project_id": .string(projectID),
            "availability_zone": .optional(availabilityZone), "launch_index": .int(Int64(launchIndex)),
            "vcpus": .int(Int64(vcpus)), "memory_mb": .int(Int64(memoryMB)), "root_gb": .int(Int64(rootGB)),
            "ephemeral_gb": .int(Int64(ephemeralGB)), "swap_mb": .int(Int64(swapMB)), "image": image.json,
            "keys": .array(keys.map { ["name": .string($0.name), "type": .string($0.type), "data": .string($0.data)] }),
            "metadata": .object(metadata.mapValues { .string($0) }), "network_data": .optional(networkData),
            "config_drive": .bool(configDrive), "nics": .array(nics.map(\.json)),
            "flavor_name": .string(flavorName), "reservation_id": .string(reservationID),
            "security_groups": .array(securityGroups.map { .string($0) }), "floating_ips": .array(floatingIPs.map { .string($0) }),
        ]
        if let userData { out["user_data"] = .string(Data(userData).base64EncodedString()) }
        return .object(out)
    }

    public init?(json: JSON) {
        guard let uuid = json["uuid"]?.stringValue, let image = json["image"].flatMap(ImageRef.init(json:)) else { return nil }
        func int(_ key: String) -> Int { json[key]?.intValue.flatMap { Int(exactly: $0) } ?? 0 }
        self.init(uuid: uuid, name: json["name"]?.stringValue ?? "", hostname: json["hostname"]?.stringValue ?? "",
                  projectID: json["project_id"]?.stringValue ?? "", availabilityZone: json["availability_zone"]?.stringValue,
                  launchIndex: int("launch_index"), vcpus: int("vcpus"), memoryMB: int("memory_mb"), rootGB: int("root_gb"),
                  ephemeralGB: int("ephemeral_gb"), swapMB: int("swap_mb"), image: image,
                  userData: json["user_data"]?.stringValue.flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) },
                  keys: json["keys"]?.arrayValue?.compactMap { key in
                      key["data"]?.stringValue.map { PublicKey(name: key["name"]?.stringValue ?? "", type: key["type"]?.stringValue ?? "ssh", data: $0) }
                  } ?? [],
                  metadata: json["metadata"]?.objectValue?.compactMapValues(\.stringValue) ?? [:],
                  networkData: json["network_data"]?.stringValue, configDrive: json["config_drive"]?.boolValue ?? false,
                  nics: json["nics"]?.arrayValue?.compactMap(VIF.init(json:)) ?? [],
                  flavorName: json["flavor_name"]?.stringValue ?? "", reservationID: json["reservation_id"]?.stringValue ?? "",
                  securityGroups: json["security_groups"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                  floatingIPs: json["floating_ips"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }
}

extension ImageRef {
    public var json: JSON {
        ["id": .string(id), "disk_format": .string(diskFormat), "checksum": .optional(checksum), "sha512": .optional(sha512),
         "kernel_id": .optional(kernelID), "ramdisk_id": .optional(ramdiskID), "properties": .object(properties.mapValues { .string($0) })]
    }

    public init?(json: JSON) {
        guard let id = json["id"]?.stringValue else { return nil }
        self.init(id: id, diskFormat: json["disk_format"]?.stringValue ?? "", checksum: json["checksum"]?.stringValue,
                  sha512: json["sha512"]?.stringValue, kernelID: json["kernel_id"]?.stringValue, ramdiskID: json["ramdisk_id"]?.stringValue,
                  properties: json["properties"]?.objectValue?.compactMapValues(\.stringValue) ?? [:])
    }
}

extension VIF {
    public var json: JSON {
        ["port_id": .string(portID), "network_id": .string(networkID), "mac_address": .string(macAddress), "mtu": .int(Int64(mtu)),
         "fixed_ips": .array(fixedIPs.map { .string($0) })]
    }

    public init?(json: JSON) {
        guard let port = json["port_id"]?.stringValue else { return nil }
        self.init(portID: port, networkID: json["network_id"]?.stringValue ?? "", macAddress: json["mac_address"]?.stringValue ?? "",
                  mtu: json["mtu"]?.intValue.flatMap { Int(exactly: $0) } ?? 1500,
                  fixedIPs: json["fixed_ips"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }
}
