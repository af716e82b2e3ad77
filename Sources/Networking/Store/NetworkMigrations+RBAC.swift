import NimbusStore

extension NetworkMigrations {
    /// RBAC policies: who else may use (`access_as_shared`) or reach as external
    /// (`access_as_external`) an object. The unique key makes a duplicate policy a
    /// constraint violation even when two creates race.
    static let rbac: [Migration] = [
        Migration(service: "network", version: 401, name: "network_401_rbac_policies", statements: [
            """
            CREATE TABLE network_rbac_policy (
                id TEXT PRIMARY KEY, project_id TEXT NOT NULL, object_type TEXT NOT NULL, object_id TEXT NOT NULL,
                action TEXT NOT NULL, target_project TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
                UNIQUE (object_type, object_id, action, target_project))
            """,
            "CREATE INDEX network_rbac_policy_project ON network_rbac_policy (project_id)",
            // Networks shared or external before policies existed get their owner's wildcard
            // policies. The ids must be new UUIDs without a portable SQL generator: the shared
            // one takes the network's id, the external one that id's undashed form.
            """
            INSERT INTO network_rbac_policy (id, project_id, object_type, object_id, action, target_project, created_at)
            SELECT id, project_id, 'network', id, 'access_as_shared', '*', created_at FROM network_network WHERE shared = 1
            """,
            """
            INSERT INTO network_rbac_policy (id, project_id, object_type, object_id, action, target_project, created_at)
            SELECT REPLACE(id, '-', ''), project_id, 'network', id, 'access_as_external', '*', created_at FROM network_network WHERE external = 1
            """,
        ]),
    ]
}
