extension NetworkPolicy {
    /// Segments and network segment ranges: admin-only, as Neutron's defaults, and so is
    /// setting or seeing a multi-segment network's `segments`.
    static let segments: [String: String] = {
        var rules: [String: String] = ["get_network:segments": admin, "create_network:segments": admin, "update_network:segments": admin]
        for action in ["create", "get", "update", "delete"] {
            rules["\(action)_segment"] = admin
            rules["\(action)_network_segment_range"] = admin
        }
        return rules
    }()
}
