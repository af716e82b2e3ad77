import Foundation
import NimbusCore

/// One move of a server, as `os-migrations` lists it (Nova's Migration object).
public struct MigrationRecord: Sendable {
    public enum Kind: String, Sendable {
        case migration, resize, liveMigration = "live-migration", evacuation
    }

    public var id: Int64
    public var uuid: String
    public var instanceUUID: String
    public var kind: Kind
    public var status: String
    public var sourceCompute: String?
    public var sourceNode: String?
    public var destCompute: String?
    public var destNode: String?
    public var destHost: String?
    public var oldFlavorID: String?
    public var newFlavorID: String?
    public var userID: String
    public var projectID: String
    public var createdAt: Date
    public var updatedAt: Date

    /// Statuses of a move that has not ended, by kind (Nova's in-progress sets).
    static let inProgress: Set<String> = ["accepted", "queued", "preparing", "running", "pre-migrating", "migrating", "post-migrating"]

    var isInProgressLiveMigration: Bool { kind == .liveMigration && Self.inProgress.contains(status) }

    /// Nova shows flavor ids as integers; Nimbus' are strings, shown as numbers when they are.
    static func flavorJSON(_ id: String?) -> JSON { id.map { Int64($0).map(JSON.int) ?? .string($0) } ?? .null }

    /// `os-migrations`' view of a record at `version`.
    func json(_ version: Microversion, base: String) -> JSON {
        var out: [String: JSON] = [
            "id": .int(id), "instance_uuid": .string(instanceUUID), "status": .string(status),
            "source_compute": .optional(sourceCompute), "source_node": .optional(sourceNode), "dest_compute": .optional(destCompute),
            "dest_node": .optional(destNode), "dest_host": .optional(destHost),
            "old_instance_type_id": Self.flavorJSON(oldFlavorID), "new_instance_type_id": Self.flavorJSON(newFlavorID),
            "created_at": .string(Timestamps.novaTime(createdAt)), "updated_at": .string(Timestamps.novaTime(updatedAt)),
        ]
        if version >= Microversion(2, 23) {
            out["migration_type"] = .string(kind.rawValue)
            if isInProgressLiveMigration {
                out["links"] = [["rel": "self", "href": .string("\(base)/v2.1/servers/\(instanceUUID)/migrations/\(id)")],
                                ["rel": "bookmark", "href": .string("\(base)/servers/\(instanceUUID)/migrations/\(id)")]]
            }
        }
        if version >= Microversion(2, 59) { out["uuid"] = .string(uuid) }
        if version >= Microversion(2, 80) { out["user_id"] = .string(userID); out["project_id"] = .string(projectID) }
        return .object(out)
    }

    /// `GET /servers/{id}/migrations[/{migration}]`: an in-progress live migration.
    func serverJSON(_ version: Microversion) -> JSON {
        var out: [String: JSON] = [
            "id": .int(id), "server_uuid": .string(instanceUUID), "status": .string(status),
            "source_compute": .optional(sourceCompute), "source_node": .optional(sourceNode), "dest_compute": .optional(destCompute),
            "dest_node": .optional(destNode), "dest_host": .optional(destHost),
            "created_at": .string(Timestamps.novaTime(createdAt)), "updated_at": .string(Timestamps.novaTime(updatedAt)),
            // The fake driver moves no memory or disk; the QEMU driver will report real figures.
            "memory_total_bytes": 0, "memory_processed_bytes": 0, "memory_remaining_bytes": 0,
            "disk_total_bytes": 0, "disk_processed_bytes": 0, "disk_remaining_bytes": 0,
        ]
        if version >= Microversion(2, 59) { out["uuid"] = .string(uuid) }
        if version >= Microversion(2, 80) { out["user_id"] = .string(userID); out["project_id"] = .string(projectID) }
        return .object(out)
    }
}
