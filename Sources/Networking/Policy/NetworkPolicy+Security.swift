extension NetworkPolicy {
    /// Security groups, rules and agents.
    static let security: [String: String] = [:]
}
