import Foundation
import HostAPI
import NimbusCore
import NimbusStore

/// Nova's calls beside the main server actions: `trigger_crash_dump` (2.17+), steering a live
/// migration under way (force complete, 2.22+; abort, 2.24+), a server's NUMA topology (2.78+),
/// its addresses on one network, and precaching images on an aggregate's hosts (2.81+).
extension ComputeService {
    /// `trigger_crash_dump`: the server's host sends the guest an NMI. Nova's states: the
    /// server must have a host and be ACTIVE, PAUSED, RESCUED, RESIZED or ERROR with no task.
    func triggerCrashDump(_ uuid: String, caller: AuthContext, requestID: String) async throws {
        let rule = ActionRule(label: "trigger_crash_dump", policy: "os_compute_api:servers:trigger_crash_dump",
                              vmStates: [.active, .paused, .rescued, .resized, .error], needsLaunch: false)
        let (instance, _) = try await transition(uuid, rule, caller: caller, requestID: requestID, action: "trigger_crash_dump",
                                                 event: "compute_trigger_crash_dump") { instance, actionID, x in
            guard let host = instance.host else { throw APIError.conflict("Instance \(uuid) is not ready yet") }
            try await self.conductor.send(.triggerCrashDump, to: host, instance: uuid, payload: ["action_id": .int(actionID)], x)
        }
        if let host = instance.host { await conductor.wake(host) }
    }

    // MARK: Live migrations under way

    /// `POST /servers/{id}/migrations/{migration}/action` `{"force_complete": null}`: the
    /// source pauses the guest so that the copy converges (the guest runs again at the
    /// destination). Nova's errors: a locked server or one not ACTIVE and migrating 409, an
    /// unknown migration or one not `running` 400.
    public func forceCompleteMigration(_ uuid: String, migrationID: String, caller: AuthContext, requestID: String) async throws {
        let instance = try await visibleInstance(uuid, caller: caller)
        let rule = ActionRule(label: "force_complete", policy: "os_compute_api:servers:migrations:force_complete",
                              vmStates: [.active], taskStates: [.migrating], needsLaunch: false)
        try check(instance, rule, caller: caller)
        guard let migration = try await migrationRecord(migrationID, of: uuid) else {
            throw APIError.badRequest("Migration \(migrationID) not found for instance \(uuid)")
        }
        guard migration.status == "running" else { throw Self.invalidMigrationState(migration, uuid, method: "force complete") }
        try await steer(uuid, rule, migration: migration, kind: .liveMigrationForceComplete, action: "live_migration_force_complete",
                        event: "compute_live_migration_force_complete", caller: caller, requestID: requestID, mark: Conductor.liveMigrationForced)
    }

    /// `DELETE /servers/{id}/migrations/{migration}`: the migration is cancelled and the
    /// server stays ACTIVE on its source; the record ends `cancelled`. Nova's errors: a locked
    /// server or one not migrating 409, an unknown migration 404, one not `running` (or, from
    /// 2.65, `queued`/`preparing`) 400.
    public func abortMigration(_ uuid: String, migrationID: String, version: Microversion, caller: AuthContext, requestID: String) async throws {
        let instance = try await visibleInstance(uuid, caller: caller)
        let rule = ActionRule(label: "abort live migration", policy: "os_compute_api:servers:migrations:delete",
                              vmStates: Set(VMState.allCases), taskStates: [.migrating], needsLaunch: false)
        try check(instance, rule, caller: caller)
        guard let migration = try await migrationRecord(migrationID, of: uuid) else {
            throw APIError.notFound("Migration \(migrationID) not found for instance \(uuid)")
        }
        let allowed: Set<String> = version >= Microversion(2, 65) ? ["running", "queued", "preparing"] : ["running"]
        guard allowed.contains(migration.status) else { throw Self.invalidMigrationState(migration, uuid, method: "abort live migration") }
        try await steer(uuid, rule, migration: migration, kind: .liveMigrationCancel, action: "live_migration_cancel",
                        event: "compute_live_migration_abort", caller: caller, requestID: requestID, mark: Conductor.liveMigrationCancelled)
    }

    func migrationRecord(_ id: String, of uuid: String) async throws -> MigrationRecord? {
        try await store.migrations(instance: uuid, db).first { String($0.id) == id }
    }

    static func invalidMigrationState(_ migration: MigrationRecord, _ uuid: String, method: String) -> APIError {
        APIError.badRequest("Migration \(migration.id) state of instance \(uuid) is \(migration.status). Cannot \(method) while the migration is in this state.")
    }

    /// Records the action and marks the server; once the source sends the guest, the source is
    /// told at once, ordered by the migration so that it runs beside the `live_migrate` under
    /// way. Before that, the mark alone is read when the destination reports it is ready.
    private func steer(_ uuid: String, _ rule: ActionRule, migration: MigrationRecord, kind: AgentMessage.Kind, action: String, event: String,
                       caller: AuthContext, requestID: String, mark: String) async throws {
        let (instance, _) = try await transition(uuid, rule, caller: caller, requestID: requestID, action: action, event: event) { instance, actionID, x in
            instance.extra[mark] = true
            if instance.extra[Conductor.liveMigrationSending]?.boolValue == true, let source = instance.host {
                try await self.conductor.send(kind, to: source, instance: uuid, orderingKey: "migration:\(migration.uuid)",
                                              payload: ["action_id": .int(actionID)], x)
            } else {
                try await self.store.finishEvents(actionID: actionID, error: nil, host: nil, x)
            }
        }
        if let host = instance.host { await conductor.wake(host) }
    }

    // MARK: Topology and addresses

    /// `GET /servers/{id}/topology` (2.78+). Nimbus pins no CPUs and places no guest on NUMA
    /// nodes, so every server has Nova's shape for an instance without a NUMA topology.
    public func topology(_ uuid: String, caller: AuthContext) async throws -> JSON {
        let instance = try await visibleInstance(uuid, caller: caller)
        try authorize("compute:server:topology:index", caller, project: instance.projectID)
        return ["nodes": [], "pagesize_kb": .null]
    }

    /// `GET /servers/{id}/ips/{network_label}`: the server's addresses on that network, fixed
    /// then floating, each as `{version, addr}`; 404 when it has none there.
    public func addresses(_ uuid: String, network label: String?, caller: AuthContext) async throws -> JSON {
        let instance = try await visibleInstance(uuid, caller: caller)
        try authorize("os_compute_api:ips:\(label == nil ? "index" : "show")", caller, project: instance.projectID)
        let all = (instance.extra["addresses"]?.objectValue ?? [:]).mapValues { entries in
            JSON.array((entries.arrayValue ?? []).map { entry -> JSON in ["version": entry["version"] ?? .null, "addr": entry["addr"] ?? .null] })
        }
        guard let label else { return ["addresses": .object(all)] }
        guard let addresses = all[label] else { throw APIError.notFound("Instance is not a member of specified network") }
        return [label: addresses]
    }

    // MARK: Image precache

    /// `POST /os-aggregates/{id}/images` (2.81+): each image is checked as the caller, then each
    /// host of the aggregate is asked to put them in its base image cache (a host whose driver
    /// keeps none answers `unsupported`, as in Nova). Nothing waits for the hosts.
    public func cacheImages(aggregate id: String, _ body: JSON, caller: AuthContext) async throws {
        try authorize("compute:aggregates:images", caller)
        guard let object = body.objectValue, Set(object.keys) == ["cache"] else {
            throw APIError.badRequest("Invalid input for field/attribute cache. 'cache' is a required property")
        }
        guard let entries = object["cache"]?.arrayValue, !entries.isEmpty else {
            throw APIError.badRequest("Invalid input for field/attribute cache. Value: \(object["cache"]?.serialized() ?? "null"). It should be a non-empty array of images")
        }
        var imageIDs: [String] = []
        for entry in entries {
            guard let fields = entry.objectValue, Set(fields.keys) == ["id"], let image = fields["id"]?.stringValue, UUID(uuidString: image) != nil else {
                throw APIError.badRequest("Invalid input for field/attribute cache. Value: \(entry.serialized()). Each entry must be {\"id\": <image uuid>}")
            }
            imageIDs.append(image)
        }
        guard Set(imageIDs).count == imageIDs.count else { throw APIError.badRequest("Duplicate images in request") }
        let aggregate = try await aggregate(id)
        var refs: [JSON] = []
        for imageID in imageIDs {
            guard let image = try await images.image(imageID, caller: caller) else { throw APIError.badRequest("Image \(imageID) could not be found.") }
            refs.append(ImageRef(id: image.id, diskFormat: image.diskFormat ?? "", properties: image.properties).json)
        }
        let (hosts, payload): ([String], JSON) = (aggregate.hosts, ["images": .array(refs)])
        try await db.transaction { x in
            for host in hosts {
                try await self.conductor.send(.cacheImages, to: host, instance: nil, orderingKey: "image-cache", payload: payload, x)
            }
        }
        for host in hosts { await conductor.wake(host) }
    }
}
