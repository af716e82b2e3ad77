import Foundation
@testable import HostAgent
import XCTest

/// What keeps a power-state sync from reporting a state a message is changing.
final class GuestLocksTests: XCTestCase {
    /// Takes `uuid` in a task of its own; the log shows when it got it.
    func taker(_ locks: GuestLocks, _ uuid: String, _ log: OrderLog) -> Task<Void, Never> {
        Task {
            await locks.lock(uuid)
            await log.append(uuid)
        }
    }

    func testASyncNamesBusyEveryGuestAMessageHeldOrTookWhileItRead() async throws {
        let locks = GuestLocks()
        await locks.lock("held-throughout")
        await locks.lock("done-during-the-read")
        let heldBefore = locks.startObserving()
        XCTAssertEqual(heldBefore, ["held-throughout", "done-during-the-read"])
        locks.unlock("done-during-the-read")
        await locks.lock("came-and-went")
        locks.unlock("came-and-went")
        let busy = heldBefore.union(locks.freeze())
        XCTAssertEqual(busy, ["held-throughout", "done-during-the-read", "came-and-went"])

        // While the report is sent no message starts, nor an event's sync.
        let log = OrderLog()
        let waiting = taker(locks, "free", log)
        try await Task.sleep(for: .milliseconds(100))
        let duringFreeze = await log.entries
        XCTAssertEqual(duringFreeze, [])
        locks.thaw()
        await waiting.value
        let afterThaw = await log.entries
        XCTAssertEqual(afterThaw, ["free"])
        // Not observing any more: nothing is noted.
        XCTAssertEqual(locks.startObserving(), ["held-throughout", "free"])
        XCTAssertEqual(locks.stopObserving(), [])
    }

    func testMessagesForOneGuestTakeTurnsInOrderAndOthersGoAhead() async throws {
        let locks = GuestLocks()
        await locks.lock("g")
        let log = OrderLog()
        let second = Task { await locks.lock("g"); await log.append("g second"); locks.unlock("g") }
        try await Task.sleep(for: .milliseconds(50))
        let third = Task { await locks.lock("g"); await log.append("g third"); locks.unlock("g") }
        try await Task.sleep(for: .milliseconds(50))
        await taker(locks, "other", log).value
        await log.append("g first")
        locks.unlock("g")
        await second.value
        await third.value
        let seen = await log.entries
        XCTAssertEqual(seen, ["other", "g first", "g second", "g third"])
    }
}

actor OrderLog {
    var entries: [String] = []
    func append(_ value: String) { entries.append(value) }
}
