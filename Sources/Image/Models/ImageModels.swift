import Foundation
import NimbusCore

/// A Glance v2 image as stored and as rendered. Base fields are always present in the JSON
/// (null when unset); custom properties are strings flattened into the top level.
public struct Image: Sendable {
    public enum Status: String, Sendable {
        case queued, saving, active, killed, deleted, deactivated, uploading, importing
        case pendingDelete = "pending_delete"
    }

    public var id: String
    public var name: String?
    public var status: Status
    public var visibility: String
    public var protected: Bool
    public var hidden: Bool
    public var checksum: String?
    public var hashValue: String?
    public var owner: String?
    public var size: Int64?
    public var virtualSize: Int64?
    public var minRAM: Int64
    public var minDisk: Int64
    public var diskFormat: String?
    public var containerFormat: String?
    public var createdAt: Date
    public var updatedAt: Date
    public var properties: [String: String]
    public var tags: [String]
    /// Store id → where that store keeps the data. Only the store ids are shown (`stores`);
    /// Glance hides locations by default.
    public var locations: [String: String]

    public static let visibilities: Set<String> = ["public", "community", "shared", "private"]
    public static let diskFormats: Set<String> = ["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"]
    public static let containerFormats: Set<String> = ["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]

    /// Fields a PATCH may not touch, and names no custom property may take.
    public static let readOnly: Set<String> = ["created_at", "updated_at", "status", "checksum", "size", "virtual_size", "direct_url",
                                               "self", "file", "schema", "id", "os_hash_algo", "os_hash_value"]
    public static let reserved: Set<String> = ["location", "locations", "deleted", "deleted_at"]
    /// Settable base fields; everything else in a create body is a custom property.
    public static let baseFields: Set<String> = ["name", "visibility", "protected", "os_hidden", "owner", "min_ram", "min_disk",
                                                 "disk_format", "container_format", "tags"]

    /// Bytes counted against `image_size_total`: active (or deactivated) data, once per store,
    /// as Glance multiplies size by the number of locations.
    var storedBytes: Int64 { status == .active || status == .deactivated ? (size ?? 0) * Int64(max(locations.count, 1)) : 0 }
    /// Bytes counted against `image_stage_total`: data in the staging area.
    var stagedBytes: Int64 { status == .uploading || status == .importing ? size ?? 0 : 0 }

    public var json: JSON {
        var out: [String: JSON] = [:]
        for (k, v) in properties { out[k] = .string(v) }
        let base: [String: JSON] = [
            "id": .string(id), "name": .optional(name), "status": .string(status.rawValue), "visibility": .string(visibility),
            "protected": .bool(protected), "os_hidden": .bool(hidden), "checksum": .optional(checksum),
            "os_hash_algo": hashValue == nil ? .null : "sha512", "os_hash_value": .optional(hashValue), "owner": .optional(owner),
            "size": size.map { .int($0) } ?? .null, "virtual_size": virtualSize.map { .int($0) } ?? .null,
            "min_ram": .int(minRAM), "min_disk": .int(minDisk), "disk_format": .optional(diskFormat),
            "container_format": .optional(containerFormat), "created_at": .string(Timestamps.iso8601(createdAt)),
            "updated_at": .string(Timestamps.iso8601(updatedAt)), "tags": .array(tags.map { .string($0) }),
            "self": .string("/v2/images/\(id)"), "file": .string("/v2/images/\(id)/file"), "schema": "/v2/schemas/image",
        ]
        for (k, v) in base { out[k] = v }
        if !locations.isEmpty { out["stores"] = .string(locations.keys.sorted().joined(separator: ",")) }
        return .object(out)
    }
}

/// A project an image is shared with, and whether it accepted.
public struct ImageMember: Sendable {
    public var imageID: String
    public var memberID: String
    public var status: String
    public var createdAt: Date
    public var updatedAt: Date

    public static let statuses: Set<String> = ["pending", "accepted", "rejected"]

    public var json: JSON {
        ["image_id": .string(imageID), "member_id": .string(memberID), "status": .string(status),
         "created_at": .string(Timestamps.iso8601(createdAt)), "updated_at": .string(Timestamps.iso8601(updatedAt)),
         "schema": "/v2/schemas/member"]
    }
}

/// An asynchronous operation on an image: today the import API's `api_image_import`, shown by
/// `GET /v2/images/{id}/tasks` and `GET /v2/tasks/{id}`.
public struct ImageTask: Sendable {
    public enum Status: String, Sendable { case pending, processing, success, failure }

    public var id: String
    public var imageID: String
    public var status: Status
    public var owner: String?
    public var userID: String
    public var requestID: String
    /// The import request as posted, and the stores it targets.
    public var input: JSON
    public var message: String
    public var createdAt: Date
    public var updatedAt: Date
    /// Finished tasks are kept this long (Glance's `task_time_to_live`, 48 h).
    public var expiresAt: Date?

    /// Glance's type for the import API's tasks.
    public static let type = "api_image_import"
    /// What `GET /v2/tasks` sorts by (the task table's columns).
    static let sortKeys: Set<String> = ["id", "type", "status", "owner", "image_id", "user_id", "request_id", "created_at", "updated_at",
                                        "expires_at"]

    /// Past its `expires_at`: Glance deletes such a task when tasks are next listed.
    func expired(at now: Date) -> Bool { expiresAt.map { $0 <= now } ?? false }

    /// The value of a string column, for `GET /v2/tasks`'s equality filters.
    func attribute(_ key: String) -> String? {
        switch key {
        case "id": return id
        case "type": return Self.type
        case "status": return status.rawValue
        case "owner": return owner
        case "image_id": return imageID
        case "user_id": return userID
        case "request_id": return requestID
        default: return nil
        }
    }

    /// A column as text that sorts as the column does (times as fixed-width epoch seconds;
    /// a missing `expires_at` first, as SQL's NULL).
    func sortValue(_ key: String) -> String {
        func time(_ date: Date?) -> String { date.map { String(format: "%020.6f", $0.timeIntervalSince1970) } ?? "" }
        switch key {
        case "created_at": return time(createdAt)
        case "updated_at": return time(updatedAt)
        case "expires_at": return time(expiresAt)
        default: return attribute(key) ?? ""
        }
    }

    /// A task in `GET /v2/tasks`: without its input, result and message.
    public var stubJSON: JSON {
        var stub: [String: JSON] = ["id": .string(id), "type": .string(Self.type), "status": .string(status.rawValue), "owner": .optional(owner),
                                    "created_at": .string(Timestamps.iso8601(createdAt)), "updated_at": .string(Timestamps.iso8601(updatedAt)),
                                    "self": .string("/v2/tasks/\(id)"), "schema": "/v2/schemas/task"]
        if let expiresAt { stub["expires_at"] = .string(Timestamps.iso8601(expiresAt)) }
        return .object(stub)
    }

    public var json: JSON {
        ["id": .string(id), "type": .string(Self.type), "status": .string(status.rawValue), "owner": .optional(owner),
         "image_id": .string(imageID), "user_id": .string(userID), "request_id": .string(requestID), "input": input,
         "result": status == .success ? ["image_id": .string(imageID)] : .null, "message": .string(message),
         "expires_at": expiresAt.map { .string(Timestamps.iso8601($0)) } ?? .null,
         "created_at": .string(Timestamps.iso8601(createdAt)), "updated_at": .string(Timestamps.iso8601(updatedAt)),
         "deleted_at": .null, "deleted": false, "self": .string("/v2/tasks/\(id)"), "schema": "/v2/schemas/task"]
    }
}
