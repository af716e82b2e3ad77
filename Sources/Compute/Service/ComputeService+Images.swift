import Foundation
import NimbusCore

/// Nova's image proxy (`/images`, up to microversion 2.35): the image service's images in
/// Nova's words — `ACTIVE`/`SAVING` statuses, `minRam`/`minDisk`, properties as `metadata`,
/// the snapshot's server. Everything is read from and written to the image service as the caller.
extension ComputeService {
    static let proxyStatuses: [String: (status: String, progress: Int64)] = [
        "active": ("ACTIVE", 100), "queued": ("SAVING", 25), "saving": ("SAVING", 50), "uploading": ("SAVING", 50),
        "importing": ("SAVING", 50), "killed": ("ERROR", 0), "deactivated": ("ERROR", 0), "deleted": ("DELETED", 0),
        "pending_delete": ("DELETED", 0),
    ]

    /// `GET /images[/detail]`: Nova's filters (`name`, `status`, `server`, `type`, `minRam`,
    /// `minDisk`, `changes-since`) and `limit`/`marker` paging, newest first.
    public func proxyImages(_ query: [String: String], caller: AuthContext) async throws -> [ImageInfo] {
        var list = try await images.images(caller: caller)
        let since = try query["changes-since"].map { try Self.time($0, "changes-since") }
        func number(_ key: String) throws -> Int64? {
            try query[key].map { raw in try Int64(raw) ?? { throw APIError.badRequest("Invalid \(key) filter [\(raw)]") }() }
        }
        let (minRAM, minDisk) = (try number("minRam"), try number("minDisk"))
        list = list.filter { image in
            if let name = query["name"], image.name != name { return false }
            if let status = query["status"], Self.proxyStatuses[image.status]?.status != status.uppercased() { return false }
            if let server = query["server"], image.properties["instance_uuid"] != server.split(separator: "/").last.map(String.init) { return false }
            if let type = query["type"], image.properties["image_type"] != type { return false }
            if let minRAM, image.minRAM < minRAM { return false }
            if let minDisk, image.minDisk < minDisk { return false }
            if let since, image.updatedAt < since { return false }
            return true
        }
        // Nova hands the paging to the image service: without a limit the client reads every
        // page, with one Glance caps it at its `api_limit_max` (1000, as `max_limit`).
        guard query["limit"] != nil else { return Array(try Paging.afterMarker(list, query: query, id: \.id)) }
        return try Paging.page(list, query: query, id: \.id)
    }

    public func proxyImage(_ id: String, caller: AuthContext) async throws -> ImageInfo {
        guard let image = try await images.image(id, caller: caller) else { throw APIError.notFound("Image not found.") }
        return image
    }

    public func deleteProxyImage(_ id: String, caller: AuthContext) async throws {
        _ = try await proxyImage(id, caller: caller)
        try await images.deleteImage(id, caller: caller)
    }

    /// `POST` merges, `PUT` replaces (keys not given are removed); a single key's `PUT` sets it.
    public func changeImageMetadata(_ id: String, _ body: JSON, replace: Bool, key: String? = nil, caller: AuthContext) async throws -> [String: String] {
        let image = try await proxyImage(id, caller: caller)
        let field = key == nil ? "metadata" : "meta"
        guard let object = body[field]?.objectValue else { throw APIError.badRequest("Malformed request body: '\(field)' is required") }
        var set: [String: String] = [:]
        for (name, value) in object {
            guard let text = value.stringValue, !name.isEmpty, name.count <= 255, text.count <= 255 else {
                throw APIError.badRequest("Invalid metadata: \(name)")
            }
            set[name] = text
        }
        if let key {
            guard set.count == 1, set[key] != nil else { throw APIError.badRequest("Request body and URI mismatch") }
        }
        let remove = replace && key == nil ? image.properties.keys.filter { set[$0] == nil && !Self.protectedProperties.contains($0) } : []
        return Self.metadata(of: try await images.changeProperties(id, set: set, remove: remove, caller: caller))
    }

    public func deleteImageMetadata(_ id: String, key: String, caller: AuthContext) async throws {
        let image = try await proxyImage(id, caller: caller)
        guard image.properties[key] != nil else { throw APIError.notFound("Metadata item was not found") }
        _ = try await images.changeProperties(id, set: [:], remove: [key], caller: caller)
    }

    /// Properties the image service sets itself, which a metadata `PUT` leaves alone.
    static let protectedProperties: Set<String> = ["os_hash_algo", "os_hash_value", "os_hidden", "stores", "os_glance_importing_to_stores",
                                                   "os_glance_failed_import"]

    static func metadata(of image: ImageInfo) -> [String: String] {
        image.properties.filter { !protectedProperties.contains($0.key) }
    }

    /// One image in Nova's words; `detail` adds everything but the id, name and links.
    public static func proxyView(_ image: ImageInfo, base: String, imageBase: String, detail: Bool) -> JSON {
        var out: [String: JSON] = [
            "id": .string(image.id), "name": .optional(image.name),
            "links": [["rel": "self", "href": .string("\(base)/v2.1/images/\(image.id)")],
                      ["rel": "bookmark", "href": .string("\(base)/images/\(image.id)")],
                      ["rel": "alternate", "type": "application/vnd.openstack.image", "href": .string("\(imageBase)/images/\(image.id)")]],
        ]
        guard detail else { return .object(out) }
        let (status, progress) = proxyStatuses[image.status] ?? ("UNKNOWN", 0)
        out["status"] = .string(status)
        out["progress"] = .int(progress)
        out["minRam"] = .int(image.minRAM)
        out["minDisk"] = .int(image.minDisk)
        out["created"] = .string(Timestamps.iso8601(image.createdAt))
        out["updated"] = .string(Timestamps.iso8601(image.updatedAt))
        out["metadata"] = .object(metadata(of: image).mapValues { .string($0) })
        out["OS-EXT-IMG-SIZE:size"] = image.size.map { .int($0) } ?? .null
        if let server = image.properties["instance_uuid"] {
            out["server"] = ["id": .string(server), "links": [["rel": "self", "href": .string("\(base)/v2.1/servers/\(server)")],
                                                              ["rel": "bookmark", "href": .string("\(base)/servers/\(server)")]]]
        }
        return .object(out)
    }
}
