import Foundation
import Synchronization

/// A driver that notices when a guest's state changes outside any call the agent made — the
/// guest powered itself off, its hypervisor process was killed — as libvirt's lifecycle events
/// tell Nova's compute. Without it the agent learns of such changes only from its periodic
/// power-state sync.
public protocol LifecycleEventDriver: VirtDriver {
    /// A stream of the uuids of guests whose state may have changed by itself, from now on
    /// (a guest may appear more than once, and changes the agent itself caused may appear
    /// too). An event only says "look at this guest": the agent reads the guest's power state
    /// afterwards rather than trusting the event, which can arrive late. One consumer at a
    /// time: a new call ends the stream an earlier call returned (a restarted agent takes
    /// over from the old one).
    func guestEvents() -> AsyncStream<String>
}

/// The plumbing of `guestEvents()`: the current consumer's stream, and sending to it. Events
/// sent while nobody listens are dropped (an agent that starts syncs every guest anyway).
public final class GuestEventChannel: Sendable {
    private let consumer = Mutex<AsyncStream<String>.Continuation?>(nil)

    public init() {}

    public func stream() -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(1024))
        let previous = consumer.withLock { current in
            defer { current = continuation }
            return current
        }
        previous?.finish()
        return stream
    }

    public func send(_ uuid: String) {
        _ = consumer.withLock { $0 }?.yield(uuid)
    }
}
