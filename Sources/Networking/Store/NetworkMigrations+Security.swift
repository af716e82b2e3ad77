import NimbusStore

extension NetworkMigrations {
    /// Security groups and rules, and agents.
    static let security: [Migration] = []
}
