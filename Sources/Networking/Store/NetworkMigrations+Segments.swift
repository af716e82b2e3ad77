import NimbusStore

extension NetworkMigrations {
    /// Network segment ranges and the order of a network's segments.
    ///
    /// Only the ranges an admin made are rows: the default ranges are ML2's configuration
    /// (`network_vlan_ranges`, `vni_ranges`, `tunnel_id_ranges`) and shown from it, so a changed
    /// configuration changes them at the next start, as Neutron recreates its default ranges.
    /// A private range has a `project_id`; a shared one none. Tunnel ranges have `''` as
    /// physical network, as the allocation table does. `segment_index` orders a network's
    /// segments (a created segment goes last), which is also the order ports bind in.
    static let segments: [Migration] = [
        Migration(service: "network", version: 610, name: "network_610_segment_ranges", statements: [
            """
            CREATE TABLE network_segment_range (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL, shared INTEGER NOT NULL, project_id TEXT,
                network_type TEXT NOT NULL, physical_network TEXT NOT NULL, minimum BIGINT NOT NULL, maximum BIGINT NOT NULL,
                revision_number BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE INDEX network_segment_range_type ON network_segment_range (network_type, physical_network)",
            "ALTER TABLE network_segment ADD COLUMN segment_index INTEGER NOT NULL DEFAULT 0",
        ]),
    ]
}
