import NimbusStore

extension NetworkMigrations {
    /// Networks, segments and their allocations, subnets, subnet pools, ports and IP allocations.
    static let core: [Migration] = []
}
