import Foundation
import NimbusCore
import NimbusStore

/// SQL for images and members.
struct ImageStore: Sendable {
    static func image(_ r: Row) -> Image {
        let properties = (try? JSON.parse(r.string("properties")))?.objectValue?.compactMapValues(\.stringValue) ?? [:]
        let tags = (try? JSON.parse(r.string("tags")))?.arrayValue?.compactMap(\.stringValue) ?? []
        return Image(id: r.string("id"), name: r.optionalString("name"), status: Image.Status(rawValue: r.string("status")) ?? .killed,
                     visibility: r.string("visibility"), protected: r.bool("protected"), hidden: r.bool("os_hidden"),
                     checksum: r.optionalString("checksum"), hashValue: r.optionalString("os_hash_value"), owner: r.optionalString("owner"),
                     size: r.optionalInt("size"), virtualSize: r.optionalInt("virtual_size"), minRAM: r.int("min_ram"), minDisk: r.int("min_disk"),
                     diskFormat: r.optionalString("disk_format"), containerFormat: r.optionalString("container_format"),
                     createdAt: Date(timeIntervalSince1970: r.double("created_at")), updatedAt: Date(timeIntervalSince1970: r.double("updated_at")),
                     properties: properties, tags: tags, location: r.optionalString("location"))
    }

    static func binds(_ i: Image) -> [SQLValue] {
        [.optional(i.name), .text(i.status.rawValue), .text(i.visibility), .bool(i.protected), .bool(i.hidden), .optional(i.checksum),
         .optional(i.hashValue == nil ? nil : "sha512"), .optional(i.hashValue), .optional(i.owner), i.size.map { .integer($0) } ?? .null,
         i.virtualSize.map { .integer($0) } ?? .null, .integer(i.minRAM), .integer(i.minDisk), .optional(i.diskFormat),
         .optional(i.containerFormat), .real(i.updatedAt.timeIntervalSince1970),
         .text(JSON.object(i.properties.mapValues { .string($0) }).serialized()), .text(JSON.array(i.tags.map { .string($0) }).serialized()),
         .optional(i.location)]
    }

    static let columns = "name, status, visibility, protected, os_hidden, checksum, os_hash_algo, os_hash_value, owner, size, virtual_size, min_ram, min_disk, disk_format, container_format, updated_at, properties, tags, location"

    /// `name = ?, status = ?, …` for every column in `columns`, built once.
    static let assignments = columns.split(separator: ",").map { "\($0.trimmingCharacters(in: .whitespaces)) = ?" }.joined(separator: ", ")

    func insert(_ i: Image, _ x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO image_image (id, created_at, \(Self.columns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [.text(i.id), .real(i.createdAt.timeIntervalSince1970)] + Self.binds(i))
    }

    /// Writes every field; with `expecting`, only while the stored status is that one, so two
    /// racing state changes cannot both win. Returns whether a row was written.
    @discardableResult
    func update(_ i: Image, expecting: Image.Status? = nil, _ x: any SQLExecutor) async throws -> Bool {
        var sql = "UPDATE image_image SET \(Self.assignments) WHERE id = ?"
        var binds = Self.binds(i) + [.text(i.id)]
        if let expecting {
            sql += " AND status = ?"
            binds.append(.text(expecting.rawValue))
        }
        return try await x.execute(sql, binds) > 0
    }

    func image(id: String, _ x: any SQLExecutor) async throws -> Image? {
        try await x.query("SELECT * FROM image_image WHERE id = ?", [.text(id)]).first.map(Self.image)
    }

    func images(_ x: any SQLExecutor) async throws -> [Image] {
        try await x.query("SELECT * FROM image_image ORDER BY created_at DESC, id DESC", []).map(Self.image)
    }

    func delete(id: String, _ x: any SQLExecutor) async throws {
        try await x.execute("DELETE FROM image_image WHERE id = ?", [.text(id)])
    }

    // MARK: Members

    static func member(_ r: Row) -> ImageMember {
        ImageMember(imageID: r.string("image_id"), memberID: r.string("member_id"), status: r.string("status"),
                    createdAt: Date(timeIntervalSince1970: r.double("created_at")), updatedAt: Date(timeIntervalSince1970: r.double("updated_at")))
    }

    func members(imageID: String, _ x: any SQLExecutor) async throws -> [ImageMember] {
        try await x.query("SELECT * FROM image_member WHERE image_id = ? ORDER BY created_at", [.text(imageID)]).map(Self.member)
    }

    /// image id → the member row for `project`.
    func memberships(project: String, _ x: any SQLExecutor) async throws -> [String: ImageMember] {
        Dictionary(try await x.query("SELECT * FROM image_member WHERE member_id = ?", [.text(project)]).map { (r: Row) in
            (r.string("image_id"), Self.member(r))
        }, uniquingKeysWith: { a, _ in a })
    }

    func insert(_ m: ImageMember, _ x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO image_member (image_id, member_id, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                            [.text(m.imageID), .text(m.memberID), .text(m.status), .real(m.createdAt.timeIntervalSince1970),
                             .real(m.updatedAt.timeIntervalSince1970)])
    }

    func update(_ m: ImageMember, _ x: any SQLExecutor) async throws {
        try await x.execute("UPDATE image_member SET status = ?, updated_at = ? WHERE image_id = ? AND member_id = ?",
                            [.text(m.status), .real(m.updatedAt.timeIntervalSince1970), .text(m.imageID), .text(m.memberID)])
    }

    func deleteMember(imageID: String, memberID: String, _ x: any SQLExecutor) async throws -> Bool {
        try await x.execute("DELETE FROM image_member WHERE image_id = ? AND member_id = ?", [.text(imageID), .text(memberID)]) > 0
    }

    // MARK: Usage

    /// Adds `images` and `bytes` to the project's usage unless that would pass a limit
    /// (negative = unlimited). Returns false, changing nothing, when it would.
    func reserve(project: String, images: Int64, bytes: Int64, imageLimit: Int64, byteLimit: Int64, _ x: any SQLExecutor) async throws -> Bool {
        try await x.execute("INSERT INTO image_usage (project_id, images, bytes) VALUES (?, 0, 0) ON CONFLICT DO NOTHING", [.text(project)])
        return try await x.execute("""
            UPDATE image_usage SET images = images + ?, bytes = bytes + ?
            WHERE project_id = ? AND (? < 0 OR images + ? <= ?) AND (? < 0 OR bytes + ? <= ?)
            """, [.integer(images), .integer(bytes), .text(project), .integer(imageLimit), .integer(images), .integer(imageLimit),
                  .integer(byteLimit), .integer(bytes), .integer(byteLimit)]) > 0
    }

    /// Gives usage back (a delete, a failed upload). Never fails on limits.
    func release(project: String, images: Int64, bytes: Int64, _ x: any SQLExecutor) async throws {
        try await x.execute("UPDATE image_usage SET images = images - ?, bytes = bytes - ? WHERE project_id = ?",
                            [.integer(images), .integer(bytes), .text(project)])
    }

    func usage(project: String, _ x: any SQLExecutor) async throws -> (images: Int64, bytes: Int64) {
        guard let row = try await x.first("SELECT images, bytes FROM image_usage WHERE project_id = ?", .text(project)) else { return (0, 0) }
        return (row.int("images"), row.int("bytes"))
    }
}
