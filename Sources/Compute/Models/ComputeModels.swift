import Foundation
import NimbusCore

/// A flavor: the size of a server. Servers keep a copy of the flavor they were built with, so
/// deleting or changing a flavor never changes existing servers (as in Nova).
public struct Flavor: Sendable, Equatable {
    public var id: String
    public var name: String
    public var ram: Int64
    public var vcpus: Int64
    public var disk: Int64
    public var ephemeral: Int64
    public var swap: Int64
    public var rxtxFactor: Double
    public var isPublic: Bool
    public var disabled: Bool
    public var description: String?
    public var extraSpecs: [String: String]
    public var createdAt: Date

    /// `GET /flavors/{id}` at `version`.
    public func json(_ version: Microversion, base: String) -> JSON {
        var out: [String: JSON] = [
            "id": .string(id), "name": .string(name), "ram": .int(ram), "vcpus": .int(vcpus), "disk": .int(disk),
            "OS-FLV-EXT-DATA:ephemeral": .int(ephemeral), "OS-FLV-DISABLED:disabled": .bool(disabled),
            "os-flavor-access:is_public": .bool(isPublic), "rxtx_factor": .double(rxtxFactor),
            // Nova wrote an empty swap as "" until 2.75.
            "swap": version >= Microversion(2, 75) || swap != 0 ? .int(swap) : "",
            "links": Self.links(id, base: base),
        ]
        if version >= Microversion(2, 55) { out["description"] = .optional(description) }
        if version >= Microversion(2, 61) { out["extra_specs"] = .object(extraSpecs.mapValues { .string($0) }) }
        return .object(out)
    }

    public func summaryJSON(_ version: Microversion, base: String) -> JSON {
        var out: [String: JSON] = ["id": .string(id), "name": .string(name), "links": Self.links(id, base: base)]
        if version >= Microversion(2, 55) { out["description"] = .optional(description) }
        return .object(out)
    }

    static func links(_ id: String, base: String) -> JSON {
        [["rel": "self", "href": .string("\(base)/v2.1/flavors/\(id)")], ["rel": "bookmark", "href": .string("\(base)/flavors/\(id)")]]
    }

    /// The copy a server keeps (also what 2.47+ shows as the server's `flavor`).
    public var embedded: JSON {
        ["vcpus": .int(vcpus), "ram": .int(ram), "disk": .int(disk), "ephemeral": .int(ephemeral), "swap": .int(swap),
         "original_name": .string(name), "extra_specs": .object(extraSpecs.mapValues { .string($0) }), "id": .string(id)]
    }

    public init(id: String, name: String, ram: Int64, vcpus: Int64, disk: Int64, ephemeral: Int64 = 0, swap: Int64 = 0,
                rxtxFactor: Double = 1.0, isPublic: Bool = true, disabled: Bool = false, description: String? = nil,
                extraSpecs: [String: String] = [:], createdAt: Date = Date()) {
        (self.id, self.name, self.ram, self.vcpus, self.disk, self.ephemeral, self.swap) = (id, name, ram, vcpus, disk, ephemeral, swap)
        (self.rxtxFactor, self.isPublic, self.disabled, self.description, self.extraSpecs, self.createdAt) =
            (rxtxFactor, isPublic, disabled, description, extraSpecs, createdAt)
    }

    /// Back from the copy a server keeps.
    public init?(embedded: JSON) {
        guard let id = embedded["id"]?.stringValue, let name = embedded["original_name"]?.stringValue else { return nil }
        self.init(id: id, name: name, ram: embedded["ram"]?.intValue ?? 0, vcpus: embedded["vcpus"]?.intValue ?? 0,
                  disk: embedded["disk"]?.intValue ?? 0, ephemeral: embedded["ephemeral"]?.intValue ?? 0,
                  swap: embedded["swap"]?.intValue ?? 0,
                  extraSpecs: embedded["extra_specs"]?.objectValue?.compactMapValues(\.stringValue) ?? [:])
    }
}

/// An SSH public key a user registered; keypairs belong to users, not projects.
public struct KeyPair: Sendable {
    public var id: Int64
    public var userID: String
    public var name: String
    public var publicKey: String
    public var fingerprint: String
    public var type: String
    public var createdAt: Date

    public func json(_ version: Microversion, detail: Bool) -> JSON {
        var out: [String: JSON] = ["name": .string(name), "public_key": .string(publicKey), "fingerprint": .string(fingerprint)]
        if version >= Microversion(2, 2) { out["type"] = .string(type) }
        if detail {
            out["user_id"] = .string(userID)
            out["id"] = .int(id)
            out["created_at"] = .string(Timestamps.novaTime(createdAt))
            out["updated_at"] = .null
            out["deleted_at"] = .null
            out["deleted"] = false
        }
        return .object(out)
    }
}

extension Timestamps {
    /// Nova's timestamps for records (`2026-01-02T03:04:05.000000`, no zone).
    static func novaTime(_ date: Date) -> String { naiveMicroseconds(date) }
}
