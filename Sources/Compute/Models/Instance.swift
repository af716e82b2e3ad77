import Foundation
import HostAPI
import NimbusCore

/// Nova's three state axes. `vm_state` is where the server is at rest, `task_state` what is
/// being done to it (nil when nothing), `power_state` what the hypervisor last reported.
public enum VMState: String, Sendable, CaseIterable {
    case active, building, paused, suspended, stopped, rescued, resized, error, deleted, shelved
    case softDeleted = "soft_deleted"
    case shelvedOffloaded = "shelved_offloaded"
}

public enum TaskState: String, Sendable {
    case scheduling, networking, spawning = "spawning", blockDeviceMapping = "block_device_mapping"
    case imageSnapshot = "image_snapshot", imagePendingUpload = "image_pending_upload", imageUploading = "image_uploading", imageBackup = "image_backup"
    case rebooting, rebootingHard = "rebooting_hard", pausing, unpausing, suspending, resuming
    case poweringOff = "powering-off", poweringOn = "powering-on"
    case rescuing, unrescuing, rebuilding, rebuildSpawning = "rebuild_spawning"
    case resizePrep = "resize_prep", resizeMigrating = "resize_migrating", resizeMigrated = "resize_migrated"
    case resizeFinish = "resize_finish", resizeReverting = "resize_reverting", resizeConfirming = "resize_confirming"
    case migrating, deleting, shelving, shelvingOffloading = "shelving_offloading", unshelving
    case shelvingImagePendingUpload = "shelving_image_pending_upload", shelvingImageUploading = "shelving_image_uploading"
    case updatingPassword = "updating_password"
}

/// A server as Nova keeps it: identity, placement on a host, the three states, and what the
/// user asked for at boot. Fields the API only echoes back are kept in `extra` as JSON.
public struct Instance: Sendable {
    public var uuid: String
    public var name: String
    public var projectID: String
    public var userID: String
    public var vmState: VMState
    public var taskState: TaskState?
    public var powerState: PowerState
    public var host: String?
    public var node: String?
    public var availabilityZone: String?
    public var flavor: Flavor
    /// The flavor a resize moves to, until it is confirmed or reverted.
    public var newFlavor: Flavor?
    public var imageRef: String
    public var keyName: String?
    public var metadata: [String: String]
    public var tags: [String]
    public var locked: Bool
    public var lockedReason: String?
    /// Who locked it: an admin's lock cannot be lifted by the owner.
    public var lockedBy: String?
    public var fault: JSON?
    public var launchIndex: Int64
    public var reservationID: String
    public var createdAt: Date
    public var updatedAt: Date
    public var launchedAt: Date?
    public var terminatedAt: Date?
    public var deletedAt: Date?
    /// Everything else the API echoes: user_data, accessIPv4/6, description, hostname,
    /// config_drive, requested networks, security groups, scheduler hints, server group.
    public var extra: [String: JSON]

    /// The `status` Nova derives from vm_state and task_state (api/openstack/common.py).
    public var status: String {
        switch vmState {
        case .active:
            switch taskState {
            case .rebooting: return "REBOOT"
            case .rebootingHard: return "HARD_REBOOT"
            case .rebuilding, .rebuildSpawning: return "REBUILD"
            case .resizePrep, .resizeMigrating, .resizeMigrated, .resizeFinish: return "RESIZE"
            case .migrating: return "MIGRATING"
            case .updatingPassword: return "PASSWORD"
            default: return "ACTIVE"
            }
        case .building: return "BUILD"
        case .stopped:
            switch taskState {
            case .resizePrep, .resizeMigrating, .resizeMigrated, .resizeFinish: return "RESIZE"
            case .rebuilding, .rebuildSpawning: return "REBUILD"
            default: return "SHUTOFF"
            }
        case .resized: return taskState == .resizeReverting ? "REVERT_RESIZE" : "VERIFY_RESIZE"
        case .paused: return taskState == .migrating ? "MIGRATING" : "PAUSED"
        case .suspended: return "SUSPENDED"
        case .rescued: return "RESCUE"
        case .error: return taskState == .rebuilding ? "REBUILD" : "ERROR"
        case .deleted: return "DELETED"
        case .softDeleted: return "SOFT_DELETED"
        case .shelved: return "SHELVED"
        case .shelvedOffloaded: return "SHELVED_OFFLOADED"
        }
    }

    /// The names of the server's security groups as `security_groups` shows them: those it was
    /// created with or given, else the project's `default`; nil when it was given an empty list.
    public var securityGroupNames: [String]? {
        guard let groups = extra["security_groups"]?.arrayValue else { return ["default"] }
        return groups.isEmpty ? nil : groups.compactMap(\.stringValue)
    }

    /// The guest's host name: the one it was given, else its name.
    public var hostname: String { extra["hostname"]?.stringValue ?? name }

    /// The server's fixed addresses (not floating ones) with their IP versions, from `addresses`.
    public var fixedAddresses: [(address: String, version: Int64)] {
        (extra["addresses"]?.objectValue ?? [:]).values.flatMap { $0.arrayValue ?? [] }.compactMap { entry in
            guard entry["OS-EXT-IPS:type"]?.stringValue != "floating", let address = entry["addr"]?.stringValue else { return nil }
            return (address, entry["version"]?.intValue ?? (address.contains(":") ? 6 : 4))
        }
    }

    /// The resources this server holds in placement and counts against quota.
    public var resources: [String: Int64] { Self.resources(of: flavor) }

    public static func resources(of flavor: Flavor) -> [String: Int64] {
        var out: [String: Int64] = ["VCPU": flavor.vcpus, "MEMORY_MB": flavor.ram]
        let disk = flavor.disk + flavor.ephemeral + flavor.swap / 1024
        if disk > 0 { out["DISK_GB"] = disk }
        return out
    }
}
