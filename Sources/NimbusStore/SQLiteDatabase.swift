import CSQLite
import Foundation

/// SQLite in WAL mode: one writing connection and a few reading ones. Every write and every
/// transaction runs on the writer while holding `mutex`, so a transaction owns it from BEGIN to
/// COMMIT and SQLite's single-writer rule is met without `SQLITE_BUSY` inside the process.
/// Plain SELECTs outside a transaction go to a reader: WAL lets them run beside the writer and
/// see everything committed, so reads (a client polling a server) do not queue behind writes.
/// `busy_timeout` covers other processes (`nimbus manage` run beside a live server).
public final class SQLiteDatabase: Database, @unchecked Sendable {
    public let dialect = SQLDialect.sqlite
    private let mutex = AsyncMutex()
    // Touched only while `mutex` is held.
    private let connection: SQLiteConnection
    private let readers: [(mutex: AsyncMutex, connection: SQLiteConnection)]
    private let nextReader = NSLock()
    private var readerIndex = 0

    public init(path: String, readers readerCount: Int = 2) throws {
        connection = try SQLiteConnection(path: path)
        try connection.run("PRAGMA journal_mode=WAL")
        try connection.run("PRAGMA synchronous=NORMAL")
        try connection.run("PRAGMA foreign_keys=ON")
        try connection.run("PRAGMA busy_timeout=5000")
        readers = try (0..<readerCount).map { _ in
            let reader = try SQLiteConnection(path: path)
            try reader.run("PRAGMA busy_timeout=5000")
            return (AsyncMutex(), reader)
        }
    }

    public func query(_ sql: String, _ binds: [SQLValue]) async throws -> [Row] {
        guard !readers.isEmpty, Self.isPlainSelect(sql) else { return try await mutex.withLock { try connection.query(sql, binds) } }
        let reader = nextReaderConnection()
        return try await reader.mutex.withLock { try reader.connection.query(sql, binds) }
    }

    private func nextReaderConnection() -> (mutex: AsyncMutex, connection: SQLiteConnection) {
        readers[nextReader.withLock {
            readerIndex = (readerIndex + 1) % readers.count
            return readerIndex
        }]
    }

    /// A deferred transaction on a reader: WAL gives it a snapshot as of its first read, and
    /// the writer goes on meanwhile. The body's statements must all be SELECTs.
    public func readTransaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        guard !readers.isEmpty else { return try await transaction(body) }
        let reader = nextReaderConnection()
        return try await reader.mutex.withLock {
            try reader.connection.run("BEGIN")
            defer { try? reader.connection.run("COMMIT") }
            return try await body(SQLiteTransaction(connection: reader.connection))
        }
    }

    /// A statement that only reads (an `INSERT … RETURNING` also comes through `query`).
    static func isPlainSelect(_ sql: String) -> Bool {
        sql.drop { $0.isWhitespace }.prefix(6).lowercased() == "select"
    }

    @discardableResult
    public func execute(_ sql: String, _ binds: [SQLValue]) async throws -> Int {
        try await mutex.withLock { try connection.execute(sql, binds) }
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        try await mutex.withLock {
            try connection.run("BEGIN IMMEDIATE")
            do {
                let result = try await body(SQLiteTransaction(connection: connection))
                try connection.run("COMMIT")
                return result
            } catch {
                try? connection.run("ROLLBACK")
                throw error
            }
        }
    }

    public func close() async {
        for reader in readers { await reader.mutex.withLock { reader.connection.close() } }
        await mutex.withLock { connection.close() }
    }
}

/// The executor handed to a transaction body: the lock is already held by the transaction.
struct SQLiteTransaction: SQLExecutor, @unchecked Sendable {
    let dialect = SQLDialect.sqlite
    let connection: SQLiteConnection

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [Row] {
        try connection.query(sql, binds)
    }

    @discardableResult
    func execute(_ sql: String, _ binds: [SQLValue]) async throws -> Int {
        try connection.execute(sql, binds)
    }
}

/// Thin wrapper over the C API with a prepared-statement cache. Not thread-safe by itself.
final class SQLiteConnection {
    private var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    init(path: String) throws {
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        if rc != SQLITE_OK {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(handle)
            handle = nil
            throw DatabaseError.connection("cannot open SQLite database at \(path): \(message)")
        }
        sqlite3_extended_result_codes(handle, 1)
    }

    deinit { close() }

    func close() {
        for statement in statements.values { sqlite3_finalize(statement) }
        statements.removeAll()
        if let handle { sqlite3_close(handle) }
        handle = nil
    }

    func run(_ sql: String) throws {
        guard sqlite3_exec(handle, sql, nil, nil, nil) == SQLITE_OK else { throw error(sql) }
    }

    func execute(_ sql: String, _ binds: [SQLValue]) throws -> Int {
        let statement = try prepare(sql, binds)
        defer { sqlite3_reset(statement) }
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            if rc != SQLITE_ROW { throw error(sql) }
        }
        return Int(sqlite3_changes(handle))
    }

    func query(_ sql: String, _ binds: [SQLValue]) throws -> [Row] {
        let statement = try prepare(sql, binds)
        defer { sqlite3_reset(statement) }
        let count = sqlite3_column_count(statement)
        let columns = (0..<count).map { String(cString: sqlite3_column_name(statement, $0)).lowercased() }
        var rows: [Row] = []
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(sql) }
            var values: [SQLValue] = []
            values.reserveCapacity(Int(count))
            for i in 0..<count {
                switch sqlite3_column_type(statement, i) {
                case SQLITE_INTEGER: values.append(.integer(sqlite3_column_int64(statement, i)))
                case SQLITE_FLOAT: values.append(.real(sqlite3_column_double(statement, i)))
                case SQLITE_TEXT: values.append(.text(String(cString: sqlite3_column_text(statement, i))))
                case SQLITE_BLOB:
                    let n = Int(sqlite3_column_bytes(statement, i))
                    if n == 0 {
                        values.append(.blob([]))
                    } else {
                        let pointer = sqlite3_column_blob(statement, i)!.assumingMemoryBound(to: UInt8.self)
                        values.append(.blob(Array(UnsafeBufferPointer(start: pointer, count: n))))
                    }
                default: values.append(.null)
                }
            }
            rows.append(Row(columns: columns, values: values))
        }
        return rows
    }

    private func prepare(_ sql: String, _ binds: [SQLValue]) throws -> OpaquePointer {
        let statement: OpaquePointer
        if let cached = statements[sql] {
            statement = cached
            sqlite3_clear_bindings(statement)
        } else {
            var prepared: OpaquePointer?
            guard sqlite3_prepare_v2(handle, sql, -1, &prepared, nil) == SQLITE_OK, let prepared else {
                throw error(sql)
            }
            statements[sql] = prepared
            statement = prepared
        }
        for (offset, value) in binds.enumerated() {
            let index = Int32(offset + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(statement, index)
            case .integer(let i): rc = sqlite3_bind_int64(statement, index, i)
            case .real(let d): rc = sqlite3_bind_double(statement, index, d)
            case .text(let s): rc = sqlite3_bind_text(statement, index, s, -1, Self.transient)
            case .blob(let b):
                rc = b.withUnsafeBytes { sqlite3_bind_blob(statement, index, $0.baseAddress, Int32(b.count), Self.transient) }
            }
            if rc != SQLITE_OK { throw error(sql) }
        }
        return statement
    }

    private func error(_ sql: String) -> DatabaseError {
        let message = String(cString: sqlite3_errmsg(handle))
        let code = sqlite3_extended_errcode(handle)
        switch code {
        case 2067, 1555: return .uniqueViolation(message)  // SQLITE_CONSTRAINT_UNIQUE, _PRIMARYKEY
        case let c where c & 0xff == SQLITE_CONSTRAINT: return .constraintViolation(message)
        case let c where c & 0xff == SQLITE_CANTOPEN: return .connection(message)
        default: return .other("\(message) (code \(code)) in: \(sql.prefix(200))")
        }
    }
}
