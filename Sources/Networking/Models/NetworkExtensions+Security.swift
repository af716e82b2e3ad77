extension NetworkExtensions {
    /// Security groups and agents.
    static let security: [NetworkExtension] = []
}
