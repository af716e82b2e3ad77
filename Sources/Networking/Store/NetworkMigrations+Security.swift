import NimbusStore

extension NetworkMigrations {
    /// Security groups and rules, and agents.
    static let security: [Migration] = [
        Migration(service: "network", version: 101, name: "network_101_security: security groups, rules, agents", statements: [
            """
            CREATE TABLE network_security_group (
                id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL,
                stateful INTEGER NOT NULL, tags TEXT NOT NULL, revision_number BIGINT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE INDEX network_security_group_project ON network_security_group (project_id)",
            // A project's default group. The primary key makes its creation race-free (the
            // loser of two concurrent first uses finds the winner's row), and create
            // transactions lock the row to count the project's groups and rules.
            "CREATE TABLE network_default_security_group (project_id TEXT PRIMARY KEY, security_group_id TEXT NOT NULL)",
            """
            CREATE TABLE network_security_group_rule (
                id TEXT PRIMARY KEY,
                security_group_id TEXT NOT NULL REFERENCES network_security_group(id) ON DELETE CASCADE,
                project_id TEXT NOT NULL, direction TEXT NOT NULL, ethertype TEXT NOT NULL, protocol TEXT,
                port_range_min BIGINT, port_range_max BIGINT, remote_ip_prefix TEXT,
                remote_group_id TEXT REFERENCES network_security_group(id) ON DELETE CASCADE,
                description TEXT NOT NULL, revision_number BIGINT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE INDEX network_security_group_rule_group ON network_security_group_rule (security_group_id)",
            "CREATE INDEX network_security_group_rule_remote ON network_security_group_rule (remote_group_id)",
            "CREATE INDEX network_security_group_rule_project ON network_security_group_rule (project_id)",
            """
            CREATE TABLE network_agent (
                id TEXT PRIMARY KEY, agent_type TEXT NOT NULL, binary_name TEXT NOT NULL, host TEXT NOT NULL, topic TEXT NOT NULL,
                availability_zone TEXT, admin_state_up INTEGER NOT NULL, description TEXT, configurations TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL, started_at DOUBLE PRECISION NOT NULL, heartbeat_at DOUBLE PRECISION NOT NULL,
                UNIQUE (agent_type, host))
            """,
        ]),
    ]
}
