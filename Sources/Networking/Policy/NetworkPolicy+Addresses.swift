extension NetworkPolicy {
    /// Address scopes: a project's own, or shared (by an admin) with every project; address
    /// groups: a project's own.
    static let addressScopes: [String: String] = [
        "create_address_scope": "", "create_address_scope:shared": admin,
        "get_address_scope": "rule:network:admin_or_owner or rule:network:shared",
        "update_address_scope": "rule:network:admin_or_owner", "update_address_scope:shared": admin,
        "delete_address_scope": "rule:network:admin_or_owner",
        "create_address_group": "", "get_address_group": "rule:network:admin_or_owner",
        "update_address_group": "rule:network:admin_or_owner", "delete_address_group": "rule:network:admin_or_owner",
    ]
}
