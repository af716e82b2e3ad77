import Foundation

/// Runs SQL. Statements use `?` placeholders on every engine; the PostgreSQL implementation
/// rewrites them to `$n`. Both a database and an open transaction are executors, so store code
/// is written once and runs either standalone or inside a caller's transaction.
public protocol SQLExecutor: Sendable {
    var dialect: SQLDialect { get }
    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [Row]
    /// Returns the number of rows changed.
    @discardableResult
    func execute(_ sql: String, _ binds: [SQLValue]) async throws -> Int
}

extension SQLExecutor {
    public func query(_ sql: String, _ binds: SQLValue...) async throws -> [Row] {
        try await query(sql, binds)
    }

    @discardableResult
    public func execute(_ sql: String, _ binds: SQLValue...) async throws -> Int {
        try await execute(sql, binds)
    }

    public func first(_ sql: String, _ binds: SQLValue...) async throws -> Row? {
        try await query(sql, binds).first
    }
}

/// A database: an executor that can also open transactions.
///
/// `transaction` runs `body` with all of its statements in one transaction, committed when
/// `body` returns and rolled back when it throws. Nothing else sees the transaction's writes
/// until commit. On SQLite transactions are serialised (one writer); on PostgreSQL they run
/// at READ COMMITTED, so code that must not lose races uses conditional writes
/// (`UPDATE … WHERE used + n <= total`) or `SELECT … FOR UPDATE` via `forUpdate`.
public protocol Database: SQLExecutor {
    func transaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T
    /// Reads that must see one consistent state (several SELECTs as of one moment) and write
    /// nothing. On SQLite they run on a reader connection, so they do not hold up writers.
    func readTransaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T
    func close() async
}

extension Database {
    public func readTransaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        try await transaction(body)
    }
}

extension SQLDialect {
    /// `FOR UPDATE` where the engine has row locks; SQLite's single writer makes it unnecessary.
    public var forUpdate: String { self == .postgres ? " FOR UPDATE" : "" }
    /// Type of a binary column.
    public var blobType: String { self == .postgres ? "BYTEA" : "BLOB" }
    /// An integer primary key the database numbers itself, in insertion order.
    public var serialKey: String { self == .postgres ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT" }
}

/// Opens a database from a URL: `sqlite:///path/to/file.db` (or a plain path) or
/// `postgres://user:password@host:port/database`.
public enum DatabaseFactory {
    public static func open(url: String, logger: Logging.Logger) async throws -> any Database {
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            return try await PostgresDatabase.connect(url: url, logger: logger)
        }
        var path = url
        if path.hasPrefix("sqlite://") { path.removeFirst("sqlite://".count) }
        if path.isEmpty { throw DatabaseError.connection("empty SQLite path in database URL '\(url)'") }
        if path.contains("://") { throw DatabaseError.connection("unsupported database URL '\(url)': use sqlite:///path or postgres://user:password@host/db") }
        return try SQLiteDatabase(path: path)
    }
}

import Logging
