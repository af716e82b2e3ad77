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
                     properties: properties, tags: tags,
                     locations: (try? JSON.parse(r.string("locations")))?.objectValue?.compactMapValues(\.stringValue) ?? [:])
    }

    static func binds(_ i: Image) -> [SQLValue] {
        [.optional(i.name), .text(i.status.rawValue), .text(i.visibility), .bool(i.protected), .bool(i.hidden), .optional(i.checksum),
         .optional(i.hashValue == nil ? nil : "sha512"), .optional(i.hashValue), .optional(i.owner), i.size.map { .integer($0) } ?? .null,
         i.virtualSize.map { .integer($0) } ?? .null, .integer(i.minRAM), .integer(i.minDisk), .optional(i.diskFormat),
         .optional(i.containerFormat), .real(i.updatedAt.timeIntervalSince1970),
         .text(JSON.object(i.properties.mapValues { .string($0) }).serialized()), .text(JSON.array(i.tags.map { .string($0) }).serialized()),
         .text(JSON.object(i.locations.mapValues { .string($0) }).serialized())]
    }

    static let columns = "name, status, visibility, protected, os_hidden, checksum, os_hash_algo, os_hash_value, owner, size, virtual_size, min_ram, min_disk, disk_format, container_format, updated_at, properties, tags, locations"

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

    // MARK: Tasks

    static func task(_ r: Row) -> ImageTask {
        ImageTask(id: r.string("id"), imageID: r.string("image_id"), status: ImageTask.Status(rawValue: r.string("status")) ?? .failure,
                  owner: r.optionalString("owner"), userID: r.string("user_id"), requestID: r.string("request_id"),
                  input: (try? JSON.parse(r.string("input"))) ?? .null, message: r.string("message"),
                  createdAt: Date(timeIntervalSince1970: r.double("created_at")), updatedAt: Date(timeIntervalSince1970: r.double("updated_at")),
                  expiresAt: r.optionalDouble("expires_at").map { Date(timeIntervalSince1970: $0) })
    }

    func insert(_ t: ImageTask, _ x: any SQLExecutor) async throws {
        try await x.execute("""
            INSERT INTO image_task (id, image_id, status, owner, user_id, request_id, input, message, created_at, updated_at, expires_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [.text(t.id), .text(t.imageID), .text(t.status.rawValue), .optional(t.owner), .text(t.userID), .text(t.requestID),
                  .text(t.input.serialized()), .text(t.message), .real(t.createdAt.timeIntervalSince1970),
                  .real(t.updatedAt.timeIntervalSince1970), t.expiresAt.map { .real($0.timeIntervalSince1970) } ?? .null])
    }

    func update(_ t: ImageTask, _ x: any SQLExecutor) async throws {
        try await x.execute("UPDATE image_task SET status = ?, message = ?, updated_at = ?, expires_at = ? WHERE id = ?",
                            [.text(t.status.rawValue), .text(t.message), .real(t.updatedAt.timeIntervalSince1970),
                             t.expiresAt.map { .real($0.timeIntervalSince1970) } ?? .null, .text(t.id)])
    }

    func tasks(imageID: String, _ x: any SQLExecutor) async throws -> [ImageTask] {
        try await x.query("SELECT * FROM image_task WHERE image_id = ? ORDER BY created_at DESC", [.text(imageID)]).map(Self.task)
    }

    /// Every task, or `owner`'s.
    func tasks(owner: String?, _ x: any SQLExecutor) async throws -> [ImageTask] {
        guard let owner else { return try await x.query("SELECT * FROM image_task", []).map(Self.task) }
        return try await x.query("SELECT * FROM image_task WHERE owner = ?", [.text(owner)]).map(Self.task)
    }

    func task(id: String, _ x: any SQLExecutor) async throws -> ImageTask? {
        try await x.query("SELECT * FROM image_task WHERE id = ?", [.text(id)]).first.map(Self.task)
    }

    func unfinishedTasks(_ x: any SQLExecutor) async throws -> [ImageTask] {
        try await x.query("SELECT * FROM image_task WHERE status IN ('pending', 'processing')", []).map(Self.task)
    }

    func images(status: Image.Status, _ x: any SQLExecutor) async throws -> [Image] {
        try await x.query("SELECT * FROM image_image WHERE status = ?", [.text(status.rawValue)]).map(Self.image)
    }

    // MARK: Usage

    /// Adds `images`, stored `bytes` and `staged` bytes to the project's usage unless that would
    /// pass a limit (negative = unlimited). Returns false, changing nothing, when it would.
    func reserve(project: String, images: Int64, bytes: Int64, staged: Int64 = 0, imageLimit: Int64, byteLimit: Int64,
                 stagedLimit: Int64 = -1, _ x: any SQLExecutor) async throws -> Bool {
        try await x.execute("INSERT INTO image_usage (project_id, images, bytes) VALUES (?, 0, 0) ON CONFLICT DO NOTHING", [.text(project)])
        return try await x.execute("""
            UPDATE image_usage SET images = images + ?, bytes = bytes + ?, staged_bytes = staged_bytes + ?
            WHERE project_id = ? AND (? < 0 OR images + ? <= ?) AND (? < 0 OR bytes + ? <= ?) AND (? < 0 OR staged_bytes + ? <= ?)
            """, [.integer(images), .integer(bytes), .integer(staged), .text(project),
                  .integer(imageLimit), .integer(images), .integer(imageLimit),
                  .integer(byteLimit), .integer(bytes), .integer(byteLimit),
                  .integer(stagedLimit), .integer(staged), .integer(stagedLimit)]) > 0
    }

    /// Gives usage back (a delete, a failed upload). Never fails on limits.
    func release(project: String, images: Int64, bytes: Int64, staged: Int64 = 0, _ x: any SQLExecutor) async throws {
        try await x.execute("UPDATE image_usage SET images = images - ?, bytes = bytes - ?, staged_bytes = staged_bytes - ? WHERE project_id = ?",
                            [.integer(images), .integer(bytes), .integer(staged), .text(project)])
    }

    /// Rewrites every project's usage from the images themselves (startup repair: drops the
    /// reservations of transfers a crash interrupted).
    func recountUsage(_ x: any SQLExecutor) async throws {
        var totals: [String: (images: Int64, bytes: Int64, staged: Int64)] = [:]
        for image in try await images(x) {
            guard let owner = image.owner else { continue }
            var total = totals[owner] ?? (0, 0, 0)
            total.images += 1
            total.bytes += image.storedBytes
            total.staged += image.stagedBytes
            totals[owner] = total
        }
        try await x.execute("DELETE FROM image_usage", [])
        for (project, total) in totals {
            try await x.execute("INSERT INTO image_usage (project_id, images, bytes, staged_bytes) VALUES (?, ?, ?, ?)",
                                [.text(project), .integer(total.images), .integer(total.bytes), .integer(total.staged)])
        }
    }

    /// Images of the project with an upload, stage or import under way.
    func uploadingCount(project: String, _ x: any SQLExecutor) async throws -> Int64 {
        try await x.first("SELECT COUNT(*) AS n FROM image_image WHERE owner = ? AND status IN ('saving', 'uploading', 'importing')",
                          .text(project))?.int("n") ?? 0
    }

    func usage(project: String, _ x: any SQLExecutor) async throws -> (images: Int64, bytes: Int64, staged: Int64) {
        guard let row = try await x.first("SELECT images, bytes, staged_bytes FROM image_usage WHERE project_id = ?", .text(project)) else {
            return (0, 0, 0)
        }
        return (row.int("images"), row.int("bytes"), row.int("staged_bytes"))
    }
}
