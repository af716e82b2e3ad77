import Foundation
@testable import HostAgent
import HostAPI
import Logging
@testable import Compute
import NimbusCore
import NimbusServer
import NimbusStore
import NimbusTestSupport
import Virt
import XCTest

/// The outbox between the conductor and the hosts' agents: every message is delivered
/// however the transactions that wrote it commit, a synchronous call gets its own answer, and
/// an agent works on different instances at once while keeping each one's messages in order.
final class AgentMessagingTests: XCTestCase {
    /// A cloud on PostgreSQL, whose transactions commit in any order (SQLite has one writer,
    /// so ids commit in order there and these races cannot happen).
    func onPostgres(settings: [String: [String: String]], _ body: @Sendable (TestCloud, NimbusControlPlane, API) async throws -> Void) async throws {
        guard TestCloud.postgresURL != nil else { throw XCTSkip("needs NIMBUS_TEST_POSTGRES_URL: the race is PostgreSQL's") }
        var cloud = try await TestCloud.make(.postgres)
        cloud.settings = settings
        let configured = cloud
        try await configured.run { plane, api in try await body(configured, plane, api) }
    }

    /// Two servers of one flavor on the only host, ACTIVE: their ids and the host.
    static func twoServers(_ api: API, admin: String, names: (String, String) = ("first", "second")) async throws -> (String, String, String) {
        let (image, flavor) = try await Compute.bootables(api, admin: admin)
        var ids: [String] = []
        for name in [names.0, names.1] {
            let booted = try await Compute.boot(api, token: admin, image: image, flavor: flavor, name: name)
            ids.append(try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text))
        }
        var host = ""
        for id in ids { host = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")["OS-EXT-SRV-ATTR:host"]?.stringValue ?? "" }
        return (ids[0], ids[1], host)
    }

    /// Polls `condition` every 10 ms for up to `seconds`; true once it holds.
    static func eventually(_ seconds: Double = 10, _ condition: @Sendable () async throws -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return try await condition()
    }

    // MARK: Delivery

    /// A message whose transaction took its id first but committed after a later message was
    /// fetched (PostgreSQL hands out ids at insert; commits land in any order) is still
    /// delivered. An agent that asked only for ids above the last it saw skipped it for good.
    func testAMessageCommittedAfterALaterOneIsStillDelivered() async throws {
        try await onPostgres(settings: Compute.fakeHosts(1)) { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let (late, early, host) = try await Self.twoServers(api, admin: admin)
            let conductor = plane.compute.conductor
            let inserted = Gate(), release = Gate()
            // Takes the lower id, then holds its transaction open.
            let holder = Task {
                try await plane.db.transaction { x in
                    try await conductor.send(.stop, to: host, instance: late, payload: ["vm_state": "stopped"], x)
                    await inserted.open()
                    await release.wait()
                }
                await conductor.wake(host)
            }
            await inserted.wait()
            // A higher id commits, and the agent fetches and finishes it.
            let stop = try await Compute.action(api, early, token: admin, ["os-stop": .null])
            XCTAssertEqual(stop.status, 202, stop.text)
            _ = try await Compute.waitFor(api, early, token: admin, status: "SHUTOFF")
            await release.open()
            try await holder.value
            let delivered = try await Self.eventually {
                try await Compute.call(api, .get, "/servers/\(late)", token: admin).json["server"]?["status"]?.stringValue == "SHUTOFF"
            }
            XCTAssertTrue(delivered, "the message that committed late was never delivered")
            let left = try await plane.db.query("SELECT id FROM compute_message", [])
            XCTAssertTrue(left.isEmpty, "unacknowledged: \(left.map { $0.int("id") })")
        }
    }

    /// Concurrent synchronous calls to one host each get the answer to their own message.
    /// The first caller's insert is held back (a trigger sleeps on its row) while a second
    /// caller's message commits, so a caller that looked its message up as the highest id
    /// would wait for the other's.
    func testConcurrentCallsToOneHostEachGetTheirOwnAnswer() async throws {
        try await onPostgres(settings: Compute.fakeHosts(1)) { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let (first, second, host) = try await Self.twoServers(api, admin: admin)
            try await plane.db.execute("""
                CREATE FUNCTION nimbus_test_stall() RETURNS trigger AS $$
                BEGIN
                    IF NEW.instance_uuid = '\(first)' THEN PERFORM pg_sleep(0.5); END IF;
                    RETURN NEW;
                END $$ LANGUAGE plpgsql
                """, [])
            try await plane.db.execute("CREATE TRIGGER nimbus_test_stall AFTER INSERT ON compute_message FOR EACH ROW EXECUTE FUNCTION nimbus_test_stall()", [])
            let conductor = plane.compute.conductor
            let firstCall = Task { try await conductor.call(.console, host: host, instance: first, payload: [:], timeout: .seconds(5)) }
            try await Task.sleep(for: .milliseconds(150))
            let secondCall = Task { try await conductor.call(.console, host: host, instance: second, payload: [:], timeout: .seconds(5)) }
            let secondOutput = try await secondCall.value.output["output"]?.stringValue ?? ""
            XCTAssertTrue(secondOutput.contains("booting second"), secondOutput)
            let firstOutput = try await firstCall.value.output["output"]?.stringValue ?? ""
            XCTAssertTrue(firstOutput.contains("booting first"), firstOutput)
            // Many at once, on every server: each answer is its own.
            let outputs = try await withThrowingTaskGroup(of: (String, String).self) { group in
                for i in 0..<20 {
                    let id = i % 2 == 0 ? first : second
                    group.addTask { (id, try await conductor.call(.console, host: host, instance: id, payload: [:], timeout: .seconds(10)).output["output"]?.stringValue ?? "") }
                }
                return try await group.reduce(into: [(String, String)]()) { $0.append($1) }
            }
            for (id, output) in outputs { XCTAssertTrue(output.contains(id == first ? "booting first" : "booting second"), output) }
        }
    }

    /// A kind this agent does not know (a newer controller's) is answered with an error
    /// report, which acknowledges it, and the agent goes on working.
    func testAnUnknownKindIsAnsweredWithAnErrorReport() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let (id, host) = try await Compute.activeServer(api, admin: admin)
            let hostName = try XCTUnwrap(host)
            try await plane.db.execute("INSERT INTO compute_message (host, kind, instance_uuid, payload, created_at) VALUES (?, 'frobnicate', ?, '{}', 0)",
                                       [.text(hostName), .text(id)])
            await plane.compute.conductor.wake(hostName)
            let answered = try await Self.eventually { try await plane.db.query("SELECT id FROM compute_message", []).isEmpty }
            XCTAssertTrue(answered, "the unknown message was never acknowledged")
            let stop = try await Compute.action(api, id, token: admin, ["os-stop": .null])
            XCTAssertEqual(stop.status, 202, stop.text)
            _ = try await Compute.waitFor(api, id, token: admin, status: "SHUTOFF")
        }

        // As it arrives over HTTP: readable, and answered with an error naming the kind.
        let message = try XCTUnwrap(AgentMessage(json: ["id": 7, "kind": "frobnicate", "instance_uuid": "u-1", "payload": [:]]))
        XCTAssertNil(message.kind)
        XCTAssertEqual(message.kindName, "frobnicate")
        let agent = ComputeAgent(host: "h", driver: FakeDriver(), link: NoLink(), images: NoImages(), logger: Logger(label: "h"))
        let report = await agent.perform(message)
        XCTAssertEqual(report.messageID, 7)
        XCTAssertTrue(report.error?.contains("frobnicate") ?? false, report.error ?? "no error")
    }

    /// Every kind travels by its name and comes back as the same kind; the names are the
    /// outbox's (snake case), so rows written before the kinds were typed still read.
    func testMessageKindsTravelByName() throws {
        for kind in AgentMessage.Kind.allCases {
            let sent = AgentMessage(id: 1, kind: kind, instanceUUID: nil, payload: [:])
            let received = try XCTUnwrap(AgentMessage(json: JSON.parse(sent.json.serialized())))
            XCTAssertEqual(received.kind, kind)
            XCTAssertTrue(kind.rawValue.allSatisfy { $0.isLowercase || $0 == "_" }, kind.rawValue)
        }
        let keyed = AgentMessage(id: 2, kind: .stop, instanceUUID: "u-1", orderingKey: "volume:v-1", payload: [:])
        XCTAssertEqual(AgentMessage(json: keyed.json)?.orderingKey, "volume:v-1")
        XCTAssertEqual(AgentMessage(json: ["id": 3, "kind": "stop", "instance_uuid": "u-2"])?.orderingKey, "instance:u-2",
                       "without a key a message is ordered with its instance's")
        XCTAssertEqual(AgentMessage(json: ["id": 4, "kind": "stop"])?.orderingKey, AgentMessage.hostOrderingKey)
        XCTAssertEqual(AgentMessage.Kind(rawValue: "live_migration_prepare"), .liveMigrationPrepare)
        XCTAssertEqual(AgentMessage.Kind(rawValue: "get_vnc_console"), .getVNCConsole)
    }

    // MARK: Concurrency on one host

    /// Fake hosts run by the test itself, so it can reach their drivers.
    static func runHosts(_ drivers: [String: FakeDriver], _ plane: NimbusControlPlane, _ api: API, admin: String) async throws -> Task<Void, Never> {
        let agents = drivers.map { name, driver in
            ComputeAgent(host: name, driver: driver, link: LocalAgentLink(conductor: plane.compute.conductor), images: NoImages(),
                         heartbeatInterval: .seconds(1), logger: Logger(label: name))
        }
        let running = Task {
            await withTaskGroup(of: Void.self) { group in
                for agent in agents { group.addTask { await agent.run() } }
            }
        }
        let registered = try await eventually {
            try await Compute.call(api, .get, "/os-hypervisors", token: admin).json["hypervisors"]?.arrayValue?.count == drivers.count
        }
        XCTAssertTrue(registered, "the hosts did not register")
        return running
    }

    /// On one host, a guest's boot completes while another guest's live migration out of
    /// that host is still running (an agent that worked one message at a time made the boot
    /// wait for the migration).
    func testABootIsNotHeldUpByALiveMigrationOnTheSameHost() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(0)) { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let (source, destination) = (FakeDriver(), FakeDriver())
            source.slowDown("migrate", by: .seconds(3))
            let hosts = try await Self.runHosts(["h1": source, "h2": destination], plane, api, admin: admin)
            defer { hosts.cancel() }
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let bootedMoving = try await Compute.boot(api, token: admin, image: image, flavor: flavor, name: "moving",
                                                      extra: ["availability_zone": "nova:h1"])
            let moving = try XCTUnwrap(bootedMoving.json["server"]?["id"]?.stringValue, bootedMoving.text)
            _ = try await Compute.waitFor(api, moving, token: admin, status: "ACTIVE")

            let started = ContinuousClock.now
            let migrate = try await Compute.action(api, moving, token: admin, ["os-migrateLive": ["host": "h2", "block_migration": false]])
            XCTAssertEqual(migrate.status, 202, migrate.text)
            let sending = try await Self.eventually { source.underWay("migrate") == 1 }
            XCTAssertTrue(sending, "the source never started sending")
            let booted = try await Compute.boot(api, token: admin, image: image, flavor: flavor, name: "booting", extra: ["availability_zone": "nova:h1"])
            let booting = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)

            async let bootDone: Duration = {
                let server = try await Compute.waitFor(api, booting, token: admin, status: "ACTIVE")
                XCTAssertEqual(server["OS-EXT-SRV-ATTR:host"]?.stringValue, "h1")
                return ContinuousClock.now - started
            }()
            async let migrationDone: Duration = {
                let arrived = try await Self.eventually(30) {
                    let server = try await Compute.call(api, .get, "/servers/\(moving)", token: admin).json["server"]
                    return server?["OS-EXT-SRV-ATTR:host"]?.stringValue == "h2" && server?["OS-EXT-STS:task_state"] == .null
                }
                XCTAssertTrue(arrived, "the live migration did not finish")
                return ContinuousClock.now - started
            }()
            let (boot, migration) = try await (bootDone, migrationDone)
            XCTAssertLessThan(boot, migration, "the boot waited for the live migration (boot \(boot), migration \(migration))")
            XCTAssertGreaterThanOrEqual(migration, .seconds(3))
        }
    }

    /// Messages for one instance run one after another in the order they were sent, even
    /// when the first is slow, while another instance's message runs beside them.
    func testOneInstancesMessagesRunInOrderWhileAnothersRunBeside() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(0)) { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let driver = FakeDriver()
            let hosts = try await Self.runHosts(["h1": driver], plane, api, admin: admin)
            defer { hosts.cancel() }
            let (slow, quick, host) = try await Self.twoServers(api, admin: admin, names: ("slow", "quick"))
            XCTAssertEqual(host, "h1")
            driver.slowDown("powerOff", by: .seconds(2))
            let conductor = plane.compute.conductor
            try await plane.db.transaction { x in
                try await conductor.send(.stop, to: host, instance: slow, payload: [:], x)
                try await conductor.send(.start, to: host, instance: slow, payload: [:], x)
                try await conductor.send(.reboot, to: host, instance: quick, payload: [:], x)
            }
            await conductor.wake(host)

            let rebooted = try await Self.eventually(5) { try await driver.consoleOutput(quick, lines: nil).contains("rebooted") }
            XCTAssertTrue(rebooted)
            XCTAssertEqual(driver.underWay("powerOff"), 1, "the other guest's reboot waited for this guest's stop")
            let started = try await Self.eventually(10) { try await driver.consoleOutput(slow, lines: nil).contains("powered on") }
            XCTAssertTrue(started)
            let console = try await driver.consoleOutput(slow, lines: nil).components(separatedBy: "\n")
            let (off, on) = (console.firstIndex(of: "[fake] powered off"), console.firstIndex(of: "[fake] powered on"))
            XCTAssertNotNil(off, console.joined(separator: "|"))
            XCTAssertLessThan(off ?? .max, on ?? -1, "stop and start ran out of order: \(console)")
            let state = try await driver.powerState(of: slow)
            XCTAssertEqual(state, .running)
        }
    }
}

extension AgentMessagingTests {
    /// The order follows the key the sender gives, not the instance: two guests' messages
    /// sent with one key (as work on one shared volume or port would be) run one after the
    /// other, while a third guest's message, keyed by its instance, runs beside them.
    func testMessagesSharingAKeyRunInOrderWhateverTheirInstance() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(0)) { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let driver = FakeDriver()
            let hosts = try await Self.runHosts(["h1": driver], plane, api, admin: admin)
            defer { hosts.cancel() }
            let (first, second, host) = try await Self.twoServers(api, admin: admin, names: ("first", "second"))
            let (image, flavor) = try await Compute.bootables(api, admin: admin, ram: 256)  // a flavor of its own name
            let booted = try await Compute.boot(api, token: admin, image: image, flavor: flavor, name: "third")
            let third = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)
            _ = try await Compute.waitFor(api, third, token: admin, status: "ACTIVE")
            driver.slowDown("powerOff", by: .seconds(2))
            let conductor = plane.compute.conductor
            try await plane.db.transaction { x in
                try await conductor.send(.stop, to: host, instance: first, orderingKey: "volume:shared", payload: [:], x)
                try await conductor.send(.reboot, to: host, instance: second, orderingKey: "volume:shared", payload: [:], x)
                try await conductor.send(.reboot, to: host, instance: third, payload: [:], x)
            }
            await conductor.wake(host)

            let thirdDone = try await Self.eventually(5) { try await driver.consoleOutput(third, lines: nil).contains("rebooted") }
            XCTAssertTrue(thirdDone)
            XCTAssertEqual(driver.underWay("powerOff"), 1, "the third guest's reboot waited for another key's stop")
            let secondRebootedEarly = try await driver.consoleOutput(second, lines: nil).contains("rebooted")
            XCTAssertFalse(secondRebootedEarly, "the second guest's reboot overtook the stop it was keyed behind")
            let secondDone = try await Self.eventually(10) { try await driver.consoleOutput(second, lines: nil).contains("rebooted") }
            XCTAssertTrue(secondDone)
            let stopped = try await driver.powerState(of: first)
            XCTAssertEqual(stopped, .shutdown)
        }
    }
}

/// An agent link for agents that are only asked to perform, never run.
struct NoLink: AgentLink {
    func register(_ registration: AgentRegistration) async throws {}
    func heartbeat(host: String) async throws {}
    func fetch(host: String, excluding: Set<Int64>, wait: Duration) async throws -> [AgentMessage] { [] }
    func report(_ report: AgentReport) async throws {}
    func syncPowerStates(_ report: PowerStateReport) async throws {}
}

/// Opens once; every wait before or after returns when it is open.
actor Gate {
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func open() {
        isOpen = true
        for waiter in waiters { waiter.resume() }
        waiters = []
    }

    func wait() async {
        if isOpen { return }
        await withCheckedContinuation { waiters.append($0) }
    }
}
