extension NetworkPolicy {
    /// The operator's views and controls: IP availability.
    static let operations: [String: String] = [
        "get_network_ip_availability": admin,
    ]
}
