extension NetworkPolicy {
    /// Networks, subnets, subnet pools, ports, segments, quotas, availability zones.
    static let core: [String: String] = [:]
}
