import Foundation
import NimbusStore

/// Migration records: written when a move is accepted, their status moved by the conductor.
extension ComputeStore {
    static func migration(_ r: Row) -> MigrationRecord {
        MigrationRecord(id: r.int("id"), uuid: r.string("uuid"), instanceUUID: r.string("instance_uuid"),
                        kind: MigrationRecord.Kind(rawValue: r.string("migration_type")) ?? .migration, status: r.string("status"),
                        sourceCompute: r.optionalString("source_compute"), sourceNode: r.optionalString("source_node"),
                        destCompute: r.optionalString("dest_compute"), destNode: r.optionalString("dest_node"), destHost: r.optionalString("dest_host"),
                        oldFlavorID: r.optionalString("old_flavor_id"), newFlavorID: r.optionalString("new_flavor_id"),
                        userID: r.string("user_id"), projectID: r.string("project_id"),
                        createdAt: Date(timeIntervalSince1970: r.double("created_at")), updatedAt: Date(timeIntervalSince1970: r.double("updated_at")))
    }

    /// Records a move of `instance` that has just been accepted.
    func insertMigration(uuid: String, instance: Instance, kind: MigrationRecord.Kind, status: String, newFlavor: Flavor?, _ x: any SQLExecutor) async throws {
        let now = Date().timeIntervalSince1970
        try await x.execute("""
            INSERT INTO compute_migration (uuid, instance_uuid, migration_type, status, source_compute, source_node, old_flavor_id, new_flavor_id,
                user_id, project_id, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [.text(uuid), .text(instance.uuid), .text(kind.rawValue), .text(status), instance.host.map { .text($0) } ?? .null,
                  instance.node.map { .text($0) } ?? .null, .text(instance.flavor.id), .text((newFlavor ?? instance.flavor).id),
                  .text(instance.userID), .text(instance.projectID), .real(now), .real(now)])
    }

    /// Moves the instance's latest migration to `status` (and, when given, its destination).
    func updateMigration(instance: String, status: String, destination: String? = nil, _ x: any SQLExecutor) async throws {
        var sets = "status = ?, updated_at = ?"
        var binds: [SQLValue] = [.text(status), .real(Date().timeIntervalSince1970)]
        if let destination {
            sets += ", dest_compute = ?, dest_node = ?, dest_host = ?"
            binds += [.text(destination), .text(destination), .text(destination)]
        }
        try await x.execute("""
            UPDATE compute_migration SET \(sets)
            WHERE id = (SELECT MAX(id) FROM compute_migration WHERE instance_uuid = ?)
            """, binds + [.text(instance)])
    }

    func migrations(instance: String? = nil, _ x: any SQLExecutor) async throws -> [MigrationRecord] {
        if let instance {
            return try await x.query("SELECT * FROM compute_migration WHERE instance_uuid = ? ORDER BY created_at DESC, id DESC", [.text(instance)])
                .map(Self.migration)
        }
        return try await x.query("SELECT * FROM compute_migration ORDER BY created_at DESC, id DESC", []).map(Self.migration)
    }
}
