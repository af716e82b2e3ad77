extension NetworkExtensions {
    /// The operator's views and controls.
    static let operations: [NetworkExtension] = [
        NetworkExtension(alias: "network-ip-availability", name: "Network IP Availability",
                         description: "Per network and subnet counts of addresses in the pools and in use."),
    ]
}
