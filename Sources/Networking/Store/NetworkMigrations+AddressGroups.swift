import NimbusStore

extension NetworkMigrations {
    /// Address groups: named sets of CIDRs (JSON text, normalised and sorted).
    static let addressGroups: [Migration] = [
        Migration(service: "network", version: 403, name: "network_403_address_groups", statements: [
            """
            CREATE TABLE network_address_group (
                id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL, addresses TEXT NOT NULL,
                revision_number BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE INDEX network_address_group_project ON network_address_group (project_id)",
        ]),
        // A security group rule's remote side may be an address group's CIDRs.
        Migration(service: "network", version: 405, name: "network_405_rule_remote_address_groups", statements: [
            "ALTER TABLE network_security_group_rule ADD COLUMN remote_address_group_id TEXT REFERENCES network_address_group(id)",
            "CREATE INDEX network_security_group_rule_address_group ON network_security_group_rule (remote_address_group_id)",
        ]),
    ]
}
