extension NetworkPolicy {
    /// Address scopes: a project's own, or shared (by an admin) with every project.
    static let addressScopes: [String: String] = [
        "create_address_scope": "", "create_address_scope:shared": admin,
        "get_address_scope": "rule:network:admin_or_owner or rule:network:shared",
        "update_address_scope": "rule:network:admin_or_owner", "update_address_scope:shared": admin,
        "delete_address_scope": "rule:network:admin_or_owner",
    ]
}
