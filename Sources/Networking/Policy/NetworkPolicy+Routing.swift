extension NetworkPolicy {
    /// Routers, floating IPs and auto-allocated topologies. Choosing a gateway's or a floating IP's address and turning
    /// SNAT off are admin-only, as in Neutron: addresses on an external network are the
    /// operator's, and SNAT off exposes the project's addresses upstream.
    static let routing: [String: String] = {
        let owner = "rule:network:admin_or_owner"
        var rules: [String: String] = [
            "create_router": "", "get_router": owner, "update_router": owner, "delete_router": owner,
            "add_router_interface": owner, "remove_router_interface": owner,
            "add_extraroutes": owner, "remove_extraroutes": owner,
            "add_external_gateways": owner, "update_external_gateways": owner, "remove_external_gateways": owner,
            "create_ndp_proxy": owner, "get_ndp_proxy": owner, "update_ndp_proxy": owner, "delete_ndp_proxy": owner,
            "create_router:distributed": admin, "get_router:distributed": admin, "update_router:distributed": admin,
            "create_router:ha": admin, "get_router:ha": admin, "update_router:ha": admin,

            "create_floatingip": "", "get_floatingip": owner, "update_floatingip": owner, "delete_floatingip": owner,
            "create_floatingip:floating_ip_address": admin,
            "get_auto_allocated_topology": owner, "delete_auto_allocated_topology": owner,
        ]
        // Sub-attributes of external_gateway_info, checked by the router code itself.
        for action in ["create_router", "update_router"] {
            rules["\(action):external_gateway_info:enable_snat"] = admin
            rules["\(action):external_gateway_info:external_fixed_ips"] = admin
        }
        return rules
    }()
}
