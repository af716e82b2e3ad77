import Foundation
import NimbusCore
import NimbusStore

/// OS-FEDERATION's configuration API: identity providers (with their remote ids and
/// protocols), mappings and service providers, stored and served as Keystone does. Federated
/// login itself (the `mapped`/`saml2`/`openid` auth methods and WebSSO) is not built, so this
/// is what an operator scripts with `openstack identity provider …` ahead of it.
extension IdentityService {
    static func idpNotFound(_ id: String) -> APIError { APIError.notFound("Could not find Identity Provider: \(id).") }
    static func mappingNotFound(_ id: String) -> APIError { APIError.notFound("Could not find mapping: \(id).") }
    static func serviceProviderNotFound(_ id: String) -> APIError { APIError.notFound("Could not find Service Provider: \(id).") }

    /// Checks the id a create request puts in its path (`PUT …/mappings/{id}`): 1 to 64
    /// characters, what Keystone's id columns hold; `field` names it in the error.
    static func validatePathID(_ id: String, field: String) throws {
        guard !id.isEmpty, id.count <= 64 else { throw APIError.badRequest("Invalid input for field '\(field)': 1 to 64 characters.") }
    }

    // MARK: Identity providers

    static let idpFields: Set<String> = ["enabled", "description", "authorization_ttl", "remote_ids"]

    func identityProvider(_ r: Row, remoteIDs: [String]) -> IdentityProvider {
        IdentityProvider(id: r.string("id"), enabled: r.bool("enabled"), description: r.optionalString("description"),
                         domainID: r.string("domain_id"), remoteIDs: remoteIDs, authorizationTTL: r.optionalInt("authorization_ttl").map { Int($0) })
    }

    func requireIdentityProvider(_ id: String, _ x: any SQLExecutor) async throws -> IdentityProvider {
        guard let row = try await x.first("SELECT * FROM identity_idp WHERE id = ?", .text(id)) else { throw Self.idpNotFound(id) }
        let remote = try await x.query("SELECT remote_id FROM identity_idp_remote_id WHERE idp_id = ? ORDER BY remote_id", [.text(id)])
        return identityProvider(row, remoteIDs: remote.map { $0.string("remote_id") })
    }

    /// Reads the writable fields of an identity provider body into `idp`.
    static func applyIdentityProvider(_ input: JSONInput, to idp: inout IdentityProvider) throws {
        if let enabled = try input.bool("enabled") { idp.enabled = enabled }
        if input.has("description") { idp.description = try input.optionalString("description", maxLength: 65535) }
        if input.has("authorization_ttl") { idp.authorizationTTL = try input.int("authorization_ttl", in: 0...Int64(Int32.max)).map { Int($0) } }
        if input.has("remote_ids") {
            let ids = try input.stringArray("remote_ids") ?? []
            guard Set(ids).count == ids.count else { throw APIError.badRequest("Invalid input for field 'remote_ids': has non-unique elements.") }
            guard ids.allSatisfy({ !$0.isEmpty && $0.count <= 64 }) else {
                throw APIError.badRequest("Invalid input for field 'remote_ids': each remote id is 1 to 64 characters.")
            }
            idp.remoteIDs = ids
        }
    }

    func saveRemoteIDs(_ idp: IdentityProvider, _ x: any SQLExecutor) async throws {
        try await x.execute("DELETE FROM identity_idp_remote_id WHERE idp_id = ?", [.text(idp.id)])
        for remote in idp.remoteIDs {
            do {
                try await x.execute("INSERT INTO identity_idp_remote_id (remote_id, idp_id) VALUES (?, ?)", [.text(remote), .text(idp.id)])
            } catch DatabaseError.uniqueViolation {
                throw APIError.conflict("Conflict occurred attempting to store identity_provider - Duplicate remote ID: \(remote).")
            }
        }
    }

    /// `PUT /v3/OS-FEDERATION/identity_providers/{id}`. Without `domain_id`, a domain is made
    /// for the provider's users, in the same transaction, as Keystone does.
    public func createIdentityProvider(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> IdentityProvider {
        try authorize("identity:create_identity_provider", caller)
        try input.rejectUnknown(Self.idpFields.union(["domain_id"]))
        try Self.validatePathID(id, field: "idp_id")
        var fields = IdentityProvider(id: id, enabled: false, description: nil, domainID: "", remoteIDs: [], authorizationTTL: nil)
        try Self.applyIdentityProvider(input, to: &fields)
        let domainID = try input.optionalString("domain_id", maxLength: 64)
        return try await db.transaction { [fields] x in
            var idp = fields
            if try await x.first("SELECT id FROM identity_idp WHERE id = ?", .text(id)) != nil {
                throw APIError.conflict("Conflict occurred attempting to store identity_provider - Duplicate entry.")
            }
            if let domainID {
                guard try await self.store.domain(id: domainID, x) != nil else { throw APIError.notFound("Could not find domain: \(domainID).") }
                idp.domainID = domainID
            } else {
                // Named by its own id, as Keystone names it: a provider's id may be reused after
                // deletion while its old domain stays.
                let domainID = Identifiers.hexID()
                let domain = Domain(id: domainID, name: domainID, description: "Domain made for the users of identity provider \(id)",
                                    enabled: true, tags: [], extra: [:])
                try await self.conflict("domain") { try await self.store.insert(domain, x) }
                idp.domainID = domain.id
            }
            try await x.execute("""
                INSERT INTO identity_idp (id, enabled, description, domain_id, authorization_ttl) VALUES (?, ?, ?, ?, ?)
                """, [.text(idp.id), .bool(idp.enabled), idp.description.map { .text($0) } ?? .null, .text(idp.domainID),
                      idp.authorizationTTL.map { .integer(Int64($0)) } ?? .null])
            try await self.saveRemoteIDs(idp, x)
            return idp
        }
    }

    public func getIdentityProvider(_ id: String, caller: AuthContext) async throws -> IdentityProvider {
        try authorize("identity:get_identity_provider", caller)
        return try await requireIdentityProvider(id, db)
    }

    /// Filters `id` and `enabled`, as Keystone's list.
    public func listIdentityProviders(_ query: Query, caller: AuthContext) async throws -> [IdentityProvider] {
        try authorize("identity:list_identity_providers", caller)
        let enabled = query.boolean("enabled")
        var remoteIDs: [String: [String]] = [:]
        for row in try await db.query("SELECT idp_id, remote_id FROM identity_idp_remote_id ORDER BY remote_id", []) {
            remoteIDs[row.string("idp_id"), default: []].append(row.string("remote_id"))
        }
        return try await db.query("SELECT * FROM identity_idp ORDER BY id", [])
            .map { identityProvider($0, remoteIDs: remoteIDs[$0.string("id")] ?? []) }
            .filter { (query["id"] == nil || query["id"] == $0.id) && (enabled == nil || enabled == $0.enabled) }
    }

    public func updateIdentityProvider(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> IdentityProvider {
        try authorize("identity:update_identity_provider", caller)
        try input.rejectUnknown(Self.idpFields)
        guard !input.fields.isEmpty else { throw APIError.badRequest("Invalid input for field 'identity_provider': {} does not have enough properties.") }
        return try await db.transaction { x in
            var idp = try await self.requireIdentityProvider(id, x)
            try Self.applyIdentityProvider(input, to: &idp)
            try await x.execute("UPDATE identity_idp SET enabled = ?, description = ?, authorization_ttl = ? WHERE id = ?",
                                [.bool(idp.enabled), idp.description.map { .text($0) } ?? .null,
                                 idp.authorizationTTL.map { .integer(Int64($0)) } ?? .null, .text(id)])
            if input.has("remote_ids") { try await self.saveRemoteIDs(idp, x) }
            return idp
        }
    }

    /// Deletes the provider with its protocols and remote ids; its domain stays, as in Keystone.
    public func deleteIdentityProvider(_ id: String, caller: AuthContext) async throws {
        try authorize("identity:delete_identity_provider", caller)
        try await db.transaction { x in
            _ = try await self.requireIdentityProvider(id, x)
            for table in ["identity_federation_protocol", "identity_idp_remote_id"] {
                try await x.execute("DELETE FROM \(table) WHERE idp_id = ?", [.text(id)])
            }
            try await x.execute("DELETE FROM identity_idp WHERE id = ?", [.text(id)])
        }
    }

    // MARK: Protocols

    func federationProtocol(_ r: Row) -> FederationProtocol {
        FederationProtocol(id: r.string("id"), idpID: r.string("idp_id"), mappingID: r.string("mapping_id"),
                           remoteIDAttribute: r.optionalString("remote_id_attribute"))
    }

    func requireProtocol(idp: String, _ id: String, _ x: any SQLExecutor) async throws -> FederationProtocol {
        guard let row = try await x.first("SELECT * FROM identity_federation_protocol WHERE idp_id = ? AND id = ?", .text(idp), .text(id)) else {
            throw APIError.notFound("Could not find federated protocol \(id) for Identity Provider: \(idp).")
        }
        return federationProtocol(row)
    }

    /// The mapping id a protocol body names, which must exist.
    func protocolMapping(_ input: JSONInput, _ x: any SQLExecutor) async throws -> String {
        let mapping = try input.requiredString("mapping_id", maxLength: 64)
        guard try await x.first("SELECT id FROM identity_mapping WHERE id = ?", .text(mapping)) != nil else { throw Self.mappingNotFound(mapping) }
        return mapping
    }

    public func createProtocol(idp: String, _ id: String, _ input: JSONInput, caller: AuthContext) async throws -> FederationProtocol {
        try authorize("identity:create_protocol", caller)
        try input.rejectUnknown(["mapping_id", "remote_id_attribute"])
        try Self.validatePathID(id, field: "protocol_id")
        return try await db.transaction { x in
            _ = try await self.requireIdentityProvider(idp, x)
            let proto = FederationProtocol(id: id, idpID: idp, mappingID: try await self.protocolMapping(input, x),
                                           remoteIDAttribute: try input.optionalString("remote_id_attribute", maxLength: 64))
            try await self.conflict("federation_protocol") {
                try await x.execute("INSERT INTO identity_federation_protocol (idp_id, id, mapping_id, remote_id_attribute) VALUES (?, ?, ?, ?)",
                                    [.text(idp), .text(id), .text(proto.mappingID), proto.remoteIDAttribute.map { .text($0) } ?? .null])
            }
            return proto
        }
    }

    public func getProtocol(idp: String, _ id: String, caller: AuthContext) async throws -> FederationProtocol {
        try authorize("identity:get_protocol", caller)
        _ = try await requireIdentityProvider(idp, db)
        return try await requireProtocol(idp: idp, id, db)
    }

    public func listProtocols(idp: String, caller: AuthContext) async throws -> [FederationProtocol] {
        try authorize("identity:list_protocols", caller)
        _ = try await requireIdentityProvider(idp, db)
        return try await db.query("SELECT * FROM identity_federation_protocol WHERE idp_id = ? ORDER BY id", [.text(idp)]).map(federationProtocol)
    }

    public func updateProtocol(idp: String, _ id: String, _ input: JSONInput, caller: AuthContext) async throws -> FederationProtocol {
        try authorize("identity:update_protocol", caller)
        try input.rejectUnknown(["mapping_id", "remote_id_attribute"])
        return try await db.transaction { x in
            var proto = try await self.requireProtocol(idp: idp, id, x)
            proto.mappingID = try await self.protocolMapping(input, x)
            // remote_id_attribute may change (an empty string is fine) but not be removed.
            if input.has("remote_id_attribute") { proto.remoteIDAttribute = try input.requiredString("remote_id_attribute", maxLength: 64, allowEmpty: true) }
            try await x.execute("UPDATE identity_federation_protocol SET mapping_id = ?, remote_id_attribute = ? WHERE idp_id = ? AND id = ?",
                                [.text(proto.mappingID), proto.remoteIDAttribute.map { .text($0) } ?? .null, .text(idp), .text(id)])
            return proto
        }
    }

    public func deleteProtocol(idp: String, _ id: String, caller: AuthContext) async throws {
        try authorize("identity:delete_protocol", caller)
        guard try await db.execute("DELETE FROM identity_federation_protocol WHERE idp_id = ? AND id = ?", [.text(idp), .text(id)]) > 0 else {
            throw APIError.notFound("Could not find federated protocol \(id) for Identity Provider: \(idp).")
        }
    }

    // MARK: Mappings

    func federationMapping(_ r: Row) -> FederationMapping {
        FederationMapping(id: r.string("id"), rules: (try? JSON.parse(r.string("rules"))) ?? .array([]), schemaVersion: r.string("schema_version"))
    }

    func requireMapping(_ id: String, _ x: any SQLExecutor) async throws -> FederationMapping {
        guard let row = try await x.first("SELECT * FROM identity_mapping WHERE id = ?", .text(id)) else { throw Self.mappingNotFound(id) }
        return federationMapping(row)
    }

    /// Checks `rules` against the shape of Keystone's mapping schema 1.0: each rule has
    /// `local` (what to make: user, group(s), projects, domain) and a non-empty `remote` (which
    /// assertion attributes must match: a `type`, with at most one of `any_one_of`,
    /// `not_any_of`, `whitelist`, `blacklist`, and `regex` beside it).
    static func validateMappingRules(_ input: JSONInput) throws -> JSON {
        func invalid(_ why: String) -> APIError { APIError.badRequest("Invalid input for field 'rules': \(why).") }
        guard let rules = try input.array("rules") else { throw APIError.badRequest("Invalid input for field 'mapping': 'rules' is a required property.") }
        guard !rules.isEmpty else { throw invalid("[] is too short") }
        let localKeys: Set<String> = ["user", "projects", "group", "groups", "group_ids", "domain"]
        let conditions: Set<String> = ["any_one_of", "not_any_of", "whitelist", "blacklist"]
        for rule in rules {
            guard let fields = rule.objectValue, Set(fields.keys) == ["local", "remote"] else {
                throw invalid("each rule is an object with exactly 'local' and 'remote'")
            }
            guard let local = fields["local"]?.arrayValue,
                  local.allSatisfy({ $0.objectValue.map { Set($0.keys).isSubset(of: localKeys) } ?? false }) else {
                throw invalid("'local' is a list of objects of user, group, groups, group_ids, projects or domain")
            }
            guard let remote = fields["remote"]?.arrayValue, !remote.isEmpty else { throw invalid("'remote' is a non-empty list") }
            for match in remote {
                guard let m = match.objectValue, m["type"]?.stringValue != nil else { throw invalid("each remote match has a string 'type'") }
                let used = Set(m.keys).intersection(conditions)
                guard used.count <= 1, used.allSatisfy({ m[$0]?.arrayValue != nil }),
                      Set(m.keys).isSubset(of: conditions.union(["type", "regex"])),
                      m["regex"].map({ $0.boolValue != nil && !used.isEmpty }) ?? true else {
                    throw invalid("a remote match has 'type' and at most one list of any_one_of, not_any_of, whitelist or blacklist, with 'regex' beside it")
                }
            }
        }
        return .array(rules)
    }

    func saveMapping(_ mapping: FederationMapping, insert: Bool, _ x: any SQLExecutor) async throws {
        let values: [SQLValue] = [.text(mapping.rules.serialized()), .text(mapping.schemaVersion), .text(mapping.id)]
        if insert {
            try await conflict("mapping") {
                try await x.execute("INSERT INTO identity_mapping (rules, schema_version, id) VALUES (?, ?, ?)", values)
            }
        } else {
            try await x.execute("UPDATE identity_mapping SET rules = ?, schema_version = ? WHERE id = ?", values)
        }
    }

    public func createMapping(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> FederationMapping {
        try authorize("identity:create_mapping", caller)
        // Keystone's mapping schema leaves other top-level keys alone (clients send `id`).
        try Self.validatePathID(id, field: "mapping_id")
        let mapping = FederationMapping(id: id, rules: try Self.validateMappingRules(input),
                                        schemaVersion: try input.optionalString("schema_version", maxLength: 5, allowEmpty: false) ?? "1.0")
        try await saveMapping(mapping, insert: true, db)
        return mapping
    }

    public func getMapping(_ id: String, caller: AuthContext) async throws -> FederationMapping {
        try authorize("identity:get_mapping", caller)
        return try await requireMapping(id, db)
    }

    public func listMappings(caller: AuthContext) async throws -> [FederationMapping] {
        try authorize("identity:list_mappings", caller)
        return try await db.query("SELECT * FROM identity_mapping ORDER BY id", []).map(federationMapping)
    }

    public func updateMapping(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> FederationMapping {
        try authorize("identity:update_mapping", caller)
        return try await db.transaction { x in
            var mapping = try await self.requireMapping(id, x)
            mapping.rules = try Self.validateMappingRules(input)
            if let version = try input.optionalString("schema_version", maxLength: 5, allowEmpty: false) { mapping.schemaVersion = version }
            try await self.saveMapping(mapping, insert: false, x)
            return mapping
        }
    }

    /// A mapping a protocol still uses cannot go: the protocol would point at nothing.
    public func deleteMapping(_ id: String, caller: AuthContext) async throws {
        try authorize("identity:delete_mapping", caller)
        try await db.transaction { x in
            _ = try await self.requireMapping(id, x)
            if let used = try await x.first("SELECT idp_id, id FROM identity_federation_protocol WHERE mapping_id = ?", .text(id)) {
                throw APIError.conflict("Mapping \(id) is used by protocol \(used.string("id")) of identity provider \(used.string("idp_id")).")
            }
            try await x.execute("DELETE FROM identity_mapping WHERE id = ?", [.text(id)])
        }
    }

    // MARK: Service providers

    static let serviceProviderFields: Set<String> = ["auth_url", "sp_url", "description", "enabled", "relay_state_prefix"]
    /// Keystone's `[saml] relay_state_prefix` default.
    static let defaultRelayStatePrefix = "ss:mem:"

    func serviceProvider(_ r: Row) -> ServiceProvider {
        ServiceProvider(id: r.string("id"), authURL: r.string("auth_url"), spURL: r.string("sp_url"), description: r.optionalString("description"),
                        enabled: r.bool("enabled"), relayStatePrefix: r.string("relay_state_prefix"))
    }

    func requireServiceProvider(_ id: String, _ x: any SQLExecutor) async throws -> ServiceProvider {
        guard let row = try await x.first("SELECT * FROM identity_service_provider WHERE id = ?", .text(id)) else { throw Self.serviceProviderNotFound(id) }
        return serviceProvider(row)
    }

    static func url(_ input: JSONInput, _ key: String) throws -> String? {
        guard let text = try input.optionalString(key, maxLength: 225, allowEmpty: false) else { return nil }
        guard let url = URL(string: text), let scheme = url.scheme, !scheme.isEmpty, url.host != nil else {
            throw APIError.badRequest("Invalid input for field '\(key)': '\(text)' is not a URL.")
        }
        return text
    }

    static func applyServiceProvider(_ input: JSONInput, to sp: inout ServiceProvider) throws {
        if let auth = try url(input, "auth_url") { sp.authURL = auth }
        if let spURL = try url(input, "sp_url") { sp.spURL = spURL }
        if input.has("description") { sp.description = try input.optionalString("description", maxLength: 65535) }
        if let enabled = try input.bool("enabled") { sp.enabled = enabled }
        if input.has("relay_state_prefix") { sp.relayStatePrefix = try input.optionalString("relay_state_prefix") ?? defaultRelayStatePrefix }
    }

    func saveServiceProvider(_ sp: ServiceProvider, insert: Bool, _ x: any SQLExecutor) async throws {
        let values: [SQLValue] = [.text(sp.authURL), .text(sp.spURL), sp.description.map { .text($0) } ?? .null, .bool(sp.enabled),
                                  .text(sp.relayStatePrefix), .text(sp.id)]
        if insert {
            try await conflict("service_provider") {
                try await x.execute("""
                    INSERT INTO identity_service_provider (auth_url, sp_url, description, enabled, relay_state_prefix, id) VALUES (?, ?, ?, ?, ?, ?)
                    """, values)
            }
        } else {
            try await x.execute("""
                UPDATE identity_service_provider SET auth_url = ?, sp_url = ?, description = ?, enabled = ?, relay_state_prefix = ? WHERE id = ?
                """, values)
        }
    }

    public func createServiceProvider(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> ServiceProvider {
        try authorize("identity:create_service_provider", caller)
        try input.rejectUnknown(Self.serviceProviderFields)
        try Self.validatePathID(id, field: "service_provider_id")
        for key in ["auth_url", "sp_url"] where !input.has(key) {
            throw APIError.badRequest("Invalid input for field 'service_provider': '\(key)' is a required property.")
        }
        var sp = ServiceProvider(id: id, authURL: "", spURL: "", description: nil, enabled: false, relayStatePrefix: Self.defaultRelayStatePrefix)
        try Self.applyServiceProvider(input, to: &sp)
        try await saveServiceProvider(sp, insert: true, db)
        return sp
    }

    public func getServiceProvider(_ id: String, caller: AuthContext) async throws -> ServiceProvider {
        try authorize("identity:get_service_provider", caller)
        return try await requireServiceProvider(id, db)
    }

    public func listServiceProviders(_ query: Query, caller: AuthContext) async throws -> [ServiceProvider] {
        try authorize("identity:list_service_providers", caller)
        let enabled = query.boolean("enabled")
        return try await db.query("SELECT * FROM identity_service_provider ORDER BY id", []).map(serviceProvider)
            .filter { (query["id"] == nil || query["id"] == $0.id) && (enabled == nil || enabled == $0.enabled) }
    }

    public func updateServiceProvider(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> ServiceProvider {
        try authorize("identity:update_service_provider", caller)
        try input.rejectUnknown(Self.serviceProviderFields)
        guard !input.fields.isEmpty else { throw APIError.badRequest("Invalid input for field 'service_provider': {} does not have enough properties.") }
        return try await db.transaction { x in
            var sp = try await self.requireServiceProvider(id, x)
            try Self.applyServiceProvider(input, to: &sp)
            try await self.saveServiceProvider(sp, insert: false, x)
            return sp
        }
    }

    public func deleteServiceProvider(_ id: String, caller: AuthContext) async throws {
        try authorize("identity:delete_service_provider", caller)
        guard try await db.execute("DELETE FROM identity_service_provider WHERE id = ?", [.text(id)]) > 0 else { throw Self.serviceProviderNotFound(id) }
    }
}
