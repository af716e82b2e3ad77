extension NetworkExtensions {
    /// Networks, subnets, subnet pools, ports, segments, quotas, availability zones, tags.
    static let core: [NetworkExtension] = []
}
