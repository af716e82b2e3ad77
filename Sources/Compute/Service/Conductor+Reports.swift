import Foundation
import HostAPI
import NimbusCore
import NimbusStore

/// Applying what agents report. Each report is applied in one transaction with the deletion
/// of its message, together with the record of the work that must follow it (`FollowUp`); a
/// report whose message is already gone was applied before and is ignored.
extension Conductor {
    func apply(_ report: AgentReport) async throws {
        guard let row = try await db.first("SELECT * FROM compute_message WHERE id = ? AND host = ?", .integer(report.messageID), .text(report.host)) else {
            await hub.deliver(report.messageID, report)
            return
        }
        let message = AgentMessage(id: row.int("id"), kindName: row.string("kind"), instanceUUID: row.optionalString("instance_uuid"),
                                   payload: (try? JSON.parse(row.string("payload"))) ?? .null)
        let actionID = message.payload["action_id"]?.intValue ?? 0
        let power = report.output["power_state"]?.intValue.flatMap(PowerState.init(rawValue:))
        // Read before the transaction: it may need the database itself.
        let hostZone = try await zone(of: report.host)
        if message.kind == .cacheImages {
            logger.info("image precache on \(report.host): \(report.error ?? report.output["images"]?.serialized() ?? "")")
        }
        let after = AfterCommit()
        try await db.transaction { x in
            // Whoever deletes the message applies the report; a duplicate finds it gone.
            guard try await self.store.acknowledge(host: report.host, id: message.id, x) else { return }
            guard let uuid = message.instanceUUID, var instance = try await self.store.instance(uuid: uuid, x) else { return }
            let failed = report.error != nil
            // A server deleted meanwhile only needs its events closed, and so does a kind this
            // controller does not know (a newer one wrote it; its agent answered with an error).
            guard let kind = message.kind, instance.deletedAt == nil || kind == .destroy else {
                try await self.store.finishEvents(actionID: actionID, error: report.error, host: report.host, x)
                if message.kind == .attachInterface { try await self.releaseAttachedPort(message, instance: uuid, after: after, x) }
                return
            }
            instance.updatedAt = Date()
            if let power { instance.powerState = power }
            let cancelled = instance.extra[Self.liveMigrationCancelled]?.boolValue == true
            if var status = Self.migrationStatus(after: kind, failed: failed) {
                if kind == .liveMigrate && failed && cancelled { status = "cancelled" }
                try await self.store.updateMigration(instance: uuid, status: status, x)
            }
            if Self.liveMigrationEnds(kind, failed: failed) {
                for key in [Self.liveMigrationCancelled, Self.liveMigrationForced, Self.liveMigrationSending] { instance.extra[key] = nil }
            }
            switch (kind, failed) {
            case (.console, _), (.diagnostics, _), (.getVNCConsole, _):
                return  // a synchronous call: the caller gets the report itself
            case (.cleanup, _), (.liveMigrationAbort, _):
                return  // a leftover guest on a move's destination: the move itself ends the action
            case (.triggerCrashDump, _), (.liveMigrationForceComplete, _), (.liveMigrationCancel, _):
                // Requests beside the server's state: only their own action ends.
                try await self.store.finishEvents(actionID: actionID, error: report.error, host: report.host, x)
                return
            case (.liveMigrationPrepare, false) where cancelled:
                // Aborted while the destination got ready: nothing was sent, the server stays.
                try await self.store.updateMigration(instance: uuid, status: "cancelled", x)
                for key in [Self.liveMigrationCancelled, Self.liveMigrationForced, Self.liveMigrationSending] { instance.extra[key] = nil }
                instance.taskState = nil
                try await self.send(.liveMigrationAbort, to: report.host, instance: uuid, payload: [:], x)
                after.wake(report.host)
                try await self.record(.returnAllocations(migration: message.payload["migration"]?.stringValue ?? "", instance: uuid,
                                                         project: instance.projectID, user: instance.userID), in: after, x)
                try await self.store.update(instance, x)
                try await self.store.finishEvents(actionID: actionID, error: "The live migration was cancelled.", host: report.host, x)
                return
            case (.build, false), (.unshelve, false):
                instance.vmState = .active
                instance.taskState = nil
                instance.launchedAt = instance.launchedAt ?? Date()
                instance.extra["alternates"] = nil
                if kind == .unshelve, let shelved = instance.extra["shelved_image"]?.stringValue {
                    instance.extra["shelved_image"] = nil
                    try await self.record(.deleteImage(shelved), in: after, x)
                }
            case (.build, true):
                instance.taskState = .spawning
                try await self.store.update(instance, x)
                try await self.record(.reschedule(instance: uuid, actionID: actionID, failedHost: report.host, error: report.error ?? ""), in: after, x)
                return
            case (.destroy, _):
                break
            case (.snapshot, false):
                let imageID = message.payload["image_id"]?.stringValue ?? ""
                let shelving = message.payload["shelve"]?.boolValue ?? false
                let host = report.host
                let rotation = message.payload["rotation"]?.intValue.map { BackupRotation(type: message.payload["backup_type"]?.stringValue ?? "", keep: Int($0)) }
                instance.taskState = shelving ? .shelvingImageUploading : .imageUploading
                try await self.store.update(instance, x)
                try await self.record(.finishSnapshot(instance: uuid, imageID: imageID, shelving: shelving, host: host, actionID: actionID,
                                                      rotation: rotation), in: after, x)
                return
            case (.migrateOut, false):
                // The source is quiet; the destination takes the guest with the new flavor.
                let destination = message.payload["destination"]?.stringValue ?? report.host
                let flavor = instance.newFlavor ?? instance.flavor
                instance.taskState = .resizeMigrated
                try await self.store.update(instance, x)
                try await self.send(.resizeIn, to: destination, instance: uuid,
                                    payload: ["guest": self.guest(instance, flavor: flavor).json, "action_id": .int(actionID),
                                              "source": .string(report.host), "export": report.output["export"] ?? .null,
                                              "power_off": .bool(instance.vmState == .stopped)], x)
                after.wake(destination)
                return
            case (.resizeIn, false):
                instance.extra["resize_source"] = message.payload["source"] ?? .string(instance.host ?? "")
                instance.extra["resize_prior_state"] = .string(instance.vmState.rawValue)
                instance.host = report.host
                instance.node = report.host
                instance.availabilityZone = hostZone
                if let newFlavor = instance.newFlavor {
                    instance.newFlavor = instance.flavor  // kept for a revert
                    instance.flavor = newFlavor
                }
                instance.vmState = .resized
                instance.taskState = nil
            case (.confirmResize, _):
                instance.vmState = VMState(rawValue: instance.extra["resize_prior_state"]?.stringValue ?? "active") ?? .active
                instance.taskState = nil
                instance.newFlavor = nil
                instance.extra["resize_source"] = nil
                instance.extra["resize_prior_state"] = nil
                try await self.record(.deleteAllocations(consumer: message.payload["migration"]?.stringValue ?? ""), in: after, x)
            case (.revertResize, false):
                // Back on the source with the old flavor; the source's allocation returns to the server.
                if let old = instance.newFlavor { instance.flavor = old }
                instance.newFlavor = nil
                instance.host = report.host
                instance.node = report.host
                instance.availabilityZone = hostZone
                instance.vmState = VMState(rawValue: instance.extra["resize_prior_state"]?.stringValue ?? "active") ?? .active
                instance.taskState = nil
                instance.extra["resize_source"] = nil
                instance.extra["resize_prior_state"] = nil
                try await self.record(.returnAllocations(migration: message.payload["migration"]?.stringValue ?? "", instance: uuid,
                                                         project: instance.projectID, user: instance.userID), in: after, x)
            case (.liveMigrationPrepare, false):
                // The destination listens: now the source sends.
                guard let source = instance.host else { break }
                try await self.send(.liveMigrate, to: source, instance: uuid,
                                    payload: ["action_id": .int(actionID), "destination": .string(report.host),
                                              "endpoint": report.output["endpoint"] ?? .null,
                                              "block_migration": message.payload["block_migration"] ?? false,
                                              "migration": message.payload["migration"] ?? .null], x)
                // Forced to complete while the destination got ready: the source hears it now.
                if instance.extra[Self.liveMigrationForced]?.boolValue == true, let migration = message.payload["migration"]?.stringValue {
                    try await self.send(.liveMigrationForceComplete, to: source, instance: uuid, orderingKey: "migration:\(migration)", payload: [:], x)
                }
                instance.extra[Self.liveMigrationSending] = true
                try await self.store.update(instance, x)
                after.wake(source)
                return
            case (.liveMigrate, false):
                let destination = message.payload["destination"]?.stringValue ?? ""
                // A guest paused only to force the migration to complete runs again there.
                let resume = instance.extra[Self.liveMigrationForced]?.boolValue == true && instance.vmState == .active
                try await self.send(.adopt, to: destination, instance: uuid,
                                    payload: ["guest": self.guest(instance).json, "action_id": .int(actionID),
                                              "migration": message.payload["migration"] ?? .null, "resume": .bool(resume)], x)
                try await self.store.update(instance, x)
                after.wake(destination)
                return
            case (.adopt, false):
                instance.host = report.host
                instance.node = report.host
                instance.availabilityZone = hostZone
                instance.taskState = nil
                try await self.record(.deleteAllocations(consumer: message.payload["migration"]?.stringValue ?? ""), in: after, x)
            case (.evacuate, false):
                let source = message.payload["source_provider"]?.stringValue ?? ""
                instance.host = report.host
                instance.node = report.host
                instance.availabilityZone = hostZone
                instance.vmState = message.payload["power_off"]?.boolValue == true ? .stopped : .active
                instance.taskState = nil
                try await self.record(.dropProvider(source, instance: uuid, project: instance.projectID, user: instance.userID), in: after, x)
            case (.shelveOffload, false):
                instance.vmState = .shelvedOffloaded
                instance.taskState = nil
                instance.host = nil
                instance.node = nil
                instance.powerState = .shutdown
                try await self.record(.deleteAllocations(consumer: uuid), in: after, x)
            case (.migrateOut, true), (.resizeIn, true), (.liveMigrationPrepare, true), (.liveMigrate, true), (.adopt, true):
                // The move failed: the server stays where it was, with what it had, and a
                // destination left waiting for a live migration lets go of it.
                instance.taskState = nil
                instance.newFlavor = nil
                if kind == .liveMigrate, let destination = message.payload["destination"]?.stringValue {
                    try await self.send(.liveMigrationAbort, to: destination, instance: uuid, payload: [:], x)
                    after.wake(destination)
                }
                // The source stopped a running guest to offer its disks: it starts it again
                // (which ends the offer), as a revert would.
                if kind == .resizeIn, let source = message.payload["source"]?.stringValue, source != report.host,
                   instance.vmState == .active {
                    instance.taskState = .poweringOn
                    try await self.send(.start, to: source, instance: uuid, payload: ["vm_state": .string(VMState.active.rawValue)], x)
                    after.wake(source)
                }
                try await self.record(.returnAllocations(migration: message.payload["migration"]?.stringValue ?? "", instance: uuid,
                                                         project: instance.projectID, user: instance.userID), in: after, x)
            case (.attachInterface, _), (.detachInterface, _):
                try await self.applyInterface(kind, message, failed: failed, to: &instance, after: after, x)
            case (.evacuate, true):
                instance.vmState = .error
                instance.taskState = nil
                instance.fault = ["code": 500, "message": .string(String((report.error ?? "").prefix(255))), "created": .string(Timestamps.iso8601(Date()))]
            case (_, false):
                // The simple actions carry the vm_state they end in.
                if let state = message.payload["vm_state"]?.stringValue.flatMap(VMState.init(rawValue:)) { instance.vmState = state }
                instance.taskState = nil
            case (_, true):
                instance.taskState = nil
            }
            try await self.store.update(instance, x)
            try await self.store.finishEvents(actionID: actionID, error: report.error, host: report.host, x)
            // A server that now runs on another host takes its ports with it.
            if !failed, Self.moves.contains(kind), let host = instance.host, !instance.requestedNICs.isEmpty {
                try await self.record(.rebindPorts(instance: uuid, host: host, zone: hostZone), in: after, x)
            }
        }
        // A synchronous caller (an interface attach) sees what the report's follow-ups did.
        await finish(after)
        await hub.deliver(report.messageID, report)
    }

    /// Where a report leaves the server's migration record (Nova's statuses), if it is about one.
    static func migrationStatus(after kind: AgentMessage.Kind, failed: Bool) -> String? {
        switch (kind, failed) {
        case (.migrateOut, false): "post-migrating"
        case (.resizeIn, false): "finished"
        case (.confirmResize, _): "confirmed"
        case (.revertResize, false): "reverted"
        case (.adopt, false): "completed"
        case (.evacuate, false): "done"
        case (.liveMigrationPrepare, true), (.liveMigrate, true), (.adopt, true), (.evacuate, true): "failed"
        case (.migrateOut, true), (.resizeIn, true), (.revertResize, true): "error"
        default: nil
        }
    }

    /// Marks in a live-migrating server's `extra`: an abort was asked for, a force complete
    /// paused the guest, and the source was told to send (so a cancel goes to it).
    static let liveMigrationCancelled = "live_migration_cancelled", liveMigrationForced = "live_migration_forced"
    static let liveMigrationSending = "live_migration_sending"

    /// Whether the report ends a live migration (the marks above go then).
    static func liveMigrationEnds(_ kind: AgentMessage.Kind, failed: Bool) -> Bool {
        switch (kind, failed) {
        case (.adopt, _), (.liveMigrate, true), (.liveMigrationPrepare, true): true
        default: false
        }
    }

    /// Reports after which a server runs on a host other than the one its ports are bound to.
    static let moves: Set<AgentMessage.Kind> = [.resizeIn, .revertResize, .adopt, .evacuate, .unshelve]

    /// Binds the server's ports to `host` (they keep their addresses).
    func rebindNICs(_ instance: Instance, host: String, zone: String) async throws {
        guard let network else { return }
        _ = try await network.allocate(instance.requestedNICs, instance: instance.uuid, project: instance.projectID, host: host, zone: zone,
                                       securityGroups: instance.securityGroupIDs)
    }

    /// Nova's `network-changed` event: the networking service says a server's port changed
    /// (a floating IP came or went), so the server's NICs and `addresses` are read again.
    /// Each refresh reads the ports' current state, so refreshes racing each other end
    /// with what the ports show now, whichever commits last.
    public func networkChanged(instance uuid: String) async {
        guard let network else { return }
        do {
            let current = try await network.attached(instance: uuid)
            try await db.transaction { x in
                guard var instance = try await self.store.instance(uuid: uuid, x), instance.deletedAt == nil else { return }
                // Keep the order the server was given its NICs in (Nova's info cache order).
                let order = (instance.extra["nics"]?.arrayValue ?? []).compactMap { $0["port_id"]?.stringValue }
                let nics = current.sorted { (order.firstIndex(of: $0.portID) ?? .max) < (order.firstIndex(of: $1.portID) ?? .max) }
                instance.extra["nics"] = .array(nics.map(\.json))
                instance.extra["addresses"] = AttachedNIC.addresses(nics)
                try await self.store.update(instance, x)
            }
        } catch {
            logger.error("could not refresh the network information of server \(uuid): \(error)")
        }
    }

    /// Removes one provider's part of a consumer's allocations (evacuate leaves the dead host's).
    func dropProvider(_ provider: String, from consumer: String, project: String, user: String) async throws {
        var allocations = try await placement.allocations(consumer: consumer)
        guard allocations.removeValue(forKey: provider) != nil else { return }
        _ = try await placement.claim(consumer: consumer, project: project, user: user, allocations: allocations)
    }

    /// After the host uploaded a snapshot: ends the action (or, for shelve, offloads). With
    /// `rotation` (a backup), the server's backups of that type beyond the newest `keep` are
    /// deleted now that this one exists (a failure there is logged: the snapshot stands).
    /// Does nothing once the server has left the upload's task state, so running it again
    /// (`FollowUp.finishSnapshot`) is harmless.
    func finishSnapshot(_ uuid: String, imageID: String, shelving: Bool, host: String, actionID: Int64,
                        rotation: BackupRotation? = nil) async throws {
        let uploading: TaskState = shelving ? .shelvingImageUploading : .imageUploading
        guard try await store.instance(uuid: uuid, db)?.taskState == uploading else { return }
        if let rotation {
            do {
                for old in try await images.backups(instance: uuid, type: rotation.type).dropFirst(rotation.keep) { try await images.deleteImage(old) }
            } catch {
                logger.error("rotating the backups of \(uuid): \(error)")
            }
        }
        let sent = try await db.transaction { x -> Bool in
            guard var instance = try await self.store.instance(uuid: uuid, x), instance.deletedAt == nil,
                  instance.taskState == uploading else { return false }
            instance.updatedAt = Date()
            if shelving {
                instance.vmState = .shelved
                instance.taskState = .shelvingOffloading
                instance.extra["shelved_image"] = .string(imageID)
                try await self.store.update(instance, x)
                try await self.send(.shelveOffload, to: host, instance: uuid, payload: ["action_id": .int(actionID)], x)
                return true
            }
            instance.taskState = nil
            try await self.store.update(instance, x)
            try await self.store.finishEvents(actionID: actionID, error: nil, host: host, x)
            return false
        }
        if sent { await wake(host) }
    }

    /// After a restart: builds that were never scheduled are scheduled again, and builds
    /// whose scheduling was cut short fail cleanly, so nothing stays in BUILD. Other work the
    /// conductor was doing in memory when it stopped — a move, an evacuation or an unshelve
    /// not yet handed to an agent, an image upload after a snapshot — is resumed or ended
    /// (see `settleInterrupted`), so no server stays in a task state.
    public func resumeInterrupted() async throws {
        // First what the last process committed but did not follow up on: it may settle
        // servers (a snapshot finished, a build rescheduled) that would look cut short.
        try await runLeftFollowUps()
        for instance in try await store.unsettledInstances(db) where instance.vmState != .building {
            // With a message in the outbox an agent has the work, and its report settles it.
            if try await db.first("SELECT 1 AS found FROM compute_message WHERE instance_uuid = ?", .text(instance.uuid)) == nil {
                try await settleInterrupted(instance)
            }
        }
        for instance in try await store.unsettledInstances(db) where instance.vmState == .building {
            let actionID = try await store.actions(instanceUUID: instance.uuid, db).last?.id ?? 0
            if instance.taskState == .scheduling || instance.host == nil {
                // Any claim a crashed scheduler made is dropped before scheduling again.
                try await placement.deleteAllocations(consumer: instance.uuid)
                try await db.transaction { x in
                    var reset = instance
                    reset.taskState = .scheduling
                    reset.host = nil
                    reset.node = nil
                    try await self.store.update(reset, x)
                }
                let uuid = instance.uuid
                await spawn { await self.build(uuid, actionID: actionID) }
            }
            // Otherwise its build message is in the outbox and the agent will report it.
        }
    }

    /// One server whose task the conductor was carrying when it stopped, with no agent
    /// holding any of it.
    func settleInterrupted(_ instance: Instance) async throws {
        let actionID = try await store.actions(instanceUUID: instance.uuid, db).last?.id ?? 0
        let reason = "Interrupted by a restart of the control plane."
        switch instance.taskState {
        case .resizePrep, .migrating:
            // Accepted, but never sent to the source host: the server stays where it is.
            try await abandonMove(instance, migration: instance.extra["migration"]?.stringValue ?? "", actionID: actionID, error: reason)
        case .unshelving:
            let uuid = instance.uuid
            await spawn { await self.placeUnshelved(instance, requestedHost: nil, actionID: actionID) }
            logger.info("resuming the unshelve of \(uuid)")
        default:
            // An evacuation not yet sent to its destination, or an image upload cut short: the
            // task ends with an error on the action and the server keeps its state and host,
            // so the operator can evacuate (or snapshot) again.
            try await db.transaction { x in
                guard var current = try await self.store.instance(uuid: instance.uuid, x), current.deletedAt == nil else { return }
                if current.taskState == .rebuilding { try await self.store.updateMigration(instance: instance.uuid, status: "failed", x) }
                current.taskState = nil
                current.updatedAt = Date()
                try await self.store.update(current, x)
                try await self.store.finishEvents(actionID: actionID, error: reason, host: nil, x)
            }
        }
    }

    /// Unshelve of an offloaded server schedules it like a new boot.
    func placeUnshelved(_ instance: Instance, requestedHost: String?, actionID: Int64) async {
        do {
            if instance.vmState == .shelved, let host = instance.host {
                try await db.transaction { x in
                    try await self.send(.start, to: host, instance: instance.uuid,
                                        payload: ["action_id": .int(actionID), "vm_state": "active"], x)
                }
                await wake(host)
                return
            }
            var spec = try await requestSpec(instance)
            spec.requestedHost = requestedHost
            let selection = try await schedule(spec)[0]
            let hostZone = try await zone(of: selection.host)
            try await db.transaction { x in
                guard var current = try await self.store.instance(uuid: instance.uuid, x), current.taskState == .unshelving else { return }
                current.host = selection.host
                current.node = selection.node.hypervisorHostname
                current.availabilityZone = hostZone
                try await self.store.update(current, x)
                try await self.send(.unshelve, to: selection.host, instance: instance.uuid,
                                    payload: ["guest": self.guest(current).json, "action_id": .int(actionID)], x)
            }
            await wake(selection.host)
        } catch {
            try? await db.transaction { x in
                guard var current = try await self.store.instance(uuid: instance.uuid, x) else { return }
                current.taskState = nil
                try await self.store.update(current, x)
                try await self.store.finishEvents(actionID: actionID, error: "\(error)", host: nil, x)
            }
        }
    }
}
