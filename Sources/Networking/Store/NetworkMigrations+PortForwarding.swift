import NimbusStore

extension NetworkMigrations {
    /// Floating IP port forwardings: one external port of a floating IP DNATed to a port and
    /// address inside. The keys are Neutron's: an external port and protocol once per floating
    /// IP, an internal address, port and protocol once. They go with their floating IP and with
    /// their internal port.
    static let portForwardings: [Migration] = [
        Migration(service: "network", version: 503, name: "network_503_port_forwardings", statements: [
            """
            CREATE TABLE network_port_forwarding (
                id TEXT PRIMARY KEY, floatingip_id TEXT NOT NULL REFERENCES network_floatingip(id) ON DELETE CASCADE,
                internal_port_id TEXT NOT NULL REFERENCES network_port(id) ON DELETE CASCADE,
                internal_ip_address TEXT NOT NULL, internal_port INTEGER NOT NULL, external_port INTEGER NOT NULL,
                protocol TEXT NOT NULL, description TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
                UNIQUE (floatingip_id, protocol, external_port),
                UNIQUE (internal_port_id, internal_ip_address, protocol, internal_port))
            """,
            "CREATE INDEX network_port_forwarding_port ON network_port_forwarding (internal_port_id)",
        ]),
    ]
}
