extension NetworkPolicy {
    /// Trunks and their sub-ports: the owner's, as in Neutron.
    static let trunks: [String: String] = {
        let owner = "rule:network:admin_or_owner"
        return ["create_trunk": owner, "get_trunk": owner, "update_trunk": owner, "delete_trunk": owner,
                "get_subports": owner, "add_subports": owner, "remove_subports": owner]
    }()
}

extension NetworkPolicy {
    /// Port forwardings: the floating IP owner's, as in Neutron.
    static let portForwardings: [String: String] = {
        let owner = "rule:network:admin_or_owner"
        return ["create_floatingip_port_forwarding": owner, "get_floatingip_port_forwarding": owner,
                "update_floatingip_port_forwarding": owner, "delete_floatingip_port_forwarding": owner]
    }()
}

extension NetworkPolicy {
    /// Metering: the operator's, as in Neutron.
    static let metering: [String: String] = [
        "create_metering_label": admin, "get_metering_label": admin, "delete_metering_label": admin,
        "create_metering_label_rule": admin, "get_metering_label_rule": admin, "delete_metering_label_rule": admin,
    ]
}

extension NetworkPolicy {
    /// Conntrack helpers: the router owner's, as in Neutron.
    static let conntrackHelpers: [String: String] = [
        "create_router_conntrack_helper": "rule:network:admin_or_owner", "get_router_conntrack_helper": "rule:network:admin_or_owner",
        "update_router_conntrack_helper": "rule:network:admin_or_owner", "delete_router_conntrack_helper": "rule:network:admin_or_owner",
    ]
}

extension NetworkPolicy {
    /// The service plugins' rules: QoS, trunks, port forwardings, metering, conntrack helpers.
    static var services: [String: String] {
        [qos, trunks, portForwardings, metering, conntrackHelpers, flavors, localIPs].reduce(into: [:]) { all, rules in all.merge(rules) { a, _ in a } }
    }
}

extension NetworkPolicy {
    /// Flavors: everyone reads them; the rest is the operator's, as in Neutron.
    static let flavors: [String: String] = [
        "get_flavor": "", "create_flavor": admin, "update_flavor": admin, "delete_flavor": admin,
        "get_service_profile": admin, "create_service_profile": admin, "update_service_profile": admin, "delete_service_profile": admin,
        "create_flavor_service_profile": admin, "delete_flavor_service_profile": admin,
    ]
}

extension NetworkPolicy {
    /// Local IPs and their associations: the owner's, as in Neutron.
    static let localIPs: [String: String] = {
        let owner = "rule:network:admin_or_owner"
        return ["create_local_ip": owner, "get_local_ip": owner, "update_local_ip": owner, "delete_local_ip": owner,
                "create_local_ip_port_association": owner, "get_local_ip_port_association": owner, "delete_local_ip_port_association": owner]
    }()
}
