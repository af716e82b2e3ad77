import Foundation
import NimbusCore
import NimbusStore

/// SQL for metadata definitions. Children hang on the namespace's internal id; a property's
/// schema and an object's body are JSON text, always read and written whole.
struct MetadefStore: Sendable {
    static let schema: [String] = [
        """
        CREATE TABLE image_metadef_namespace (
            id TEXT PRIMARY KEY, namespace TEXT NOT NULL UNIQUE, display_name TEXT, description TEXT,
            visibility TEXT NOT NULL, protected INTEGER NOT NULL DEFAULT 0, owner TEXT,
            created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
        """,
        """
        CREATE TABLE image_metadef_resource_type (
            name TEXT PRIMARY KEY, protected INTEGER NOT NULL DEFAULT 0,
            created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
        """,
        """
        CREATE TABLE image_metadef_association (
            namespace_id TEXT NOT NULL REFERENCES image_metadef_namespace(id) ON DELETE CASCADE,
            resource_type TEXT NOT NULL REFERENCES image_metadef_resource_type(name),
            prefix TEXT, properties_target TEXT,
            created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (namespace_id, resource_type))
        """,
        """
        CREATE TABLE image_metadef_property (
            namespace_id TEXT NOT NULL REFERENCES image_metadef_namespace(id) ON DELETE CASCADE, name TEXT NOT NULL,
            json_schema TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (namespace_id, name))
        """,
        """
        CREATE TABLE image_metadef_object (
            namespace_id TEXT NOT NULL REFERENCES image_metadef_namespace(id) ON DELETE CASCADE, name TEXT NOT NULL,
            description TEXT, required TEXT NOT NULL DEFAULT '[]', properties TEXT NOT NULL DEFAULT '{}',
            created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (namespace_id, name))
        """,
        // Tag names are unique without regard to case, as Glance's are.
        """
        CREATE TABLE image_metadef_tag (
            namespace_id TEXT NOT NULL REFERENCES image_metadef_namespace(id) ON DELETE CASCADE, name TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
        """,
        "CREATE UNIQUE INDEX image_metadef_tag_name ON image_metadef_tag (namespace_id, lower(name))",
        // Which versions of the built-in catalog were loaded, so that a namespace an operator
        // deleted does not come back at the next start.
        "CREATE TABLE image_metadef_seed (version BIGINT PRIMARY KEY, loaded_at DOUBLE PRECISION NOT NULL)",
    ]

    static func time(_ r: Row, _ column: String) -> Date { Date(timeIntervalSince1970: r.double(column)) }

    // MARK: Namespaces

    static func namespace(_ r: Row) -> MetadefNamespace {
        MetadefNamespace(id: r.string("id"), namespace: r.string("namespace"), displayName: r.optionalString("display_name"),
                         description: r.optionalString("description"), visibility: r.string("visibility"), protected: r.bool("protected"),
                         owner: r.optionalString("owner"), createdAt: time(r, "created_at"), updatedAt: time(r, "updated_at"))
    }

    func namespaces(_ x: any SQLExecutor) async throws -> [MetadefNamespace] {
        try await x.query("SELECT * FROM image_metadef_namespace", []).map(Self.namespace)
    }

    func namespace(named name: String, _ x: any SQLExecutor) async throws -> MetadefNamespace? {
        try await x.first("SELECT * FROM image_metadef_namespace WHERE namespace = ?", .text(name)).map(Self.namespace)
    }

    func insert(_ n: MetadefNamespace, _ x: any SQLExecutor) async throws {
        try await x.execute("""
            INSERT INTO image_metadef_namespace (id, namespace, display_name, description, visibility, protected, owner, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [.text(n.id), .text(n.namespace), .optional(n.displayName), .optional(n.description), .text(n.visibility),
                  .bool(n.protected), .optional(n.owner), .real(n.createdAt.timeIntervalSince1970), .real(n.updatedAt.timeIntervalSince1970)])
    }

    func update(_ n: MetadefNamespace, _ x: any SQLExecutor) async throws {
        try await x.execute("""
            UPDATE image_metadef_namespace SET namespace = ?, display_name = ?, description = ?, visibility = ?, protected = ?, owner = ?,
            updated_at = ? WHERE id = ?
            """, [.text(n.namespace), .optional(n.displayName), .optional(n.description), .text(n.visibility), .bool(n.protected),
                  .optional(n.owner), .real(n.updatedAt.timeIntervalSince1970), .text(n.id)])
    }

    /// Removes the namespace and everything in it.
    func delete(namespaceID: String, _ x: any SQLExecutor) async throws {
        for table in ["image_metadef_association", "image_metadef_property", "image_metadef_object", "image_metadef_tag"] {
            try await x.execute("DELETE FROM \(table) WHERE namespace_id = ?", [.text(namespaceID)])
        }
        try await x.execute("DELETE FROM image_metadef_namespace WHERE id = ?", [.text(namespaceID)])
    }

    // MARK: Resource types and associations

    func resourceTypes(_ x: any SQLExecutor) async throws -> [MetadefResourceType] {
        try await x.query("SELECT * FROM image_metadef_resource_type ORDER BY name", []).map { r in
            MetadefResourceType(name: r.string("name"), protected: r.bool("protected"), createdAt: Self.time(r, "created_at"),
                                updatedAt: Self.time(r, "updated_at"))
        }
    }

    /// Creates the resource type unless it exists (Glance makes one on first association).
    func ensureResourceType(_ name: String, protected: Bool, now: Date, _ x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO image_metadef_resource_type (name, protected, created_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                            [.text(name), .bool(protected), .real(now.timeIntervalSince1970), .real(now.timeIntervalSince1970)])
    }

    /// namespace id → its associations, for every namespace.
    func associations(_ x: any SQLExecutor) async throws -> [String: [MetadefAssociation]] {
        var out: [String: [MetadefAssociation]] = [:]
        for r in try await x.query("SELECT * FROM image_metadef_association ORDER BY created_at, resource_type", []) {
            out[r.string("namespace_id"), default: []].append(Self.association(r))
        }
        return out
    }

    static func association(_ r: Row) -> MetadefAssociation {
        MetadefAssociation(resourceType: r.string("resource_type"), prefix: r.optionalString("prefix"),
                           propertiesTarget: r.optionalString("properties_target"), createdAt: time(r, "created_at"), updatedAt: time(r, "updated_at"))
    }

    func associations(namespaceID: String, _ x: any SQLExecutor) async throws -> [MetadefAssociation] {
        try await x.query("SELECT * FROM image_metadef_association WHERE namespace_id = ? ORDER BY created_at, resource_type",
                          [.text(namespaceID)]).map(Self.association)
    }

    func insert(_ a: MetadefAssociation, namespaceID: String, _ x: any SQLExecutor) async throws {
        try await ensureResourceType(a.resourceType, protected: false, now: a.createdAt, x)
        try await x.execute("""
            INSERT INTO image_metadef_association (namespace_id, resource_type, prefix, properties_target, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?)
            """, [.text(namespaceID), .text(a.resourceType), .optional(a.prefix), .optional(a.propertiesTarget),
                  .real(a.createdAt.timeIntervalSince1970), .real(a.updatedAt.timeIntervalSince1970)])
    }

    func deleteAssociation(namespaceID: String, resourceType: String, _ x: any SQLExecutor) async throws -> Bool {
        try await x.execute("DELETE FROM image_metadef_association WHERE namespace_id = ? AND resource_type = ?",
                            [.text(namespaceID), .text(resourceType)]) > 0
    }

    // MARK: Properties

    func properties(namespaceID: String, _ x: any SQLExecutor) async throws -> [MetadefProperty] {
        try await x.query("SELECT * FROM image_metadef_property WHERE namespace_id = ? ORDER BY name", [.text(namespaceID)]).map { r in
            MetadefProperty(name: r.string("name"), schema: (try? JSON.parse(r.string("json_schema")))?.objectValue ?? [:])
        }
    }

    func property(namespaceID: String, name: String, _ x: any SQLExecutor) async throws -> MetadefProperty? {
        try await x.first("SELECT * FROM image_metadef_property WHERE namespace_id = ? AND name = ?", .text(namespaceID), .text(name)).map { r in
            MetadefProperty(name: r.string("name"), schema: (try? JSON.parse(r.string("json_schema")))?.objectValue ?? [:])
        }
    }

    func insert(_ p: MetadefProperty, namespaceID: String, now: Date, _ x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO image_metadef_property (namespace_id, name, json_schema, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                            [.text(namespaceID), .text(p.name), .text(JSON.object(p.schema).serialized()),
                             .real(now.timeIntervalSince1970), .real(now.timeIntervalSince1970)])
    }

    /// Replaces the property called `name` with `p` (which may carry a new name).
    func replace(property name: String, with p: MetadefProperty, namespaceID: String, now: Date, _ x: any SQLExecutor) async throws -> Bool {
        try await x.execute("UPDATE image_metadef_property SET name = ?, json_schema = ?, updated_at = ? WHERE namespace_id = ? AND name = ?",
                            [.text(p.name), .text(JSON.object(p.schema).serialized()), .real(now.timeIntervalSince1970),
                             .text(namespaceID), .text(name)]) > 0
    }

    // MARK: Objects

    static func object(_ r: Row) -> MetadefObject {
        MetadefObject(name: r.string("name"), description: r.optionalString("description"),
                      required: (try? JSON.parse(r.string("required")))?.arrayValue?.compactMap(\.stringValue) ?? [],
                      properties: (try? JSON.parse(r.string("properties")))?.objectValue ?? [:],
                      createdAt: time(r, "created_at"), updatedAt: time(r, "updated_at"))
    }

    func objects(namespaceID: String, _ x: any SQLExecutor) async throws -> [MetadefObject] {
        try await x.query("SELECT * FROM image_metadef_object WHERE namespace_id = ?", [.text(namespaceID)]).map(Self.object)
    }

    func object(namespaceID: String, name: String, _ x: any SQLExecutor) async throws -> MetadefObject? {
        try await x.first("SELECT * FROM image_metadef_object WHERE namespace_id = ? AND name = ?", .text(namespaceID), .text(name)).map(Self.object)
    }

    func insert(_ o: MetadefObject, namespaceID: String, _ x: any SQLExecutor) async throws {
        try await x.execute("""
            INSERT INTO image_metadef_object (namespace_id, name, description, required, properties, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """, [.text(namespaceID), .text(o.name), .optional(o.description), .text(JSON.array(o.required.map { .string($0) }).serialized()),
                  .text(JSON.object(o.properties).serialized()), .real(o.createdAt.timeIntervalSince1970), .real(o.updatedAt.timeIntervalSince1970)])
    }

    func replace(object name: String, with o: MetadefObject, namespaceID: String, _ x: any SQLExecutor) async throws -> Bool {
        try await x.execute("""
            UPDATE image_metadef_object SET name = ?, description = ?, required = ?, properties = ?, updated_at = ?
            WHERE namespace_id = ? AND name = ?
            """, [.text(o.name), .optional(o.description), .text(JSON.array(o.required.map { .string($0) }).serialized()),
                  .text(JSON.object(o.properties).serialized()), .real(o.updatedAt.timeIntervalSince1970), .text(namespaceID), .text(name)]) > 0
    }

    // MARK: Tags

    func tags(namespaceID: String, _ x: any SQLExecutor) async throws -> [MetadefTag] {
        try await x.query("SELECT * FROM image_metadef_tag WHERE namespace_id = ?", [.text(namespaceID)]).map { r in
            MetadefTag(name: r.string("name"), createdAt: Self.time(r, "created_at"), updatedAt: Self.time(r, "updated_at"))
        }
    }

    func insert(_ t: MetadefTag, namespaceID: String, _ x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO image_metadef_tag (namespace_id, name, created_at, updated_at) VALUES (?, ?, ?, ?)",
                            [.text(namespaceID), .text(t.name), .real(t.createdAt.timeIntervalSince1970), .real(t.updatedAt.timeIntervalSince1970)])
    }

    func rename(tag name: String, to newName: String, namespaceID: String, now: Date, _ x: any SQLExecutor) async throws -> Bool {
        try await x.execute("UPDATE image_metadef_tag SET name = ?, updated_at = ? WHERE namespace_id = ? AND name = ?",
                            [.text(newName), .real(now.timeIntervalSince1970), .text(namespaceID), .text(name)]) > 0
    }

    /// Deletes the named child (`table` is one of the child tables), or every child when `name` is nil.
    @discardableResult
    func deleteChildren(_ table: String, namespaceID: String, name: String? = nil, _ x: any SQLExecutor) async throws -> Int {
        guard let name else { return try await x.execute("DELETE FROM \(table) WHERE namespace_id = ?", [.text(namespaceID)]) }
        return try await x.execute("DELETE FROM \(table) WHERE namespace_id = ? AND name = ?", [.text(namespaceID), .text(name)])
    }

    // MARK: Seed

    func seeded(version: Int64, _ x: any SQLExecutor) async throws -> Bool {
        try await x.first("SELECT version FROM image_metadef_seed WHERE version = ?", .integer(version)) != nil
    }

    func markSeeded(version: Int64, now: Date, _ x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO image_metadef_seed (version, loaded_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                            [.integer(version), .real(now.timeIntervalSince1970)])
    }
}
