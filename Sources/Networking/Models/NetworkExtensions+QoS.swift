extension NetworkExtensions {
    /// QoS: policies, rules and the qos_policy_id of networks, ports, floating IPs and router
    /// gateways. Stored and validated; no driver enforces the rules yet, which
    /// `/qos/rule-types` says by listing no supported type.
    static let qos: [NetworkExtension] = [
        NetworkExtension(alias: "qos", name: "Quality of Service", description: "QoS policies and rules, attached to networks and ports."),
        NetworkExtension(alias: "qos-bw-limit-direction", name: "Direction for QoS bandwidth limit rule",
                         description: "Bandwidth limit rules apply to ingress or egress traffic."),
        NetworkExtension(alias: "qos-bw-minimum-ingress", name: "Ingress direction for QoS minimum bandwidth rule",
                         description: "Minimum bandwidth rules may apply to ingress traffic."),
        NetworkExtension(alias: "qos-default", name: "QoS default policy", description: "A project's default QoS policy, given to its new networks."),
        NetworkExtension(alias: "qos-fip", name: "Floating IP QoS", description: "The qos_policy_id of floating IPs."),
        NetworkExtension(alias: "qos-gateway-ip", name: "Router gateway IP QoS", description: "The qos_policy_id of a router's external gateway."),
        NetworkExtension(alias: "qos-port-network-policy", name: "QoS port network policy ID",
                         description: "The qos_network_policy_id of ports: the policy of their network."),
        NetworkExtension(alias: "qos-pps", name: "QoS packet rate limit rule", description: "Packet rate limit rules."),
        NetworkExtension(alias: "qos-pps-minimum", name: "QoS minimum packet rate rule", description: "Minimum packet rate rules."),
        NetworkExtension(alias: "qos-pps-minimum-rule-alias", name: "QoS minimum packet rate rule alias",
                         description: "Minimum packet rate rules found by id alone."),
        NetworkExtension(alias: "qos-rule-type-details", name: "QoS rule type details", description: "The drivers that enforce a rule type."),
        NetworkExtension(alias: "qos-rule-type-filter", name: "QoS rule type filter", description: "all_rules and all_supported on the rule type list."),
        NetworkExtension(alias: "qos-rules-alias", name: "QoS rules alias API", description: "QoS rules found by id alone, without their policy."),
    ]
}
