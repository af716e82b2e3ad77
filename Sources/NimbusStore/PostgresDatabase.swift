import Foundation
import Logging
import NIOCore
import PostgresNIO

/// PostgreSQL through postgres-nio's connection pool. The pool's `run()` is driven by a task
/// owned by this object, so callers only open and close it.
public final class PostgresDatabase: Database, @unchecked Sendable {
    public let dialect = SQLDialect.postgres
    private let client: PostgresClient
    private let runTask: Task<Void, Never>
    private let logger: Logger

    private init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
        runTask = Task { await client.run() }
    }

    /// Parses `postgres://user:password@host:port/database` and checks that the server answers.
    public static func connect(url: String, logger: Logger) async throws -> PostgresDatabase {
        guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty,
              let user = components.user, !user.isEmpty
        else {
            throw DatabaseError.connection("bad PostgreSQL URL '\(url)': expected postgres://user:password@host:port/database")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        var configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: user,
            password: components.password?.removingPercentEncoding, database: database.isEmpty ? user : database, tls: .disable)
        configuration.options.maximumConnections = 16
        configuration.options.connectionIdleTimeout = .seconds(60)
        let db = PostgresDatabase(client: PostgresClient(configuration: configuration, backgroundLogger: logger), logger: logger)
        do {
            // Fail fast with a readable reason instead of hanging on a pool that cannot connect.
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { _ = try await db.query("SELECT 1", []) }
                group.addTask {
                    try await Task.sleep(for: .seconds(10))
                    throw DatabaseError.connection("timed out connecting to PostgreSQL at \(host)")
                }
                try await group.next()
                group.cancelAll()
            }
        } catch {
            await db.close()
            throw DatabaseError.connection("cannot connect to PostgreSQL at \(host):\(components.port ?? 5432): \(PostgresDatabase.describe(error))")
        }
        return db
    }

    public func query(_ sql: String, _ binds: [SQLValue]) async throws -> [Row] {
        try await client.withConnection { try await Self.run($0, sql, binds, logger).rows }
    }

    @discardableResult
    public func execute(_ sql: String, _ binds: [SQLValue]) async throws -> Int {
        try await client.withConnection { try await Self.run($0, sql, binds, logger).changed }
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        try await client.withConnection { connection in
            _ = try await Self.run(connection, "BEGIN", [], logger)
            do {
                let result = try await body(PostgresTransaction(connection: connection, logger: logger))
                _ = try await Self.run(connection, "COMMIT", [], logger)
                return result
            } catch {
                _ = try? await Self.run(connection, "ROLLBACK", [], logger)
                throw error
            }
        }
    }

    public func close() async {
        runTask.cancel()
        _ = await runTask.value
    }

    static func run(_ connection: PostgresConnection, _ sql: String, _ binds: [SQLValue], _ logger: Logger) async throws -> (rows: [Row], changed: Int) {
        var bindings = PostgresBindings(capacity: binds.count)
        for value in binds {
            switch value {
            case .null: bindings.appendNull()
            case .integer(let i): bindings.append(i)
            case .real(let d): bindings.append(d)
            case .text(let s): bindings.append(s)
            case .blob(let b): bindings.append(ByteBuffer(bytes: b))
            }
        }
        let result: PostgresQueryResult
        do {
            result = try await connection.query(PostgresQuery(unsafeSQL: numberPlaceholders(sql), binds: bindings), logger: logger).get()
        } catch let error as PSQLError {
            throw map(error, sql: sql)
        }
        let rows = result.rows.map { row -> Row in
            var columns: [String] = []
            var values: [SQLValue] = []
            for cell in row {
                columns.append(cell.columnName)
                values.append(decode(cell))
            }
            return Row(columns: columns, values: values)
        }
        return (rows, result.metadata.rows ?? 0)
    }

    private static func decode(_ cell: PostgresCell) -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8:
            return (try? cell.decode(Int64.self)).map { .integer($0) } ?? .null
        case .float4, .float8:
            return (try? cell.decode(Double.self)).map { .real($0) } ?? .null
        case .numeric:
            // SUM() and AVG() answer numeric; whole values come back as integers, as on SQLite.
            guard let value = try? cell.decode(Decimal.self) else { return .null }
            let whole = NSDecimalNumber(decimal: value).int64Value
            if Decimal(whole) == value { return .integer(whole) }
            return .real(NSDecimalNumber(decimal: value).doubleValue)
        case .bool:
            return (try? cell.decode(Bool.self)).map { .bool($0) } ?? .null
        case .bytea:
            return (try? cell.decode(ByteBuffer.self)).map { .blob(Array($0.readableBytesView)) } ?? .null
        default:
            return (try? cell.decode(String.self)).map { .text($0) } ?? .null
        }
    }

    /// Rewrites `?` placeholders to `$1…$n`, leaving quoted literals alone.
    static func numberPlaceholders(_ sql: String) -> String {
        var out = ""
        out.reserveCapacity(sql.count + 16)
        var n = 0
        var inQuote = false
        for ch in sql {
            if ch == "'" { inQuote.toggle() }
            if ch == "?" && !inQuote {
                n += 1
                out += "$\(n)"
            } else {
                out.append(ch)
            }
        }
        return out
    }

    private static func map(_ error: PSQLError, sql: String) -> DatabaseError {
        let state = error.serverInfo?[.sqlState] ?? ""
        let message = error.serverInfo?[.message] ?? "\(error.code)"
        if state == "23505" { return .uniqueViolation(message) }
        if state.hasPrefix("23") { return .constraintViolation(message) }
        if error.serverInfo == nil { return .connection(describe(error)) }
        return .other("\(message) [\(state)] in: \(sql.prefix(200))")
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            if let underlying = error.underlying { return "\(underlying)" }
            return "\(error.code)"
        }
        return "\(error)"
    }
}

struct PostgresTransaction: SQLExecutor, @unchecked Sendable {
    let dialect = SQLDialect.postgres
    let connection: PostgresConnection
    let logger: Logger

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [Row] {
        try await PostgresDatabase.run(connection, sql, binds, logger).rows
    }

    @discardableResult
    func execute(_ sql: String, _ binds: [SQLValue]) async throws -> Int {
        try await PostgresDatabase.run(connection, sql, binds, logger).changed
    }
}
