extension NetworkPolicy {
    /// RBAC policies: any project member may share what they own (the service checks they own
    /// the object); a policy is seen and changed by its owner. Sharing with every project
    /// (`target_tenant` `*`) is the admin's, as Neutron's `restrict_wildcard` rule has it; the
    /// `:target_tenant` rules are checked only for `*`.
    static let rbac: [String: String] = [
        "create_rbac_policy": "", "create_rbac_policy:target_tenant": admin,
        "get_rbac_policy": "rule:network:admin_or_owner",
        "update_rbac_policy": "rule:network:admin_or_owner", "update_rbac_policy:target_tenant": admin,
        "delete_rbac_policy": "rule:network:admin_or_owner",
    ]
}
