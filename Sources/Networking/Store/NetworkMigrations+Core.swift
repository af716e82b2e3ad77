import NimbusStore

extension NetworkMigrations {
    /// Networks, segments and their allocations, subnets, subnet pools, ports and IP allocations.
    ///
    /// What must never be handed out twice is guarded by a key the database enforces, so a
    /// lost race is a constraint violation (and a retry), never a duplicate: a segmentation id
    /// by `network_segment_allocation`'s primary key, an address by `network_ip_allocation`'s,
    /// a MAC address by `network_port`'s UNIQUE (network_id, mac_address).
    /// Booleans are 0/1 integers, lists and objects JSON text, times epoch seconds.
    static let core: [Migration] = [
        Migration(service: "network", version: 1, name: "network_001_core", statements: [
            """
            CREATE TABLE network_network (
                id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL,
                admin_state_up INTEGER NOT NULL, shared INTEGER NOT NULL, external INTEGER NOT NULL, is_default INTEGER NOT NULL,
                mtu INTEGER NOT NULL, port_security_enabled INTEGER NOT NULL, availability_zone_hints TEXT NOT NULL,
                revision_number BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE INDEX network_network_project ON network_network (project_id)",
            """
            CREATE TABLE network_segment (
                id TEXT PRIMARY KEY, network_id TEXT NOT NULL REFERENCES network_network(id) ON DELETE CASCADE,
                name TEXT, description TEXT NOT NULL, network_type TEXT NOT NULL, physical_network TEXT, segmentation_id BIGINT,
                revision_number BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE INDEX network_segment_network ON network_segment (network_id)",
            // Flat networks hold segmentation id 0 of their physical network; tunnels '' as physical network.
            """
            CREATE TABLE network_segment_allocation (
                network_type TEXT NOT NULL, physical_network TEXT NOT NULL, segmentation_id BIGINT NOT NULL,
                network_id TEXT NOT NULL REFERENCES network_network(id) ON DELETE CASCADE,
                PRIMARY KEY (network_type, physical_network, segmentation_id))
            """,
            """
            CREATE TABLE network_subnetpool (
                id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL,
                ip_version INTEGER NOT NULL, prefixes TEXT NOT NULL, default_prefixlen INTEGER NOT NULL,
                min_prefixlen INTEGER NOT NULL, max_prefixlen INTEGER NOT NULL, shared INTEGER NOT NULL, is_default INTEGER NOT NULL,
                revision_number BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
            """,
            """
            CREATE TABLE network_subnet (
                id TEXT PRIMARY KEY, project_id TEXT NOT NULL, network_id TEXT NOT NULL REFERENCES network_network(id),
                name TEXT NOT NULL, description TEXT NOT NULL, ip_version INTEGER NOT NULL, cidr TEXT NOT NULL, gateway_ip TEXT,
                allocation_pools TEXT NOT NULL, dns_nameservers TEXT NOT NULL, host_routes TEXT NOT NULL, enable_dhcp INTEGER NOT NULL,
                ipv6_ra_mode TEXT, ipv6_address_mode TEXT, subnetpool_id TEXT REFERENCES network_subnetpool(id),
                revision_number BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE INDEX network_subnet_network ON network_subnet (network_id)",
            "CREATE INDEX network_subnet_pool ON network_subnet (subnetpool_id)",
            """
            CREATE TABLE network_port (
                id TEXT PRIMARY KEY, project_id TEXT NOT NULL, network_id TEXT NOT NULL REFERENCES network_network(id),
                name TEXT NOT NULL, description TEXT NOT NULL, mac_address TEXT NOT NULL, admin_state_up INTEGER NOT NULL,
                status TEXT NOT NULL, device_id TEXT NOT NULL, device_owner TEXT NOT NULL, port_security_enabled INTEGER NOT NULL,
                allowed_address_pairs TEXT NOT NULL, host_id TEXT NOT NULL, vif_type TEXT NOT NULL, vif_details TEXT NOT NULL,
                vnic_type TEXT NOT NULL, profile TEXT NOT NULL,
                revision_number BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
                UNIQUE (network_id, mac_address))
            """,
            "CREATE INDEX network_port_device ON network_port (device_id)",
            "CREATE INDEX network_port_project ON network_port (project_id)",
            """
            CREATE TABLE network_ip_allocation (
                network_id TEXT NOT NULL, ip_address TEXT NOT NULL, subnet_id TEXT NOT NULL REFERENCES network_subnet(id),
                port_id TEXT NOT NULL REFERENCES network_port(id) ON DELETE CASCADE,
                PRIMARY KEY (network_id, ip_address))
            """,
            "CREATE INDEX network_ip_allocation_port ON network_ip_allocation (port_id)",
            "CREATE INDEX network_ip_allocation_subnet ON network_ip_allocation (subnet_id)",
            """
            CREATE TABLE network_port_security_group (
                port_id TEXT NOT NULL REFERENCES network_port(id) ON DELETE CASCADE, security_group_id TEXT NOT NULL,
                PRIMARY KEY (port_id, security_group_id))
            """,
            "CREATE INDEX network_port_security_group_group ON network_port_security_group (security_group_id)",
            // Tags of every tagged resource family; ids are UUIDs, so one table serves them all.
            "CREATE TABLE network_tag (resource_id TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (resource_id, tag))",
            "CREATE TABLE network_quota (project_id TEXT NOT NULL, resource TEXT NOT NULL, hard_limit BIGINT NOT NULL, PRIMARY KEY (project_id, resource))",
            // One row per project that ever created a limited resource: creates lock it so a
            // count-then-insert cannot be raced past the limit on PostgreSQL.
            "CREATE TABLE network_quota_lock (project_id TEXT PRIMARY KEY)",
        ]),
        // extra_dhcp_opt: DHCP options the port's DHCP server hands out (tftp-server, bootfile-name…).
        Migration(service: "network", version: 2, name: "network_002_extra_dhcp_opts", statements: [
            "ALTER TABLE network_port ADD COLUMN extra_dhcp_opts TEXT NOT NULL DEFAULT '[]'",
        ]),
    ]
}
