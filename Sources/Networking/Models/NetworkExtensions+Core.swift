extension NetworkExtensions {
    /// Networks, subnets, subnet pools, ports, quotas, availability zones, tags.
    static let core: [NetworkExtension] = [
        NetworkExtension(alias: "provider", name: "Provider Network", description: "Provider network attributes: network type, physical network, segmentation id."),
        NetworkExtension(alias: "external-net", name: "Neutron external network", description: "The router:external attribute of networks."),
        NetworkExtension(alias: "subnet-external-network", name: "Subnet External Network",
                         description: "The subnets of an external network are visible to every project, as the network is."),
        NetworkExtension(alias: "net-mtu", name: "Network MTU", description: "The mtu attribute of networks."),
        NetworkExtension(alias: "net-mtu-writable", name: "Network MTU (writable)", description: "The mtu of a network can be set and changed."),
        NetworkExtension(alias: "subnet_allocation", name: "Subnet Allocation", description: "Subnets carved from subnet pools."),
        NetworkExtension(alias: "default-subnetpools", name: "Default Subnetpools", description: "Subnets from the default subnet pool of their IP version."),
        NetworkExtension(alias: "port-security", name: "Port Security", description: "The port_security_enabled attribute of networks and ports."),
        NetworkExtension(alias: "allowed-address-pairs", name: "Allowed Address Pairs", description: "Further addresses a port may send from."),
        NetworkExtension(alias: "extra_dhcp_opt", name: "Neutron Extra DHCP options", description: "DHCP options of a port (extra_dhcp_opts)."),
        NetworkExtension(alias: "binding", name: "Port Binding", description: "The binding:* attributes of ports."),
        NetworkExtension(alias: "quotas", name: "Quota management support", description: "Per-project limits under /v2.0/quotas."),
        NetworkExtension(alias: "quota_details", name: "Quota details management support", description: "Used, limit and reserved counts of each quota."),
        NetworkExtension(alias: "quota-check-limit", name: "Quota engine limit check", description: "check_limit refuses a limit below the usage."),
        NetworkExtension(alias: "availability_zone", name: "Availability Zone", description: "The availability zones under /v2.0/availability_zones."),
        NetworkExtension(alias: "network_availability_zone", name: "Network Availability Zone", description: "Availability zone hints and zones of networks."),
        NetworkExtension(alias: "standard-attr-tag", name: "Tag support for resources with standard attribute",
                         description: "Tags on networks, subnets, subnet pools, ports, routers, floating IPs and security groups."),
        // The original name of tags on networks, which older clients still look for.
        NetworkExtension(alias: "tag", name: "Tag support", description: "Tags on networks."),
        NetworkExtension(alias: "ip-substring-filtering", name: "IP address substring filtering",
                         description: "Ports filtered by part of an address: fixed_ips=ip_address_substr=…"),
        NetworkExtension(alias: "standard-attr-description", name: "standard-attr-description", description: "The description attribute of every resource."),
        NetworkExtension(alias: "standard-attr-timestamp", name: "Resource timestamps", description: "created_at and updated_at of every resource."),
        NetworkExtension(alias: "standard-attr-revisions", name: "Resource revision numbers", description: "The revision_number of every resource."),
        NetworkExtension(alias: "project-id", name: "project_id field enabled", description: "project_id beside tenant_id on every resource."),
        NetworkExtension(alias: "pagination", name: "Pagination support", description: "limit, marker and page_reverse on every list."),
        NetworkExtension(alias: "sorting", name: "Sorting support", description: "sort_key and sort_dir on every list."),
    ]
}
