extension NetworkPolicy {
    /// Networks, subnets, subnet pools, ports, quotas, availability zones.
    ///
    /// Targets carry the resource's `project_id`, `network_project_id` (the owner of the
    /// network a subnet or port is on) and, as `True`/`False`, `shared` and `external`.
    static let core: [String: String] = {
        let owner = "rule:network:admin_or_owner", networkOwner = "rule:network:admin_or_network_owner"
        var rules: [String: String] = [
            "network:shared": "True:%(shared)s",
            "network:external": "True:%(external)s",
            "network:admin_or_network_owner": "rule:network:context_is_admin or project_id:%(network_project_id)s",

            "create_network": "", "get_network": "\(owner) or rule:network:shared or rule:network:external",
            "update_network": owner, "delete_network": owner,
            "create_network:shared": admin, "create_network:router:external": admin, "create_network:is_default": admin,
            "update_network:shared": admin, "update_network:router:external": admin, "update_network:is_default": admin,

            "create_subnet": networkOwner, "get_subnet": "\(owner) or rule:network:shared or rule:network:external",
            "update_subnet": networkOwner, "delete_subnet": networkOwner,

            "create_subnetpool": "", "get_subnetpool": "\(owner) or rule:network:shared",
            "update_subnetpool": owner, "delete_subnetpool": owner,
            "create_subnetpool:shared": admin, "create_subnetpool:is_default": admin, "update_subnetpool:is_default": admin,

            "create_port": "", "get_port": "\(owner) or \(networkOwner)",
            "update_port": "\(owner) or \(networkOwner)", "delete_port": "\(owner) or \(networkOwner)",
            "create_port:mac_address": networkOwner, "create_port:port_security_enabled": networkOwner,
            "update_port:port_security_enabled": networkOwner, "update_port:mac_address": admin,
            "create_port:allowed_address_pairs": networkOwner, "update_port:allowed_address_pairs": networkOwner,
            "create_port:device_owner": networkOwner, "update_port:device_owner": networkOwner,
            // Choosing an address on someone else's (shared) network could take its router's.
            "create_port:fixed_ips:ip_address": networkOwner, "update_port:fixed_ips:ip_address": networkOwner,

            "get_quota": "rule:network:context_is_admin or project_id:%(project_id)s",
            "update_quota": admin, "delete_quota": admin,
            "get_availability_zone": "",
        ]
        for action in ["create_network", "update_network", "get_network"] {
            for attribute in ["provider:network_type", "provider:physical_network", "provider:segmentation_id"] { rules["\(action):\(attribute)"] = admin }
        }
        for action in ["create_port", "update_port", "get_port"] {
            for attribute in ["binding:host_id", "binding:profile"] { rules["\(action):\(attribute)"] = admin }
        }
        rules["get_port:binding:vif_type"] = admin
        rules["get_port:binding:vif_details"] = admin
        return rules
    }()
}
