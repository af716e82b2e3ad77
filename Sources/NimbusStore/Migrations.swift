import Foundation

/// One schema change of one service. Statements may use `{blob}` for the engine's binary type
/// and `{serial}` for a self-numbering integer primary key; everything else must be SQL both engines accept (TEXT, BIGINT, INTEGER, DOUBLE PRECISION).
public struct Migration: Sendable {
    public let service: String
    public let version: Int
    public let name: String
    public let statements: [String]

    public init(service: String, version: Int, name: String, statements: [String]) {
        self.service = service
        self.version = version
        self.name = name
        self.statements = statements
    }
}

/// Applies migrations in (service, version) order, each in its own transaction together with
/// its row in `schema_migrations`, so a crash leaves every migration either applied or not.
public enum Migrator {
    public static func migrate(_ db: any Database, _ migrations: [Migration]) async throws -> [Migration] {
        try await db.execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                service TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, applied_at TEXT NOT NULL,
                PRIMARY KEY (service, version))
            """)
        let applied = Set(try await db.query("SELECT service, version FROM schema_migrations").map { "\($0.string("service"))/\($0.int("version"))" })
        var done: [Migration] = []
        for migration in migrations.sorted(by: { ($0.service, $0.version) < ($1.service, $1.version) })
        where !applied.contains("\(migration.service)/\(migration.version)") {
            try await db.transaction { tx in
                for statement in migration.statements {
                    try await tx.execute(statement.replacingOccurrences(of: "{blob}", with: tx.dialect.blobType)
                        .replacingOccurrences(of: "{serial}", with: tx.dialect.serialKey), [])
                }
                try await tx.execute(
                    "INSERT INTO schema_migrations (service, version, name, applied_at) VALUES (?, ?, ?, ?)",
                    [.text(migration.service), .integer(Int64(migration.version)), .text(migration.name), .text(ISO8601DateFormatter().string(from: Date()))])
            }
            done.append(migration)
        }
        return done
    }
}
