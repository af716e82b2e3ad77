import NimbusStore

extension NetworkService {
    /// Whether a port uses the security group, checked inside the deleting transaction.
    /// Ports are another family's; they answer this once they bind security groups.
    func securityGroupInUse(_ id: String, _ x: any SQLExecutor) async throws -> Bool {
        false
    }
}
