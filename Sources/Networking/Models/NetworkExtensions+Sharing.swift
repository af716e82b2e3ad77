extension NetworkExtensions {
    /// RBAC policies, address scopes and address groups.
    static let sharing: [NetworkExtension] = [
        NetworkExtension(alias: "rbac-policies", name: "RBAC Policies",
                         description: "Networks and security groups shared with, or networks made external to, chosen projects through /v2.0/rbac-policies."),
        NetworkExtension(alias: "address-scope", name: "Address scope",
                         description: "Address scopes: subnet pools whose prefixes are unique across the scope."),
        NetworkExtension(alias: "address-group", name: "Address group", description: "Named sets of CIDRs under /v2.0/address-groups."),
    ]
}
