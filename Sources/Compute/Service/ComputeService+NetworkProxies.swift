import Foundation
import NimbusCore

/// What Nova's proxies to Neutron below microversion 2.36 ask of the networking service, as the
/// caller: errors are Neutron's (404 for what the caller may not see), which the routes pass on.
/// The networking service's `NetworkClient` also offers this; without it the proxies list
/// nothing and find nothing.
public protocol NetworkProxyClient: Sendable {
    /// The networks the caller may see, as (id, name).
    func proxyNetworks(caller: AuthContext) async throws -> [(id: String, name: String)]
    /// The network, or nil when the caller may not see it.
    func proxyNetwork(_ id: String, caller: AuthContext) async throws -> (id: String, name: String)?
    /// The external networks' names (their ids when unnamed): Nova's floating IP pools.
    func floatingIPPools(caller: AuthContext) async throws -> [String]
    /// The security groups the caller may see, of `project` only unless it is nil, in Nova's
    /// form (ingress rules only; a rule whose remote group the caller cannot see left out).
    func proxySecurityGroups(project: String?, caller: AuthContext) async throws -> [InstanceSecurityGroup]
    func proxySecurityGroup(_ id: String, caller: AuthContext) async throws -> InstanceSecurityGroup
    func createProxySecurityGroup(name: String, description: String, caller: AuthContext) async throws -> InstanceSecurityGroup
    func updateProxySecurityGroup(_ id: String, name: String, description: String, caller: AuthContext) async throws -> InstanceSecurityGroup
    func deleteProxySecurityGroup(_ id: String, caller: AuthContext) async throws
    /// Creates an ingress rule in Neutron (`port_range_*` absent for -1) and returns it in
    /// Nova's form.
    func createProxySecurityGroupRule(_ rule: ProxyRuleRequest, caller: AuthContext) async throws -> InstanceSecurityGroup.Rule
    /// The id of the group the rule belongs to (Neutron's 404 when there is no such rule).
    func proxySecurityGroupRuleParent(_ id: String, caller: AuthContext) async throws -> String
    func deleteProxySecurityGroupRule(_ id: String, caller: AuthContext) async throws
}

/// An `os-security-group-rules` create, as Nova turns it into a Neutron rule.
public struct ProxyRuleRequest: Sendable, Equatable {
    public var parentGroupID: String
    public var remoteGroupID: String?
    public var ipProtocol: String?
    public var fromPort: Int64?
    public var toPort: Int64?
    /// Nil for a rule from a group.
    public var cidr: String?
}

extension ComputeService {
    var networkProxy: (any NetworkProxyClient)? { conductor.network as? any NetworkProxyClient }

    // MARK: os-networks, os-tenant-networks, os-floating-ip-pools

    /// `GET /os-networks[/{id}]`: what nova-network showed, with only the id and label known
    /// now; admins see the rest of its fields, all null, as Nova shows them.
    public func proxyNetworks(caller: AuthContext) async throws -> [JSON] {
        try authorize("os_compute_api:os-networks:list", caller)
        return try await (networkProxy?.proxyNetworks(caller: caller) ?? []).map { Self.novaNetwork($0, admin: caller.isAdmin) }
    }

    public func proxyNetwork(_ id: String, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-networks:show", caller)
        guard let network = try await networkProxy?.proxyNetwork(id, caller: caller) else { throw APIError.notFound("Network not found") }
        return Self.novaNetwork(network, admin: caller.isAdmin)
    }

    static let networkFields = ["cidr", "netmask", "gateway", "broadcast", "dns1", "dns2", "cidr_v6", "gateway_v6", "netmask_v6"]
    static let adminNetworkFields = ["created_at", "updated_at", "deleted_at", "deleted", "injected", "bridge", "vlan", "vpn_public_address",
                                     "vpn_public_port", "vpn_private_address", "dhcp_start", "project_id", "host", "bridge_interface",
                                     "multi_host", "priority", "rxtx_base", "mtu", "dhcp_server", "enable_dhcp", "share_address"]

    static func novaNetwork(_ network: (id: String, name: String), admin: Bool) -> JSON {
        var out: [String: JSON] = ["id": .string(network.id), "label": .string(network.name)]
        for field in networkFields + (admin ? adminNetworkFields : []) { out[field] = .null }
        return .object(out)
    }

    /// `GET /os-tenant-networks[/{id}]`: id, label and the string "None" as `cidr`, as Nova
    /// has answered since nova-network went.
    public func tenantNetworks(caller: AuthContext) async throws -> [JSON] {
        try authorize("os_compute_api:os-tenant-networks:list", caller)
        return try await (networkProxy?.proxyNetworks(caller: caller) ?? []).map(Self.tenantNetwork)
    }

    public func tenantNetwork(_ id: String, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-tenant-networks:show", caller)
        guard let network = try await networkProxy?.proxyNetwork(id, caller: caller) else { throw APIError.notFound("Network not found") }
        return Self.tenantNetwork(network)
    }

    static func tenantNetwork(_ network: (id: String, name: String)) -> JSON {
        ["id": .string(network.id), "cidr": "None", "label": .string(network.name)]
    }

    public func floatingIPPools(caller: AuthContext) async throws -> [JSON] {
        try authorize("os_compute_api:os-floating-ip-pools", caller)
        return try await (networkProxy?.floatingIPPools(caller: caller) ?? []).map { ["name": .string($0)] }
    }

    // MARK: os-security-groups, os-security-group-rules

    /// The caller's project's groups (every project's for an admin asking `all_tenants`),
    /// paged by `limit`/`offset` and then sorted by project and name, as Nova does.
    public func proxySecurityGroups(_ query: [String: String], caller: AuthContext) async throws -> [JSON] {
        try authorize("os_compute_api:os-security-groups:get", caller)
        guard let proxy = networkProxy else { return [] }
        let allProjects = caller.isAdmin && query["all_tenants"] != nil
        let groups = try await proxy.proxySecurityGroups(project: allProjects ? nil : caller.projectID ?? "", caller: caller)
        return try Paging.limited(groups, query: query).sorted { ($0.projectID, $0.name) < ($1.projectID, $1.name) }.map(\.json)
    }

    public func proxySecurityGroup(_ id: String, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-security-groups:show", caller)
        return try await requireProxy().proxySecurityGroup(try Self.securityGroupID(id), caller: caller).json
    }

    public func createProxySecurityGroup(_ body: JSON, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-security-groups:create", caller)
        let (name, description) = try Self.groupFields(body)
        do {
            return try await requireProxy().createProxySecurityGroup(name: name, description: description, caller: caller).json
        } catch let error as APIError where error.status == .conflict {
            throw APIError.forbidden(error.message)  // Neutron's quota: Nova's SecurityGroupLimitExceeded
        }
    }

    public func updateProxySecurityGroup(_ id: String, _ body: JSON, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-security-groups:update", caller)
        let id = try Self.securityGroupID(id)
        let proxy = try requireProxy()
        _ = try await proxy.proxySecurityGroup(id, caller: caller)
        let (name, description) = try Self.groupFields(body)
        return try await proxy.updateProxySecurityGroup(id, name: name, description: description, caller: caller).json
    }

    public func deleteProxySecurityGroup(_ id: String, caller: AuthContext) async throws {
        try authorize("os_compute_api:os-security-groups:delete", caller)
        let id = try Self.securityGroupID(id)
        let proxy = try requireProxy()
        _ = try await proxy.proxySecurityGroup(id, caller: caller)
        do {
            try await proxy.deleteProxySecurityGroup(id, caller: caller)
        } catch let error as APIError where error.status == .conflict {
            throw APIError.badRequest(error.message)  // in use: Nova's Invalid
        }
    }

    /// Nova's rule create: a rule from a group, or from a CIDR (`0.0.0.0/0` by default) with
    /// a protocol and both ports; checked as Nova checks it before Neutron sees it.
    public func createProxySecurityGroupRule(_ body: JSON, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-security-groups:rule:create", caller)
        let input = try JSONInput(body: body, key: "security_group_rule")
        guard let parent = input.fields["parent_group_id"] else {
            throw APIError.badRequest("Invalid input for field/attribute security_group_rule. Value: \(body["security_group_rule"]?.serialized() ?? ""). 'parent_group_id' is a required property")
        }
        guard let parentID = parent.stringValue, UUID(uuidString: parentID) != nil else {
            throw APIError.badRequest("Invalid input for field/attribute parent_group_id. Value: \(parent.serialized()). \(parent.serialized()) is not a 'uuid'")
        }
        var remoteGroup: String?
        if let raw = input.fields["group_id"], !raw.isNull {
            guard let id = raw.stringValue, UUID(uuidString: id) != nil else {
                throw APIError.badRequest("Invalid input for field/attribute group_id. Value: \(raw.serialized()). \(raw.serialized()) is not a 'uuid'")
            }
            remoteGroup = id
        }
        let proxy = try requireProxy()
        let parentGroup = try await proxy.proxySecurityGroup(parentID, caller: caller)
        var remote: InstanceSecurityGroup?
        if let remoteGroup { remote = try await proxy.proxySecurityGroup(remoteGroup, caller: caller) }
        guard let request = try Self.ruleRequest(parent: parentID, remoteGroup: remoteGroup, input.fields) else {
            throw APIError.badRequest("Not enough parameters to build a valid rule.")
        }
        if let cidr = request.cidr, let slash = cidr.lastIndex(of: "/"), cidr[cidr.index(after: slash)...] == "0",
           !["0.0.0.0", "::"].contains(String(cidr[..<slash])) {
            throw APIError.badRequest("Bad prefix for network in cidr \(cidr)")
        }
        if parentGroup.rules.contains(where: { Self.sameRule($0, request) }) {
            throw APIError.badRequest("This rule already exists in group \(parentID)")
        }
        var rule: InstanceSecurityGroup.Rule
        do {
            rule = try await proxy.createProxySecurityGroupRule(request, caller: caller)
        } catch let error as APIError where error.status == .conflict {
            throw APIError.forbidden(error.message)
        }
        if let remote { (rule.group, rule.cidr) = ((remote.name, remote.projectID), nil) }
        return rule.json(parent: parentID)
    }

    public func deleteProxySecurityGroupRule(_ id: String, caller: AuthContext) async throws {
        try authorize("os_compute_api:os-security-groups:rule:delete", caller)
        let id = try Self.securityGroupID(id)
        let proxy = try requireProxy()
        let parent = try await proxy.proxySecurityGroupRuleParent(id, caller: caller)
        _ = try await proxy.proxySecurityGroup(parent, caller: caller)
        try await proxy.deleteProxySecurityGroupRule(id, caller: caller)
    }

    func requireProxy() throws -> any NetworkProxyClient {
        guard let proxy = networkProxy else { throw APIError.notFound("Security groups need the networking service.") }
        return proxy
    }

    static func securityGroupID(_ id: String) throws -> String {
        guard UUID(uuidString: id) != nil else { throw APIError.badRequest("Security group id should be uuid") }
        return id
    }

    /// Nova's schema: `name` and `description`, both required strings of at most 255 characters.
    static func groupFields(_ body: JSON) throws -> (String, String) {
        let input = try JSONInput(body: body, key: "security_group")
        var values: [String] = []
        for field in ["name", "description"] {
            guard let raw = input.fields[field] else {
                throw APIError.badRequest("Invalid input for field/attribute security_group. Value: \(body["security_group"]?.serialized() ?? ""). '\(field)' is a required property")
            }
            guard let value = raw.stringValue, value.count <= 255 else {
                throw APIError.badRequest("Invalid input for field/attribute \(field). Value: \(raw.serialized()). \(raw.serialized()) is not of type 'string' or is longer than 255")
            }
            values.append(value)
        }
        return (values[0], values[1])
    }

    /// Nova's `_new_ingress_rule`: nil when a CIDR rule lacks its protocol or a port.
    static func ruleRequest(parent: String, remoteGroup: String?, _ fields: [String: JSON]) throws -> ProxyRuleRequest? {
        let ipProtocol = fields["ip_protocol"].flatMap { $0.isNull ? nil : ($0.stringValue ?? $0.intValue.map { String($0) }) }
        func port(_ key: String) -> JSON? { fields[key].flatMap { $0.isNull ? nil : $0 } }
        var from = port("from_port"), to = port("to_port")
        var cidr: String?
        if remoteGroup != nil {
            let upper = ipProtocol?.uppercased() ?? ""
            if from == nil && to == nil {
                if upper == "ICMP" { (from, to) = (-1, -1) } else if upper == "TCP" || upper == "UDP" { (from, to) = (1, 65535) }
            }
        } else {
            cidr = try parseCIDR(fields["cidr"])
        }
        var request = ProxyRuleRequest(parentGroupID: parent, remoteGroupID: remoteGroup, cidr: cidr)
        guard let ipProtocol, let from, let to else { return cidr == nil ? request : nil }
        let upper = ipProtocol.uppercased()
        func integer(_ value: JSON) -> Int64? { value.intValue ?? value.stringValue.flatMap { Int64($0.trimmingCharacters(in: .whitespaces)) } }
        guard let low = integer(from), let high = integer(to) else {
            throw APIError.badRequest(upper == "ICMP" ? "Invalid input received: Type and Code must be integers for ICMP protocol type"
                                                      : "Invalid input received: To and From ports must be integers")
        }
        guard ["TCP", "UDP", "ICMP"].contains(upper) else { throw APIError.badRequest("Invalid IP protocol \(ipProtocol).") }
        if upper != "ICMP" {
            if low > high { throw APIError.badRequest("Invalid port range \(low):\(high). Former value cannot be greater than the later") }
            if low < 1 || high > 65535 { throw APIError.badRequest("Invalid port range \(low):\(high). Valid \(upper) ports should be between 1-65535") }
        } else if !(-1...255).contains(low) || !(-1...255).contains(high) {
            throw APIError.badRequest("Invalid port range \(low):\(high). For ICMP, the type:code must be valid")
        }
        (request.ipProtocol, request.fromPort, request.toPort) = (ipProtocol, low, high)
        return request
    }

    /// Nova's `parse_cidr`: `0.0.0.0/0` when absent or empty, else a valid network (URL-decoded).
    static func parseCIDR(_ value: JSON?) throws -> String {
        guard let value, !value.isNull else { return "0.0.0.0/0" }
        guard let text = value.stringValue else { throw APIError.badRequest("\(value.serialized()) is not a valid IP network.") }
        if text.isEmpty { return "0.0.0.0/0" }
        let decoded = text.removingPercentEncoding ?? text
        guard IPNetwork(decoded) != nil else { throw APIError.badRequest("\(decoded) is not a valid IP network.") }
        return decoded
    }

    /// Nova's duplicate check: the same remote group, CIDR, ports and protocol. Nova reads every
    /// existing rule with a CIDR (`0.0.0.0/0` for a rule from a group), so a new rule from a
    /// group, which has none, is never a duplicate.
    static func sameRule(_ rule: InstanceSecurityGroup.Rule, _ request: ProxyRuleRequest) -> Bool {
        request.remoteGroupID == nil && rule.group == nil && rule.cidr == request.cidr && rule.fromPort == request.fromPort
            && rule.toPort == request.toPort && rule.ipProtocol?.lowercased() == request.ipProtocol?.lowercased()
    }
}
