import Foundation
import NimbusCore
import NimbusStore

/// Servers: create, list, show, update, delete, metadata and tags.
extension ComputeService {
    /// What a create request returns: the first server and its generated admin password.
    public struct Created: Sendable {
        public var instance: Instance
        public var adminPass: String
        public var reservationID: String
        public var returnReservationID: Bool
    }

    /// Changes a server the caller may see in one transaction, on the row as it is now (not
    /// a copy read earlier, which could undo a concurrent change such as the chosen host).
    @discardableResult
    func mutate(_ uuid: String, caller: AuthContext, _ change: @escaping @Sendable (inout Instance) throws -> Bool) async throws -> Instance {
        try await db.transaction { x in
            guard var instance = try await self.store.instance(uuid: uuid, x), instance.deletedAt == nil,
                  caller.isAdmin || instance.projectID == caller.projectID
            else { throw APIError.notFound("Instance \(uuid) could not be found.") }
            if try change(&instance) {
                instance.updatedAt = Date()
                try await self.store.update(instance, x)
            }
            return instance
        }
    }

    func visibleInstance(_ uuid: String, caller: AuthContext, includeDeleted: Bool = false) async throws -> Instance {
        guard let instance = try await store.instance(uuid: uuid, db), includeDeleted || instance.deletedAt == nil,
              caller.isAdmin || instance.projectID == caller.projectID
        else { throw APIError.notFound("Instance \(uuid) could not be found.") }
        return instance
    }

    /// `host` → `host_status` for the hosts of the servers being shown, from the services the
    /// scheduler's host cache holds (heartbeats at most a second old; changes made through
    /// the API are seen at once): a client polling a booting server would otherwise read a
    /// service row per GET.
    public func hostStatuses(_ hosts: Set<String>) async throws -> [String: String] {
        guard !hosts.isEmpty else { return [:] }
        let services = try await conductor.hosts.get(db).services
        let now = Date()
        var out: [String: String] = [:]
        for host in hosts {
            guard let service = services[host] else { continue }
            out[host] = !service.isUp(now: now, timeout: settings.serviceDownTime) ? "DOWN" : service.disabled ? "MAINTENANCE" : "UP"
        }
        return out
    }

    // MARK: Create

    public func createServer(_ body: JSON, version: Microversion, caller: AuthContext, requestID: String) async throws -> Created {
        try authorize("os_compute_api:servers:create", caller)
        guard let top = body.objectValue else { throw APIError.badRequest("Malformed request body") }
        for key in top.keys where !["server", "os:scheduler_hints", "OS-SCH-HNT:scheduler_hints"].contains(key) {
            throw APIError.badRequest("Invalid input for field/attribute server. Additional properties are not allowed ('\(key)' was unexpected)")
        }
        let input = try JSONInput(body: body, key: "server")
        let name = try input.requiredString("name", maxLength: 255)
        guard name.trimmingCharacters(in: .whitespaces) == name else {
            throw APIError.badRequest("Invalid input for field/attribute name. Value: \(name). '\(name)' does not match the pattern")
        }
        guard let project = caller.projectID else { throw APIError.badRequest("Servers can only be created with a project-scoped token.") }

        // Flavor and image.
        guard let flavorRef = input.fields["flavorRef"].flatMap({ $0.stringValue ?? $0.intValue.map(String.init) }), !flavorRef.isEmpty else {
            throw APIError.badRequest("Invalid input for field/attribute server. 'flavorRef' is a required property")
        }
        let flavorID = String(flavorRef.split(separator: "/").last ?? "")
        guard let flavor = try await store.flavor(id: flavorID, db), !flavor.disabled else { throw APIError.badRequest("Flavor \(flavorID) could not be found.") }
        if !flavor.isPublic && !caller.isAdmin, try await !store.accessibleFlavors(project: project, db).contains(flavor.id) {
            throw APIError.badRequest("Flavor \(flavorID) could not be found.")
        }
        var imageRef = try input.string("imageRef") ?? ""
        if let mappings = input.fields["block_device_mapping_v2"] {
            guard let list = mappings.arrayValue else { throw APIError.badRequest("Invalid input for field/attribute block_device_mapping_v2.") }
            for mapping in list {
                let source = mapping["source_type"]?.stringValue ?? ""
                let destination = mapping["destination_type"]?.stringValue ?? "local"
                guard ["image", "blank"].contains(source), destination == "local" else {
                    throw APIError.badRequest("Block Device Mapping is Invalid: volumes are not available in this cloud.")
                }
                if source == "image", mapping["boot_index"]?.intValue ?? Int64(mapping["boot_index"]?.stringValue ?? "") == 0, imageRef.isEmpty {
                    imageRef = mapping["uuid"]?.stringValue ?? ""
                }
            }
        }
        imageRef = String(imageRef.split(separator: "/").last ?? "")
        guard !imageRef.isEmpty else { throw APIError.badRequest("Missing imageRef attribute") }
        guard let image = try await images.image(imageRef, caller: caller) else { throw APIError.badRequest("Can not find requested image") }
        guard image.status == "active" else { throw APIError.badRequest("Image \(imageRef) is not active.") }
        if image.minRAM > flavor.ram { throw APIError.badRequest("Flavor's memory is too small for requested image.") }
        if flavor.disk > 0 {
            if let size = image.size, size > flavor.disk << 30 {
                throw APIError.badRequest("Flavor's disk is too small for requested image. Flavor disk is \(flavor.disk << 30) bytes, image is \(size) bytes.")
            }
            if image.minDisk > flavor.disk {
                throw APIError.badRequest("Flavor's disk is smaller than the minimum size specified in image metadata. Flavor disk is \(flavor.disk << 30) bytes, minimum size is \(image.minDisk << 30) bytes.")
            }
        }

        // Networks: checked and resolved now (Nova's validate_networks), ports made once the
        // host is chosen. Without a network service, `auto` and `none` give a server without NICs.
        if version >= Microversion(2, 37) && input.fields["networks"] == nil {
            throw APIError.badRequest("Invalid input for field/attribute server. 'networks' is a required property")
        }
        let networkRequest = try Self.networkRequest(input.fields["networks"])
        var nics: [RequestedNIC] = []
        // Security groups by name or id, the caller's project's (Nova's 400 otherwise); the
        // ports made for the server get them, ports handed over keep their own.
        let groupNames = try (input.fields["security_groups"]?.arrayValue ?? []).map { entry in
            guard let name = entry["name"]?.stringValue, !name.isEmpty else {
                throw APIError.badRequest("Invalid input for field/attribute security_groups.")
            }
            return name
        }
        var groups: [(id: String, name: String)] = []
        if let network = conductor.network {
            nics = try await network.resolve(networkRequest, caller: caller)
            // Checked even for a server that gets no port, as Nova's API checks them first.
            if !groupNames.isEmpty { groups = try await network.securityGroups(groupNames, caller: caller) }
        } else if case .list(let list) = networkRequest, let first = list.first {
            throw APIError.badRequest("Network \(first.networkID ?? first.portID ?? "") could not be found.")
        }

        // Where: `az`, `az:host` or `az:host:node`.
        var zone: String?
        var forcedHost: String?
        if let raw = try input.optionalString("availability_zone") {
            let parts = raw.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard parts.count <= 3 else { throw APIError.badRequest("Unable to parse availability_zone") }
            zone = parts[0].isEmpty ? nil : parts[0]
            let host = parts.count > 1 && !parts[1].isEmpty ? parts[1] : parts.count > 2 && !parts[2].isEmpty ? parts[2] : nil
            if let host {
                try authorize("os_compute_api:servers:create:forced_host", caller)
                forcedHost = host
            } else if let zone, try await !availabilityZoneNames().contains(zone) {
                throw APIError.badRequest("The requested availability zone is not available")
            }
        }
        var requestedHost: String?
        if version >= Microversion(2, 74), let host = try input.optionalString("host") ?? input.optionalString("hypervisor_hostname") {
            try authorize("compute:servers:create:requested_destination", caller)
            guard try await store.node(host: host, db) != nil else { throw APIError.badRequest("Compute host \(host) could not be found.") }
            requestedHost = host
        }

        // Key, metadata, tags, counts, hints.
        var keyData: String?
        let keyName = try input.optionalString("key_name")
        if let keyName {
            guard let keypair = try await store.keypair(user: caller.userID, name: keyName, db) else { throw APIError.badRequest("Invalid key_name provided.") }
            keyData = keypair.publicKey
        }
        let metadata = try Self.metadata(input.fields["metadata"], field: "metadata")
        let metadataLimit = try await quotaLimit(ComputeQuotas.metadataItems, project: project)
        if metadataLimit >= 0 && metadata.count > Int(metadataLimit) {
            throw APIError.forbidden("Quota exceeded for metadata_items: Requested \(metadata.count), but already used 0 of \(metadataLimit) metadata_items")
        }
        let tags = version >= Microversion(2, 52) ? try Self.tags(input.fields["tags"]) : []
        func count(_ key: String) throws -> Int64? {
            guard let raw = input.fields[key] else { return nil }
            guard let n = raw.intValue ?? raw.stringValue.flatMap({ Int64($0) }), n >= 1 else {
                throw APIError.badRequest("Invalid input for field/attribute \(key). Value: \(raw.serialized()). must be >= 1")
            }
            return n
        }
        let minCount = try count("min_count") ?? 1
        let maxCount = try count("max_count") ?? minCount
        guard minCount <= maxCount else { throw APIError.badRequest("min_count must be <= max_count") }
        if maxCount > 1 && nics.contains(where: { $0.portID != nil }) {
            throw APIError.badRequest("Unable to launch multiple instances with a single configured port ID. Please launch your instance one by one with different ports.")
        }
        var userData: String?
        if let raw = try input.optionalString("user_data", maxLength: 65535) {
            guard Data(base64Encoded: raw) != nil else { throw APIError.badRequest("Invalid input for field/attribute user_data. Value: \(raw). 'user_data' is not base64") }
            userData = raw
        }
        let hintsBody = top["os:scheduler_hints"] ?? top["OS-SCH-HNT:scheduler_hints"] ?? [:]
        guard let rawHints = hintsBody.objectValue else { throw APIError.badRequest("Invalid input for field/attribute scheduler_hints.") }
        var hints: [String: JSON] = [:]
        for (key, value) in rawHints {
            hints[key] = .array((value.arrayValue ?? [value]).map { $0.stringValue.map(JSON.string) ?? .string($0.serialized()) })
        }
        var group: ServerGroup?
        if let groupID = hints["group"]?.arrayValue?.first?.stringValue {
            guard let found = try await store.serverGroup(uuid: groupID, db), caller.isAdmin || found.projectID == project else {
                throw APIError.badRequest("Instance group \(groupID) could not be found.")
            }
            let limit = try await quotaLimit(ComputeQuotas.serverGroupMembers, project: project)
            // As `maxCount > limit - members`: `members + maxCount` overflows for a max_count near 2^63.
            if limit >= 0 && maxCount > limit - Int64(found.members.count) { throw APIError.forbidden("Quota exceeded, too many servers in group") }
            group = found
        }

        let adminPass = try input.optionalString("adminPass") ?? Identifiers.password(length: 12)
        let reservationID = "r-" + String((0..<8).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement()! })
        var requestSpec: [String: JSON] = ["hints": .object(hints), "image_properties": .object(image.properties.mapValues { JSON.string($0) }),
                                           "image_disk_format": .optional(image.diskFormat)]
        if let zone { requestSpec["availability_zone"] = .string(zone) }
        if let forcedHost { requestSpec["forced_host"] = .string(forcedHost) }
        if let requestedHost { requestSpec["requested_host"] = .string(requestedHost) }
        if let group { requestSpec["group"] = .string(group.uuid) }
        if !nics.isEmpty { requestSpec["networks"] = .array(nics.map(\.json)) }
        if !groups.isEmpty { requestSpec["security_group_ids"] = .array(groups.map { .string($0.id) }) }
        var extra: [String: JSON] = ["request_spec": .object(requestSpec), "diskConfig": .string(try Self.diskConfig(.object(input.fields)) ?? "MANUAL")]
        if let userData { extra["user_data"] = .string(userData) }
        if let keyData { extra["key_data"] = .string(keyData) }
        if let description = input.fields["description"], version >= Microversion(2, 19) { extra["description"] = description }
        if let zone { extra["pinned_availability_zone"] = .string(zone) }
        for key in ["config_drive", "trusted_image_certificates", "hostname"] where input.fields[key] != nil {
            extra[key] = input.fields[key]
        }
        // As Nova records it: a forced config drive shows on the server as asked-for.
        if settings.forceConfigDrive { extra["config_drive"] = "True" }
        for key in ["accessIPv4", "accessIPv6"] {
            if let address = try input.optionalString(key) { extra[key] = .string(try Self.canonicalAddress(address, field: key)) }
        }
        // What `security_groups` shows: the groups' names, as Nova reads them back from the ports.
        if !groupNames.isEmpty { extra["security_groups"] = .array((groups.isEmpty ? groupNames : groups.map(\.name)).map { .string($0) }) }

        let limits = try await quotaLimits(project: project)
        let chosenGroup = group
        let now = Date()
        let template = Instance(uuid: "", name: name, projectID: project, userID: caller.userID, vmState: .building, taskState: .scheduling,
                                powerState: .noState, host: nil, node: nil, availabilityZone: zone, flavor: flavor, newFlavor: nil,
                                imageRef: imageRef, keyName: keyName, metadata: metadata, tags: tags, locked: false, lockedReason: nil,
                                lockedBy: nil, fault: nil, launchIndex: 0, reservationID: reservationID, createdAt: now, updatedAt: now,
                                launchedAt: nil, terminatedAt: nil, deletedAt: nil, extra: extra)
        // Quota and the new servers commit together: the most that fit between min and max.
        let created = try await db.transaction { x -> [(Instance, Int64)] in
            // Above `mostServers` nothing can be reserved; from there down to min_count the
            // first count that fits wins (below it the reserve's own 403 names the resource).
            var count = max(min(maxCount, Self.mostServers(flavor, limits: limits)), minCount)
            while true {
                do {
                    try await self.reserveServer(flavor, count: count, project: project, limits: limits, x)
                    break
                } catch let error as APIError where error.status == .forbidden && count > minCount {
                    count -= 1
                }
            }
            var result: [(Instance, Int64)] = []
            for index in 0..<count {
                var instance = template
                instance.uuid = Identifiers.uuid()
                instance.launchIndex = index
                if count > 1 { instance.name = "\(name)-\(index + 1)" }
                try await self.store.insert(instance, x)
                if let chosenGroup { try await self.store.addGroupMember(group: chosenGroup.uuid, instance: instance.uuid, x) }
                let actionID = try await self.store.startAction(instance.uuid, action: "create", requestID: requestID, userID: caller.userID,
                                                                projectID: project, event: "conductor_schedule_and_build_instances", x)
                result.append((instance, actionID))
            }
            return result
        }
        for (instance, actionID) in created {
            let uuid = instance.uuid
            await conductor.spawn { await self.conductor.build(uuid, actionID: actionID) }
        }
        return Created(instance: created[0].0, adminPass: adminPass, reservationID: reservationID,
                       returnReservationID: input.fields["return_reservation_id"]?.boolValue ?? false)
    }

    /// An access address in canonical form (`::babe:dc0c:1602`, as Nova stores it); "" clears it.
    static func canonicalAddress(_ text: String, field: String) throws -> String {
        if text.isEmpty { return "" }
        let family = field == "accessIPv6" ? AF_INET6 : AF_INET
        var buffer = [UInt8](repeating: 0, count: 16)
        var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_pton(family, text, &buffer) == 1, inet_ntop(family, buffer, &out, socklen_t(out.count)) != nil else {
            throw APIError.badRequest("Invalid input for field/attribute \(field). Value: \(text). '\(text)' is not a '\(field == "accessIPv6" ? "ipv6" : "ipv4")'")
        }
        return out.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    static func metadata(_ value: JSON?, field: String) throws -> [String: String] {
        guard let value else { return [:] }
        guard let object = value.objectValue else { throw APIError.badRequest("Invalid input for field/attribute \(field). Value: \(value.serialized()). is not of type 'object'") }
        var out: [String: String] = [:]
        for (key, item) in object {
            guard !key.isEmpty, key.count <= 255 else { throw APIError.badRequest("Invalid input for field/attribute \(field). Metadata keys must be 1 to 255 characters.") }
            guard let text = item.stringValue, text.count <= 255 else {
                throw APIError.badRequest("Invalid input for field/attribute \(field). Value of '\(key)' must be a string of at most 255 characters.")
            }
            out[key] = text
        }
        return out
    }

    static func tags(_ value: JSON?) throws -> [String] {
        guard let value else { return [] }
        guard let list = value.arrayValue else { throw APIError.badRequest("Invalid input for field/attribute tags. must be an array") }
        var tags: [String] = []
        for item in list {
            guard let tag = item.stringValue, !tag.isEmpty, tag.count <= 60, !tag.contains("/"), !tag.contains(",") else {
                throw APIError.badRequest("Invalid input for field/attribute tags. Value: \(item.serialized()). is not a valid tag")
            }
            if !tags.contains(tag) { tags.append(tag) }
        }
        guard tags.count <= 50 else { throw APIError.badRequest("The number of tags exceeded the per-server limit 50") }
        return tags
    }

    // MARK: List and show

    /// `GET /servers`: the caller's project's servers (any project's with `all_tenants`, for
    /// admins), through `ServerListQuery`'s filters and sort, then paged.
    public func servers(_ query: [String: String], statuses: [String], sortKeys: [String] = [], sortDirs: [String] = [],
                        version: Microversion, caller: AuthContext) async throws -> [Instance] {
        try authorize("os_compute_api:servers:index", caller)
        let allowAll = policy.enforce("os_compute_api:servers:allow_all_filters", credentials: caller.policyInput,
                                      target: ["project_id": caller.projectID ?? "", "user_id": caller.userID])
        let parsed = try ServerListQuery(query, sortKeys: sortKeys, sortDirs: sortDirs, version: version, allowAll: allowAll, isAdmin: caller.isAdmin)
        let filters = parsed.filters
        let allTenants = query["all_tenants"].map { $0.isEmpty || Self.truthy($0) } ?? false
        if allTenants { try authorize("os_compute_api:servers:index:get_all_tenants", caller) }
        let changesSince = try filters["changes-since"].map { try Self.time($0, "changes-since") }
        let changesBefore = try filters["changes-before"].map { try Self.time($0, "changes-before") }
        let wantDeleted = caller.isAdmin && Self.truthy(query["deleted"] ?? "false")
        var project: String? = caller.projectID
        if allTenants { project = caller.isAdmin ? (query["project_id"] ?? query["tenant_id"]) : caller.projectID }
        var list = try await store.instances(project: project, includeDeleted: changesSince != nil || changesBefore != nil || wantDeleted, db)
        let wanted = Set(statuses.map { $0.uppercased() })
        let known: Set<String> = ["ACTIVE", "BUILD", "REBOOT", "HARD_REBOOT", "REBUILD", "RESIZE", "VERIFY_RESIZE", "REVERT_RESIZE", "MIGRATING",
                                  "SHUTOFF", "PAUSED", "SUSPENDED", "RESCUE", "ERROR", "DELETED", "SOFT_DELETED", "SHELVED", "SHELVED_OFFLOADED",
                                  "PASSWORD", "UNKNOWN"]
        for status in wanted where !known.contains(status) {
            if version >= Microversion(2, 38) { throw APIError.badRequest("Invalid status value") }
            return []
        }
        if wanted.contains("DELETED") && !caller.isAdmin { throw APIError.forbidden("Only administrators may list deleted instances") }
        list = list.filter { i in
            if wantDeleted && i.deletedAt == nil && query["deleted"] != nil { return false }
            if !wanted.isEmpty && !wanted.contains(i.deletedAt != nil ? "DELETED" : i.status) { return false }
            guard parsed.matches(i) else { return false }
            if let since = changesSince, i.updatedAt < since { return false }
            if let before = changesBefore, i.updatedAt > before { return false }
            if let tags = filters["tags"]?.split(separator: ","), !tags.allSatisfy({ i.tags.contains(String($0)) }) { return false }
            if let any = filters["tags-any"]?.split(separator: ","), !any.contains(where: { i.tags.contains(String($0)) }) { return false }
            if let not = filters["not-tags"]?.split(separator: ","), not.allSatisfy({ i.tags.contains(String($0)) }) { return false }
            if let notAny = filters["not-tags-any"]?.split(separator: ","), notAny.contains(where: { i.tags.contains(String($0)) }) { return false }
            return true
        }
        return try Paging.page(parsed.sorted(list), query: query, id: \.uuid)
    }

    static func truthy(_ value: String) -> Bool { ["true", "1", "yes", "on", "t", "y"].contains(value.lowercased()) }

    static func time(_ raw: String, _ name: String) throws -> Date {
        if let date = Timestamps.parse(raw) { return date }
        throw APIError.badRequest("Invalid input for query parameters \(name). Value: \(raw). '\(raw)' is not a 'date-time'")
    }

    public func server(_ uuid: String, caller: AuthContext) async throws -> (Instance, [String]) {
        try authorize("os_compute_api:servers:show", caller)
        let instance = try await visibleInstance(uuid, caller: caller)
        // A server joins a group only when created with the `group` hint, which its request
        // spec keeps: the rest (nearly every poll of a booting server) need not ask.
        let groups = instance.extra["request_spec"]?["group"] == nil ? [] : try await store.groups(containing: uuid, db)
        return (instance, groups)
    }

    // MARK: Update and delete

    public func updateServer(_ uuid: String, _ body: JSON, version: Microversion, caller: AuthContext) async throws -> Instance {
        try authorize("os_compute_api:servers:update", caller)
        let input = try JSONInput(body: body, key: "server")
        for key in input.fields.keys where !["name", "OS-DCF:diskConfig", "accessIPv4", "accessIPv6", "description", "hostname"].contains(key) {
            throw APIError.badRequest("Invalid input for field/attribute server. Additional properties are not allowed ('\(key)' was unexpected)")
        }
        if input.has("description") && version < Microversion(2, 19) {
            throw APIError.badRequest("Invalid input for field/attribute server. 'description' was unexpected")
        }
        let name = input.has("name") ? try input.requiredString("name", maxLength: 255) : nil
        var extra: [String: JSON] = [:]
        if let diskConfig = try Self.diskConfig(.object(input.fields)) { extra["diskConfig"] = .string(diskConfig) }
        if input.has("hostname") { extra["hostname"] = .optional(try input.optionalString("hostname")) }
        for key in ["accessIPv4", "accessIPv6"] where input.has(key) {
            extra[key] = .optional(try input.optionalString(key).map { try Self.canonicalAddress($0, field: key) })
        }
        if input.has("description") { extra["description"] = .optional(try input.optionalString("description", maxLength: 255)) }
        let changes = extra
        return try await mutate(uuid, caller: caller) { instance in
            if let name { instance.name = name }
            for (key, value) in changes { instance.extra[key] = value }
            return true
        }
    }

    /// Delete is accepted in any state: the server is gone from the API at once, its quota is
    /// returned in the same transaction, and the host's agent is told to destroy the guest.
    public func deleteServer(_ uuid: String, caller: AuthContext, requestID: String) async throws {
        try authorize("os_compute_api:servers:delete", caller)
        let instance = try await visibleInstance(uuid, caller: caller)
        try checkLock(instance, caller)
        let after = AfterCommit()
        try await db.transaction { x in
            guard var current = try await self.store.instance(uuid: uuid, x), current.deletedAt == nil else {
                throw APIError.notFound("Instance \(uuid) could not be found.")
            }
            let now = Date()
            let actionID = try await self.store.startAction(uuid, action: "delete", requestID: requestID, userID: caller.userID,
                                                            projectID: current.projectID, event: "compute_terminate_instance", x)
            current.vmState = .deleted
            current.taskState = nil
            current.deletedAt = now
            current.terminatedAt = now
            current.updatedAt = now
            try await self.store.update(current, x)
            try await self.releaseServer(current.flavor, project: current.projectID, x)
            try await self.store.removeGroupMember(instance: uuid, x)
            try await self.deleteConsoleTokens(instance: uuid, x)
            if let host = current.host {
                try await self.conductor.send(.destroy, to: host, instance: uuid, payload: ["action_id": .int(actionID)], x)
                after.wake(host)
            } else {
                try await self.store.finishEvents(actionID: actionID, error: nil, host: nil, x)
            }
            // What the server held elsewhere is released once this commits (durably: see FollowUp).
            try await self.conductor.record(.deleteAllocations(consumer: uuid), in: after, x)
            if let migration = current.extra["migration"]?.stringValue {
                try await self.conductor.record(.deleteAllocations(consumer: migration), in: after, x)
            }
            if !current.requestedNICs.isEmpty {
                try await self.conductor.record(.releasePorts(instance: uuid, keep: current.requestedNICs.compactMap(\.portID)), in: after, x)
            }
        }
        await conductor.finish(after)
    }

    /// The server body's `networks` as Nova's schema reads it.
    static func networkRequest(_ value: JSON?) throws -> NetworkRequest {
        switch value {
        case nil, .string("auto"): return .auto
        case .string("none"): return .none
        case .array(let entries):
            return .list(try entries.map { entry in
                guard let fields = entry.objectValue else {
                    throw APIError.badRequest("Invalid input for field/attribute networks. Value: \(entry.serialized()). not an object")
                }
                let nic = RequestedNIC(json: entry)
                if let unknown = fields.keys.first(where: { !["uuid", "fixed_ip", "port", "tag"].contains($0) }) {
                    throw APIError.badRequest("Invalid input for field/attribute networks. Additional properties are not allowed ('\(unknown)' was unexpected)")
                }
                guard nic.networkID != nil || nic.portID != nil else {
                    throw APIError.badRequest("Bad networks format: network uuid is not in proper format ()")
                }
                if let ip = nic.fixedIP, (try? canonicalAddress(ip, field: ip.contains(":") ? "accessIPv6" : "accessIPv4")) == nil {
                    throw APIError.badRequest("Invalid fixed IP address (\(ip))")
                }
                return nic
            })
        default:
            throw APIError.badRequest("Invalid input for field/attribute networks. Value: \(value?.serialized() ?? ""). not valid under any of the given schemas")
        }
    }

    func checkLock(_ instance: Instance, _ caller: AuthContext) throws {
        if instance.locked && !caller.isAdmin { throw APIError.conflict("Instance \(instance.uuid) is locked") }
    }

    // MARK: Metadata and tags

    static let metadataStates: Set<VMState> = [.active, .paused, .suspended, .stopped]

    public func metadata(_ uuid: String, caller: AuthContext) async throws -> [String: String] {
        try authorize("os_compute_api:server-metadata:index", caller)
        return try await visibleInstance(uuid, caller: caller).metadata
    }

    /// Merges (`replace: false`) or replaces the server's metadata.
    public func setMetadata(_ uuid: String, _ items: [String: String], replace: Bool, caller: AuthContext) async throws -> [String: String] {
        try authorize(replace ? "os_compute_api:server-metadata:update_all" : "os_compute_api:server-metadata:create", caller)
        let limit = try await quotaLimit(ComputeQuotas.metadataItems, project: try await visibleInstance(uuid, caller: caller).projectID)
        return try await mutate(uuid, caller: caller) { instance in
            try self.checkLock(instance, caller)
            try Self.checkMetadataState(instance, "update metadata")
            instance.metadata = replace ? items : instance.metadata.merging(items) { _, new in new }
            if limit >= 0 && instance.metadata.count > Int(limit) { throw APIError.forbidden("Maximum number of metadata items exceeds \(limit)") }
            return true
        }.metadata
    }

    public func deleteMetadata(_ uuid: String, key: String, caller: AuthContext) async throws {
        try authorize("os_compute_api:server-metadata:delete", caller)
        try await mutate(uuid, caller: caller) { instance in
            try self.checkLock(instance, caller)
            try Self.checkMetadataState(instance, "delete metadata")
            guard instance.metadata.removeValue(forKey: key) != nil else { throw APIError.notFound("Metadata item was not found") }
            return true
        }
    }

    static func checkMetadataState(_ instance: Instance, _ label: String) throws {
        guard metadataStates.contains(instance.vmState) else {
            throw APIError.conflict("Cannot '\(label)' instance \(instance.uuid) while it is in vm_state \(instance.vmState.rawValue)")
        }
    }

    public func tags(_ uuid: String, caller: AuthContext) async throws -> [String] {
        try authorize("os_compute_api:os-server-tags:index", caller)
        return try await visibleInstance(uuid, caller: caller).tags
    }

    /// Replaces the tag list (`tags`), or adds/removes one tag. Returns whether it changed.
    @discardableResult
    public func changeTags(_ uuid: String, set: [String]? = nil, add: String? = nil, remove: String? = nil, caller: AuthContext) async throws -> Bool {
        try authorize("os_compute_api:os-server-tags:update", caller)
        let before = try await visibleInstance(uuid, caller: caller).tags
        let after = try await mutate(uuid, caller: caller) { instance in
            try Self.checkMetadataState(instance, "update tags")
            let current = instance.tags
            if let set { instance.tags = try Self.tags(.array(set.map { .string($0) })) }
            if let add, !instance.tags.contains(add) { instance.tags = try Self.tags(.array((instance.tags + [add]).map { .string($0) })) }
            if let remove {
                guard instance.tags.contains(remove) else { throw APIError.notFound("Server \(uuid) has no tag '\(remove)'") }
                instance.tags.removeAll { $0 == remove }
            }
            return instance.tags != current
        }
        return after.tags != before
    }
}
