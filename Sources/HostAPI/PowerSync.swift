import Foundation
import NimbusCore

/// What a host's agent tells the controller about its guests' power states, as Nova's compute
/// does in `_sync_power_states` (periodically, every guest) and on a hypervisor's lifecycle
/// event (one guest). The controller compares it with what it expects and corrects the
/// servers: a server that should run whose guest shut down is stopped, as if the stop API
/// was called; a server in a task is left alone.
///
/// Every state in it was read while the agent was doing nothing else for that guest, and the
/// report was delivered before the agent went back to work on it, so no state in it is older
/// than the last change the agent made (see `ComputeAgent+PowerSync.swift`).
public struct PowerStateReport: Sendable, Equatable {
    public var host: String
    /// The guests the hypervisor has, with their power states.
    public var guests: [String: PowerState]
    /// Guests the agent was busy with (a message under way), so not read: left alone.
    public var busy: Set<String>
    /// Whether `guests` lists every guest on the host (a periodic sync), so that a server of
    /// this host missing from it has no guest at all; false for one guest's event.
    public var complete: Bool
    /// The first complete report since the agent started: guests the controller does not
    /// expect on this host (their server deleted, or moved elsewhere) are destroyed.
    public var reconcile: Bool

    public init(host: String, guests: [String: PowerState], busy: Set<String> = [], complete: Bool, reconcile: Bool = false) {
        (self.host, self.guests, self.busy, self.complete, self.reconcile) = (host, guests, busy, complete, reconcile)
    }

    public var json: JSON {
        ["host": .string(host), "guests": .object(guests.mapValues { .int($0.rawValue) }), "busy": .array(busy.sorted().map { .string($0) }),
         "complete": .bool(complete), "reconcile": .bool(reconcile)]
    }

    /// Nil for anything malformed: an unknown power state, a guest that is not a string.
    public init?(json: JSON) {
        guard let host = json["host"]?.stringValue, let listed = json["guests"]?.objectValue else { return nil }
        var guests: [String: PowerState] = [:]
        for (uuid, value) in listed {
            guard let state = value.intValue.flatMap(PowerState.init(rawValue:)) else { return nil }
            guests[uuid] = state
        }
        let busy = json["busy"]?.arrayValue ?? []
        guard busy.allSatisfy({ $0.stringValue != nil }) else { return nil }
        self.init(host: host, guests: guests, busy: Set(busy.compactMap(\.stringValue)), complete: json["complete"]?.boolValue ?? false,
                  reconcile: json["reconcile"]?.boolValue ?? false)
    }
}
