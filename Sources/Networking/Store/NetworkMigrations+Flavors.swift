import NimbusStore

extension NetworkMigrations {
    /// Network flavors and service profiles (Neutron's `flavors` plugin), and which profiles a
    /// flavor offers; a profile offered by a flavor is kept (no cascade: 409 first).
    static let flavors: [Migration] = [
        Migration(service: "network", version: 506, name: "network_506_flavors", statements: [
            """
            CREATE TABLE network_flavor (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL, service_type TEXT NOT NULL, enabled INTEGER NOT NULL,
                created_at DOUBLE PRECISION NOT NULL)
            """,
            """
            CREATE TABLE network_service_profile (
                id TEXT PRIMARY KEY, description TEXT NOT NULL, driver TEXT NOT NULL, enabled INTEGER NOT NULL, metainfo TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL)
            """,
            """
            CREATE TABLE network_flavor_service_profile (
                flavor_id TEXT NOT NULL REFERENCES network_flavor(id) ON DELETE CASCADE,
                profile_id TEXT NOT NULL REFERENCES network_service_profile(id), PRIMARY KEY (flavor_id, profile_id))
            """,
        ]),
    ]
}
