import NimbusStore

extension NetworkMigrations {
    /// Conntrack helpers of routers (Neutron's `l3-conntrack-helper`): the key is Neutron's,
    /// one helper per router, protocol and port; they go with their router.
    static let conntrackHelpers: [Migration] = [
        Migration(service: "network", version: 505, name: "network_505_conntrack_helpers", statements: [
            """
            CREATE TABLE network_conntrack_helper (
                id TEXT PRIMARY KEY, router_id TEXT NOT NULL REFERENCES network_router(id) ON DELETE CASCADE,
                protocol TEXT NOT NULL, port INTEGER NOT NULL, helper TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
                UNIQUE (router_id, protocol, port, helper))
            """,
        ]),
    ]
}
