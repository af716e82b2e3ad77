extension NetworkExtensions {
    /// RBAC policies.
    static let rbac: [NetworkExtension] = [
        NetworkExtension(alias: "rbac-policies", name: "RBAC Policies",
                         description: "Networks shared with, or made external to, chosen projects through /v2.0/rbac-policies."),
    ]
}
