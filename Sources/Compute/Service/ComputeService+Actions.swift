import Foundation
import HostAPI
import NimbusCore
import NimbusStore

/// `POST /servers/{id}/action`: each action checks the lock and the state machine, moves the
/// server into its transient task_state and queues the host's work, all in one transaction,
/// so two racing actions give one 202 and one 409.
extension ComputeService {
    /// What the route answers: a status and an optional body.
    public struct ActionResult: Sendable {
        public var status: Int
        public var body: JSON?
        /// Rebuild answers with the server itself (plus `adminPass`).
        public var server: Instance?
        /// The image a snapshot or backup makes: before 2.45 its URL is the `Location` header.
        public var imageID: String?

        init(status: Int, body: JSON?, server: Instance? = nil, imageID: String? = nil) {
            (self.status, self.body, self.server, self.imageID) = (status, body, server, imageID)
        }
    }

    /// The rules of one action (nova/compute/api.py's check_instance_state decorators).
    struct ActionRule {
        var label: String
        var policy: String
        var lockChecked = true
        var vmStates: Set<VMState>
        /// Allowed task states; nil in the set means "no task".
        var taskStates: Set<TaskState?> = [nil]
        var needsLaunch = true
    }

    func check(_ instance: Instance, _ rule: ActionRule, caller: AuthContext) throws {
        try authorize(rule.policy, caller, project: instance.projectID)
        if rule.lockChecked { try checkLock(instance, caller) }
        guard rule.vmStates.contains(instance.vmState) else {
            throw APIError.conflict("Cannot '\(rule.label)' instance \(instance.uuid) while it is in vm_state \(instance.vmState.rawValue)")
        }
        guard rule.taskStates.contains(instance.taskState) else {
            throw APIError.conflict("Cannot '\(rule.label)' instance \(instance.uuid) while it is in task_state \(instance.taskState?.rawValue ?? "None")")
        }
        if rule.needsLaunch && instance.launchedAt == nil {
            throw APIError.conflict("Cannot '\(rule.label)' instance \(instance.uuid) while it is in launched_at None")
        }
    }

    /// Checks `rule`, applies `change` and records the action in one transaction, retrying
    /// the check if the server changed under it; returns the server as written.
    @discardableResult
    func transition(_ uuid: String, _ rule: ActionRule, caller: AuthContext, requestID: String, action: String, event: String?,
                    _ change: @escaping @Sendable (inout Instance, Int64, any SQLExecutor) async throws -> Void) async throws -> (Instance, Int64) {
        try await db.transaction { x -> (Instance, Int64) in
            guard var instance = try await self.store.instance(uuid: uuid, x), instance.deletedAt == nil,
                  caller.isAdmin || instance.projectID == caller.projectID else {
                throw APIError.notFound("Instance \(uuid) could not be found.")
            }
            try self.check(instance, rule, caller: caller)
            let before = (instance.vmState, instance.taskState)
            let actionID = try await self.store.startAction(uuid, action: action, requestID: requestID, userID: caller.userID,
                                                            projectID: instance.projectID, event: event, x)
            try await change(&instance, actionID, x)
            instance.updatedAt = Date()
            guard try await self.store.update(instance, expecting: before, x) else {
                throw APIError.conflict("Cannot '\(rule.label)' instance \(uuid) while it is in task_state \(instance.taskState?.rawValue ?? "None")")
            }
            if event == nil { try await self.store.finishEvents(actionID: actionID, error: nil, host: nil, x) }
            return (instance, actionID)
        }
    }

    /// The common shape: a transient task_state, one message to the server's host, and the
    /// vm_state the server ends in when the agent reports success.
    func simple(_ uuid: String, _ rule: ActionRule, caller: AuthContext, requestID: String, action: String, kind: AgentMessage.Kind,
                task: TaskState, endState: VMState?, payload: [String: JSON] = [:]) async throws {
        let (instance, _) = try await transition(uuid, rule, caller: caller, requestID: requestID, action: action,
                                                 event: "compute_\(kind.rawValue)_instance") { instance, actionID, x in
            guard let host = instance.host else { throw APIError.conflict("Instance \(uuid) is not ready") }
            instance.taskState = task
            var body = payload
            body["action_id"] = .int(actionID)
            if let endState { body["vm_state"] = .string(endState.rawValue) }
            if body["guest"] == nil { body["guest"] = self.conductor.guest(instance).json }
            try await self.conductor.send(kind, to: host, instance: uuid, payload: .object(body), x)
        }
        if let host = instance.host { await conductor.wake(host) }
    }

    public func action(_ uuid: String, _ body: JSON, version: Microversion, caller: AuthContext, requestID: String) async throws -> ActionResult {
        guard let object = body.objectValue, object.count == 1, let (name, value) = object.first else {
            throw APIError.badRequest("Malformed request body")
        }
        // Make unknown servers 404 before anything else.
        let found = try await visibleInstance(uuid, caller: caller)
        try await requireDriverFeature(for: name, found, caller: caller)
        let member = "os_compute_api:servers"
        switch name {
        case "os-stop":
            try await simple(uuid, ActionRule(label: "stop", policy: "\(member):stop", vmStates: [.active, .error]), caller: caller,
                             requestID: requestID, action: "stop", kind: .stop, task: .poweringOff, endState: .stopped)
        case "os-start":
            try await simple(uuid, ActionRule(label: "start", policy: "\(member):start", vmStates: [.stopped]), caller: caller,
                             requestID: requestID, action: "start", kind: .start, task: .poweringOn, endState: .active)
        case "reboot":
            guard let type = value["type"]?.stringValue?.uppercased(), type == "SOFT" || type == "HARD" else {
                throw APIError.badRequest("Invalid input for field/attribute reboot. 'type' must be SOFT or HARD")
            }
            let hard = type == "HARD"
            let rule = hard
                ? ActionRule(label: "reboot", policy: "\(member):reboot", vmStates: [.active, .stopped, .paused, .suspended, .error],
                             taskStates: [nil, .rebooting, .rebootingHard, .resuming, .unpausing, .pausing, .suspending])
                : ActionRule(label: "reboot", policy: "\(member):reboot", vmStates: [.active])
            try await simple(uuid, rule, caller: caller, requestID: requestID, action: "reboot", kind: .reboot,
                             task: hard ? .rebootingHard : .rebooting, endState: .active, payload: ["hard": .bool(hard)])
        case "pause", "unpause", "suspend", "resume":
            let (kind, from, to, task): (AgentMessage.Kind, VMState, VMState, TaskState) = switch name {
            case "pause": (.pause, .active, .paused, .pausing)
            case "unpause": (.unpause, .paused, .active, .unpausing)
            case "suspend": (.suspend, .active, .suspended, .suspending)
            default: (.resume, .suspended, .active, .resuming)
            }
            let policy = name == "pause" || name == "unpause" ? "os_compute_api:os-pause-server:\(name)" : "os_compute_api:os-suspend-server:\(name)"
            try await simple(uuid, ActionRule(label: name, policy: policy, vmStates: [from]), caller: caller, requestID: requestID,
                             action: name, kind: kind, task: task, endState: to)
        case "lock":
            let reason = version >= Microversion(2, 73) ? value["locked_reason"]?.stringValue : nil
            if let reason, reason.isEmpty || reason.count > 255 { throw APIError.badRequest("Invalid input for field/attribute locked_reason.") }
            try await transition(uuid, ActionRule(label: "lock", policy: "os_compute_api:os-lock-server:lock", lockChecked: false,
                                                  vmStates: Set(VMState.allCases), taskStates: Self.anyTask, needsLaunch: false),
                                 caller: caller, requestID: requestID, action: "lock", event: nil) { instance, _, _ in
                if instance.locked { return }
                instance.locked = true
                instance.lockedReason = reason
                instance.lockedBy = instance.projectID == caller.projectID ? "owner" : "admin"
            }
        case "unlock":
            let instance = try await visibleInstance(uuid, caller: caller)
            if instance.lockedBy == "admin" && !caller.isAdmin {
                throw APIError.forbidden("Policy doesn't allow os_compute_api:os-lock-server:unlock:unlock_override to be performed.")
            }
            try await transition(uuid, ActionRule(label: "unlock", policy: "os_compute_api:os-lock-server:unlock", lockChecked: false,
                                                  vmStates: Set(VMState.allCases), taskStates: Self.anyTask, needsLaunch: false),
                                 caller: caller, requestID: requestID, action: "unlock", event: nil) { instance, _, _ in
                instance.locked = false
                instance.lockedReason = nil
                instance.lockedBy = nil
            }
        case "rescue":
            let adminPass = value["adminPass"]?.stringValue ?? Identifiers.password(length: 12)
            var payload: [String: JSON] = [:]
            if let image = value["rescue_image_ref"]?.stringValue {
                guard try await images.image(image, caller: caller) != nil else { throw APIError.badRequest("Rescue image \(image) could not be found.") }
                payload["rescue_image"] = .string(image)
            }
            try await simple(uuid, ActionRule(label: "rescue", policy: "os_compute_api:os-rescue", vmStates: [.active, .stopped, .error]),
                             caller: caller, requestID: requestID, action: "rescue", kind: .rescue, task: .rescuing, endState: .rescued, payload: payload)
            return ActionResult(status: 200, body: ["adminPass": .string(adminPass)])
        case "unrescue":
            try await simple(uuid, ActionRule(label: "unrescue", policy: "os_compute_api:os-rescue:unrescue", vmStates: [.rescued]),
                             caller: caller, requestID: requestID, action: "unrescue", kind: .unrescue, task: .unrescuing, endState: .active)
        case "os-getConsoleOutput":
            try authorize("os_compute_api:os-console-output", caller)
            let instance = try await visibleInstance(uuid, caller: caller)
            guard let host = instance.host else { throw APIError.conflict("Instance \(uuid) is not ready") }
            var length: Int64?
            if let raw = value["length"], !raw.isNull {
                guard let n = raw.intValue ?? raw.stringValue.flatMap({ Int64($0) }), n >= -1 else {
                    throw APIError.badRequest("Invalid input for field/attribute length. Value: \(raw.serialized()).")
                }
                length = n == -1 ? nil : n
            }
            let report = try await conductor.call(.console, host: host, instance: uuid, payload: length.map { ["length": .int($0)] } ?? [:])
            if let error = report.error { throw APIError(.notImplemented, "Unable to get console output: \(error)") }
            return ActionResult(status: 200, body: ["output": report.output["output"] ?? ""])
        case "os-getVNCConsole", "os-getSPICEConsole", "os-getSerialConsole":
            return try await legacyConsole(uuid, action: name, value, version: version, caller: caller)
        case "restore", "forceDelete":
            // Nimbus deletes at once (Nova's reclaim_instance_interval = 0), so no server is
            // ever SOFT_DELETED and these refuse as Nova does for any other state.
            let policy = name == "restore" ? "os_compute_api:os-deferred-delete:restore" : "os_compute_api:os-deferred-delete:force"
            try check(try await visibleInstance(uuid, caller: caller), ActionRule(label: name, policy: policy, vmStates: [.softDeleted]), caller: caller)
        case "addSecurityGroup", "removeSecurityGroup":
            try await changeSecurityGroup(uuid, value, adding: name == "addSecurityGroup", caller: caller)
        case "addFloatingIp", "removeFloatingIp":
            guard version < Microversion(2, 44) else { throw APIError.notFound("The resource could not be found.") }
            if name == "addFloatingIp" { try await addFloatingIP(uuid, value, caller: caller) } else { try await removeFloatingIP(uuid, value, caller: caller) }
        case "injectNetworkInfo":
            try await injectNetworkInfo(uuid, caller: caller)
        case "createImage":
            return try await createImage(uuid, value, version: version, caller: caller, requestID: requestID)
        case "createBackup":
            return try await createBackup(uuid, value, version: version, caller: caller, requestID: requestID)
        case "shelve":
            try await shelve(uuid, caller: caller, requestID: requestID)
        case "shelveOffload":
            try await simple(uuid, ActionRule(label: "shelveOffload", policy: "os_compute_api:os-shelve:shelve_offload", vmStates: [.shelved]),
                             caller: caller, requestID: requestID, action: "shelveOffload", kind: .shelveOffload, task: .shelvingOffloading, endState: nil)
        case "unshelve":
            try await unshelve(uuid, value, version: version, caller: caller, requestID: requestID)
        case "rebuild":
            return try await rebuild(uuid, value, version: version, caller: caller, requestID: requestID)
        case "resize":
            guard let ref = value["flavorRef"].flatMap({ $0.stringValue ?? $0.intValue.map(String.init) }) else {
                throw APIError.badRequest("Invalid input for field/attribute resize. 'flavorRef' is a required property")
            }
            try await move(uuid, kind: .resize(flavorID: String(ref.split(separator: "/").last ?? "")), caller: caller, requestID: requestID,
                           diskConfig: try Self.diskConfig(value))
        case "migrate":
            let host = value["host"]?.stringValue
            if host != nil { try authorize("os_compute_api:os-migrate-server:migrate:host", caller) }
            try await move(uuid, kind: .coldMigrate(host: host), caller: caller, requestID: requestID)
        case "os-migrateLive":
            guard value.objectValue != nil else { throw APIError.badRequest("Invalid input for field/attribute os-migrateLive.") }
            let host = value["host"]?.stringValue
            if host != nil { try authorize("os_compute_api:os-migrate-server:migrate_live:host", caller) }
            let block = value["block_migration"]?.boolValue ?? false
            try await move(uuid, kind: .liveMigrate(host: host, block: block), caller: caller, requestID: requestID)
        case "trigger_crash_dump":
            guard version >= Microversion(2, 17) else { throw APIError.notFound("The resource could not be found.") }
            guard value.isNull else { throw APIError.badRequest("Invalid input for field/attribute trigger_crash_dump. Value: \(value.serialized()). \(value.serialized()) is not of type 'null'") }
            try await triggerCrashDump(uuid, caller: caller, requestID: requestID)
        case "confirmResize":
            try await confirmResize(uuid, caller: caller, requestID: requestID)
            return ActionResult(status: 204, body: nil)
        case "revertResize":
            try await revertResize(uuid, caller: caller, requestID: requestID)
        case "evacuate":
            try await evacuate(uuid, value, version: version, caller: caller, requestID: requestID)
            return ActionResult(status: 200, body: version < Microversion(2, 14) ? ["adminPass": .string(Identifiers.password(length: 12))] : nil)
        case "os-resetState":
            guard let state = value["state"]?.stringValue, state == "active" || state == "error" else {
                throw APIError.badRequest("Invalid input for field/attribute state.")
            }
            try await transition(uuid, ActionRule(label: "resetState", policy: "os_compute_api:os-admin-actions:reset_state", lockChecked: false,
                                                  vmStates: Set(VMState.allCases), taskStates: Self.anyTask, needsLaunch: false),
                                 caller: caller, requestID: requestID, action: "resetState", event: nil) { instance, _, _ in
                instance.vmState = state == "active" ? .active : .error
                instance.taskState = nil
            }
        case "changePassword":
            try await changePassword(uuid, value, caller: caller, requestID: requestID)
        default:
            throw APIError.badRequest("There is no such action: \(name)")
        }
        return ActionResult(status: 202, body: nil)
    }

    /// The actions only some drivers can carry out: the policy checked first (so a caller who
    /// may not act learns nothing of the host), what the driver must be able to do, and how to
    /// name it.
    static var driverFeatures: [String: (policy: String, needs: @Sendable (DriverCapabilities) -> Bool, what: String)] {
        let pause = { @Sendable (c: DriverCapabilities) in c.pause }, suspend = { @Sendable (c: DriverCapabilities) in c.suspend }
        let snapshot = { @Sendable (c: DriverCapabilities) in c.snapshot }, rescue = { @Sendable (c: DriverCapabilities) in c.rescue }
        return [
            "pause": ("os_compute_api:os-pause-server:pause", pause, "pause servers"),
            "unpause": ("os_compute_api:os-pause-server:unpause", pause, "pause servers"),
            "suspend": ("os_compute_api:os-suspend-server:suspend", suspend, "suspend servers"),
            "resume": ("os_compute_api:os-suspend-server:resume", suspend, "suspend servers"),
            "createImage": ("os_compute_api:servers:create_image", snapshot, "snapshot servers"),
            "createBackup": ("os_compute_api:os-create-backup", snapshot, "snapshot servers"),
            "shelve": ("os_compute_api:os-shelve:shelve", snapshot, "snapshot servers"),
            "rescue": ("os_compute_api:os-rescue", rescue, "rescue servers"),
            "unrescue": ("os_compute_api:os-rescue:unrescue", rescue, "rescue servers"),
            "os-migrateLive": ("os_compute_api:os-migrate-server:migrate_live", { $0.liveMigration }, "live-migrate servers"),
            "migrate": ("os_compute_api:os-migrate-server:migrate", { $0.coldMigration }, "migrate servers"),
            "resize": ("os_compute_api:servers:resize", { $0.coldMigration || $0.resize }, "resize servers"),
        ]
    }

    /// Refuses, with Nova's 501 "feature not supported", an action the driver of the server's
    /// host cannot carry out — before anything changes.
    func requireDriverFeature(for action: String, _ instance: Instance, caller: AuthContext) async throws {
        guard let feature = Self.driverFeatures[action], let host = instance.host,
              let node = try await store.node(host: host, db) else { return }
        try authorize(feature.policy, caller, project: instance.projectID)
        guard feature.needs(DriverCapabilities(json: node.capabilities)) else {
            throw APIError(.notImplemented, "Feature not supported: the \(node.hypervisorType) driver of host \(host) cannot \(feature.what).")
        }
    }

    static let anyTask: Set<TaskState?> = Set([nil] + TaskState.allCases.map { Optional($0) })

    // MARK: Snapshots and shelve

    func createImage(_ uuid: String, _ value: JSON, version: Microversion, caller: AuthContext, requestID: String) async throws -> ActionResult {
        guard let name = value["name"]?.stringValue, !name.isEmpty, name.count <= 255 else {
            throw APIError.badRequest("Invalid input for field/attribute name.")
        }
        let instance = try await visibleInstance(uuid, caller: caller)
        let rule = ActionRule(label: "createImage", policy: "os_compute_api:servers:create_image", lockChecked: false,
                              vmStates: [.active, .stopped, .paused, .suspended])
        try check(instance, rule, caller: caller)
        // The metadata given has the last word, over what Nova sets itself (image_type…).
        var properties = ["image_type": "snapshot", "instance_uuid": uuid, "user_id": caller.userID, "base_image_ref": instance.imageRef]
        properties.merge(try Self.metadata(value["metadata"], field: "metadata")) { _, given in given }
        let imageID = try await snapshotImage(name: name, properties: properties, caller: caller) { imageID in
            try await self.simple(uuid, rule, caller: caller, requestID: requestID, action: "createImage", kind: .snapshot, task: .imageSnapshot,
                                  endState: nil, payload: ["image_id": .string(imageID)])
        }
        if version >= Microversion(2, 45) { return ActionResult(status: 202, body: ["image_id": .string(imageID)]) }
        return ActionResult(status: 202, body: nil, imageID: imageID)
    }

    /// `createBackup`: a snapshot marked `image_type=backup` with its `backup_type`; once it is
    /// uploaded, the server's backups of that type beyond the newest `rotation` are deleted.
    /// A rotation of 0 takes no snapshot and deletes them all, as in Nova.
    func createBackup(_ uuid: String, _ value: JSON, version: Microversion, caller: AuthContext, requestID: String) async throws -> ActionResult {
        guard let name = value["name"]?.stringValue, !name.isEmpty, name.count <= 255 else {
            throw APIError.badRequest("Invalid input for field/attribute name.")
        }
        guard let type = value["backup_type"]?.stringValue else {
            throw APIError.badRequest("Invalid input for field/attribute createBackup. 'backup_type' is a required property")
        }
        guard let rotation = value["rotation"]?.intValue ?? value["rotation"]?.stringValue.flatMap({ Int64($0) }), rotation >= 0 else {
            throw APIError.badRequest("Invalid input for field/attribute rotation. Value: \(value["rotation"]?.serialized() ?? "None").")
        }
        let instance = try await visibleInstance(uuid, caller: caller)
        let rule = ActionRule(label: "createBackup", policy: "os_compute_api:os-create-backup", vmStates: [.active, .stopped, .paused, .suspended])
        try check(instance, rule, caller: caller)
        if rotation == 0 {
            for image in try await images.backups(instance: uuid, type: type) { try await images.deleteImage(image) }
            return ActionResult(status: 202, body: nil)
        }
        var properties = try Self.metadata(value["metadata"], field: "metadata")
        properties["image_type"] = "backup"
        properties["backup_type"] = type
        properties["instance_uuid"] = uuid
        properties["user_id"] = caller.userID
        properties["base_image_ref"] = instance.imageRef
        let imageID = try await snapshotImage(name: name, properties: properties, caller: caller) { imageID in
            try await self.simple(uuid, rule, caller: caller, requestID: requestID, action: "createBackup", kind: .snapshot, task: .imageBackup,
                                  endState: nil, payload: ["image_id": .string(imageID), "backup_type": .string(type), "rotation": .int(rotation)])
        }
        if version >= Microversion(2, 45) { return ActionResult(status: 202, body: ["image_id": .string(imageID)]) }
        return ActionResult(status: 202, body: nil, imageID: imageID)
    }

    /// Creates the (queued) image a snapshot, backup or shelve uploads to, then `record`s the
    /// action that uploads it; returns the image's id. The server's state is checked again
    /// only when the action is recorded, so another action may have changed it since the
    /// image was created: when `record` fails (that 409, or anything else) the image is
    /// deleted again before the error goes on, and no image is left that nothing will upload.
    func snapshotImage(name: String, properties: [String: String], caller: AuthContext,
                       record: @Sendable (String) async throws -> Void) async throws -> String {
        try await conductor.hooks.imageCreating()
        let imageID = try await images.createImage(name: name, properties: properties, caller: caller)
        do {
            try await record(imageID)
        } catch {
            do { try await images.deleteImage(imageID) } catch let cleanup {
                logger.error("snapshot image \(imageID) left behind after a refused action: \(cleanup)")
            }
            throw error
        }
        return imageID
    }

    func shelve(_ uuid: String, caller: AuthContext, requestID: String) async throws {
        let instance = try await visibleInstance(uuid, caller: caller)
        let rule = ActionRule(label: "shelve", policy: "os_compute_api:os-shelve:shelve", vmStates: [.active, .stopped, .paused, .suspended])
        try check(instance, rule, caller: caller)
        _ = try await snapshotImage(name: "\(instance.name)-shelved",
                                    properties: ["image_type": "snapshot", "instance_uuid": uuid, "base_image_ref": instance.imageRef],
                                    caller: caller) { imageID in
            try await self.simple(uuid, rule, caller: caller, requestID: requestID, action: "shelve", kind: .snapshot, task: .shelvingImageUploading,
                                  endState: nil, payload: ["image_id": .string(imageID), "shelve": true])
        }
    }

    func unshelve(_ uuid: String, _ value: JSON, version: Microversion, caller: AuthContext, requestID: String) async throws {
        let zone = version >= Microversion(2, 77) ? value["availability_zone"]?.stringValue : nil
        let host = version >= Microversion(2, 91) ? value["host"]?.stringValue : nil
        if host != nil { try authorize("os_compute_api:os-shelve:unshelve_to_host", caller) }
        let rule = ActionRule(label: "unshelve", policy: "os_compute_api:os-shelve:unshelve", vmStates: [.shelved, .shelvedOffloaded])
        let current = try await visibleInstance(uuid, caller: caller)
        if (zone != nil || host != nil) && current.vmState != .shelvedOffloaded {
            throw APIError.conflict("Specifying an availability zone or a host when unshelving server \"\(uuid)\" with status \"\(current.status)\" is not supported. The server status must be SHELVED_OFFLOADED.")
        }
        if let host, try await store.node(host: host, db) == nil { throw APIError.badRequest("Compute host \(host) could not be found.") }
        let (instance, actionID) = try await transition(uuid, rule, caller: caller, requestID: requestID, action: "unshelve",
                                                        event: "compute_unshelve_instance") { instance, _, _ in
            instance.taskState = .unshelving
            if let zone {
                instance.extra["pinned_availability_zone"] = .string(zone)
                if case .object(var spec) = instance.extra["request_spec"] ?? [:] {
                    spec["availability_zone"] = .string(zone)
                    instance.extra["request_spec"] = .object(spec)
                }
            }
        }
        await conductor.spawn { await self.conductor.placeUnshelved(instance, requestedHost: host, actionID: actionID) }
    }

    func rebuild(_ uuid: String, _ value: JSON, version: Microversion, caller: AuthContext, requestID: String) async throws -> ActionResult {
        guard let ref = value["imageRef"]?.stringValue else { throw APIError.badRequest("Invalid input for field/attribute rebuild. 'imageRef' is a required property") }
        let imageID = String(ref.split(separator: "/").last ?? "")
        guard let image = try await images.image(imageID, caller: caller), image.status == "active" else {
            throw APIError.badRequest("Cannot find image for rebuild")
        }
        let name = value["name"]?.stringValue
        let metadata = value["metadata"] == nil ? nil : try Self.metadata(value["metadata"], field: "metadata")
        // key_name (2.54+) and user_data (2.57+) may be replaced or cleared with null.
        var keyChange: (name: String?, data: String?)?
        if version >= Microversion(2, 54), let raw = value["key_name"] {
            if let keyName = raw.stringValue {
                guard let keypair = try await store.keypair(user: caller.userID, name: keyName, db) else { throw APIError.badRequest("Invalid key_name provided.") }
                keyChange = (keyName, keypair.publicKey)
            } else {
                keyChange = (nil, nil)
            }
        }
        var userData: JSON?
        if version >= Microversion(2, 57), let raw = value["user_data"] {
            guard raw.isNull || raw.stringValue.flatMap({ Data(base64Encoded: $0) }) != nil else {
                throw APIError.badRequest("Invalid input for field/attribute user_data. 'user_data' is not base64")
            }
            userData = raw
        }
        let adminPass = value["adminPass"]?.stringValue ?? Identifiers.password(length: 12)
        let diskConfig = try Self.diskConfig(value)
        let (newKey, newUserData) = (keyChange, userData)
        let rule = ActionRule(label: "rebuild", policy: "os_compute_api:servers:rebuild", vmStates: [.active, .stopped, .error])
        let (instance, _) = try await transition(uuid, rule, caller: caller, requestID: requestID, action: "rebuild",
                                                 event: "compute_rebuild_instance") { instance, actionID, x in
            guard let host = instance.host else { throw APIError.conflict("Instance \(uuid) is not ready") }
            let wasStopped = instance.vmState == .stopped
            instance.imageRef = imageID
            if let name { instance.name = name }
            if let metadata { instance.metadata = metadata }
            if let newKey {
                instance.keyName = newKey.name
                instance.extra["key_data"] = .optional(newKey.data)
            }
            if let newUserData { instance.extra["user_data"] = newUserData.isNull ? nil : newUserData }
            if let diskConfig { instance.extra["diskConfig"] = .string(diskConfig) }
            if case .object(var spec) = instance.extra["request_spec"] ?? [:] {
                spec["image_properties"] = .object(image.properties.mapValues { JSON.string($0) })
                spec["image_disk_format"] = .optional(image.diskFormat)
                instance.extra["request_spec"] = .object(spec)
            }
            instance.taskState = .rebuilding
            try await self.conductor.send(.rebuild, to: host, instance: uuid,
                                          payload: ["guest": self.conductor.guest(instance).json, "action_id": .int(actionID),
                                                    "vm_state": .string(wasStopped ? "stopped" : "active"), "power_off": .bool(wasStopped)], x)
        }
        if let host = instance.host { await conductor.wake(host) }
        return ActionResult(status: 202, body: ["adminPass": .string(adminPass)], server: instance)
    }

    /// `addSecurityGroup`/`removeSecurityGroup`: the group goes on (or off) every port of the
    /// server, in the networking service, and the server's `security_groups` follow.
    /// `GET /servers/{id}/os-security-groups`: the groups of the server's ports, from the
    /// networking service as the caller sees them; none without ports or networking.
    public func serverSecurityGroups(_ uuid: String, caller: AuthContext) async throws -> [InstanceSecurityGroup] {
        let instance = try await visibleInstance(uuid, caller: caller)
        try authorize("os_compute_api:os-security-groups:list", caller, project: instance.projectID)
        guard let network = conductor.network else { return [] }
        // A server without ports (Nimbus boots one when there is no network) has only its
        // record of the groups it was given: those of its project, by name.
        if instance.extra["nics"]?.arrayValue?.isEmpty ?? true, let proxy = networkProxy {
            let names = Set(instance.extra["security_groups"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            return try await proxy.proxySecurityGroups(project: instance.projectID, caller: caller).filter { names.contains($0.name) }
        }
        return try await network.instanceSecurityGroups(instance: uuid, caller: caller)
    }

    func changeSecurityGroup(_ uuid: String, _ value: JSON, adding: Bool, caller: AuthContext) async throws {
        let instance = try await visibleInstance(uuid, caller: caller)
        try authorize("os_compute_api:os-security-groups:\(adding ? "add" : "remove")", caller, project: instance.projectID)
        guard let group = value["name"]?.stringValue, !group.isEmpty else { throw APIError.badRequest("Security group name cannot be empty") }
        guard let network = conductor.network else { throw APIError.badRequest("Security groups need the networking service.") }
        let name = try await network.changeSecurityGroup(group, instance: uuid, project: instance.projectID, adding: adding, caller: caller)
        try await db.transaction { x in
            guard var current = try await self.store.instance(uuid: uuid, x), current.deletedAt == nil else { return }
            var names = current.extra["security_groups"]?.arrayValue?.compactMap(\.stringValue) ?? ["default"]
            // A server without ports has only this record of its groups to check against.
            if current.extra["nics"]?.arrayValue?.isEmpty ?? true, adding == names.contains(name) {
                throw APIError.badRequest(adding ? "Security group \(name) is already associated with the instance \(uuid)"
                                                 : "Security group \(name) not associated with the instance \(uuid)")
            }
            names.removeAll { $0 == name }
            if adding { names.append(name) }
            current.extra["security_groups"] = .array(names.map { .string($0) })
            try await self.store.update(current, x)
        }
    }
}

extension TaskState: CaseIterable {
    public static let allCases: [TaskState] = [
        .scheduling, .networking, .spawning, .blockDeviceMapping, .imageSnapshot, .imagePendingUpload, .imageUploading, .imageBackup, .rebooting,
        .rebootingHard, .pausing, .unpausing, .suspending, .resuming, .poweringOff, .poweringOn, .rescuing, .unrescuing, .rebuilding,
        .rebuildSpawning, .resizePrep, .resizeMigrating, .resizeMigrated, .resizeFinish, .resizeReverting, .resizeConfirming, .migrating,
        .deleting, .shelving, .shelvingOffloading, .unshelving, .shelvingImagePendingUpload, .shelvingImageUploading, .updatingPassword,
    ]
}
