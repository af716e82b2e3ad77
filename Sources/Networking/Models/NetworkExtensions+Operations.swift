extension NetworkExtensions {
    /// The operator's views and controls.
    static let operations: [NetworkExtension] = [
        NetworkExtension(alias: "network-ip-availability", name: "Network IP Availability",
                         description: "Per network and subnet counts of addresses in the pools and in use."),
        NetworkExtension(alias: "dhcp_agent_scheduler", name: "DHCP Agent Scheduler", description: "Which DHCP agent serves a network, and moving it."),
        NetworkExtension(alias: "l3_agent_scheduler", name: "L3 Agent Scheduler", description: "Which L3 agent runs a router, and moving it."),
        NetworkExtension(alias: "floatingip-pools", name: "Floating IP Pools", description: "The subnets floating IPs come from, under /v2.0/floatingip_pools."),
        NetworkExtension(alias: "subnetpool-prefix-ops", name: "Subnet Pool Prefix Operations", description: "add_prefixes and remove_prefixes on subnet pools."),
        NetworkExtension(alias: "service-type", name: "Neutron Service Type Management", description: "The service providers under /v2.0/service-providers."),
    ]
}
