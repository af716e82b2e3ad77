extension NetworkPolicy {
    /// QoS policies, their rules and rule types. As in Neutron, only admins make and change
    /// policies and rules; a project reads its own policies and shared ones, and attaches them.
    static let qos: [String: String] = {
        let reader = "rule:network:admin_or_owner or rule:network:shared"
        var rules: [String: String] = [
            "get_rule_type": "",
            "create_policy": admin, "get_policy": reader, "update_policy": admin, "delete_policy": admin,
        ]
        for type in ["bandwidth_limit", "dscp_marking", "minimum_bandwidth", "minimum_packet_rate", "packet_rate_limit"] {
            for prefix in ["policy", "alias"] {
                rules["get_\(prefix)_\(type)_rule"] = reader
                rules["update_\(prefix)_\(type)_rule"] = admin
                rules["delete_\(prefix)_\(type)_rule"] = admin
            }
            rules["create_policy_\(type)_rule"] = admin
        }
        return rules
    }()
}
