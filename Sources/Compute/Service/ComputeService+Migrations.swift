import Foundation
import NimbusCore

/// `GET /os-migrations` and `GET /servers/{id}/migrations[/{id}]`: the moves of servers, as
/// operators list them (`openstack server migration list`).
extension ComputeService {
    /// Every migration record, newest first, filtered as Nova filters them (`host` matches
    /// either end), paged from 2.59 by `limit` and `marker` (a migration's uuid).
    public func migrations(_ query: [String: String], version: Microversion, base: String, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-migrations:index", caller)
        var list = try await store.migrations(db)
        let changesSince = try query["changes-since"].map { try Self.time($0, "changes-since") }
        let changesBefore = version >= Microversion(2, 66) ? try query["changes-before"].map { try Self.time($0, "changes-before") } : nil
        list = list.filter { m in
            if let status = query["status"], m.status != status { return false }
            if let host = query["host"], m.sourceCompute != host && m.destCompute != host { return false }
            if let source = query["source_compute"], m.sourceCompute != source { return false }
            if let instance = query["instance_uuid"], m.instanceUUID != instance { return false }
            if let type = query["migration_type"], m.kind.rawValue != type { return false }
            if let since = changesSince, m.updatedAt < since { return false }
            if let before = changesBefore, m.updatedAt > before { return false }
            if version >= Microversion(2, 80) {
                if let user = query["user_id"], m.userID != user { return false }
                if let project = query["project_id"], m.projectID != project { return false }
            }
            return true
        }
        var out: [String: JSON] = [:]
        if version >= Microversion(2, 59) {
            let limit = try Paging.limit(query)
            let rest = try Paging.afterMarker(list, query: query, id: \.uuid, markerNotFound: { "Marker \($0) could not be found." })
            list = Array(rest.prefix(limit))
            if query["limit"] != nil, rest.count > limit, let last = list.last {
                out["migrations_links"] = [["rel": "next", "href": .string("\(base)/v2.1/os-migrations?limit=\(limit)&marker=\(last.uuid)")]]
            }
        }
        out["migrations"] = .array(list.map { $0.json(version, base: base) })
        return .object(out)
    }

    /// The server's in-progress live migrations (2.23+), admin-only as in Nova.
    public func serverMigrations(_ uuid: String, version: Microversion, caller: AuthContext) async throws -> JSON {
        let instance = try await visibleInstance(uuid, caller: caller)
        try authorize("os_compute_api:servers:migrations:index", caller, project: instance.projectID)
        let live = try await store.migrations(instance: uuid, db).filter(\.isInProgressLiveMigration)
        return ["migrations": .array(live.map { $0.serverJSON(version) })]
    }

    public func serverMigration(_ uuid: String, id: String, version: Microversion, caller: AuthContext) async throws -> JSON {
        let instance = try await visibleInstance(uuid, caller: caller)
        try authorize("os_compute_api:servers:migrations:show", caller, project: instance.projectID)
        guard let found = try await store.migrations(instance: uuid, db).first(where: { String($0.id) == id }) else {
            throw APIError.notFound("Migration \(id) for instance \(uuid) could not be found.")
        }
        guard found.isInProgressLiveMigration else {
            throw APIError.notFound("Migration \(id) for instance \(uuid) is not a live migration in progress.")
        }
        return ["migration": found.serverJSON(version)]
    }
}
