import NimbusStore

extension NetworkService {
    /// Whether a port uses the security group, checked inside the deleting transaction.
    func securityGroupInUse(_ id: String, _ x: any SQLExecutor) async throws -> Bool {
        try await x.first("SELECT port_id FROM network_port_security_group WHERE security_group_id = ?", .text(id)) != nil
    }
}
