import Foundation
@testable import HostAgent
import XCTest

/// What keeps a power-state sync from reporting a state a message is changing.
final class GuestLocksTests: XCTestCase {
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

        // While the report is sent no message starts, and no event sync either.
        XCTAssertFalse(locks.tryLock("other"))
        let started = Task { await locks.lock("waits-for-the-report") }
        try await Task.sleep(for: .milliseconds(100))
        locks.thaw()
        await started.value
        XCTAssertFalse(locks.tryLock("waits-for-the-report"), "the message holds its guest after the thaw")
        XCTAssertTrue(locks.tryLock("other"))
        // Not observing any more: nothing is noted.
        XCTAssertEqual(locks.startObserving(), ["held-throughout", "waits-for-the-report", "other"])
        XCTAssertEqual(locks.stopObserving(), [])
    }

    func testMessagesForOneGuestTakeTurnsInOrder() async throws {
        let locks = GuestLocks()
        await locks.lock("g")
        let order = OrderLog()
        let second = Task { await locks.lock("g"); await order.append(2); locks.unlock("g") }
        try await Task.sleep(for: .milliseconds(50))
        let third = Task { await locks.lock("g"); await order.append(3); locks.unlock("g") }
        try await Task.sleep(for: .milliseconds(50))
        await order.append(1)
        locks.unlock("g")
        await second.value
        await third.value
        let seen = await order.entries
        XCTAssertEqual(seen, [1, 2, 3])
        XCTAssertTrue(locks.tryLock("g"))
    }
}

actor OrderLog {
    var entries: [Int] = []
    func append(_ value: Int) { entries.append(value) }
}
