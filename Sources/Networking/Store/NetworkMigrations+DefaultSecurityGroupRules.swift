import NimbusStore

extension NetworkMigrations {
    /// The rules a new security group starts with (Neutron's default security group rules):
    /// `remote_group_id` `PARENT` is the new group itself. Seeded with Neutron's four: egress
    /// for every group, ingress from the group's own members for default groups only.
    static let defaultSecurityGroupRules: [Migration] = [
        Migration(service: "network", version: 404, name: "network_404_default_security_group_rules", statements: [
            """
            CREATE TABLE network_default_security_group_rule (
                id TEXT PRIMARY KEY, direction TEXT NOT NULL, ethertype TEXT NOT NULL, protocol TEXT,
                port_range_min BIGINT, port_range_max BIGINT, remote_ip_prefix TEXT, remote_group_id TEXT,
                description TEXT NOT NULL, used_in_default_sg INTEGER NOT NULL, used_in_non_default_sg INTEGER NOT NULL)
            """,
            """
            INSERT INTO network_default_security_group_rule (id, direction, ethertype, remote_group_id, description, used_in_default_sg, used_in_non_default_sg)
            VALUES ('d7aff951-771e-4332-ac60-99f255613dad', 'egress', 'IPv4', NULL, '', 1, 1),
                   ('0bc39698-cdda-4320-a471-a52907db9f15', 'egress', 'IPv6', NULL, '', 1, 1),
                   ('ce7a06bf-d11f-4b80-b709-6dd25b956a2a', 'ingress', 'IPv4', 'PARENT', '', 1, 0),
                   ('23771bef-e9fe-4edb-95eb-b12a15263889', 'ingress', 'IPv6', 'PARENT', '', 1, 0)
            """,
        ]),
    ]
}
