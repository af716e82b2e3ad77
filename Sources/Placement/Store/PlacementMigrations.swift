import NimbusStore

/// Placement's schema. Standard resource classes and traits are not rows: they are the static
/// lists in `StandardNames`, so only custom ones are stored, and trait and class columns hold
/// names. Every write that can change what a provider can still hold (inventory, traits,
/// aggregates, allocations) moves `placement_provider.generation` with a conditional update,
/// which is what serialises claims on one provider on both engines.
public enum PlacementMigrations {
    public static let all: [Migration] = [
        Migration(service: "placement", version: 1, name: "providers, inventories, traits, aggregates, consumers and allocations", statements: [
            """
            CREATE TABLE placement_provider (
                uuid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, generation BIGINT NOT NULL DEFAULT 0,
                parent_uuid TEXT REFERENCES placement_provider(uuid), root_uuid TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE INDEX placement_provider_root ON placement_provider (root_uuid)",
            "CREATE INDEX placement_provider_parent ON placement_provider (parent_uuid)",
            """
            CREATE TABLE placement_inventory (
                provider_uuid TEXT NOT NULL REFERENCES placement_provider(uuid) ON DELETE CASCADE, resource_class TEXT NOT NULL,
                total BIGINT NOT NULL, reserved BIGINT NOT NULL, min_unit BIGINT NOT NULL, max_unit BIGINT NOT NULL,
                step_size BIGINT NOT NULL, allocation_ratio DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (provider_uuid, resource_class))
            """,
            "CREATE INDEX placement_inventory_class ON placement_inventory (resource_class)",
            "CREATE TABLE placement_resource_class (name TEXT PRIMARY KEY, created_at DOUBLE PRECISION NOT NULL)",
            "CREATE TABLE placement_trait (name TEXT PRIMARY KEY, created_at DOUBLE PRECISION NOT NULL)",
            """
            CREATE TABLE placement_provider_trait (
                provider_uuid TEXT NOT NULL REFERENCES placement_provider(uuid) ON DELETE CASCADE, trait TEXT NOT NULL,
                PRIMARY KEY (provider_uuid, trait))
            """,
            "CREATE INDEX placement_provider_trait_trait ON placement_provider_trait (trait)",
            """
            CREATE TABLE placement_provider_aggregate (
                provider_uuid TEXT NOT NULL REFERENCES placement_provider(uuid) ON DELETE CASCADE, aggregate TEXT NOT NULL,
                PRIMARY KEY (provider_uuid, aggregate))
            """,
            "CREATE INDEX placement_provider_aggregate_aggregate ON placement_provider_aggregate (aggregate)",
            // A consumer exists while it holds allocations; its generation guards writes from 1.28.
            """
            CREATE TABLE placement_consumer (
                uuid TEXT PRIMARY KEY, project_id TEXT NOT NULL, user_id TEXT NOT NULL, consumer_type TEXT,
                generation BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE INDEX placement_consumer_project ON placement_consumer (project_id, user_id)",
            // No cascade from the provider: deleting a provider with allocations is refused.
            """
            CREATE TABLE placement_allocation (
                consumer_uuid TEXT NOT NULL, provider_uuid TEXT NOT NULL REFERENCES placement_provider(uuid),
                resource_class TEXT NOT NULL, used BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (consumer_uuid, provider_uuid, resource_class))
            """,
            "CREATE INDEX placement_allocation_provider ON placement_allocation (provider_uuid, resource_class)",
        ]),
        Migration(service: "placement", version: 2, name: "structure version", statements: [
            // Moves whenever inventories, traits or aggregates change, so readers can keep those
            // (which every boot reads, and which change rarely) until it moves.
            "CREATE TABLE placement_structure (id INTEGER PRIMARY KEY, version BIGINT NOT NULL)",
            "INSERT INTO placement_structure (id, version) VALUES (1, 0)",
        ]),
    ]
}
