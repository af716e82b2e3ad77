import Foundation
import NimbusCore
import NimbusStore

/// Resize, cold and live migration, confirm/revert and evacuate. While a server moves, its
/// source allocation is held in placement by a migration consumer (Nova's trick), so the
/// source keeps its capacity until the move is confirmed or reverted.
extension ComputeService {
    enum MoveKind: Sendable {
        case resize(flavorID: String)
        case coldMigrate(host: String?)
        case liveMigrate(host: String?, block: Bool)

        var isLive: Bool { if case .liveMigrate = self { true } else { false } }
    }

    func move(_ uuid: String, kind: MoveKind, caller: AuthContext, requestID: String, diskConfig: String? = nil) async throws {
        let instance = try await visibleInstance(uuid, caller: caller)
        let rule: ActionRule
        let action: String
        var newFlavor: Flavor?
        var target: String?
        switch kind {
        case .resize(let flavorID):
            rule = ActionRule(label: "resize", policy: "os_compute_api:servers:resize", vmStates: [.active, .stopped])
            action = "resize"
            guard let flavor = try await store.flavor(id: flavorID, db), !flavor.disabled else { throw APIError.badRequest("Flavor \(flavorID) could not be found.") }
            if flavor.id == instance.flavor.id { throw APIError.badRequest("When resizing, instances must change flavor!") }
            if instance.flavor.disk > 0 && flavor.disk == 0 {
                throw APIError.badRequest("Server disk was unable to be resized because: a flavor with a zero disk cannot replace a non-zero one.")
            }
            newFlavor = flavor
        case .coldMigrate(let host):
            rule = ActionRule(label: "migrate", policy: "os_compute_api:os-migrate-server:migrate", vmStates: [.active, .stopped])
            action = "migrate"
            target = host
        case .liveMigrate(let host, _):
            rule = ActionRule(label: "os-migrateLive", policy: "os_compute_api:os-migrate-server:migrate_live", vmStates: [.active, .paused])
            action = "live-migration"
            target = host
        }
        try check(instance, rule, caller: caller)
        if let target {
            guard try await store.node(host: target, db) != nil else { throw APIError.badRequest("Compute host \(target) could not be found.") }
            if target == instance.host { throw APIError.badRequest("Cannot migrate to the host where the server exists.") }
        }
        if let source = instance.host, let service = try await store.service(host: source, binary: "nova-compute", db),
           !service.isUp(timeout: settings.serviceDownTime) {
            throw APIError.conflict("Service is unavailable at this time.")
        }
        let limits = try await quotaLimits(project: instance.projectID)
        let migration = Identifiers.uuid()
        let resizeTo = newFlavor
        let (moving, actionID) = try await transition(uuid, rule, caller: caller, requestID: requestID, action: action,
                                                      event: "conductor_migrate_server") { instance, _, x in
            if let newFlavor = resizeTo {
                // The size difference is reserved now and given back on revert.
                try await self.reserveDelta(from: instance.flavor, to: newFlavor, project: instance.projectID, limits: limits, x)
                instance.newFlavor = newFlavor
            }
            if let diskConfig { instance.extra["diskConfig"] = .string(diskConfig) }
            let live = kind.isLive
            instance.taskState = live ? .migrating : .resizePrep
            instance.extra["migration"] = .string(migration)
            try await self.store.insertMigration(uuid: migration, instance: instance, kind: live ? .liveMigration : (resizeTo == nil ? .migration : .resize),
                                                 status: live ? "accepted" : "pre-migrating", newFlavor: resizeTo, x)
        }
        let destination = target
        await conductor.spawn { await self.conductor.move(moving, kind: kind, migration: migration, target: destination, actionID: actionID) }
    }

    /// Cores and RAM a resize adds (or frees), checked against the project's limits.
    func reserveDelta(from old: Flavor, to new: Flavor, project: String, limits: [String: Int64], _ x: any SQLExecutor) async throws {
        for (resource, delta) in [(ComputeQuotas.cores, new.vcpus - old.vcpus), (ComputeQuotas.ram, new.ram - old.ram)] {
            if delta > 0 {
                guard try await store.reserve(project: project, resource: resource, amount: delta, limit: limits[resource] ?? -1, x) else {
                    throw APIError.forbidden("Quota exceeded for \(resource): Requested \(delta), but already used more of \(limits[resource] ?? -1) \(resource)")
                }
            } else if delta < 0 {
                try await store.release(project: project, resource: resource, amount: -delta, x)
            }
        }
    }

    func confirmResize(_ uuid: String, caller: AuthContext, requestID: String) async throws {
        let instance = try await visibleInstance(uuid, caller: caller)
        guard instance.vmState == .resized else { throw APIError.badRequest("Instance has not been resized.") }
        let rule = ActionRule(label: "confirmResize", policy: "os_compute_api:servers:confirm_resize", vmStates: [.resized])
        let source = instance.extra["resize_source"]?.stringValue
        let migration = instance.extra["migration"]?.stringValue ?? ""
        let sameHost = source == nil || source == instance.host
        let after = AfterCommit()
        try await transition(uuid, rule, caller: caller, requestID: requestID, action: "confirmResize",
                             event: sameHost ? nil : "compute_confirm_resize") { instance, actionID, x in
            if sameHost {
                instance.vmState = VMState(rawValue: instance.extra["resize_prior_state"]?.stringValue ?? "active") ?? .active
                instance.newFlavor = nil
                instance.extra["resize_source"] = nil
                instance.extra["resize_prior_state"] = nil
                try await self.store.updateMigration(instance: uuid, status: "confirmed", x)
                try await self.conductor.record(.deleteAllocations(consumer: migration), in: after, x)
            } else if let source {
                try await self.conductor.send(.confirmResize, to: source, instance: uuid,
                                              payload: ["action_id": .int(actionID), "migration": .string(migration)], x)
                after.wake(source)
            }
        }
        await conductor.finish(after)
    }

    func revertResize(_ uuid: String, caller: AuthContext, requestID: String) async throws {
        let instance = try await visibleInstance(uuid, caller: caller)
        guard instance.vmState == .resized else { throw APIError.badRequest("Instance has not been resized.") }
        let rule = ActionRule(label: "revertResize", policy: "os_compute_api:servers:revert_resize", vmStates: [.resized])
        let limits = try await quotaLimits(project: instance.projectID)
        let source = instance.extra["resize_source"]?.stringValue ?? instance.host ?? ""
        let destination = instance.host ?? source
        try await transition(uuid, rule, caller: caller, requestID: requestID, action: "revertResize",
                             event: "compute_revert_resize") { instance, actionID, x in
            let old = instance.newFlavor ?? instance.flavor
            try await self.reserveDelta(from: instance.flavor, to: old, project: instance.projectID, limits: limits, x)
            instance.taskState = .resizeReverting
            if destination != source {
                try await self.conductor.send(.cleanup, to: destination, instance: uuid, payload: ["action_id": .int(actionID)], x)
            }
            try await self.conductor.send(.revertResize, to: source, instance: uuid,
                                          payload: ["guest": self.conductor.guest(instance, flavor: old).json, "action_id": .int(actionID),
                                                    "migration": instance.extra["migration"] ?? .null,
                                                    "power_off": .bool(instance.extra["resize_prior_state"]?.stringValue == "stopped")], x)
        }
        await conductor.wake(destination)
        await conductor.wake(source)
    }

    func evacuate(_ uuid: String, _ value: JSON, version: Microversion, caller: AuthContext, requestID: String) async throws {
        let instance = try await visibleInstance(uuid, caller: caller)
        let rule = ActionRule(label: "evacuate", policy: "os_compute_api:os-evacuate", lockChecked: false,
                              vmStates: [.active, .stopped, .error], taskStates: Self.anyTask, needsLaunch: false)
        try check(instance, rule, caller: caller)
        guard let source = instance.host else { throw APIError.conflict("Instance \(uuid) is not ready") }
        let target = value["host"]?.stringValue
        if let target {
            guard try await store.node(host: target, db) != nil else { throw APIError.notFound("Compute host \(target) not found.") }
            if target == source { throw APIError.badRequest("The target host can't be the same one.") }
        }
        if let service = try await store.service(host: source, binary: "nova-compute", db), service.isUp(timeout: settings.serviceDownTime) {
            throw APIError.badRequest("Compute service of \(source) is still in use.")
        }
        let powerOff = version >= Microversion(2, 95) || instance.vmState == .stopped
        let sourceProvider = try await store.node(host: source, db)?.uuid ?? ""
        let (moving, actionID) = try await transition(uuid, rule, caller: caller, requestID: requestID, action: "evacuate",
                                                      event: "compute_rebuild_instance") { instance, _, x in
            instance.taskState = .rebuilding
            try await self.store.insertMigration(uuid: Identifiers.uuid(), instance: instance, kind: .evacuation, status: "accepted", newFlavor: nil, x)
        }
        await conductor.spawn { await self.conductor.evacuate(moving, from: source, sourceProvider: sourceProvider, target: target, powerOff: powerOff, actionID: actionID) }
    }
}

extension Conductor {
    /// Schedules a resize or migration: the server's allocation moves to the migration
    /// consumer, the destination is claimed for the server, and the source is told to start.
    func move(_ instance: Instance, kind: ComputeService.MoveKind, migration: String, target: String?, actionID: Int64) async {
        let uuid = instance.uuid
        guard let source = instance.host else { return }
        do {
            try await placement.moveAllocations(from: uuid, to: migration, project: instance.projectID, user: instance.userID)
            var spec = try await requestSpec(instance, flavor: instance.newFlavor ?? instance.flavor)
            spec.requestedHost = target
            spec.forcedHost = nil
            // Only a resize may stay on its host, and only where the cloud allows it (Nova's
            // allow_resize_to_same_host); the host then resizes in place (`ResizingDriver`).
            if case .resize = kind, settings.allowResizeToSameHost {} else { spec.ignoreHosts = [source] }
            let selection: Selection
            do {
                selection = try await schedule(spec)[0]
            } catch let error as NoValidHost {
                let what = { if case .resize = kind { return "resize" } else if case .coldMigrate = kind { return "cold migrate" } else { return "live migration" } }()
                try await abandonMove(instance, migration: migration, actionID: actionID, error: "No valid host found for \(what): \(error.reason)")
                return
            }
            try await db.transaction { x in
                guard var current = try await self.store.instance(uuid: uuid, x), current.deletedAt == nil else { return }
                try await self.store.updateMigration(instance: uuid, status: kind.isLive ? "running" : "migrating", destination: selection.host, x)
                if case .liveMigrate(_, let block) = kind {
                    // The destination listens first; its report sends the source (`live_migration_prepare`).
                    try await self.send(.liveMigrationPrepare, to: selection.host, instance: uuid,
                                        payload: ["action_id": .int(actionID), "guest": self.guest(current).json, "block_migration": .bool(block),
                                                  "migration": .string(migration)], x)
                } else {
                    current.taskState = .resizeMigrating
                    try await self.store.update(current, x)
                    try await self.send(.migrateOut, to: source, instance: uuid,
                                        payload: ["action_id": .int(actionID), "destination": .string(selection.host), "migration": .string(migration)], x)
                }
            }
            await wake(kind.isLive ? selection.host : source)
        } catch {
            logger.error("move of \(uuid) failed: \(error)")
            try? await abandonMove(instance, migration: migration, actionID: actionID, error: "\(error)")
        }
    }

    /// A move that could not start: the server stays where it was, as it was.
    func abandonMove(_ instance: Instance, migration: String, actionID: Int64, error: String) async throws {
        // Only a move that got as far as handing the source's allocation to the migration
        // gives it back (moving nothing would leave the server with nothing).
        if try await !placement.allocations(consumer: migration).isEmpty {
            try await placement.moveAllocations(from: migration, to: instance.uuid, project: instance.projectID, user: instance.userID)
        }
        try await db.transaction { x in
            guard var current = try await self.store.instance(uuid: instance.uuid, x) else { return }
            try await self.store.updateMigration(instance: instance.uuid, status: "error", x)
            if let newFlavor = current.newFlavor {
                // Give back the quota the resize reserved.
                for (resource, delta) in [(ComputeQuotas.cores, newFlavor.vcpus - current.flavor.vcpus), (ComputeQuotas.ram, newFlavor.ram - current.flavor.ram)] where delta != 0 {
                    if delta > 0 { try await self.store.release(project: current.projectID, resource: resource, amount: delta, x) } else {
                        _ = try await self.store.reserve(project: current.projectID, resource: resource, amount: -delta, limit: -1, x)
                    }
                }
            }
            current.taskState = nil
            current.newFlavor = nil
            try await self.store.update(current, x)
            try await self.store.finishEvents(actionID: actionID, error: error, host: nil, x)
        }
    }

    func evacuate(_ instance: Instance, from source: String, sourceProvider: String, target: String?, powerOff: Bool, actionID: Int64) async {
        let uuid = instance.uuid
        do {
            var spec = try await requestSpec(instance)
            spec.ignoreHosts = [source]
            spec.requestedHost = target
            spec.forcedHost = nil
            let selection: Selection
            do {
                selection = try await schedule(spec)[0]
            } catch let error as NoValidHost {
                try await db.transaction { x in try await self.store.updateMigration(instance: uuid, status: "error", x) }
                try await fail(uuid, actionID: actionID, message: error.description, host: nil)
                return
            }
            try await db.transaction { x in
                guard let current = try await self.store.instance(uuid: uuid, x), current.deletedAt == nil else { return }
                try await self.store.updateMigration(instance: uuid, status: "pre-migrating", destination: selection.host, x)
                try await self.send(.evacuate, to: selection.host, instance: uuid,
                                    payload: ["guest": self.guest(current).json, "action_id": .int(actionID), "power_off": .bool(powerOff),
                                              "source_provider": .string(sourceProvider)], x)
            }
            await wake(selection.host)
        } catch {
            logger.error("evacuate of \(uuid) failed: \(error)")
            try? await fail(uuid, actionID: actionID, message: "\(error)", host: nil)
        }
    }
}
