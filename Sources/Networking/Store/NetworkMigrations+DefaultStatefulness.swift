import NimbusStore

extension NetworkMigrations {
    /// The default `stateful` of new security groups (`security-groups-default-statefulness`):
    /// one setting per project, and one system-wide whose `project_id` is stored as ''
    /// (so the unique key covers it too; the API shows it as null).
    static let defaultStatefulness: [Migration] = [
        Migration(service: "network", version: 600, name: "network_600_security_group_default_statefulness", statements: [
            """
            CREATE TABLE network_sg_default_statefulness (
                id TEXT PRIMARY KEY, project_id TEXT NOT NULL UNIQUE, stateful INTEGER NOT NULL,
                revision_number BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
            """,
        ]),
    ]
}
