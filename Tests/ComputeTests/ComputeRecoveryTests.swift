import Foundation
import HostAPI
import Virt
import HTTPTypes
@testable import Compute
import NimbusCore
import NimbusStore
import NimbusTestSupport
import XCTest

/// What a restarted conductor does with work it was carrying in memory when it stopped.
final class ComputeRecoveryTests: XCTestCase {
    /// Leaves the server as the API left it when the conductor died right after accepting an
    /// action: its task state committed, nothing sent to any agent.
    static func interrupt(_ db: any Database, _ id: String, task: String) async throws {
        try await db.execute("UPDATE compute_instance SET task_state = ? WHERE uuid = ?", [.text(task), .text(id)])
        try await db.execute("DELETE FROM compute_message WHERE instance_uuid = ?", [.text(id)])
    }

    func testAnInterruptedMoveIsAbandonedAndAnInterruptedUnshelveResumed() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(2)) { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let (id, host) = try await Compute.activeServer(api, admin: admin)
            let before = try await plane.placement.allocations(consumer: id)
            XCTAssertFalse(before.isEmpty)

            // A cold migration accepted (task resize_prep, a migration record) but never scheduled.
            let migration = Identifiers.uuid()
            try await plane.db.execute("""
                INSERT INTO compute_migration (uuid, instance_uuid, migration_type, status, source_compute, user_id, project_id, created_at, updated_at)
                VALUES (?, ?, 'migration', 'pre-migrating', ?, 'u', 'p', 0, 0)
                """, [.text(migration), .text(id), .text(host ?? "")])
            try await Self.interrupt(plane.db, id, task: "resize_prep")
            try await plane.compute.conductor.resumeInterrupted()
            let settled = try await Compute.call(api, .get, "/servers/\(id)", token: admin)
            XCTAssertEqual(settled.json["server"]?["OS-EXT-STS:task_state"], .null, settled.text)
            XCTAssertEqual(settled.json["server"]?["status"], "ACTIVE")
            XCTAssertEqual(settled.json["server"]?["OS-EXT-SRV-ATTR:host"]?.stringValue, host)
            let after = try await plane.placement.allocations(consumer: id)
            XCTAssertEqual(after, before, "the server keeps its allocation")
            let records = try await Compute.call(api, .get, "/os-migrations?instance_uuid=\(id)", token: admin)
            XCTAssertEqual(records.json["migrations"]?.arrayValue?.first?["status"], "error", records.text)

            // Shelved and offloaded, then an unshelve accepted but never scheduled: it is resumed.
            _ = try await Compute.action(api, id, token: admin, ["shelve": .null])
            _ = try await Compute.waitFor(api, id, token: admin, status: "SHELVED_OFFLOADED")
            try await Self.interrupt(plane.db, id, task: "unshelving")
            try await plane.compute.conductor.resumeInterrupted()
            _ = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")

            // An evacuation accepted but never sent ends, keeping the server where it was.
            try await Self.interrupt(plane.db, id, task: "rebuilding")
            try await plane.compute.conductor.resumeInterrupted()
            let ended = try await Compute.call(api, .get, "/servers/\(id)", token: admin)
            XCTAssertEqual(ended.json["server"]?["OS-EXT-STS:task_state"], .null, ended.text)
            XCTAssertNotNil(ended.json["server"]?["OS-EXT-SRV-ATTR:host"]?.stringValue)
        }
    }

    func testAReturningHostLosesTheGuestsEvacuatedFromIt() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(2)) { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let (id, host) = try await Compute.activeServer(api, admin: admin)
            let source = try XCTUnwrap(host)
            let services = try await Compute.call(api, .get, "/os-services?binary=nova-compute&host=\(source)", token: admin)
            let service = try XCTUnwrap(services.json["services"]?.arrayValue?.first?["id"]?.stringValue, services.text)
            _ = try await Compute.call(api, .put, "/os-services/\(service)", token: admin, body: ["forced_down": true])
            _ = try await Compute.action(api, id, token: admin, ["evacuate": [:]])
            // From 2.95 an evacuated server arrives stopped.
            let moved = try await Compute.waitFor(api, id, token: admin, status: "SHUTOFF")
            XCTAssertNotEqual(moved["OS-EXT-SRV-ATTR:host"]?.stringValue, source)
            _ = try await Compute.call(api, .put, "/os-services/\(service)", token: admin, body: ["forced_down": false])

            // The source's agent starts again: its copy of the guest is cleaned up, the server is not.
            try await plane.compute.conductor.register(AgentRegistration(
                host: source, hostIP: "127.0.0.1",
                resources: HostResources(vcpus: 8, memoryMB: 16384, diskGB: 100, hypervisorType: "fake", hypervisorVersion: 1000),
                capabilities: DriverCapabilities()))
            let records = try await Compute.call(api, .get, "/os-migrations?migration_type=evacuation", token: admin)
            XCTAssertEqual(records.json["migrations"]?.arrayValue?.first?["status"], "completed", records.text)
            var left = 1
            let deadline = Date().addingTimeInterval(10)
            while left > 0 && Date() < deadline {
                left = Int(try await plane.db.first("SELECT COUNT(*) AS n FROM compute_message WHERE kind = 'cleanup'")?.int("n") ?? 0)
                if left > 0 { try await Task.sleep(nanoseconds: 20_000_000) }
            }
            XCTAssertEqual(left, 0, "the returning host's agent took the cleanup")
            let after = try await Compute.call(api, .get, "/servers/\(id)", token: admin)
            XCTAssertEqual(after.json["server"]?["status"], "SHUTOFF", after.text)
            XCTAssertEqual(after.json["server"]?["OS-EXT-SRV-ATTR:host"], moved["OS-EXT-SRV-ATTR:host"])
        }
    }

    /// The result of the first event of the server's latest action named `name`.
    static func eventResult(_ api: API, _ id: String, action name: String, token: String) async throws -> String? {
        let actions = try await Compute.call(api, .get, "/servers/\(id)/os-instance-actions", token: token).json["instanceActions"]?.arrayValue ?? []
        guard let request = actions.first(where: { $0["action"]?.stringValue == name })?["request_id"]?.stringValue else { return nil }
        let detail = try await Compute.call(api, .get, "/servers/\(id)/os-instance-actions/\(request)", token: token)
        return detail.json["instanceAction"]?["events"]?.arrayValue?.first?["result"]?.stringValue
    }

    /// Work that must follow a commit — releasing a deleted server's allocation, finishing a
    /// snapshot once the host uploaded it, dropping a confirmed migration's allocation — is
    /// done even when the process dies right after the commit: a fresh control plane on the
    /// same database completes it.
    func testWorkThatFollowsACommitIsDoneAfterADeathRightAfterTheCommit() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(2)) { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            var ids: [String] = []
            for name in ["deleted", "snapshotted", "migrated"] {
                let booted = try await Compute.boot(api, token: admin, image: image, flavor: flavor, name: name)
                ids.append(try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text))
            }
            for id in ids { _ = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE") }
            let (deleted, snapshotted, migrated) = (ids[0], ids[1], ids[2])
            let migrate = try await Compute.action(api, migrated, token: admin, ["migrate": .null])
            XCTAssertEqual(migrate.status, 202, migrate.text)
            _ = try await Compute.waitFor(api, migrated, token: admin, status: "VERIFY_RESIZE")
            let records = try await Compute.call(api, .get, "/os-migrations?instance_uuid=\(migrated)", token: admin, version: "2.80")
            let migration = try XCTUnwrap(records.json["migrations"]?.arrayValue?.first?["uuid"]?.stringValue, records.text)
            let held = try await plane.placement.allocations(consumer: migration)
            XCTAssertFalse(held.isEmpty)

            plane.compute.conductor.hooks.skipsFollowUps = true
            let delete = try await Compute.call(api, .delete, "/servers/\(deleted)", token: admin)
            XCTAssertEqual(delete.status, 204, delete.text)
            let snapshot = try await Compute.action(api, snapshotted, token: admin, ["createImage": ["name": "snap"]])
            XCTAssertEqual(snapshot.status, 202, snapshot.text)
            let imageID = try XCTUnwrap(snapshot.json["image_id"]?.stringValue, snapshot.text)
            let uploaded = try await AgentMessagingTests.eventually {
                try await api.call(.get, "/image/v2/images/\(imageID)", token: admin).json["status"]?.stringValue == "active"
            }
            XCTAssertTrue(uploaded)
            let confirm = try await Compute.action(api, migrated, token: admin, ["confirmResize": .null])
            XCTAssertEqual(confirm.status, 204, confirm.text)
            _ = try await Compute.waitFor(api, migrated, token: admin, status: "ACTIVE")
            // The reports are applied, their follow-ups never run.
            let acknowledged = try await AgentMessagingTests.eventually { try await plane.db.query("SELECT id FROM compute_message", []).isEmpty }
            XCTAssertTrue(acknowledged)
            let (stillDeleted, stillMigration) = (try await plane.placement.allocations(consumer: deleted),
                                                  try await plane.placement.allocations(consumer: migration))
            XCTAssertFalse(stillDeleted.isEmpty)
            XCTAssertFalse(stillMigration.isEmpty)

            // The process dies here: a fresh control plane starts on the same database.
            let fresh = try await cloud.start()
            let leftDeleted = try await fresh.placement.allocations(consumer: deleted)
            let leftMigration = try await fresh.placement.allocations(consumer: migration)
            let server = try await fresh.compute.conductor.store.instance(uuid: snapshotted, fresh.db)
            await fresh.close()
            XCTAssertTrue(leftDeleted.isEmpty, "the deleted server still holds \(leftDeleted)")
            XCTAssertTrue(leftMigration.isEmpty, "the confirmed migration still holds \(leftMigration)")
            XCTAssertNil(server?.taskState)
            let result = try await Self.eventResult(api, snapshotted, action: "createImage", token: admin)
            XCTAssertEqual(result, "Success", "the snapshot's action did not end as a success")
        }
    }

    /// A build that failed on its host is rescheduled to an alternate even when the process
    /// died right after the failure's report was applied: the fresh control plane does it.
    func testAFailedBuildIsRescheduledAfterADeathRightAfterItsReport() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(0)) { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            // More free memory makes h1 the scheduler's first choice (the RAM weigher), h2 the alternate.
            let (failing, working) = (FakeDriver(memoryMB: 65536), FakeDriver())
            failing.failSpawns(named: "unlucky")
            let hosts = try await AgentMessagingTests.runHosts(["h1": failing, "h2": working], plane, api, admin: admin)
            defer { hosts.cancel() }
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            plane.compute.conductor.hooks.skipsFollowUps = true
            let booted = try await Compute.boot(api, token: admin, image: image, flavor: flavor, name: "unlucky")
            let id = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)
            let failed = try await AgentMessagingTests.eventually {
                // The failure's report is applied (the build message acknowledged), the retry never started.
                // (The host and the build message are written together, so a host with no message left is one that answered.)
                let placed = try await plane.db.query("SELECT host FROM compute_instance WHERE uuid = ? AND host IS NOT NULL", [.text(id)])
                let outbox = try await plane.db.query("SELECT id FROM compute_message", [])
                return !placed.isEmpty && outbox.isEmpty
            }
            XCTAssertTrue(failed)
            let stuck = try await Compute.call(api, .get, "/servers/\(id)", token: admin).json["server"]
            let landed = stuck?["OS-EXT-SRV-ATTR:host"]?.stringValue
            XCTAssertEqual(stuck?["status"]?.stringValue, "BUILD")
            XCTAssertEqual(landed, "h1", "the build was to fail on h1 first")

            let fresh = try await cloud.start()
            // The fresh plane's build message goes to h2, whose agent polls the first plane.
            await plane.compute.conductor.wake("h2")
            let server = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
            await fresh.close()
            XCTAssertEqual(server["OS-EXT-SRV-ATTR:host"]?.stringValue, "h2")
        }
    }
}
