extension NetworkExtensions {
    /// Routers, floating IPs and auto-allocated topologies.
    static let routing: [NetworkExtension] = [
        NetworkExtension(alias: "router", name: "Neutron L3 Router", description: "Routers with an external gateway and interfaces, and floating IPs."),
        NetworkExtension(alias: "ext-gw-mode", name: "Neutron L3 Configurable external gateway mode", description: "The enable_snat flag of a router's external gateway."),
        NetworkExtension(alias: "extraroute", name: "Neutron Extra Route", description: "Static routes on routers."),
        NetworkExtension(alias: "extraroute-atomic", name: "Atomically add/remove extra routes", description: "add_extraroutes and remove_extraroutes on routers."),
        NetworkExtension(alias: "auto-allocated-topology", name: "Auto Allocated Topology Services",
                         description: "Get-me-a-network: a project's network, subnet and router, made on first ask."),
        NetworkExtension(alias: "external-gateway-multihoming", name: "Neutron L3 External Gateway Multihoming",
                         description: "Several external gateway ports per router; the first carries the default route, SNAT and floating IPs."),
        NetworkExtension(alias: "l3-ndp-proxy", name: "L3 NDP Proxy", description: "NDP proxies: a router's gateway answers for an IPv6 address behind it."),
        NetworkExtension(alias: "l3-ext-ndp-proxy", name: "Router support to enable NDP proxy", description: "The enable_ndp_proxy attribute of routers."),
        NetworkExtension(alias: "fip-port-details", name: "Floating IP Port Details Extension", description: "The port_details of a floating IP's port."),
    ]
}
