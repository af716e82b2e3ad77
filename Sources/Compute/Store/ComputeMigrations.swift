import NimbusStore

/// The compute service's schema. A server's rarely-queried fields live in one JSON column
/// (`extra`); what lists filter and sort on, and what state machines compare, are columns.
public enum ComputeMigrations {
    public static let all: [Migration] = [
        Migration(service: "compute", version: 1, name: "flavors, keypairs, servers, hosts, actions, quotas, messages", statements: [
            """
            CREATE TABLE compute_flavor (
                id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, ram BIGINT NOT NULL, vcpus BIGINT NOT NULL, disk BIGINT NOT NULL,
                ephemeral BIGINT NOT NULL, swap BIGINT NOT NULL, rxtx_factor DOUBLE PRECISION NOT NULL, is_public INTEGER NOT NULL,
                disabled INTEGER NOT NULL, description TEXT, extra_specs TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE TABLE compute_flavor_access (flavor_id TEXT NOT NULL REFERENCES compute_flavor(id) ON DELETE CASCADE, project_id TEXT NOT NULL, PRIMARY KEY (flavor_id, project_id))",
            """
            CREATE TABLE compute_keypair (
                id BIGINT NOT NULL, user_id TEXT NOT NULL, name TEXT NOT NULL, public_key TEXT NOT NULL, fingerprint TEXT NOT NULL,
                type TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (user_id, name))
            """,
            """
            CREATE TABLE compute_instance (
                uuid TEXT PRIMARY KEY, name TEXT NOT NULL, project_id TEXT NOT NULL, user_id TEXT NOT NULL,
                vm_state TEXT NOT NULL, task_state TEXT, power_state INTEGER NOT NULL, host TEXT, node TEXT, availability_zone TEXT,
                flavor TEXT NOT NULL, new_flavor TEXT, image_ref TEXT NOT NULL, key_name TEXT, metadata TEXT NOT NULL, tags TEXT NOT NULL,
                locked INTEGER NOT NULL, locked_reason TEXT, locked_by TEXT, fault TEXT, launch_index BIGINT NOT NULL, reservation_id TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL, launched_at DOUBLE PRECISION,
                terminated_at DOUBLE PRECISION, deleted_at DOUBLE PRECISION, extra TEXT NOT NULL)
            """,
            "CREATE INDEX compute_instance_project ON compute_instance (project_id, deleted_at)",
            "CREATE INDEX compute_instance_host ON compute_instance (host)",
            """
            CREATE TABLE compute_instance_action (
                id {serial}, instance_uuid TEXT NOT NULL, action TEXT NOT NULL, request_id TEXT NOT NULL, user_id TEXT NOT NULL,
                project_id TEXT NOT NULL, start_time DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL, message TEXT)
            """,
            "CREATE INDEX compute_instance_action_instance ON compute_instance_action (instance_uuid)",
            """
            CREATE TABLE compute_instance_action_event (
                action_id BIGINT NOT NULL REFERENCES compute_instance_action(id) ON DELETE CASCADE, event TEXT NOT NULL,
                start_time DOUBLE PRECISION NOT NULL, finish_time DOUBLE PRECISION, result TEXT, traceback TEXT, host TEXT, details TEXT)
            """,
            "CREATE INDEX compute_instance_action_event_action ON compute_instance_action_event (action_id)",
            """
            CREATE TABLE compute_service (
                id TEXT PRIMARY KEY, host TEXT NOT NULL, binary_name TEXT NOT NULL, disabled INTEGER NOT NULL, disabled_reason TEXT,
                forced_down INTEGER NOT NULL, last_seen_up DOUBLE PRECISION, created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL, UNIQUE (host, binary_name))
            """,
            """
            CREATE TABLE compute_node (
                uuid TEXT PRIMARY KEY, host TEXT NOT NULL UNIQUE, hypervisor_hostname TEXT NOT NULL, hypervisor_type TEXT NOT NULL,
                hypervisor_version BIGINT NOT NULL, host_ip TEXT NOT NULL, vcpus BIGINT NOT NULL, memory_mb BIGINT NOT NULL,
                local_gb BIGINT NOT NULL, capabilities TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
            """,
            """
            CREATE TABLE compute_aggregate (
                id {serial}, uuid TEXT NOT NULL UNIQUE, name TEXT NOT NULL UNIQUE, metadata TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION)
            """,
            """
            CREATE TABLE compute_aggregate_host (
                aggregate_id BIGINT NOT NULL REFERENCES compute_aggregate(id) ON DELETE CASCADE, host TEXT NOT NULL,
                PRIMARY KEY (aggregate_id, host))
            """,
            """
            CREATE TABLE compute_server_group (
                uuid TEXT PRIMARY KEY, name TEXT NOT NULL, project_id TEXT NOT NULL, user_id TEXT NOT NULL, policy TEXT NOT NULL,
                rules TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)
            """,
            """
            CREATE TABLE compute_server_group_member (
                group_uuid TEXT NOT NULL REFERENCES compute_server_group(uuid) ON DELETE CASCADE, instance_uuid TEXT NOT NULL,
                PRIMARY KEY (group_uuid, instance_uuid))
            """,
            // Limits: a project's own, else its quota class's (`default`), else the configured default.
            "CREATE TABLE compute_quota (project_id TEXT NOT NULL, resource TEXT NOT NULL, hard_limit BIGINT NOT NULL, PRIMARY KEY (project_id, resource))",
            "CREATE TABLE compute_quota_class (class_name TEXT NOT NULL, resource TEXT NOT NULL, hard_limit BIGINT NOT NULL, PRIMARY KEY (class_name, resource))",
            // Usage, changed only by conditional updates in the same transaction as the change
            // that causes it: the reserve and commit of the seed's quota flow are one step, so
            // no crash can leave a reservation behind and no race can pass a limit.
            "CREATE TABLE compute_quota_usage (project_id TEXT NOT NULL, resource TEXT NOT NULL, in_use BIGINT NOT NULL, PRIMARY KEY (project_id, resource))",
            // The outbox from the control plane to host agents: written in the transaction
            // that changes the state the message acts on, deleted when the agent acknowledges.
            """
            CREATE TABLE compute_message (
                id {serial}, host TEXT NOT NULL, kind TEXT NOT NULL, instance_uuid TEXT, payload TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE INDEX compute_message_host ON compute_message (host, id)",
        ]),
        // Nova's migration records: one per resize, cold or live migration and evacuation, its
        // status moved along as the conductor and the agents' reports drive the move.
        Migration(service: "compute", version: 2, name: "migration records", statements: [
            """
            CREATE TABLE compute_migration (
                id {serial}, uuid TEXT NOT NULL UNIQUE, instance_uuid TEXT NOT NULL, migration_type TEXT NOT NULL, status TEXT NOT NULL,
                source_compute TEXT, source_node TEXT, dest_compute TEXT, dest_node TEXT, dest_host TEXT,
                old_flavor_id TEXT, new_flavor_id TEXT, user_id TEXT NOT NULL, project_id TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE INDEX compute_migration_instance ON compute_migration (instance_uuid, id)",
        ]),
        // What each host keeps for itself ([DEFAULT] reserved_host_* on the host), reported by
        // its agent: placement's `reserved`, and part of the hypervisor's used memory and disk.
        Migration(service: "compute", version: 3, name: "host reservations", statements: [
            "ALTER TABLE compute_node ADD COLUMN reserved_vcpus BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE compute_node ADD COLUMN reserved_memory_mb BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE compute_node ADD COLUMN reserved_disk_gb BIGINT NOT NULL DEFAULT 0",
        ]),
        // Nova's console auth tokens: what a console URL's token opens (the guest's VNC server
        // on its host), found by the token's SHA-256 — the token itself is never stored. A row
        // is deleted when its websocket connects (one-time), when its server is deleted, and
        // once it expires.
        Migration(service: "compute", version: 4, name: "console auth tokens", statements: [
            """
            CREATE TABLE compute_console_auth_token (
                token_hash TEXT PRIMARY KEY, console_type TEXT NOT NULL, instance_uuid TEXT NOT NULL, project_id TEXT NOT NULL,
                compute_host TEXT NOT NULL, host TEXT NOT NULL, port INTEGER NOT NULL, internal_access_path TEXT,
                access_url_base TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE INDEX compute_console_auth_token_instance ON compute_console_auth_token (instance_uuid)",
            "CREATE INDEX compute_console_auth_token_expiry ON compute_console_auth_token (expires_at)",
        ]),
        // Work that must follow a commit (Conductor+FollowUps.swift): recorded in the
        // transaction that makes it necessary, deleted once done, run again at the next start
        // when the process died (or the work failed) in between. `work` is the FollowUp as JSON.
        // And what each message is kept in order with on its host (AgentMessage.orderingKey);
        // rows written before have none and read as their instance's.
        Migration(service: "compute", version: 5, name: "follow-up work, message ordering keys", statements: [
            "CREATE TABLE compute_follow_up (id {serial}, work TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)",
            "ALTER TABLE compute_message ADD COLUMN ordering_key TEXT",
        ]),
    ]
}
