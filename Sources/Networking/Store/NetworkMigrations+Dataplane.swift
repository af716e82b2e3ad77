import NimbusStore

extension NetworkMigrations {
    static let dataplane: [Migration] = [
        // Which host's DHCP agent serves a network (Neutron's networkdhcpagentbindings, one
        // agent per network). The primary key keeps two controllers from scheduling a network
        // twice: the loser of the race reads the winner's row.
        Migration(service: "network", version: 301, name: "network_301_dhcp_hosts", statements: [
            """
            CREATE TABLE network_dhcp_host (
                network_id TEXT PRIMARY KEY REFERENCES network_network(id) ON DELETE CASCADE, host TEXT NOT NULL)
            """,
            "CREATE INDEX network_dhcp_host_host ON network_dhcp_host (host)",
        ]),
        // Which host's L3 agent runs a router (Neutron's routerl3agentbindings, one agent per
        // router, as for legacy routers); the key keeps a router on one host as above.
        Migration(service: "network", version: 302, name: "network_302_l3_hosts", statements: [
            """
            CREATE TABLE network_l3_host (
                router_id TEXT PRIMARY KEY REFERENCES network_router(id) ON DELETE CASCADE, host TEXT NOT NULL)
            """,
            "CREATE INDEX network_l3_host_host ON network_l3_host (host)",
        ]),
    ]
}
