extension NetworkPolicy {
    /// The operator's views and controls: IP availability and the agent schedulers are the
    /// admin's; anyone may list the service providers and the floating IP pools they can see.
    static let operations: [String: String] = [
        "get_network_ip_availability": admin,
        "get_dhcp-networks": admin, "create_dhcp-network": admin, "delete_dhcp-network": admin, "get_dhcp-agents": admin,
        "get_l3-routers": admin, "create_l3-router": admin, "delete_l3-router": admin, "get_l3-agents": admin,
        "get_service_provider": "", "get_floatingip_pool": "",
    ]
}
