import Foundation
import HostAPI
import NimbusCore
import Synchronization
import Virt

/// Power-state sync, as Nova's compute does it: the agent tells the controller what power
/// state each of its guests is in — all of them every `[compute] sync_power_state_interval`
/// (`_sync_power_states`), and one guest as soon as the driver notices it changed by itself
/// (libvirt's lifecycle events) — and the controller corrects its servers
/// (`Conductor+PowerSync.swift`). The first complete report after the agent starts also
/// reconciles: guests the controller does not expect here are destroyed.
///
/// A state is only worth reporting if no work of the agent changes the guest between reading
/// it and the controller applying it; otherwise a stale "shut down" read just before a start
/// would stop the server again. So a message holds its guest (`GuestLocks`) from before the
/// driver call until its report is applied, and:
/// - one guest's event is read and reported while holding that guest, once any message
///   working on it is done (so what is read is the guest as that message left it);
/// - a complete sync reads every guest without holding them (a hung QEMU must not hold up
///   other guests' work), notes every guest a message takes meanwhile, then stops messages
///   from starting while it sends its report, naming as busy every guest a message held or
///   took since the sync began. The controller leaves busy guests alone.
extension ComputeAgent {
    /// Runs until cancelled: lifecycle events as they come (each on its own, so one waiting
    /// for a long message on its guest holds up no other), and the periodic sync (whose first
    /// round reconciles; with an interval of zero or less only that first round runs, as Nova's
    /// `sync_power_state_interval` < 0 disables the periodic task).
    func syncPowerStates() async {
        await withDiscardingTaskGroup { group in
            if let events = (driver as? any LifecycleEventDriver)?.guestEvents() {
                group.addTask {
                    await withDiscardingTaskGroup { perEvent in
                        for await uuid in events { perEvent.addTask { await self.syncPowerState(of: uuid) } }
                    }
                }
            }
            group.addTask { await self.periodicPowerSync() }
        }
    }

    func periodicPowerSync() async {
        var reconciled = false
        while !Task.isCancelled {
            do {
                try await syncAllPowerStates(reconcile: !reconciled)
                reconciled = true
            } catch {
                if Task.isCancelled { return }
                logger.warning("agent \(host): power-state sync failed: \(error)")
            }
            if reconciled && powerSyncInterval <= .zero { return }
            // Until the reconciling round succeeds it is retried soon: a controller restart is routine.
            try? await Task.sleep(for: reconciled ? powerSyncInterval : .seconds(1))
        }
    }

    /// One guest, after the driver said it changed: its state once no message works on it.
    func syncPowerState(of uuid: String) async {
        await guestLocks.lock(uuid)
        defer { guestLocks.unlock(uuid) }
        let state: PowerState
        do {
            state = try await driver.powerState(of: uuid)
        } catch {
            // Gone (destroyed meanwhile) or unreadable: the periodic sync sees it as it is.
            return
        }
        do {
            try await link.syncPowerStates(PowerStateReport(host: host, guests: [uuid: state], complete: false))
        } catch {
            logger.warning("agent \(host): cannot report the power state of \(uuid): \(error)")
        }
    }

    /// Every guest on the host, reported at once.
    func syncAllPowerStates(reconcile: Bool) async throws {
        let heldBefore = guestLocks.startObserving()
        var guests: [String: PowerState]
        do {
            guests = try await driver.listGuests()
        } catch {
            _ = guestLocks.stopObserving()
            throw error
        }
        let busy = heldBefore.union(guestLocks.freeze())
        defer { guestLocks.thaw() }
        for uuid in busy { guests[uuid] = nil }
        try await link.syncPowerStates(PowerStateReport(host: host, guests: guests, busy: busy, complete: true, reconcile: reconcile))
    }
}

/// Which guests the agent's messages are working on (one message per guest at a time), so a
/// power-state sync does not report a state a message is changing. See `ComputeAgent+PowerSync`.
final class GuestLocks: Sendable {
    private struct State {
        var held: Set<String> = []
        /// Messages waiting for their guest (or for the freeze to end), in arrival order.
        var waiting: [(uuid: String, continuation: CheckedContinuation<Void, Never>)] = []
        /// While a complete sync sends its report, no message starts.
        var frozen = false
        /// While a complete sync reads the guests: every guest taken since it began.
        var observing = false
        var taken: Set<String> = []
    }

    private let state = Mutex(State())

    /// Takes the guest, waiting while another holds it or a sync has frozen the agent's work.
    func lock(_ uuid: String) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                guard !state.frozen, !state.held.contains(uuid) else {
                    state.waiting.append((uuid, continuation))
                    return false
                }
                Self.take(uuid, &state)
                return true
            }
            if now { continuation.resume() }
        }
    }

    func unlock(_ uuid: String) {
        let ready = state.withLock { state in
            state.held.remove(uuid)
            return Self.admit(&state)
        }
        for continuation in ready { continuation.resume() }
    }

    /// Starts noting the guests messages take; returns those held now.
    func startObserving() -> Set<String> {
        state.withLock { state in
            state.observing = true
            state.taken = []
            return state.held
        }
    }

    /// Stops noting; returns the guests taken since `startObserving`.
    func stopObserving() -> Set<String> {
        state.withLock { state in
            state.observing = false
            defer { state.taken = [] }
            return state.taken
        }
    }

    /// Stops observing and holds back every message until `thaw`; returns the guests held now
    /// or taken since `startObserving` (any of them may have changed since it was read).
    func freeze() -> Set<String> {
        state.withLock { state in
            state.frozen = true
            state.observing = false
            defer { state.taken = [] }
            return state.taken.union(state.held)
        }
    }

    func thaw() {
        let ready = state.withLock { state in
            state.frozen = false
            return Self.admit(&state)
        }
        for continuation in ready { continuation.resume() }
    }

    private static func take(_ uuid: String, _ state: inout State) {
        state.held.insert(uuid)
        if state.observing { state.taken.insert(uuid) }
    }

    /// The waiters that may go now: the first waiting for each free guest, in order.
    private static func admit(_ state: inout State) -> [CheckedContinuation<Void, Never>] {
        guard !state.frozen else { return [] }
        var ready: [CheckedContinuation<Void, Never>] = []
        var still: [(uuid: String, continuation: CheckedContinuation<Void, Never>)] = []
        for waiter in state.waiting {
            if state.held.contains(waiter.uuid) {
                still.append(waiter)
            } else {
                take(waiter.uuid, &state)
                ready.append(waiter.continuation)
            }
        }
        state.waiting = still
        return ready
    }
}
