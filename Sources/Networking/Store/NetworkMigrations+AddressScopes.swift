import NimbusStore

extension NetworkMigrations {
    /// Address scopes: subnet pools in one scope hold distinct prefixes (checked when a pool
    /// joins or grows, under the scope's row lock).
    static let addressScopes: [Migration] = [
        Migration(service: "network", version: 402, name: "network_402_address_scopes", statements: [
            """
            CREATE TABLE network_address_scope (
                id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, ip_version INTEGER NOT NULL, shared INTEGER NOT NULL)
            """,
            "ALTER TABLE network_subnetpool ADD COLUMN address_scope_id TEXT REFERENCES network_address_scope(id)",
            "CREATE INDEX network_subnetpool_address_scope ON network_subnetpool (address_scope_id)",
        ]),
    ]
}
