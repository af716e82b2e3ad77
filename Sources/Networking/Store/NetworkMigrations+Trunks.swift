import NimbusStore

extension NetworkMigrations {
    /// Trunks: a parent port carrying the traffic of sub-ports, each told apart by a VLAN id.
    /// The keys make a port the parent of one trunk at most, a sub-port of one trunk at most,
    /// and a segmentation id used once per trunk; that a port is not both at once is checked
    /// by the service. A port that is either is never deleted under its trunk (no cascade: the
    /// service answers 409 first).
    static let trunks: [Migration] = [
        Migration(service: "network", version: 502, name: "network_502_trunks", statements: [
            """
            CREATE TABLE network_trunk (
                id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL,
                port_id TEXT NOT NULL UNIQUE REFERENCES network_port(id), admin_state_up INTEGER NOT NULL,
                revision_number BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE INDEX network_trunk_project ON network_trunk (project_id)",
            """
            CREATE TABLE network_trunk_subport (
                port_id TEXT PRIMARY KEY REFERENCES network_port(id),
                trunk_id TEXT NOT NULL REFERENCES network_trunk(id) ON DELETE CASCADE,
                segmentation_type TEXT NOT NULL, segmentation_id BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
                UNIQUE (trunk_id, segmentation_type, segmentation_id))
            """,
        ]),
    ]
}
