import Foundation

/// A value bound into, or read out of, a SQL statement. The set is deliberately small so that
/// the same schema means the same thing on SQLite and PostgreSQL: booleans are stored as
/// integers 0/1 and timestamps as ISO-8601 text or epoch integers, never engine-specific types.
public enum SQLValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    public static func bool(_ value: Bool) -> SQLValue { .integer(value ? 1 : 0) }
    public static func optional(_ value: String?) -> SQLValue { value.map { .text($0) } ?? .null }
}

extension SQLValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(nilLiteral: ()) { self = .null }
}

/// One result row. Column lookup is by name; names are lower-case as both engines report them.
public struct Row: Sendable {
    public let columns: [String]
    public let values: [SQLValue]

    public init(columns: [String], values: [SQLValue]) {
        self.columns = columns
        self.values = values
    }

    public subscript(_ name: String) -> SQLValue {
        guard let index = columns.firstIndex(of: name) else { return .null }
        return values[index]
    }

    public func string(_ name: String) -> String {
        optionalString(name) ?? ""
    }

    public func optionalString(_ name: String) -> String? {
        switch self[name] {
        case .text(let s): return s
        case .integer(let i): return String(i)
        case .real(let d): return String(d)
        case .blob(let b): return String(decoding: b, as: UTF8.self)
        case .null: return nil
        }
    }

    public func int(_ name: String) -> Int64 {
        optionalInt(name) ?? 0
    }

    public func optionalInt(_ name: String) -> Int64? {
        switch self[name] {
        case .integer(let i): return i
        // SQLite turns an integer column's overflowing sum (`in_use + ?`) into a REAL, and
        // PostgreSQL answers numeric sums past Int64 as one: `Int64(d)` of such a value (or of
        // a NaN) traps, so it is clamped to Int64's range.
        case .real(let d):
            if d.isNaN { return nil }
            if d >= 0x1p63 { return Int64.max }
            if d < -0x1p63 { return Int64.min }
            return Int64(d)
        case .text(let s): return Int64(s)
        default: return nil
        }
    }

    public func optionalDouble(_ name: String) -> Double? {
        if case .null = self[name] { return nil }
        return double(name)
    }

    public func double(_ name: String) -> Double {
        switch self[name] {
        case .integer(let i): return Double(i)
        case .real(let d): return d
        case .text(let s): return Double(s) ?? 0
        default: return 0
        }
    }

    public func bool(_ name: String) -> Bool { int(name) != 0 }

    public func blob(_ name: String) -> [UInt8] {
        switch self[name] {
        case .blob(let b): return b
        case .text(let s): return Array(s.utf8)
        default: return []
        }
    }
}

public enum SQLDialect: String, Sendable {
    case sqlite
    case postgres
}

/// Errors from the store that callers branch on. Everything else is `DatabaseError.other`
/// and is reported as an internal failure.
public enum DatabaseError: Error, CustomStringConvertible, Sendable {
    /// A UNIQUE or PRIMARY KEY constraint rejected the write.
    case uniqueViolation(String)
    /// A FOREIGN KEY or CHECK constraint rejected the write.
    case constraintViolation(String)
    /// The engine could not open or reach the database.
    case connection(String)
    case other(String)

    public var description: String {
        switch self {
        case .uniqueViolation(let m): return "unique constraint violated: \(m)"
        case .constraintViolation(let m): return "constraint violated: \(m)"
        case .connection(let m): return "database connection failed: \(m)"
        case .other(let m): return "database error: \(m)"
        }
    }
}
