/// Neutron's default policy, under Neutron's own rule names (unprefixed, as operators write
/// them in policy.yaml: `create_network`, `get_port`, `create_network:provider:network_type`).
/// Attribute rules (`action:attribute`) decide who may set or see an attribute.
public enum NetworkPolicy {
    public static let admin = "role:admin"
    public static let owner = "project_id:%(project_id)s"

    /// Each resource family's rules live in its own file (`NetworkPolicy+<Family>.swift`).
    public static var defaults: [String: String] {
        shared.merging(core) { a, _ in a }.merging(security) { a, _ in a }.merging(routing) { a, _ in a }.merging(rbac) { a, _ in a }.merging(operations) { a, _ in a }.merging(addressScopes) { a, _ in a }.merging(services) { a, _ in a }.merging(segments) { a, _ in a }
    }

    /// Rules the families refer to.
    static let shared: [String: String] = [
        "network:context_is_admin": admin,
        "network:admin_or_owner": "rule:network:context_is_admin or \(owner)",
        // Hosts' network agents (`/network-agent/v1`): Nimbus's own, not Neutron's API.
        "network_agent": "role:service or role:admin",
    ]
}
