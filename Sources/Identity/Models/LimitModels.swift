import Foundation
import NimbusCore

/// The default limit on one resource of one service (`/v3/registered_limits`), optionally for
/// one region. Every project gets it unless it has a `Limit` of its own.
public struct RegisteredLimit: Sendable {
    public var id: String
    public var serviceID: String
    public var regionID: String?
    public var resourceName: String
    /// -1 means unlimited.
    public var defaultLimit: Int64
    public var description: String?

    public func json(_ links: Links) -> JSON {
        ["id": .string(id), "service_id": .string(serviceID), "region_id": .optional(regionID), "resource_name": .string(resourceName),
         "default_limit": .int(defaultLimit), "description": .optional(description), "links": links.resource("registered_limits", id)]
    }
}

/// A project's (or a domain's) own limit on a resource (`/v3/limits`), overriding the registered
/// limit it hangs on. Its service, region and resource name are those of that registered limit,
/// which is why a registered limit with limits cannot be re-targeted or deleted.
public struct Limit: Sendable {
    public var id: String
    public var registeredLimitID: String
    /// Exactly one of `projectID` and `domainID` is set.
    public var projectID: String?
    public var domainID: String?
    public var serviceID: String
    public var regionID: String?
    public var resourceName: String
    /// -1 means unlimited.
    public var resourceLimit: Int64
    public var description: String?

    public func json(_ links: Links) -> JSON {
        ["id": .string(id), "project_id": .optional(projectID), "domain_id": .optional(domainID), "service_id": .string(serviceID),
         "region_id": .optional(regionID), "resource_name": .string(resourceName), "resource_limit": .int(resourceLimit),
         "description": .optional(description), "links": links.resource("limits", id)]
    }
}

extension RegisteredLimit: IdentityResource {}
extension Limit: IdentityResource {}
