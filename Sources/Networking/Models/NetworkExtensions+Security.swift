extension NetworkExtensions {
    /// Security groups, their default rules, and agents.
    static let security: [NetworkExtension] = [
        NetworkExtension(alias: "security-group", name: "security-group", description: "The security groups extension."),
        NetworkExtension(alias: "stateful-security-group", name: "Stateful security group",
                         description: "Security groups may be stateless (no connection tracking)."),
        NetworkExtension(alias: "security-groups-default-rules", name: "Default rules for security groups",
                         description: "The rules new security groups start with, under /v2.0/default-security-group-rules."),
        NetworkExtension(alias: "security-groups-default-statefulness", name: "Default statefulness of security groups",
                         description: "The stateful value a new security group takes when its create names none, per project or system-wide."),
        NetworkExtension(alias: "security-groups-remote-address-group", name: "Remote address group id field for security group rules",
                         description: "A security group rule's remote side as an address group (remote_address_group_id)."),
        NetworkExtension(alias: "security-groups-normalized-cidr", name: "Normalized CIDR field for security group rules",
                         description: "A rule's remote_ip_prefix as given, and normalized_cidr: that prefix without host bits."),
        NetworkExtension(alias: "agent", name: "agent", description: "The agent management extension."),
    ]
}
