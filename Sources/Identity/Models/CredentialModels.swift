import Foundation
import NimbusCore

/// A secret stored for a user (`/v3/credentials`), e.g. EC2 access keys or TOTP seeds.
public struct Credential: Sendable {
    public var id: String
    public var userID: String
    public var projectID: String?
    public var type: String
    /// Plain text in memory; encrypted at rest.
    public var blob: String
    public var extra: [String: JSON]

    public func json(_ links: Links) -> JSON {
        merged(["id": .string(id), "user_id": .string(userID), "project_id": .optional(projectID), "type": .string(type),
                "blob": .string(blob), "links": links.resource("credentials", id)], extra: extra)
    }
}

/// A policy document stored for other services to fetch (`/v3/policies`, deprecated in Keystone
/// but still served).
public struct PolicyDocument: Sendable {
    public var id: String
    public var type: String
    public var blob: String
    public var extra: [String: JSON]

    public func json(_ links: Links) -> JSON {
        merged(["id": .string(id), "type": .string(type), "blob": .string(blob), "links": links.resource("policies", id)], extra: extra)
    }
}

/// A named endpoint filter (`OS-EP-FILTER` endpoint groups).
public struct EndpointGroup: Sendable {
    public var id: String
    public var name: String
    public var description: String
    /// Any of `service_id`, `interface`, `region_id`.
    public var filters: [String: String]

    public static let filterKeys: Set<String> = ["service_id", "interface", "region_id"]

    public func json(_ links: Links) -> JSON {
        ["id": .string(id), "name": .string(name), "description": .string(description),
         "filters": .object(filters.mapValues { .string($0) }), "links": links.resource("OS-EP-FILTER/endpoint_groups", id)]
    }
}
