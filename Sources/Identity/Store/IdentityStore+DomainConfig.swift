import Foundation
import NimbusCore
import NimbusStore

/// Per-domain configuration options: one row per (domain, group, option), the value as JSON text.
extension IdentityStore {
    /// `sensitive` nil: every option; true or false: only those.
    func domainConfig(domainID: String, group: String?, option: String?, sensitive: Bool?, _ x: any SQLExecutor) async throws -> [DomainConfigOption] {
        let filter = Self.domainConfigFilter(domainID: domainID, group: group, option: option)
        var sql = "SELECT group_name, option_name, value FROM identity_domain_config " + filter.sql, binds = filter.binds
        if let sensitive {
            sql += " AND sensitive = ?"
            binds.append(.bool(sensitive))
        }
        return try await x.query(sql + " ORDER BY group_name, option_name", binds).map {
            DomainConfigOption(group: $0.string("group_name"), option: $0.string("option_name"),
                               value: (try? JSON.parse($0.string("value"))) ?? .null)
        }
    }

    func upsertDomainConfig(domainID: String, group: String, option: String, value: JSON, sensitive: Bool, _ x: any SQLExecutor) async throws {
        try await x.execute("""
            INSERT INTO identity_domain_config (domain_id, group_name, option_name, value, sensitive) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (domain_id, group_name, option_name) DO UPDATE SET value = excluded.value, sensitive = excluded.sensitive
            """, [.text(domainID), .text(group), .text(option), .text(value.serialized()), .bool(sensitive)])
    }

    /// Deletes the domain's options (of `group`, or just `option`); returns how many.
    func deleteDomainConfig(domainID: String, group: String?, option: String?, _ x: any SQLExecutor) async throws -> Int {
        let (filter, binds) = Self.domainConfigFilter(domainID: domainID, group: group, option: option)
        return try await x.execute("DELETE FROM identity_domain_config " + filter, binds)
    }

    /// The `WHERE` clause picking the domain's options, only those of `group` and `option`
    /// when given, and its binds.
    static func domainConfigFilter(domainID: String, group: String?, option: String?) -> (sql: String, binds: [SQLValue]) {
        var sql = "WHERE domain_id = ?"
        var binds: [SQLValue] = [.text(domainID)]
        for (column, value) in [("group_name", group), ("option_name", option)] {
            guard let value else { continue }
            sql += " AND \(column) = ?"
            binds.append(.text(value))
        }
        return (sql, binds)
    }
}
