/// How a service finds a project's limit on one of its resources, from Keystone's unified limits.
/// Implemented in-process by the identity service; a service that enforces quotas (the image
/// service first) asks it on every create or upload, so implementations must answer cheaply.
public protocol ProjectLimitLookup: Sendable {
    /// The limit on `resource` of the service of type `serviceType` (its catalog type, e.g.
    /// "image") for `projectID`: the project's own limit if one is set, else the registered
    /// default, else nil (no limit registered). As in Keystone, -1 means unlimited.
    func limit(serviceType: String, resource: String, projectID: String) async throws -> Int64?
}
