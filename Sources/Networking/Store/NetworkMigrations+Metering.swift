import NimbusStore

extension NetworkMigrations {
    /// Metering labels and their rules (Neutron's `metering` service plugin): which traffic of
    /// a project's routers to count. Rules go with their label.
    static let metering: [Migration] = [
        Migration(service: "network", version: 504, name: "network_504_metering", statements: [
            """
            CREATE TABLE network_metering_label (
                id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL, shared INTEGER NOT NULL,
                created_at DOUBLE PRECISION NOT NULL)
            """,
            """
            CREATE TABLE network_metering_label_rule (
                id TEXT PRIMARY KEY, label_id TEXT NOT NULL REFERENCES network_metering_label(id) ON DELETE CASCADE,
                direction TEXT NOT NULL, excluded INTEGER NOT NULL, remote_ip_prefix TEXT, source_ip_prefix TEXT,
                destination_ip_prefix TEXT, created_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE INDEX network_metering_label_rule_label ON network_metering_label_rule (label_id)",
        ]),
    ]
}
