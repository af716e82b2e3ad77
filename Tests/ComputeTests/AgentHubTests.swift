import Foundation
@testable import Compute
import XCTest

/// The long poll agents wait in for work.
final class AgentHubTests: XCTestCase {
    /// A wait that ended because work arrived leaves nothing behind that wakes the host
    /// again: an agent with nothing to do stays asleep until its deadline. (The wait's timer,
    /// cancelled, used to wake the host anyway, so the agent's next wait ended at once and
    /// left a timer of its own to do the same: the host polled its queue without pause.)
    func testAWakeDoesNotCutTheNextWaitShort() async throws {
        let hub = AgentHub()
        let host = "compute-1"
        let first = Task { await hub.wait(host, since: 0, until: ContinuousClock.now + .seconds(30)) }
        // The wait is registered once it has checked the generation; give it time.
        try await Task.sleep(for: .milliseconds(100))
        await hub.wake(host)
        await first.value
        try await Task.sleep(for: .milliseconds(200))
        let afterWake = await hub.generation(host)
        XCTAssertEqual(afterWake, 1, "one wake, and nothing after it")

        let started = ContinuousClock.now
        await hub.wait(host, since: afterWake, until: started + .milliseconds(400))
        let waited = ContinuousClock.now - started
        XCTAssertGreaterThanOrEqual(waited, .milliseconds(350), "the second wait ended early: something woke the host")
    }
}
