import Compute
import Foundation
import HostAgent
import HostAPI
import Logging
import NimbusCore
import NimbusServer
import NimbusTestSupport
import Virt
import XCTest

/// Power-state sync: guests that change outside the controller (they power themselves off,
/// their process is killed, their server was deleted while the host was down) are reported by
/// the host's agent, and the controller corrects its servers as Nova's `_sync_power_states` does.
final class PowerSyncTests: XCTestCase {
    /// Starts an agent for `driver` on `host` and waits until it has registered.
    static func startAgent(_ plane: NimbusControlPlane, host: String, driver: FakeDriver, syncEvery interval: Duration) async throws -> Task<Void, Never> {
        let agent = ComputeAgent(host: host, driver: driver, link: LocalAgentLink(conductor: plane.compute.conductor), images: NoImages(),
                                 heartbeatInterval: .seconds(1), powerSyncInterval: interval, logger: Logger(label: host))
        let running = Task { await agent.run() }
        let deadline = Date().addingTimeInterval(10)
        while try await plane.db.first("SELECT 1 AS found FROM compute_node WHERE host = ?", .text(host)) == nil {
            guard Date() < deadline else { throw AgentDidNotRegister(host: host) }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        return running
    }

    struct AgentDidNotRegister: Error { let host: String }

    /// `count` servers of one new image and flavor, each ACTIVE.
    static func activeServers(_ api: API, admin: String, count: Int) async throws -> [String] {
        let (image, flavor) = try await Compute.bootables(api, admin: admin)
        var ids: [String] = []
        for index in 0..<count {
            let booted = try await Compute.boot(api, token: admin, image: image, flavor: flavor, name: "vm-\(index)")
            ids.append(try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text))
        }
        for id in ids { _ = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE") }
        return ids
    }

    static func actions(_ api: API, _ id: String, token: String) async throws -> [JSON] {
        try await Compute.call(api, .get, "/servers/\(id)/os-instance-actions", token: token).json["instanceActions"]?.arrayValue ?? []
    }

    func testAGuestThatShutsDownByItselfMakesItsServerShutoffWithAStopAction() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(0)) { cloud, plane, api in
            let driver = FakeDriver()
            // The periodic sync is an hour off: what follows is the driver's lifecycle event.
            let running = try await Self.startAgent(plane, host: "sync-1", driver: driver, syncEvery: .seconds(3600))
            defer { running.cancel() }
            let admin = try await api.adminToken(cloud)
            let (id, _) = try await Compute.activeServer(api, admin: admin)
            let actionsBefore = try await Self.actions(api, id, token: admin)

            try driver.simulateShutdown(id)
            let server = try await Compute.waitFor(api, id, token: admin, status: "SHUTOFF")
            XCTAssertEqual(server["OS-EXT-STS:vm_state"], "stopped")
            XCTAssertEqual(server["OS-EXT-STS:power_state"], .int(PowerState.shutdown.rawValue))

            // Recorded as Nova's sync records it: the stop API's action, by no user.
            let actions = try await Self.actions(api, id, token: admin)
            XCTAssertEqual(actions.count, actionsBefore.count + 1)
            let stop = try XCTUnwrap(actions.first { $0["action"] == "stop" }, "\(actions)")
            XCTAssertEqual(stop["user_id"], .null)
            XCTAssertEqual(stop["project_id"], .null)
            let requestID = try XCTUnwrap(stop["request_id"]?.stringValue)
            XCTAssertTrue(requestID.hasPrefix("req-"), requestID)
            let detail = try await Compute.call(api, .get, "/servers/\(id)/os-instance-actions/\(requestID)", token: admin)
            let events = detail.json["instanceAction"]?["events"]?.arrayValue ?? []
            XCTAssertEqual(events.map { $0["event"] }, ["compute_stop_instance"], detail.text)
            XCTAssertEqual(events.first?["result"], "Success", detail.text)
            XCTAssertEqual(events.first?["host"], "sync-1", detail.text)

            // The owner starts it again: the same guest runs.
            let start = try await Compute.action(api, id, token: admin, ["os-start": .null])
            XCTAssertEqual(start.status, 202, start.text)
            _ = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
            let state = try await driver.powerState(of: id)
            XCTAssertEqual(state, .running)
        }
    }

    /// Nova skips a server with a task: an operation is under way and its own report settles
    /// the server. Without one, the periodic sync finds what no event said.
    func testThePeriodicSyncStopsWhatNoEventReportedAndLeavesAServerInATaskAlone() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(0)) { cloud, plane, api in
            let driver = FakeDriver()
            let running = try await Self.startAgent(plane, host: "sync-2", driver: driver, syncEvery: .seconds(1))
            defer { running.cancel() }
            let admin = try await api.adminToken(cloud)
            let servers = try await Self.activeServers(api, admin: admin, count: 2)
            let (busy, idle) = (servers[0], servers[1])
            let busyActions = try await Self.actions(api, busy, token: admin)

            // As the API leaves a server whose reboot was accepted and not yet reported.
            try await plane.db.execute("UPDATE compute_instance SET task_state = 'rebooting' WHERE uuid = ?", [.text(busy)])
            try driver.simulateShutdown(busy)
            try driver.simulateShutdown(idle, notify: false)
            // The idle one shows a periodic sync ran; the busy one was left as it was.
            _ = try await Compute.waitFor(api, idle, token: admin, status: "SHUTOFF")
            try await Task.sleep(for: .milliseconds(1500))
            let left = try await Compute.call(api, .get, "/servers/\(busy)", token: admin).json["server"] ?? .null
            XCTAssertEqual(left["OS-EXT-STS:vm_state"], "active", left.serialized())
            XCTAssertEqual(left["OS-EXT-STS:task_state"], "rebooting", left.serialized())
            XCTAssertEqual(left["OS-EXT-STS:power_state"], .int(PowerState.running.rawValue), "not even the power state is touched")
            let after = try await Self.actions(api, busy, token: admin)
            XCTAssertEqual(after.count, busyActions.count, "no stop was recorded")

            // The task ends: the next sync stops it.
            try await plane.db.execute("UPDATE compute_instance SET task_state = NULL WHERE uuid = ?", [.text(busy)])
            _ = try await Compute.waitFor(api, busy, token: admin, status: "SHUTOFF")
        }
    }

    /// A restarted agent reconciles its guests with what the controller expects: a guest whose
    /// server was deleted while the agent was down (and whose destroy was lost) and one the
    /// controller never made are destroyed; one that stopped meanwhile is shown SHUTOFF; the
    /// others are kept as they are.
    func testAStartingAgentDestroysTheGuestsTheControllerDoesNotExpect() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(0)) { cloud, plane, api in
            let driver = FakeDriver()
            let first = try await Self.startAgent(plane, host: "sync-3", driver: driver, syncEvery: .seconds(3600))
            let admin = try await api.adminToken(cloud)
            let servers = try await Self.activeServers(api, admin: admin, count: 3)
            let (kept, deleted, stopped) = (servers[0], servers[1], servers[2])
            first.cancel()
            await first.value

            // While the agent is down.
            let gone = try await Compute.call(api, .delete, "/servers/\(deleted)", token: admin)
            XCTAssertEqual(gone.status, 204, gone.text)
            try await plane.db.execute("DELETE FROM compute_message WHERE instance_uuid = ?", [.text(deleted)])
            try driver.simulateShutdown(stopped)
            let stray = Identifiers.uuid()
            try await driver.spawn(GuestSpec(uuid: stray, name: "stray", hostname: "stray", projectID: "p", vcpus: 1, memoryMB: 64, rootGB: 1,
                                             image: ImageRef(id: "none", diskFormat: "qcow2")))
            let before = try await driver.listGuests()
            XCTAssertEqual(Set(before.keys), [kept, deleted, stopped, stray])

            let second = try await Self.startAgent(plane, host: "sync-3", driver: driver, syncEvery: .seconds(3600))
            defer { second.cancel() }
            var guests = try await driver.listGuests()
            let deadline = Date().addingTimeInterval(10)
            while Set(guests.keys) != [kept, stopped] && Date() < deadline {
                try await Task.sleep(nanoseconds: 20_000_000)
                guests = try await driver.listGuests()
            }
            XCTAssertEqual(Set(guests.keys), [kept, stopped], "the deleted server's guest and the stray one are destroyed")
            _ = try await Compute.waitFor(api, stopped, token: admin, status: "SHUTOFF")
            let shown = try await Compute.call(api, .get, "/servers/\(kept)", token: admin).json["server"] ?? .null
            XCTAssertEqual(shown["status"], "ACTIVE", shown.serialized())
            XCTAssertEqual(guests[kept], .running)
        }
    }
}
