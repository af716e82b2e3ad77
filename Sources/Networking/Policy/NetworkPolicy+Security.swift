extension NetworkPolicy {
    /// Security groups, rules and agents.
    static let security: [String: String] = [
        "create_security_group": "rule:network:admin_or_owner",
        "get_security_group": "rule:network:admin_or_owner",
        "update_security_group": "rule:network:admin_or_owner",
        "delete_security_group": "rule:network:admin_or_owner",
        "create_security_group_rule": "rule:network:admin_or_owner",
        "get_security_group_rule": "rule:network:admin_or_owner",
        "delete_security_group_rule": "rule:network:admin_or_owner",
        "get_agent": "rule:network:context_is_admin",
        "update_agent": "rule:network:context_is_admin",
        "delete_agent": "rule:network:context_is_admin",
    ]
}
