import Foundation
import HostAPI
import NimbusCore
import NimbusStore

/// Scheduling, reschedules and the state changes agents' reports cause.
extension Conductor {
    static let noValidHost = "No valid host was found. "

    // MARK: Scheduling

    /// Host states for a request: placement's candidates joined with the node, service and
    /// aggregate records the filters read.
    func hostStates(_ spec: RequestSpec, scheduler: FilterScheduler) async throws -> [HostState] {
        let snapshot = try await hosts.get(db)
        let zoneAggregates = spec.availabilityZone.map { zone in snapshot.aggregates.filter { $0.availabilityZone == zone }.map(\.uuid) } ?? []
        let forcedNode = (spec.forcedHost ?? spec.requestedHost).flatMap { snapshot.nodes[$0] }
        if (spec.forcedHost ?? spec.requestedHost) != nil && forcedNode == nil { return [] }
        let request = scheduler.placementRequest(spec, zoneAggregates: zoneAggregates, forcedNode: forcedNode)
        let candidates = try await placement.candidates(request)
        let needsInstances = spec.group != nil || !spec.hintList("same_host").isEmpty || !spec.hintList("different_host").isEmpty
        var onHost: [String: Set<String>] = [:]
        if needsInstances {
            for instance in try await store.instances(project: nil, includeDeleted: false, db) {
                if let host = instance.host { onHost[host, default: []].insert(instance.uuid) }
            }
        }
        return candidates.compactMap { candidate in
            guard let record = snapshot.records[candidate.uuid] else { return nil }
            return HostState(record: record, candidate: candidate, instances: needsInstances ? onHost[record.node.host] ?? [] : [], failedBuilds: 0)
        }
    }

    func filterContext() -> FilterContext {
        FilterContext(now: Date(), serviceDownTime: settings.serviceDownTime, defaultAvailabilityZone: settings.defaultAvailabilityZone)
    }

    /// Picks and claims a host for `spec`, holding the group's lock so members of one group
    /// are placed one after another.
    func schedule(_ spec: RequestSpec) async throws -> [Selection] {
        var spec = spec
        let scheduler = try scheduler()
        if let group = spec.group {
            await groupLocks.lock(group.uuid)
            do {
                // Where the other members are, read under the lock.
                var hostsOfMembers: [String: Int] = [:]
                for member in group.members where member != spec.instanceUUID {
                    if let host = try await store.instance(uuid: member, db)?.host { hostsOfMembers[host, default: 0] += 1 }
                }
                spec.groupHosts = hostsOfMembers
                let selections = try await scheduler.select(spec, hosts: try await hostStates(spec, scheduler: scheduler), context: filterContext())
                // Record the host before letting the next member schedule.
                if let chosen = selections.first {
                    try await store.db_setHost(spec.instanceUUID, host: chosen.host, node: chosen.node.hypervisorHostname, db)
                }
                await groupLocks.unlock(group.uuid)
                return selections
            } catch {
                await groupLocks.unlock(group.uuid)
                throw error
            }
        }
        return try await scheduler.select(spec, hosts: try await hostStates(spec, scheduler: scheduler), context: filterContext())
    }

    /// The request spec an instance was created with (kept in its `extra`), for builds, moves
    /// and unshelve.
    func requestSpec(_ instance: Instance, flavor: Flavor? = nil) async throws -> RequestSpec {
        let stored = instance.extra["request_spec"] ?? [:]
        var group: ServerGroup?
        if let groupID = stored["group"]?.stringValue { group = try await store.serverGroup(uuid: groupID, db) }
        var image: ImageInfo?
        if let properties = stored["image_properties"]?.objectValue {
            image = ImageInfo(id: instance.imageRef, name: nil, status: "active", minRAM: 0, minDisk: 0, size: nil, diskFormat: nil,
                              properties: properties.compactMapValues(\.stringValue))
        }
        return RequestSpec(instanceUUID: instance.uuid, projectID: instance.projectID, userID: instance.userID, flavor: flavor ?? instance.flavor,
                           image: image, availabilityZone: stored["availability_zone"]?.stringValue,
                           forcedHost: stored["forced_host"]?.stringValue, group: group,
                           hints: stored["hints"]?.objectValue ?? [:])
    }

    /// What the host's driver is told about a server: its sizes (from `flavor` when a resize
    /// gives a new one), image, keys, user data and ports.
    func guest(_ instance: Instance, flavor: Flavor? = nil) -> GuestSpec {
        let f = flavor ?? instance.flavor
        let stored = instance.extra["request_spec"] ?? [:]
        let properties = stored["image_properties"]?.objectValue?.compactMapValues(\.stringValue) ?? [:]
        var image = ImageRef(id: instance.imageRef, diskFormat: stored["image_disk_format"]?.stringValue ?? "",
                             kernelID: properties["kernel_id"], ramdiskID: properties["ramdisk_id"], properties: properties)
        // A shelved server comes back from the snapshot its shelve uploaded (always qcow2).
        if [.shelved, .shelvedOffloaded].contains(instance.vmState), let shelved = instance.extra["shelved_image"]?.stringValue {
            image = ImageRef(id: shelved, diskFormat: "qcow2", properties: properties)
        }
        let keys = instance.extra["key_data"]?.stringValue.map { [PublicKey(name: instance.keyName ?? "", data: $0)] } ?? []
        let configDrive = settings.forceConfigDrive || Self.truthy(instance.extra["config_drive"])
        let nics = (instance.extra["nics"]?.arrayValue ?? []).compactMap(AttachedNIC.init(json:))
        return GuestSpec(uuid: instance.uuid, name: instance.name, hostname: instance.hostname,
                         projectID: instance.projectID, availabilityZone: instance.availabilityZone,
                         launchIndex: Int(clamping: instance.launchIndex), vcpus: Int(clamping: f.vcpus), memoryMB: Int(clamping: f.ram),
                         rootGB: Int(clamping: f.disk), ephemeralGB: Int(clamping: f.ephemeral), swapMB: Int(clamping: f.swap), image: image,
                         userData: instance.extra["user_data"]?.stringValue.flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) },
                         keys: keys, metadata: instance.metadata, configDrive: configDrive, nics: nics.map(\.vif),
                         flavorName: f.name, reservationID: instance.reservationID, securityGroups: instance.securityGroupNames ?? [],
                         floatingIPs: nics.flatMap { nic in nic.fixedIPs.compactMap { nic.floatingIPs[$0] } })
    }

    /// Nova reads `config_drive` as a boolean or the strings "true"/"True".
    static func truthy(_ value: JSON?) -> Bool {
        value?.boolValue ?? (value?.stringValue.map { ["true", "1", "yes"].contains($0.lowercased()) } ?? false)
    }

    // MARK: Build

    /// Schedules and starts the build of an accepted server. Runs detached from the request.
    func build(_ uuid: String, actionID: Int64) async {
        do {
            guard let instance = try await store.instance(uuid: uuid, db), instance.vmState == .building, instance.deletedAt == nil else { return }
            let spec = try await requestSpec(instance)
            let selections: [Selection]
            do {
                selections = try await schedule(spec)
            } catch let error as NoValidHost {
                try await fail(uuid, actionID: actionID, message: error.description, host: nil)
                return
            }
            try await startBuild(uuid, on: selections[0], alternates: Array(selections.dropFirst()), actionID: actionID)
        } catch {
            logger.error("build of \(uuid) failed: \(error)")
            try? await fail(uuid, actionID: actionID, message: "Build of instance \(uuid) aborted: \(error)", host: nil)
        }
    }

    func startBuild(_ uuid: String, on selection: Selection, alternates: [Selection], actionID: Int64,
                    from task: TaskState = .scheduling) async throws {
        let hostZone = try await zone(of: selection.host)
        // Ports are bound to the chosen host before the agent hears of the guest (Nova's
        // allocate_for_instance on the compute host). A network failure is not the host's
        // fault, so it fails the build instead of rescheduling it, as Nova does.
        let nics: [AttachedNIC]?
        do {
            nics = try await bindNICs(uuid, host: selection.host, zone: hostZone)
        } catch {
            try await fail(uuid, actionID: actionID, message: "Build of instance \(uuid) aborted: Failed to allocate the network(s), not rescheduling. \(APIError.from(error, logger: logger).message)",
                           host: selection.host)
            return
        }
        let started = try await db.transaction { x -> Bool in
            guard var instance = try await self.store.instance(uuid: uuid, x), instance.vmState == .building, instance.deletedAt == nil,
                  instance.taskState == task else { return false }
            instance.host = selection.host
            instance.node = selection.node.hypervisorHostname
            instance.taskState = .spawning
            instance.availabilityZone = hostZone
            if let nics {
                instance.extra["nics"] = .array(nics.map(\.json))
                instance.extra["addresses"] = AttachedNIC.addresses(nics)
                // `allocate` gives one port per requested NIC, in order: each keeps its request's tag.
                let tags = zip(instance.requestedNICs, nics).compactMap { request, nic in request.tag.map { (nic.portID, JSON.string($0)) } }
                instance.extra["interface_tags"] = tags.isEmpty ? nil : .object(Dictionary(tags, uniquingKeysWith: { first, _ in first }))
            }
            instance.extra["alternates"] = .array(alternates.map { .object(["host": .string($0.host), "allocation": Self.allocationJSON($0.allocation)]) })
            instance.updatedAt = Date()
            try await self.store.update(instance, x)
            try await self.store.startEvent(actionID: actionID, event: "compute__do_build_and_run_instance", host: selection.host, x)
            try await self.send(.build, to: selection.host, instance: uuid,
                                payload: ["guest": self.guest(instance).json, "action_id": .int(actionID)], x)
            return true
        }
        if started {
            await wake(selection.host)
        } else {
            // Deleted meanwhile: what was claimed and bound for it goes back.
            try await placement.deleteAllocations(consumer: uuid)
            if nics != nil, let instance = try await store.instance(uuid: uuid, db) { await releaseNICs(instance) }
        }
    }

    /// The instance's requested NICs as ports bound to `host`; nil when it asked for none.
    func bindNICs(_ uuid: String, host: String, zone: String) async throws -> [AttachedNIC]? {
        guard let network, let instance = try await store.instance(uuid: uuid, db), !instance.requestedNICs.isEmpty else { return nil }
        return try await network.allocate(instance.requestedNICs, instance: uuid, project: instance.projectID, host: host, zone: zone,
                                          securityGroups: instance.securityGroupIDs)
    }

    /// Releases a deleted server's ports: those compute made go, those the user gave stay.
    func releaseNICs(_ instance: Instance) async {
        guard let network, !instance.requestedNICs.isEmpty else { return }
        do { try await network.deallocate(instance: instance.uuid, keep: Set(instance.requestedNICs.compactMap(\.portID))) } catch {
            logger.error("could not release the ports of deleted server \(instance.uuid): \(error)")
        }
    }

    /// The host's zone, from the cached aggregates (every aggregate change invalidates them),
    /// so builds and moves do not read every aggregate inside their transactions.
    func zone(of host: String) async throws -> String {
        Aggregate.zone(of: host, in: try await hosts.get(db).aggregates, default: settings.defaultAvailabilityZone)
    }

    static func allocationJSON(_ allocation: [String: [String: Int64]]) -> JSON {
        .object(allocation.mapValues { .object($0.mapValues { .int($0) }) })
    }

    static func allocation(_ json: JSON?) -> [String: [String: Int64]] {
        json?.objectValue?.mapValues { $0.objectValue?.compactMapValues(\.intValue) ?? [:] } ?? [:]
    }

    /// A failed build: the next alternate whose claim succeeds gets the build; with none
    /// left the server goes to ERROR with the fault users see in `server show`.
    func reschedule(_ instance: Instance, actionID: Int64, error: String) async throws {
        try await placement.deleteAllocations(consumer: instance.uuid)
        let snapshot = try await hosts.get(db)
        var alternates: [Selection] = (instance.extra["alternates"]?.arrayValue ?? []).compactMap { alternate in
            guard let host = alternate["host"]?.stringValue, let node = snapshot.nodes[host] else { return nil }
            return Selection(host: host, node: node, allocation: Self.allocation(alternate["allocation"]))
        }
        let hadAlternates = !alternates.isEmpty
        while !alternates.isEmpty {
            let next = alternates.removeFirst()
            guard try await placement.claim(consumer: instance.uuid, project: instance.projectID, user: instance.userID,
                                            allocations: next.allocation) else { continue }
            try await startBuild(instance.uuid, on: next, alternates: alternates, actionID: actionID, from: .spawning)
            return
        }
        let message = hadAlternates
            ? "Exceeded maximum number of retries. Exhausted all hosts available for retrying build failures for instance \(instance.uuid)."
            : "Build of instance \(instance.uuid) aborted: \(error)"
        try await fail(instance.uuid, actionID: actionID, message: message, host: instance.host)
    }

    /// Puts a server in ERROR with a fault, and ends its action as failed.
    func fail(_ uuid: String, actionID: Int64, message: String, host: String?) async throws {
        let after = AfterCommit()
        try await db.transaction { x in
            guard var instance = try await self.store.instance(uuid: uuid, x) else { return }
            instance.vmState = .error
            instance.taskState = nil
            instance.host = nil
            instance.node = nil
            instance.fault = ["code": 500, "message": .string(String(message.prefix(255))), "created": .string(Timestamps.iso8601(Date())),
                              "details": .string(message)]
            instance.updatedAt = Date()
            try await self.store.update(instance, x)
            try await self.store.finishEvents(actionID: actionID, error: message, host: host, x)
            try await self.record(.deleteAllocations(consumer: uuid), in: after, x)
        }
        await finish(after)
    }
}

extension ComputeStore {
    /// Records the chosen host early (group scheduling), before the build message goes out.
    func db_setHost(_ uuid: String, host: String, node: String, _ x: any SQLExecutor) async throws {
        try await x.execute("UPDATE compute_instance SET host = ?, node = ? WHERE uuid = ?", [.text(host), .text(node), .text(uuid)])
    }
}

extension Instance {
    /// The NICs the server asked for, as resolved when it was accepted.
    var requestedNICs: [RequestedNIC] {
        extra["request_spec"]?["networks"]?.arrayValue?.map(RequestedNIC.init(json:)) ?? []
    }

    /// The security groups the ports compute makes for the server get (ids); empty for the
    /// project's default group.
    var securityGroupIDs: [String] {
        extra["request_spec"]?["security_group_ids"]?.arrayValue?.compactMap(\.stringValue) ?? []
    }
}
