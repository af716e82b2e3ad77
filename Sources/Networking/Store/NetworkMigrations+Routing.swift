import NimbusStore

extension NetworkMigrations {
    /// Routers and floating IPs.
    ///
    /// A router's ports (its gateway on an external network, its interfaces on project
    /// subnets) and a floating IP's port on the external network are rows of `network_port`
    /// with Neutron's device owners (`network:router_gateway`, `network:router_interface`,
    /// `network:floatingip`) and the router's or floating IP's id as `device_id`; addresses,
    /// IPAM and listing are the ports'. What is only the router's or the floating IP's is here.
    static let routing: [Migration] = [
        Migration(service: "network", version: 201, name: "network_201_routing: routers, floating IPs, auto-allocated topologies", statements: [
            """
            CREATE TABLE network_router (
                id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL,
                admin_state_up INTEGER NOT NULL, gateway_network_id TEXT REFERENCES network_network(id),
                enable_snat INTEGER NOT NULL, routes TEXT NOT NULL, distributed INTEGER NOT NULL, ha INTEGER NOT NULL,
                revision_number BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE INDEX network_router_project ON network_router (project_id)",
            // One floating IP per fixed address and external network: the key makes two
            // concurrent associations of one address a constraint violation, never two NATs.
            """
            CREATE TABLE network_floatingip (
                id TEXT PRIMARY KEY, project_id TEXT NOT NULL, description TEXT NOT NULL,
                floating_network_id TEXT NOT NULL REFERENCES network_network(id), floating_port_id TEXT NOT NULL,
                floating_ip_address TEXT NOT NULL, port_id TEXT REFERENCES network_port(id), fixed_ip_address TEXT,
                router_id TEXT REFERENCES network_router(id), status TEXT NOT NULL,
                revision_number BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
                UNIQUE (port_id, fixed_ip_address, floating_network_id))
            """,
            "CREATE INDEX network_floatingip_project ON network_floatingip (project_id)",
            "CREATE INDEX network_floatingip_router ON network_floatingip (router_id)",
            // Get-me-a-network: the one topology each project gets; the key makes a second,
            // concurrent first request a constraint violation that retries and finds the first.
            """
            CREATE TABLE network_auto_allocated_topology (
                project_id TEXT PRIMARY KEY, network_id TEXT NOT NULL REFERENCES network_network(id) ON DELETE CASCADE,
                router_id TEXT REFERENCES network_router(id) ON DELETE SET NULL)
            """,
        ]),
    ]
}
