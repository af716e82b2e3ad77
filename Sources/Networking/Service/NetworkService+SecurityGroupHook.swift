import NimbusStore

extension NetworkService {
    /// The security groups a port of `project` gets when it asks for none and has port
    /// security: the project's `default` group. The security group family replaces this with
    /// the real lookup (creating the default group on first use); until then there is none.
    func defaultSecurityGroupIDs(project: String, _ x: any SQLExecutor) async throws -> [String] {
        []
    }
}
