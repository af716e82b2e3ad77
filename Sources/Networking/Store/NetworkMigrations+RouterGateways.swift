import NimbusStore

extension NetworkMigrations {
    /// Routers' gateways and NDP proxies. `gateway_port_id` names the router's first gateway
    /// port (the one `external_gateway_info` shows) among its `network:router_gateway` ports,
    /// now that a router may have several (`external-gateway-multihoming`); existing routers'
    /// only gateway port becomes it. `enable_ndp_proxy` is the router's NDP proxy switch.
    /// An NDP proxy goes with its port; its router keeps its gateway while it has any.
    static let routerGateways: [Migration] = [
        Migration(service: "network", version: 601, name: "network_601_router_gateway_port", statements: [
            "ALTER TABLE network_router ADD COLUMN gateway_port_id TEXT",
            "ALTER TABLE network_router ADD COLUMN enable_ndp_proxy INTEGER NOT NULL DEFAULT 0",
            """
            UPDATE network_router SET gateway_port_id = (SELECT MIN(p.id) FROM network_port p
                WHERE p.device_id = network_router.id AND p.device_owner = 'network:router_gateway')
            """,
        ]),
        Migration(service: "network", version: 602, name: "network_602_ndp_proxies", statements: [
            """
            CREATE TABLE network_ndp_proxy (
                id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL,
                router_id TEXT NOT NULL REFERENCES network_router(id), port_id TEXT NOT NULL REFERENCES network_port(id) ON DELETE CASCADE,
                ip_address TEXT NOT NULL, revision_number BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE INDEX network_ndp_proxy_router ON network_ndp_proxy (router_id)",
        ]),
    ]
}
