extension NetworkExtensions {
    /// Security groups and agents.
    static let security: [NetworkExtension] = [
        NetworkExtension(alias: "security-group", name: "security-group", description: "The security groups extension."),
        NetworkExtension(alias: "stateful-security-group", name: "Stateful security group",
                         description: "Security groups may be stateless (no connection tracking)."),
        NetworkExtension(alias: "agent", name: "agent", description: "The agent management extension."),
    ]
}
