import Foundation
import NimbusCore

/// A server as `GET /servers/{id}` shows it at a microversion (Nova's views/servers.py):
/// fields appear exactly from the microversion that introduced them, admin-only fields only
/// for admins, and `fault`/`progress` only in the statuses that carry them.
struct ServerView {
    let version: Microversion
    let base: String
    let isAdmin: Bool
    /// host → `host_status` (UP, DOWN, MAINTENANCE).
    let hostStatus: [String: String]

    func at(_ major: Int, _ minor: Int) -> Bool { version >= Microversion(major, minor) }

    func links(_ path: String) -> JSON {
        [["rel": "self", "href": .string("\(base)/v2.1/\(path)")], ["rel": "bookmark", "href": .string("\(base)/\(path)")]]
    }

    func summary(_ i: Instance) -> JSON {
        ["id": .string(i.uuid), "name": .string(i.name), "links": links("servers/\(i.uuid)")]
    }

    /// Fields the PUT and rebuild answers keep before 2.75 (Nova's restricted view).
    static let restrictedFields: Set<String> = [
        "id", "name", "status", "tenant_id", "user_id", "metadata", "hostId", "image", "flavor", "created", "updated", "addresses",
        "accessIPv4", "accessIPv6", "links", "OS-DCF:diskConfig", "progress", "fault", "locked", "description", "tags",
        "trusted_image_certificates", "server_groups", "locked_reason",
    ]

    /// What `PUT /servers/{id}` and a rebuild answer: the restricted view before 2.75, the full
    /// one from then on; a rebuild also shows `key_name` (2.54+) and `user_data` (2.57+, top
    /// level instead of the extended attribute).
    func updated(_ i: Instance, groups: [String], rebuild: Bool) -> JSON {
        var out = detail(i, groups: groups).objectValue ?? [:]
        if !at(2, 75) {
            out = out.filter { Self.restrictedFields.contains($0.key) }
            if rebuild && at(2, 54) { out["key_name"] = .optional(i.keyName) }
            // Before 2.75 Nova shows these addresses without their OS-EXT-IPS extensions.
            if let addresses = out["addresses"]?.objectValue {
                out["addresses"] = .object(addresses.mapValues { entries in
                    .array((entries.arrayValue ?? []).map { entry in
                        .object((entry.objectValue ?? [:]).filter { !$0.key.hasPrefix("OS-EXT-IPS") })
                    })
                })
            }
        }
        if rebuild {
            out["OS-EXT-SRV-ATTR:user_data"] = nil
            if at(2, 57) { out["user_data"] = i.extra["user_data"] ?? .null }
        }
        return .object(out)
    }

    /// The full view; `groups` only for show, PUT and rebuild (2.71+).
    func detail(_ i: Instance, groups: [String]? = nil) -> JSON {
        let status = i.deletedAt != nil ? "DELETED" : i.status
        var out: [String: JSON] = [
            "id": .string(i.uuid), "name": .string(i.name), "status": .string(status), "tenant_id": .string(i.projectID),
            "user_id": .string(i.userID), "metadata": .object(i.metadata.mapValues { .string($0) }),
            "hostId": .string(i.host.map { ComputeIdentity.hostID(host: $0, project: i.projectID) } ?? ""),
            "created": .string(Timestamps.iso8601(i.createdAt)), "updated": .string(Timestamps.iso8601(i.updatedAt)),
            "addresses": i.extra["addresses"] ?? [:], "accessIPv4": i.extra["accessIPv4"] ?? "", "accessIPv6": i.extra["accessIPv6"] ?? "",
            "links": links("servers/\(i.uuid)"), "OS-DCF:diskConfig": i.extra["diskConfig"] ?? "MANUAL",
            "OS-EXT-AZ:availability_zone": .string(i.availabilityZone ?? ""),
            "config_drive": i.extra["config_drive"]?.boolValue == true ? "True" : "",
            "key_name": .optional(i.keyName),
            "OS-SRV-USG:launched_at": i.launchedAt.map { .string(Timestamps.novaTime($0)) } ?? .null,
            "OS-SRV-USG:terminated_at": i.terminatedAt.map { .string(Timestamps.novaTime($0)) } ?? .null,
            "OS-EXT-STS:task_state": .optional(i.taskState?.rawValue), "OS-EXT-STS:vm_state": .string(i.deletedAt != nil ? "deleted" : i.vmState.rawValue),
            "OS-EXT-STS:power_state": .int(i.powerState.rawValue), "os-extended-volumes:volumes_attached": [],
        ]
        var image: [String: JSON] = ["id": .string(i.imageRef),
                                     "links": [["rel": "bookmark", "href": .string("\(base)/images/\(i.imageRef)")]]]
        if at(2, 98) { image["properties"] = i.extra["request_spec"]?["image_properties"] ?? [:] }
        out["image"] = i.imageRef.isEmpty ? "" : .object(image)
        if at(2, 47) {
            var flavor = i.flavor.embedded.objectValue ?? [:]
            flavor["id"] = nil
            out["flavor"] = .object(flavor)
        } else {
            out["flavor"] = ["id": .string(i.flavor.id), "links": [["rel": "bookmark", "href": .string("\(base)/flavors/\(i.flavor.id)")]]]
        }
        if let groups = i.securityGroupNames { out["security_groups"] = .array(groups.map { ["name": .string($0)] }) }
        if ["ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING"].contains(status) {
            out["progress"] = .int(status == "ACTIVE" || status == "VERIFY_RESIZE" ? 100 : 0)
        }
        if ["ERROR", "DELETED"].contains(status), var fault = i.fault?.objectValue {
            if !isAdmin && fault["code"]?.intValue == 500 { fault["details"] = nil }
            out["fault"] = .object(fault)
        }
        if isAdmin {
            out["OS-EXT-SRV-ATTR:host"] = .optional(i.host)
            out["OS-EXT-SRV-ATTR:hypervisor_hostname"] = .optional(i.node)
            out["OS-EXT-SRV-ATTR:instance_name"] = .string("instance-" + i.uuid.prefix(8))
            if at(2, 3) {
                out["OS-EXT-SRV-ATTR:hostname"] = .string(i.hostname)
                out["OS-EXT-SRV-ATTR:kernel_id"] = ""
                out["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
                out["OS-EXT-SRV-ATTR:launch_index"] = .int(i.launchIndex)
                out["OS-EXT-SRV-ATTR:reservation_id"] = .string(i.reservationID)
                out["OS-EXT-SRV-ATTR:root_device_name"] = "/dev/vda"
                out["OS-EXT-SRV-ATTR:user_data"] = i.extra["user_data"] ?? .null
            }
            if at(2, 16) { out["host_status"] = .string(i.host.flatMap { hostStatus[$0] } ?? "") }
        } else if at(2, 90) {
            out["OS-EXT-SRV-ATTR:hostname"] = .string(i.hostname)
        }
        if at(2, 9) { out["locked"] = .bool(i.locked) }
        if at(2, 19) { out["description"] = i.extra["description"] ?? .null }
        if at(2, 26) { out["tags"] = .array(i.tags.map { .string($0) }) }
        if at(2, 63) { out["trusted_image_certificates"] = i.extra["trusted_image_certificates"] ?? .null }
        if at(2, 71), let groups { out["server_groups"] = .array(groups.map { .string($0) }) }
        if at(2, 73) { out["locked_reason"] = .optional(i.lockedReason) }
        if at(2, 96) { out["pinned_availability_zone"] = i.extra["pinned_availability_zone"] ?? .null }
        if at(2, 100) { out["scheduler_hints"] = i.extra["request_spec"]?["hints"] ?? [:] }
        return .object(out)
    }
}
