import Foundation
import HTTPTypes
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
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let booted = try await Compute.boot(api, token: admin, image: image, flavor: flavor, extra: ["networks": "none"])
            let id = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)
            let active = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
            let host = active["OS-EXT-SRV-ATTR:host"]?.stringValue
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
}
