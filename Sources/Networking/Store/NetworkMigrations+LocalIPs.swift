import NimbusStore

extension NetworkMigrations {
    /// Local IPs (`local_ip`): an address of a port that ports associated with it reach on
    /// their own host. An association goes with its local IP and with its port; a local IP's
    /// port is kept while the local IP is there (no cascade: 409 first).
    static let localIPs: [Migration] = [
        Migration(service: "network", version: 507, name: "network_507_local_ips", statements: [
            """
            CREATE TABLE network_local_ip (
                id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL,
                local_port_id TEXT NOT NULL REFERENCES network_port(id), network_id TEXT NOT NULL, local_ip_address TEXT NOT NULL,
                ip_mode TEXT NOT NULL, revision_number BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE INDEX network_local_ip_port ON network_local_ip (local_port_id)",
            """
            CREATE TABLE network_local_ip_association (
                local_ip_id TEXT NOT NULL REFERENCES network_local_ip(id) ON DELETE CASCADE,
                fixed_port_id TEXT NOT NULL REFERENCES network_port(id) ON DELETE CASCADE, fixed_ip TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (local_ip_id, fixed_port_id))
            """,
            "CREATE INDEX network_local_ip_association_port ON network_local_ip_association (fixed_port_id)",
        ]),
    ]
}
