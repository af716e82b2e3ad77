import Foundation
import NimbusCore
import NimbusStore

/// Per-domain configuration (`/v3/domains/{id}/config…`): Keystone's domain-specific options
/// of the `identity` and `ldap` groups, stored and served as Keystone does. Nimbus has no LDAP
/// identity driver, so these options are kept for clients and tools that manage them but do
/// not change how the domain's users are looked up.
extension IdentityService {
    /// The options a domain may set, with Keystone's defaults (what the `…/default` routes show).
    static let domainConfigDefaults: [(group: String, options: [(String, JSON)])] = [
        ("identity", [("driver", "sql"), ("list_limit", nil)]),
        ("ldap", [
            ("url", "ldap://localhost"), ("user", nil), ("suffix", "cn=example,cn=com"), ("query_scope", "one"),
            ("page_size", 0), ("alias_dereferencing", "default"), ("debug_level", nil), ("chase_referrals", nil),
            ("user_tree_dn", nil), ("user_filter", nil), ("user_objectclass", "inetOrgPerson"), ("user_id_attribute", "cn"),
            ("user_name_attribute", "sn"), ("user_mail_attribute", "mail"), ("user_description_attribute", "description"),
            ("user_pass_attribute", "userPassword"), ("user_enabled_attribute", "enabled"), ("user_enabled_invert", false),
            ("user_enabled_mask", 0), ("user_enabled_default", "True"), ("user_attribute_ignore", ["default_project_id"]),
            ("user_default_project_id_attribute", nil), ("user_enabled_emulation", false), ("user_enabled_emulation_dn", nil),
            ("user_enabled_emulation_use_group_config", false), ("user_additional_attribute_mapping", []),
            ("group_tree_dn", nil), ("group_filter", nil), ("group_objectclass", "groupOfNames"), ("group_id_attribute", "cn"),
            ("group_name_attribute", "ou"), ("group_members_are_ids", false), ("group_member_attribute", "member"),
            ("group_desc_attribute", "description"), ("group_attribute_ignore", []), ("group_additional_attribute_mapping", []),
            ("tls_cacertfile", nil), ("tls_cacertdir", nil), ("use_tls", false), ("tls_req_cert", "demand"),
            ("use_pool", true), ("pool_size", 10), ("pool_retry_max", 3), ("pool_retry_delay", .double(0.1)),
            ("pool_connection_timeout", -1), ("pool_connection_lifetime", 600), ("use_auth_pool", true),
            ("auth_pool_size", 100), ("auth_pool_connection_lifetime", 60),
        ]),
    ]
    /// Options stored but never shown (Keystone's sensitive options).
    static let domainConfigSensitive: [String: Set<String>] = ["identity": [], "ldap": ["password"]]

    static func invalidDomainConfig(_ reason: String) -> APIError {
        APIError.forbidden("Invalid domain specific configuration: \(reason).")
    }

    static func domainConfigNotFound(_ what: String, domainID: String) -> APIError {
        APIError.notFound("Could not find \(what) in domain configuration for domain \(domainID).")
    }

    static func defaultOptions(_ group: String) -> [(String, JSON)]? {
        domainConfigDefaults.first { $0.group == group }?.options
    }

    static func isSensitive(_ group: String, _ option: String) -> Bool {
        domainConfigSensitive[group]?.contains(option) ?? false
    }

    /// Keystone's check of a group and option named in a path or body.
    static func checkGroupAndOption(_ group: String?, _ option: String?) throws {
        guard let group else { return }
        guard let options = defaultOptions(group) else {
            throw invalidDomainConfig("Group \(group) is not supported for domain specific configurations")
        }
        if let option, !options.contains(where: { $0.0 == option }), !isSensitive(group, option) {
            throw invalidDomainConfig("Option \(option) in group \(group) is not supported for domain specific configurations")
        }
    }

    /// A request body's `config`: groups of options, each checked.
    static func parseDomainConfig(_ body: JSON) throws -> [String: [String: JSON]] {
        guard let config = body["config"]?.objectValue, !config.isEmpty else { throw invalidDomainConfig("No options specified") }
        var out: [String: [String: JSON]] = [:]
        for (group, value) in config {
            guard let options = value.objectValue, !options.isEmpty else {
                throw invalidDomainConfig("The value of group \(group) specified in the config should be a dictionary of options")
            }
            for option in options.keys { try checkGroupAndOption(group, option) }
            out[group] = options
        }
        return out
    }

    /// `{group: {option: value}}`, or `{option: value}` when one option was asked for, as Keystone
    /// answers.
    static func renderDomainConfig(_ rows: [DomainConfigOption], option: String?) -> JSON {
        if let option, let row = rows.first(where: { $0.option == option }) { return ["config": [option: row.value]] }
        var groups: [String: JSON] = [:]
        for row in rows {
            var options = groups[row.group]?.objectValue ?? [:]
            options[row.option] = row.value
            groups[row.group] = .object(options)
        }
        return ["config": .object(groups)]
    }

    /// `PUT /v3/domains/{id}/config`: replaces the domain's whole configuration. Returns the
    /// stored options (sensitive ones left out) and whether the domain had none before (201).
    public func createDomainConfig(domainID: String, _ body: JSON, caller: AuthContext) async throws -> (JSON, created: Bool) {
        try authorize("identity:create_domain_config", caller)
        let config = try Self.parseDomainConfig(body)
        let (rows, created) = try await db.transaction { x -> ([DomainConfigOption], Bool) in
            _ = try await self.requireDomain(domainID, x)
            let existed = try await self.store.deleteDomainConfig(domainID: domainID, group: nil, option: nil, x) > 0
            for (group, options) in config {
                for (option, value) in options {
                    try await self.store.upsertDomainConfig(domainID: domainID, group: group, option: option, value: value,
                                                            sensitive: Self.isSensitive(group, option), x)
                }
            }
            return (try await self.store.domainConfig(domainID: domainID, group: nil, option: nil, sensitive: false, x), !existed)
        }
        return (Self.renderDomainConfig(rows, option: nil), created)
    }

    /// `GET /v3/domains/{id}/config[/{group}[/{option}]]`.
    public func getDomainConfig(domainID: String, group: String?, option: String?, caller: AuthContext) async throws -> JSON {
        if group == "security_compliance" {
            try authorize("identity:get_security_compliance_domain_config", caller)
            _ = try await requireDomain(domainID, db)
            return try securityComplianceConfig(domainID: domainID, option: option)
        }
        try authorize("identity:get_domain_config", caller)
        _ = try await requireDomain(domainID, db)
        try Self.checkGroupAndOption(group, option)
        let rows = try await store.domainConfig(domainID: domainID, group: group, option: option, sensitive: false, db)
        guard !rows.isEmpty else { throw Self.domainConfigNotFound(Self.describe(group, option), domainID: domainID) }
        return Self.renderDomainConfig(rows, option: option)
    }

    /// The password rules Keystone lets anyone read for the default domain; Nimbus enforces no
    /// password regular expression, so both are null, as in a Keystone without one configured.
    func securityComplianceConfig(domainID: String, option: String?) throws -> JSON {
        guard domainID == defaultDomainID else {
            throw Self.invalidDomainConfig("Reading security compliance information for any domain other than the default domain is not allowed or supported")
        }
        let readable = ["password_regex", "password_regex_description"]
        if let option {
            guard readable.contains(option) else {
                throw Self.invalidDomainConfig("Reading security compliance values other than password_regex and password_regex_description is not allowed")
            }
            return ["config": [option: nil]]
        }
        return ["config": ["security_compliance": .object(Dictionary(uniqueKeysWithValues: readable.map { ($0, JSON.null) }))]]
    }

    /// `PATCH /v3/domains/{id}/config[/{group}[/{option}]]`: merges options in. Naming a group
    /// (or option) limits the body to it, and it must already be set. Returns the whole config.
    public func updateDomainConfig(domainID: String, group: String?, option: String?, _ body: JSON, caller: AuthContext) async throws -> JSON {
        try authorize("identity:update_domain_config", caller)
        var config: [String: [String: JSON]]
        if let group, let option {
            // The option's own body is `{"config": {option: value}}`.
            guard let inner = body["config"], inner.objectValue != nil else { throw Self.invalidDomainConfig("No options specified") }
            config = try Self.parseDomainConfig(["config": [group: inner]])
            guard config[group]?.count == 1 else {
                throw Self.invalidDomainConfig("Trying to update option \(option) in group \(group), so that, and only that, option must be specified  in the config")
            }
            guard config[group]?[option] != nil else {
                throw Self.invalidDomainConfig("Trying to update option \(option) in group \(group), but config provided contains option \(config[group]?.keys.first ?? "") instead")
            }
        } else {
            config = try Self.parseDomainConfig(body)
        }
        try Self.checkGroupAndOption(group, option)
        if let group, option == nil {
            guard config.count == 1 else {
                throw Self.invalidDomainConfig("Trying to update group \(group), so that, and only that, group must be specified in the config")
            }
            guard config[group] != nil else {
                throw Self.invalidDomainConfig("request to update group \(group), but config provided contains group \(config.keys.first ?? "") instead")
            }
        }
        let merged = config
        let rows = try await db.transaction { x -> [DomainConfigOption] in
            _ = try await self.requireDomain(domainID, x)
            if let group, try await self.store.domainConfig(domainID: domainID, group: group, option: option, sensitive: nil, x).isEmpty {
                throw Self.domainConfigNotFound(Self.describe(group, option), domainID: domainID)
            }
            for (g, options) in merged {
                for (o, value) in options {
                    try await self.store.upsertDomainConfig(domainID: domainID, group: g, option: o, value: value,
                                                            sensitive: Self.isSensitive(g, o), x)
                }
            }
            return try await self.store.domainConfig(domainID: domainID, group: nil, option: nil, sensitive: false, x)
        }
        return Self.renderDomainConfig(rows, option: nil)
    }

    /// `DELETE /v3/domains/{id}/config[/{group}[/{option}]]`; a named group or option must be set.
    public func deleteDomainConfig(domainID: String, group: String?, option: String?, caller: AuthContext) async throws {
        try authorize("identity:delete_domain_config", caller)
        try Self.checkGroupAndOption(group, option)
        try await db.transaction { x in
            _ = try await self.requireDomain(domainID, x)
            let deleted = try await self.store.deleteDomainConfig(domainID: domainID, group: group, option: option, x)
            if group != nil && deleted == 0 { throw Self.domainConfigNotFound(Self.describe(group, option), domainID: domainID) }
        }
    }

    /// `GET /v3/domains/config[/{group}[/{option}]]/default`: Keystone's defaults.
    public func defaultDomainConfig(group: String?, option: String?, caller: AuthContext) throws -> JSON {
        try authorize("identity:get_domain_config_default", caller)
        try Self.checkGroupAndOption(group, option)
        if let group, let option, Self.isSensitive(group, option) {
            throw Self.invalidDomainConfig("Reading the default for option \(option) in group \(group) is not supported")
        }
        let rows = Self.domainConfigDefaults.filter { group == nil || $0.group == group }.flatMap { entry in
            entry.options.filter { option == nil || $0.0 == option }
                .map { DomainConfigOption(group: entry.group, option: $0.0, value: $0.1) }
        }
        return Self.renderDomainConfig(rows, option: option)
    }

    static func describe(_ group: String?, _ option: String?) -> String {
        if let group, let option { return "option \(option) in group \(group)" }
        if let group { return "group \(group)" }
        return "any options"
    }
}

/// One stored domain option.
struct DomainConfigOption: Sendable {
    var group: String
    var option: String
    var value: JSON
}
