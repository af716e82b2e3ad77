import Foundation
import NimbusCore

/// What `GET /servers` accepts, as Nova's `index_query` schemas and `_get_server_search_options`
/// define it: which parameters exist at a microversion, which of them a caller without
/// `allow_all_filters` may use (Nova drops the others silently), how each matches, and the sort
/// keys.
struct ServerListQuery {
    /// Parameters the query schema knows at every microversion.
    static let baseKeys: Set<String> = [
        "user_id", "project_id", "tenant_id", "launch_index", "image_ref", "image", "kernel_id", "ramdisk_id", "hostname", "key_name",
        "power_state", "vm_state", "task_state", "host", "node", "flavor", "reservation_id", "launched_at", "terminated_at",
        "availability_zone", "name", "display_name", "description", "display_description", "locked_by", "uuid", "root_device_name",
        "config_drive", "access_ip_v4", "access_ip_v6", "auto_disk_config", "progress", "sort_key", "sort_dir", "all_tenants",
        "soft_deleted", "deleted", "status", "changes-since", "ip", "ip6", "created_at", "limit", "marker",
    ]
    /// Parameters naming joined tables: known to the schema, refused when they reach the filters.
    static let joinedTableKeys: Set<String> = ["block_device_mapping", "services", "metadata", "system_metadata", "info_cache",
                                               "security_groups", "pci_devices"]
    static let tagKeys: Set<String> = ["tags", "tags-any", "not-tags", "not-tags-any"]

    /// Every parameter the schema of `version` knows (from 2.75 any other is a 400).
    static func knownKeys(_ version: Microversion) -> Set<String> {
        var keys = baseKeys.union(joinedTableKeys)
        if version >= Microversion(2, 26) { keys.formUnion(tagKeys) }
        if version >= Microversion(2, 66) { keys.insert("changes-before") }
        if version >= Microversion(2, 73) { keys.insert("locked") }
        return keys
    }

    /// What a caller without `allow_all_filters` may filter by at `version`.
    static func projectFilterKeys(_ version: Microversion) -> Set<String> {
        var keys: Set<String> = ["reservation_id", "name", "status", "image", "flavor", "ip", "changes-since", "all_tenants"]
        if version >= Microversion(2, 5) { keys.insert("ip6") }
        if version >= Microversion(2, 26) { keys.formUnion(tagKeys) }
        if version >= Microversion(2, 66) { keys.insert("changes-before") }
        if version >= Microversion(2, 73) { keys.insert("locked") }
        if version >= Microversion(2, 83) {
            keys.formUnion(["availability_zone", "config_drive", "key_name", "created_at", "launched_at", "terminated_at", "power_state",
                            "task_state", "vm_state", "progress", "user_id"])
        }
        if version >= Microversion(2, 90) { keys.insert("hostname") }
        return keys
    }

    static let sortKeys: Set<String> = [
        "access_ip_v4", "access_ip_v6", "auto_disk_config", "availability_zone", "config_drive", "created_at", "display_description",
        "display_name", "host", "hostname", "image_ref", "instance_type_id", "kernel_id", "key_name", "launch_index", "launched_at",
        "locked_by", "node", "power_state", "progress", "project_id", "ramdisk_id", "root_device_name", "task_state", "terminated_at",
        "updated_at", "user_id", "uuid", "vm_state",
    ]
    /// Sort keys Nova once took and now ignores (before 2.75; from 2.73 `locked` sorts).
    static let ignoredSortKeys: Set<String> = [
        "architecture", "cell_name", "cleaned", "default_ephemeral_device", "default_swap_device", "deleted", "deleted_at",
        "disable_terminate", "ephemeral_gb", "ephemeral_key_uuid", "id", "key_data", "launched_on", "locked", "memory_mb", "os_type",
        "reservation_id", "root_gb", "shutdown_terminate", "user_data", "vcpus", "vm_mode",
    ]

    /// Filters matched as (case-insensitive, unanchored) regular expressions, as Nova's
    /// database does for these columns; `name` and `description` have aliases.
    static let regexKeys: [String: String] = [
        "name": "display_name", "display_name": "display_name", "description": "description", "display_description": "description",
        "hostname": "hostname", "key_name": "key_name", "node": "node", "availability_zone": "availability_zone",
        "reservation_id": "reservation_id", "access_ip_v4": "access_ip_v4", "access_ip_v6": "access_ip_v6", "config_drive": "config_drive",
        "power_state": "power_state", "progress": "progress", "locked_by": "locked_by", "kernel_id": "kernel_id", "ramdisk_id": "ramdisk_id",
        "root_device_name": "root_device_name", "auto_disk_config": "auto_disk_config",
    ]

    /// The query's parameters that apply to this caller: unknown ones refused from 2.75,
    /// those the caller may not use dropped, joined-table and `_`-prefixed ones then refused.
    let filters: [String: String]
    let sort: [(key: String, ascending: Bool)]
    /// The direction of the uuid that breaks ties (Nova's `id`).
    let tieBreakAscending: Bool
    let patterns: [(column: String, pattern: NSRegularExpression)]

    init(_ query: [String: String], sortKeys: [String], sortDirs: [String], version: Microversion, allowAll: Bool, isAdmin: Bool) throws {
        let known = Self.knownKeys(version)
        // `_`-prefixed names match the schema's pattern, so they are never "additional".
        if version >= Microversion(2, 75), let unknown = query.keys.sorted().first(where: { !known.contains($0) && !$0.hasPrefix("_") }) {
            throw APIError.badRequest("Additional properties are not allowed ('\(unknown)' was unexpected)")
        }
        let permitted = Self.projectFilterKeys(version).union(["sort_key", "sort_dir", "limit", "marker", "deleted", "project_id", "tenant_id"])
        var filters = allowAll ? query : query.filter { permitted.contains($0.key) }
        if let refused = filters.keys.sorted().first(where: { Self.joinedTableKeys.contains($0) || $0.hasPrefix("_") }) {
            throw APIError.badRequest("Invalid filter field: \(refused).")
        }
        // `image_ref` is `image`'s alias.
        if filters["image"] == nil, let image = filters["image_ref"] { filters["image"] = image }
        self.filters = filters

        var sort: [(key: String, ascending: Bool)] = []
        for (index, key) in sortKeys.enumerated() {
            let valid = Self.sortKeys.contains(key) || (version >= Microversion(2, 73) && key == "locked")
            let ignored = version < Microversion(2, 75) && Self.ignoredSortKeys.contains(key) && !valid
            guard valid || ignored else {
                throw APIError.badRequest("Invalid input for query parameters sort_key. Value: \(key). '\(key)' is not one of the valid sort keys")
            }
            // Keys past the last direction take the first one, as Nova's database layer pairs them.
            let dir = index < sortDirs.count ? sortDirs[index] : sortDirs.first ?? "desc"
            guard dir == "asc" || dir == "desc" else { throw APIError.badRequest("Unknown sort direction, must be 'desc' or 'asc'") }
            if valid { sort.append((key, dir == "asc")) }
        }
        if !isAdmin, let key = sort.first(where: { $0.key == "host" || $0.key == "node" })?.key {
            throw APIError.forbidden("Only administrators can sort servers by \(key)")
        }
        // Nova's database layer sorts by created_at, then id, after the keys asked for.
        let fallback = (sortDirs.first ?? "desc") == "asc"
        if !sort.contains(where: { $0.key == "created_at" }) { sort.append(("created_at", fallback)) }
        self.sort = sort
        tieBreakAscending = fallback

        patterns = try Self.regexKeys.keys.sorted().compactMap { key in
            guard let raw = filters[key], !raw.isEmpty, let column = Self.regexKeys[key] else { return nil }
            do { return (column, try NSRegularExpression(pattern: raw, options: [.caseInsensitive])) } catch {
                throw APIError.badRequest("Invalid regular expression in the \(key) filter: \(raw.prefix(64))")
            }
        }
    }

    /// Whether `instance` passes the filters Nova applies to its columns and addresses (status,
    /// time, tag and project filters are the caller's to apply).
    func matches(_ i: Instance) -> Bool {
        for (column, pattern) in patterns {
            guard let value = Self.text(i, column), pattern.firstMatch(in: value, range: NSRange(value.startIndex..., in: value)) != nil else {
                return false
            }
        }
        if let uuid = filters["uuid"], uuid != i.uuid { return false }
        if let user = filters["user_id"], user != i.userID { return false }
        if let host = filters["host"], host != i.host { return false }
        if let state = filters["vm_state"], state != Self.text(i, "vm_state") { return false }
        if let state = filters["task_state"], state != i.taskState?.rawValue { return false }
        if let image = filters["image"], image.split(separator: "/").last.map(String.init) != i.imageRef { return false }
        if let flavor = filters["flavor"], flavor != i.flavor.id { return false }
        if let locked = filters["locked"], ComputeService.truthy(locked) != i.locked { return false }
        let ip4 = filters["ip"], ip6 = filters["ip6"]
        if ip4 != nil || ip6 != nil {
            // As Nova asks Neutron (`fixed_ips=ip_address_substr=`): a server any of whose
            // fixed addresses of that version contains the text; both given, either will do.
            let fixed = i.fixedAddresses
            let hit = fixed.contains { address, version in
                if let ip4, version == 4, address.contains(ip4) { return true }
                if let ip6, version == 6, address.contains(ip6) { return true }
                return false
            }
            if !hit { return false }
        }
        return true
    }

    /// A column's value as Nova's database holds it, or nil where it holds NULL.
    static func text(_ i: Instance, _ column: String) -> String? {
        func time(_ date: Date?) -> String? { date.map { String(format: "%020.6f", $0.timeIntervalSince1970) } }
        switch column {
        case "display_name": return i.name
        case "description": return i.extra["description"]?.stringValue
        case "hostname": return i.hostname
        case "key_name": return i.keyName
        case "node": return i.node
        case "host": return i.host
        case "availability_zone": return i.availabilityZone
        case "reservation_id": return i.reservationID
        case "access_ip_v4": return i.extra["accessIPv4"]?.stringValue
        case "access_ip_v6": return i.extra["accessIPv6"]?.stringValue
        case "config_drive": return i.extra["config_drive"]?.boolValue == true ? "True" : ""
        case "power_state": return String(i.powerState.rawValue)
        case "progress": return "0"
        case "locked_by": return i.lockedBy
        case "kernel_id", "ramdisk_id": return ""
        case "root_device_name": return "/dev/vda"
        case "auto_disk_config": return i.extra["diskConfig"]?.stringValue == "AUTO" ? "1" : "0"
        case "vm_state": return i.deletedAt != nil ? "deleted" : i.vmState.rawValue
        case "task_state": return i.taskState?.rawValue
        case "uuid": return i.uuid
        case "user_id": return i.userID
        case "project_id": return i.projectID
        case "image_ref": return i.imageRef
        case "instance_type_id": return i.flavor.id
        case "locked": return i.locked ? "1" : "0"
        case "created_at": return time(i.createdAt)
        case "updated_at": return time(i.updatedAt)
        case "launched_at": return time(i.launchedAt)
        case "terminated_at": return time(i.terminatedAt)
        default: return nil
        }
    }

    /// Sorts by the query's keys, numbers as numbers and NULLs first, then by uuid.
    func sorted(_ list: [Instance]) -> [Instance] {
        func key(_ i: Instance, _ column: String) -> String {
            switch column {
            case "launch_index": return String(format: "%020lld", i.launchIndex)
            case "power_state": return String(format: "%020lld", i.powerState.rawValue)
            default: return Self.text(i, column) ?? ""
            }
        }
        return list.sorted { a, b in
            for (column, ascending) in sort {
                let x = key(a, column), y = key(b, column)
                if x != y { return ascending ? x < y : x > y }
            }
            return tieBreakAscending ? a.uuid < b.uuid : a.uuid > b.uuid
        }
    }
}
