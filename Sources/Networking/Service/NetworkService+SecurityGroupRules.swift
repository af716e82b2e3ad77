import Foundation
import NimbusCore
import NimbusStore

extension NetworkService {
    public func securityGroupRules(caller: AuthContext) async throws -> [SecurityGroupRule] {
        if let project = caller.projectID { try await ensureDefaultSecurityGroup(project: project) }
        return try await db.query("SELECT * FROM network_security_group_rule ORDER BY created_at, id").map(SecurityGroupRule.init(row:))
            .filter { canSee("get_security_group_rule", $0.projectID, caller) }
    }

    public func securityGroupRule(_ id: String, caller: AuthContext) async throws -> SecurityGroupRule {
        try await visibleRule(id, caller)
    }

    public func createSecurityGroupRule(_ input: JSONInput, caller: AuthContext) async throws -> SecurityGroupRule {
        try await createSecurityGroupRules([input], caller: caller)[0]
    }

    /// Creates the rules in one transaction, all or none (a bulk create, `security_group_rules`,
    /// as Neutron's native bulk create: every rule of one group, none the same as another in
    /// the request or one the group has).
    public func createSecurityGroupRules(_ inputs: [JSONInput], caller: AuthContext) async throws -> [SecurityGroupRule] {
        var rules: [SecurityGroupRule] = []
        for input in inputs {
            try input.rejectUnknown(["security_group_id", "direction", "ethertype", "protocol", "port_range_min", "port_range_max",
                                     "remote_ip_prefix", "remote_group_id", "remote_address_group_id", "description", "project_id", "tenant_id"])
            var rule = try Self.parseRule(input, at: Date())
            if let first = rules.first, first.securityGroupID != rule.securityGroupID {
                throw APIError(.badRequest, "Only allowed to update rules for one security profile at a time",
                               code: "SecurityGroupNotSingleGroupRules")
            }
            let group = try await visibleGroup(rule.securityGroupID, caller)
            rule.projectID = group.projectID
            try authorize("create_security_group_rule", caller, target: ["project_id": group.projectID])
            // A remote group must be one of the same project's.
            if let remote = rule.remoteGroupID, try await visibleGroup(remote, caller).projectID != group.projectID {
                throw Self.groupNotFound(remote)
            }
            // So must a remote address group.
            if let remote = rule.remoteAddressGroupID, try await visibleAddressGroup(remote, caller: caller, db).target["project_id"] != group.projectID {
                throw Self.addressGroupNotFound(remote)
            }
            if rules.contains(where: { $0.identity == rule.identity }) {
                throw APIError(.badRequest, "Duplicate Security Group Rule in POST.", code: "DuplicateSecurityGroupRuleInPost")
            }
            rules.append(rule)
        }
        guard let groupID = rules.first?.securityGroupID, let project = rules.first?.projectID else { return [] }
        let created = rules
        try await db.transaction { x in
            _ = try await self.ensureDefaultSecurityGroup(project: project, x)
            let existing = try await x.query("SELECT * FROM network_security_group_rule WHERE security_group_id = ?", .text(groupID))
                .map(SecurityGroupRule.init(row:))
            for rule in created {
                if let same = existing.first(where: { $0.identity == rule.identity }) {
                    throw APIError(.conflict, "Security group rule already exists. Rule id is \(same.id).", code: "SecurityGroupRuleExists")
                }
                try await self.enforceQuota("security_group_rule", project: project, x)
                do {
                    try await self.insertRule(rule, x)
                } catch DatabaseError.constraintViolation {
                    // The group (or the remote group) was deleted since it was read.
                    throw Self.groupNotFound(rule.securityGroupID)
                }
            }
            try await self.touchGroup(groupID, x)
        }
        var shown: [SecurityGroupRule] = []
        for rule in created { shown.append(try await visibleRule(rule.id, caller)) }
        return shown
    }

    public func deleteSecurityGroupRule(_ id: String, caller: AuthContext) async throws {
        let rule = try await visibleRule(id, caller)
        try authorize("delete_security_group_rule", caller, target: ["project_id": rule.projectID])
        try await db.transaction { x in
            guard try await x.execute("DELETE FROM network_security_group_rule WHERE id = ?", .text(id)) == 1 else {
                throw Self.ruleNotFound(id)
            }
            try await self.touchGroup(rule.securityGroupID, x)
        }
    }

    func visibleRule(_ id: String, _ caller: AuthContext) async throws -> SecurityGroupRule {
        guard let row = try await db.first("SELECT * FROM network_security_group_rule WHERE id = ?", .text(id)),
              canSee("get_security_group_rule", row.string("project_id"), caller) else {
            throw Self.ruleNotFound(id)
        }
        return SecurityGroupRule(row: row)
    }

    static func ruleNotFound(_ id: String) -> APIError {
        APIError(.notFound, "Security group rule \(id) does not exist", code: "SecurityGroupRuleNotFound")
    }

    /// A rule change is a change of its group: the group's revision moves on.
    func touchGroup(_ id: String, _ x: any SQLExecutor) async throws {
        try await x.execute("UPDATE network_security_group SET revision_number = revision_number + 1, updated_at = ? WHERE id = ?",
                            .real(Date().timeIntervalSince1970), .text(id))
    }

    /// A rule from a request body, checked as Neutron checks it: each attribute's form, then
    /// the ports against the protocol, the prefix against the ethertype, and a prefix and a
    /// remote group never together. The project is filled in from the group.
    static func parseRule(_ input: JSONInput, at now: Date) throws -> SecurityGroupRule {
        func invalid(_ field: String, _ reason: String) -> APIError { APIError.badRequest("Invalid input for \(field). Reason: \(reason).") }
        let group = try input.requiredString("security_group_id")
        let directionText = try input.requiredString("direction")
        guard let direction = SecurityGroupRule.Direction(rawValue: directionText) else {
            throw invalid("direction", "'\(directionText)' is not in ['ingress', 'egress']")
        }
        let etherText = try input.optionalString("ethertype") ?? "IPv4"
        guard let etherType = SecurityGroupRule.EtherType.allCases.first(where: { $0.rawValue.lowercased() == etherText.lowercased() }) else {
            throw invalid("ethertype", "'\(etherText)' is not in ['IPv4', 'IPv6']")
        }
        var rule = SecurityGroupRule(id: Identifiers.uuid(), securityGroupID: group, projectID: "", direction: direction, etherType: etherType,
                                     protocol: try parseProtocol(input.fields["protocol"], etherType: etherType),
                                     portRangeMin: try parsePort(input, "port_range_min"), portRangeMax: try parsePort(input, "port_range_max"),
                                     remoteGroupID: try input.optionalString("remote_group_id"),
                                     description: try input.optionalString("description") ?? "", at: now)
        rule.remoteAddressGroupID = try input.optionalString("remote_address_group_id")
        try checkPorts(rule)
        if let text = try input.optionalString("remote_ip_prefix") {
            guard let prefix = IPNetwork(text) else { throw invalid("remote_ip_prefix", "'\(text)' is not a valid IP prefix") }
            guard prefix.version == (etherType == .ipv4 ? 4 : 6) else {
                throw APIError(.badRequest, "Conflicting value ethertype \(etherType.rawValue) for CIDR \(text)", code: "SecurityGroupRuleParameterConflict")
            }
            // Kept as given (host bits and all, written canonically, `/32` added to a bare
            // address), as Neutron keeps it; `normalizedCIDR` is what the dataplane matches.
            rule.remoteIPPrefix = "\(IPAddress(String(text.split(separator: "/")[0])).map { "\($0)" } ?? "\(prefix.address)")/\(prefix.prefixLength)"
        }
        if etherType == .ipv4, let number = rule.protocolNumber, IPProtocols.ipv6Only.contains(number) {
            throw APIError(.badRequest, "Invalid ethertype IPv4 for protocol \(rule.protocol ?? "").", code: "SecurityGroupEthertypeConflictWithProtocol")
        }
        if rule.remoteIPPrefix != nil && rule.remoteGroupID != nil {
            throw APIError(.badRequest, "Only remote_ip_prefix or remote_group_id may be provided.", code: "SecurityGroupRemoteGroupAndRemoteIpPrefix")
        }
        if rule.remoteAddressGroupID != nil && (rule.remoteIPPrefix != nil || rule.remoteGroupID != nil) {
            throw APIError(.badRequest, "Only one of remote_ip_prefix or remote_group_id or remote_address_group_id may be provided.",
                           code: "SecurityGroupMultipleRemoteEntites")
        }
        return rule
    }

    /// A protocol name (any case) or number 0-255, as text; nil for any. IPv6 rules spell ICMP
    /// as `ipv6-icmp` (or 58), whatever the client wrote.
    static func parseProtocol(_ value: JSON?, etherType: SecurityGroupRule.EtherType) throws -> String? {
        let text: String
        switch value {
        case nil, .null?: return nil
        case .string(let s)?: text = s.lowercased()
        case .int(let i)?: text = String(i)
        case let other?: text = other.serialized()
        }
        if text == "any" { return nil }
        guard IPProtocols.numbers[text] != nil || (Int(text).map { (0...255).contains($0) } ?? false) else {
            let names = IPProtocols.numbers.keys.sorted().joined(separator: ", ")
            throw APIError(.badRequest, "Security group rule protocol \(text) not supported. Only protocol values [None, \(names)] and integer representations [0 to 255] are supported.",
                           code: "SecurityGroupRuleInvalidProtocol")
        }
        if etherType == .ipv6 {
            if text == "icmp" || text == "icmpv6" { return "ipv6-icmp" }
            if text == "1" { return "58" }
        }
        return Int(text).map(String.init) ?? text
    }

    /// A port number (or ICMP type/code) 0-65535, given as a number or numeric text.
    static func parsePort(_ input: JSONInput, _ key: String) throws -> Int64? {
        let port: Int64?
        switch input.fields[key] {
        case nil, .null?: return nil
        case .int(let i)?: port = i
        case .string(let s)?: port = Int64(s)
        default: port = nil
        }
        guard let port, (0...65535).contains(port) else {
            throw APIError(.badRequest, "Invalid value for port \(input.fields[key]?.serialized() ?? "")", code: "SecurityGroupInvalidPortValue")
        }
        return port
    }

    static func checkPorts(_ rule: SecurityGroupRule) throws {
        let (low, high) = (rule.portRangeMin, rule.portRangeMax)
        guard low != nil || high != nil else { return }
        guard let number = rule.protocolNumber else {
            throw APIError(.badRequest, "Must also specify protocol if port range is given.", code: "SecurityGroupProtocolRequiredWithPorts")
        }
        if IPProtocols.withPorts.contains(number) {
            if low == 0 || high == 0 { throw APIError(.badRequest, "Invalid value for port 0", code: "SecurityGroupInvalidPortValue") }
            guard let low, let high, low <= high else {
                throw APIError(.badRequest, "For TCP/UDP protocols, port_range_min must be <= port_range_max", code: "SecurityGroupInvalidPortRange")
            }
        } else if IPProtocols.icmp.contains(number) {
            for (value, attribute, field) in [(low, "port_range_min", "type"), (high, "port_range_max", "code")] {
                if let value, !(0...255).contains(value) {
                    throw APIError(.badRequest, "Invalid value for ICMP \(field) (\(attribute)) \(value). It must be 0 to 255.",
                                   code: "SecurityGroupInvalidIcmpValue")
                }
            }
            if low == nil, let high {
                throw APIError(.badRequest, "ICMP code (port-range-max) \(high) is provided but ICMP type (port-range-min) is missing.",
                               code: "SecurityGroupMissingIcmpType")
            }
        } else {
            throw APIError(.badRequest, "Invalid protocol \(number) for port range, only supported for DCCP, SCTP, TCP, UDP, UDPLITE protocols.",
                           code: "SecurityGroupInvalidProtocolForPort")
        }
    }
}
