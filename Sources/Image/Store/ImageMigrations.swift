import NimbusStore

/// The image service's schema. Custom properties and tags are JSON text columns: they are
/// always read and written with their image, never queried alone.
public enum ImageMigrations {
    public static let all: [Migration] = [
        Migration(service: "image", version: 1, name: "images and members", statements: [
            """
            CREATE TABLE image_image (
                id TEXT PRIMARY KEY, name TEXT, status TEXT NOT NULL, visibility TEXT NOT NULL,
                protected INTEGER NOT NULL DEFAULT 0, os_hidden INTEGER NOT NULL DEFAULT 0,
                checksum TEXT, os_hash_algo TEXT, os_hash_value TEXT, owner TEXT, size BIGINT, virtual_size BIGINT,
                min_ram BIGINT NOT NULL DEFAULT 0, min_disk BIGINT NOT NULL DEFAULT 0, disk_format TEXT, container_format TEXT,
                created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
                properties TEXT NOT NULL DEFAULT '{}', tags TEXT NOT NULL DEFAULT '[]', location TEXT)
            """,
            "CREATE INDEX image_image_owner ON image_image (owner)",
            """
            CREATE TABLE image_member (
                image_id TEXT NOT NULL REFERENCES image_image(id) ON DELETE CASCADE, member_id TEXT NOT NULL,
                status TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (image_id, member_id))
            """,
            "CREATE INDEX image_member_member ON image_member (member_id)",
            // Per-project usage, changed only by conditional updates so that concurrent
            // creates and uploads cannot overshoot a quota (the reserve step of the seed's
            // reserve/commit/rollback; the row lock serialises them on PostgreSQL).
            "CREATE TABLE image_usage (project_id TEXT PRIMARY KEY, images BIGINT NOT NULL DEFAULT 0, bytes BIGINT NOT NULL DEFAULT 0)",
        ]),
        Migration(service: "image", version: 2, name: "multiple stores, staging and import tasks", statements: [
            // Store id → location as a JSON object. The old `location` column is left unused:
            // version 1 was never released, so no data lives there.
            "ALTER TABLE image_image ADD COLUMN locations TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE image_usage ADD COLUMN staged_bytes BIGINT NOT NULL DEFAULT 0",
            """
            CREATE TABLE image_task (
                id TEXT PRIMARY KEY, image_id TEXT NOT NULL, status TEXT NOT NULL, owner TEXT, user_id TEXT NOT NULL,
                request_id TEXT NOT NULL, input TEXT NOT NULL, message TEXT NOT NULL DEFAULT '',
                created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION)
            """,
            "CREATE INDEX image_task_image ON image_task (image_id)",
        ]),
        Migration(service: "image", version: 3, name: "metadata definitions", statements: MetadefStore.schema),
    ]
}
