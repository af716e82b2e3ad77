import Foundation

/// A mutual-exclusion lock for async code: waiters suspend instead of blocking a thread.
/// Used to give a single SQLite connection to one task at a time, transactions included.
///
/// Taking a free lock does not suspend, and a released lock is free at once: the first waiter
/// is woken to try again rather than handed the lock. Handing it over kept the connection
/// idle until the waiter's turn on the cooperative thread pool came, so under load (fifty
/// requests in flight on two cores) every transaction first waited out the run queue while
/// holding the writer. A woken waiter that loses the race goes back to the front of the queue,
/// so it is not starved.
final class AsyncMutex: @unchecked Sendable {
    private let guardLock = NSLock()
    // Touched only under `guardLock`.
    private var locked = false
    private var waiters: [CheckedContinuation<Bool, Never>] = []

    func lock() async {
        if guardLock.withLock({ () -> Bool in
            if locked { return false }
            locked = true
            return true
        }) { return }
        var woken = false
        while true {
            // Resumed with true when the lock was free on arrival, false when woken to retry.
            let acquired = await withCheckedContinuation { (waiter: CheckedContinuation<Bool, Never>) in
                let free = guardLock.withLock { () -> Bool in
                    if !locked {
                        locked = true
                        return true
                    }
                    if woken { waiters.insert(waiter, at: 0) } else { waiters.append(waiter) }
                    return false
                }
                if free { waiter.resume(returning: true) }
            }
            if acquired { return }
            woken = true
        }
    }

    func unlock() {
        let next = guardLock.withLock { () -> CheckedContinuation<Bool, Never>? in
            locked = false
            return waiters.isEmpty ? nil : waiters.removeFirst()
        }
        next?.resume(returning: false)
    }

    func withLock<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
        await lock()
        defer { unlock() }
        return try await body()
    }
}
