import Foundation
import HostAPI
import NimbusCore
import NimbusStore

/// Applying a host's power-state report (`PowerStateReport`), as Nova's compute does in
/// `_sync_power_states` and on lifecycle events, and reconciling a host's guests when its
/// agent starts.
///
/// For each server of the host that is in no task (a task means an operation is under way and
/// its own report will settle the server; Nova skips those too) and whose guest the agent
/// could read:
/// - `power_state` takes the hypervisor's value (a server whose guest is missing from a
///   complete report gets NOSTATE);
/// - an ACTIVE server whose guest is shut down, crashed or suspended, a PAUSED one whose
///   guest is shut down or crashed, and a SHUTOFF one whose guest runs are stopped as the
///   stop API would: a `stop` action with its `compute_stop_instance` event (no user or
///   project: the system did it), task `powering-off`, and a `stop` message to the host,
///   whose report makes the server SHUTOFF;
/// - anything else (a guest that paused or vanished under an ACTIVE server, servers in
///   BUILD, RESIZED, SUSPENDED, RESCUED, ERROR) only has its power state updated.
extension Conductor {
    func syncPowerStates(_ report: PowerStateReport) async throws {
        var stops = false
        for instance in try await store.instances(host: report.host, db) where instance.taskState == nil && !report.busy.contains(instance.uuid) {
            guard let observed = report.guests[instance.uuid] ?? (report.complete ? .noState : nil) else { continue }
            guard observed != instance.powerState || Self.stopNeeded(instance.vmState, observed) else { continue }
            if try await correctPowerState(instance.uuid, host: report.host, observed: observed) { stops = true }
        }
        if report.reconcile, try await reconcileGuests(report) { stops = true }
        if stops { await wake(report.host) }
    }

    /// Whether Nova's sync calls the stop API for a server in `vmState` whose guest is `power`.
    static func stopNeeded(_ vmState: VMState, _ power: PowerState) -> Bool {
        switch vmState {
        case .active: return [.shutdown, .crashed, .suspended].contains(power)
        case .paused: return [.shutdown, .crashed].contains(power)
        // Nova stops a stopped server's guest that is not off; a suspended guest is left as
        // it is (powering it off would not change it, and the next sync would try again).
        case .stopped: return [.running, .paused].contains(power)
        default: return false
        }
    }

    /// Applies one server's observed power state, checked again in the transaction that
    /// changes it (the server may have moved or started a task since it was listed). True
    /// when a stop was sent.
    func correctPowerState(_ uuid: String, host: String, observed: PowerState) async throws -> Bool {
        try await db.transaction { x -> Bool in
            guard var instance = try await self.store.instance(uuid: uuid, x), instance.deletedAt == nil, instance.host == host,
                  instance.taskState == nil else { return false }
            let stop = Self.stopNeeded(instance.vmState, observed)
            guard observed != instance.powerState || stop else { return false }
            if observed != instance.powerState {
                self.logger.info("server \(uuid) on \(host): power state \(instance.powerState) in the database, \(observed) on the hypervisor; updated")
            }
            instance.powerState = observed
            instance.updatedAt = Date()
            if stop {
                self.logger.warning("server \(uuid) on \(host) is \(instance.vmState.rawValue) but its guest is \(observed): stopping it")
                let actionID = try await self.store.startAction(uuid, action: "stop", requestID: "req-" + Identifiers.uuid(), userID: "", projectID: "",
                                                                event: "compute_stop_instance", x)
                instance.taskState = .poweringOff
                try await self.send(.stop, to: host, instance: uuid,
                                    payload: ["action_id": .int(actionID), "vm_state": .string(VMState.stopped.rawValue),
                                              "guest": self.guest(instance).json], x)
            }
            try await self.store.update(instance, x)
            return stop
        }
    }

    /// The first complete report of a starting agent: each guest the controller does not
    /// expect on the host gets a `cleanup` (the guest is destroyed; the server, if any, is
    /// left alone), as Nova's compute destroys evacuated and deleted instances' guests at
    /// start. A guest with a message waiting for the host is left to that message. True when
    /// any cleanup was sent.
    func reconcileGuests(_ report: PowerStateReport) async throws -> Bool {
        let guests = report.guests.keys.filter { !report.busy.contains($0) }.sorted()
        guard !guests.isEmpty else { return false }
        return try await db.transaction { x -> Bool in
            let pending = Set(try await x.query("SELECT instance_uuid FROM compute_message WHERE host = ? AND instance_uuid IS NOT NULL",
                                                [.text(report.host)]).map { $0.string("instance_uuid") })
            var sent = false
            for uuid in guests where !pending.contains(uuid) {
                let instance = try await self.store.instance(uuid: uuid, x)
                guard !Self.expected(instance, on: report.host) else { continue }
                self.logger.warning("host \(report.host) has a guest \(uuid) whose server \(instance == nil ? "does not exist" : instance?.deletedAt != nil ? "was deleted" : "is on \(instance?.host ?? "no host")"): destroying it")
                try await self.send(.cleanup, to: report.host, instance: uuid, payload: ["reconcile": true], x)
                sent = true
            }
            return sent
        }
    }

    /// Whether a guest of `instance` belongs on `host`: the server lives there, or is in the
    /// middle of something (a move's other end keeps its guest until the move ends), or was
    /// resized away from there and not yet confirmed (the source keeps its guest for a revert).
    static func expected(_ instance: Instance?, on host: String) -> Bool {
        guard let instance, instance.deletedAt == nil else { return false }
        if instance.host == host || instance.taskState != nil { return true }
        return instance.vmState == .resized && instance.extra["resize_source"]?.stringValue == host
    }
}
