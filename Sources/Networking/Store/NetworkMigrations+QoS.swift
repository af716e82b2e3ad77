import NimbusStore

extension NetworkMigrations {
    /// QoS policies, their rules, and which networks, ports, floating IPs and router gateways
    /// a policy is attached to (Neutron's `qos_*_policy_bindings`, one policy per resource).
    ///
    /// A rule's type-specific values are JSON text; the key on (policy, type, direction) makes
    /// a second rule of one type and direction in a policy a constraint violation, as in
    /// Neutron. Bindings go with their resource (`ON DELETE CASCADE`) and keep their policy
    /// from being deleted (no cascade: the service answers 409 QosPolicyInUse first).
    static let qos: [Migration] = [
        Migration(service: "network", version: 501, name: "network_501_qos: policies, rules, bindings", statements: [
            """
            CREATE TABLE network_qos_policy (
                id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL,
                shared INTEGER NOT NULL, is_default INTEGER NOT NULL,
                revision_number BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE INDEX network_qos_policy_project ON network_qos_policy (project_id)",
            """
            CREATE TABLE network_qos_rule (
                id TEXT PRIMARY KEY, policy_id TEXT NOT NULL REFERENCES network_qos_policy(id) ON DELETE CASCADE,
                rule_type TEXT NOT NULL, direction TEXT NOT NULL, parameters TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
                UNIQUE (policy_id, rule_type, direction))
            """,
            """
            CREATE TABLE network_qos_network_binding (
                resource_id TEXT PRIMARY KEY REFERENCES network_network(id) ON DELETE CASCADE,
                policy_id TEXT NOT NULL REFERENCES network_qos_policy(id))
            """,
            """
            CREATE TABLE network_qos_port_binding (
                resource_id TEXT PRIMARY KEY REFERENCES network_port(id) ON DELETE CASCADE,
                policy_id TEXT NOT NULL REFERENCES network_qos_policy(id))
            """,
            """
            CREATE TABLE network_qos_floatingip_binding (
                resource_id TEXT PRIMARY KEY REFERENCES network_floatingip(id) ON DELETE CASCADE,
                policy_id TEXT NOT NULL REFERENCES network_qos_policy(id))
            """,
            """
            CREATE TABLE network_qos_router_binding (
                resource_id TEXT PRIMARY KEY REFERENCES network_router(id) ON DELETE CASCADE,
                policy_id TEXT NOT NULL REFERENCES network_qos_policy(id))
            """,
            "CREATE INDEX network_qos_network_binding_policy ON network_qos_network_binding (policy_id)",
            "CREATE INDEX network_qos_port_binding_policy ON network_qos_port_binding (policy_id)",
            "CREATE INDEX network_qos_floatingip_binding_policy ON network_qos_floatingip_binding (policy_id)",
            "CREATE INDEX network_qos_router_binding_policy ON network_qos_router_binding (policy_id)",
        ]),
    ]
}
