/// Placement's default policy: everything is for the cloud's admins and for services (the
/// `service` role, which Nova's and Neutron's service users hold), except reading a project's
/// usage, which that project's readers may also do.
public enum PlacementPolicy {
    public static let adminOrService = "role:admin or role:service"

    public static let defaults: [String: String] = {
        var rules: [String: String] = [
            "placement:admin_or_service": adminOrService,
            "placement:usages": "rule:placement:admin_or_service or (role:reader and project_id:%(project_id)s)",
        ]
        for action in actions { rules[action] = "rule:placement:admin_or_service" }
        return rules
    }()

    /// Every other rule, named as upstream placement names them.
    static let actions = [
        "placement:resource_providers:list", "placement:resource_providers:create", "placement:resource_providers:show",
        "placement:resource_providers:update", "placement:resource_providers:delete",
        "placement:resource_providers:inventories:list", "placement:resource_providers:inventories:create",
        "placement:resource_providers:inventories:show", "placement:resource_providers:inventories:update",
        "placement:resource_providers:inventories:delete",
        "placement:resource_providers:aggregates:list", "placement:resource_providers:aggregates:update",
        "placement:resource_providers:usages", "placement:resource_providers:allocations:list",
        "placement:resource_providers:traits:list", "placement:resource_providers:traits:update",
        "placement:resource_providers:traits:delete",
        "placement:resource_classes:list", "placement:resource_classes:create", "placement:resource_classes:show",
        "placement:resource_classes:update", "placement:resource_classes:delete",
        "placement:traits:list", "placement:traits:show", "placement:traits:update", "placement:traits:delete",
        "placement:allocations:list", "placement:allocations:manage", "placement:allocations:update", "placement:allocations:delete",
        "placement:allocation_candidates:list", "placement:reshaper:reshape",
    ]
}
