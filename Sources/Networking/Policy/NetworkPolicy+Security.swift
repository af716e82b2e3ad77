extension NetworkPolicy {
    /// Security groups, their rules and default rules, and agents.
    static let security: [String: String] = [
        "create_security_group": "rule:network:admin_or_owner",
        "get_security_group": "rule:network:admin_or_owner",
        "update_security_group": "rule:network:admin_or_owner",
        "delete_security_group": "rule:network:admin_or_owner",
        "create_security_group_rule": "rule:network:admin_or_owner",
        "get_security_group_rule": "rule:network:admin_or_owner",
        "delete_security_group_rule": "rule:network:admin_or_owner",
        "create_default_security_group_rule": "rule:network:context_is_admin", "get_default_security_group_rule": "",
        "delete_default_security_group_rule": "rule:network:context_is_admin",
        "create_security_group_default_statefulness": "rule:network:context_is_admin",
        "get_security_group_default_statefulness": "rule:network:admin_or_owner",
        "update_security_group_default_statefulness": "rule:network:context_is_admin",
        "delete_security_group_default_statefulness": "rule:network:context_is_admin",
        "get_agent": "rule:network:context_is_admin",
        "update_agent": "rule:network:context_is_admin",
        "delete_agent": "rule:network:context_is_admin",
    ]
}
