import Compute
import Foundation
import Networking
import NimbusCore

/// Nova's proxies to Neutron below 2.36 (`os-networks`, `os-tenant-networks`,
/// `os-floating-ip-pools`, `os-security-groups`, `os-security-group-rules`), as the caller.
extension NetworkServiceClient: NetworkProxyClient {
    func proxyNetworks(caller: AuthContext) async throws -> [(id: String, name: String)] {
        try await network.listNetworks(caller: caller).map { ($0["id"]?.stringValue ?? "", $0["name"]?.stringValue ?? "") }
    }

    func proxyNetwork(_ id: String, caller: AuthContext) async throws -> (id: String, name: String)? {
        guard let found = try await visible({ try await network.network(id, caller: caller) }) else { return nil }
        return (found["id"]?.stringValue ?? id, found["name"]?.stringValue ?? "")
    }

    func floatingIPPools(caller: AuthContext) async throws -> [String] {
        try await network.listNetworks(caller: caller).filter { $0["router:external"]?.boolValue == true }.map { net in
            let name = net["name"]?.stringValue ?? ""
            return name.isEmpty ? net["id"]?.stringValue ?? "" : name
        }
    }

    func proxySecurityGroups(project: String?, caller: AuthContext) async throws -> [InstanceSecurityGroup] {
        let groups = try await network.securityGroups(caller: caller, project: project)
        // The list holds every group the caller can see, so the rules' remote groups come from
        // it rather than from a lookup each.
        var remote = Dictionary(uniqueKeysWithValues: groups.map { ($0.id, Optional($0)) })
        var out: [InstanceSecurityGroup] = []
        for group in groups where project == nil || group.projectID == project {
            out.append(try await novaGroup(group, caller: caller, remoteGroups: &remote))
        }
        return out
    }

    func proxySecurityGroup(_ id: String, caller: AuthContext) async throws -> InstanceSecurityGroup {
        var remote: [String: SecurityGroup?] = [:]
        return try await novaGroup(try await network.securityGroup(id, caller: caller), caller: caller, remoteGroups: &remote)
    }

    func createProxySecurityGroup(name: String, description: String, caller: AuthContext) async throws -> InstanceSecurityGroup {
        var remote: [String: SecurityGroup?] = [:]
        let group = try await network.createSecurityGroup(JSONInput(["name": .string(name), "description": .string(description)], path: "security_group"),
                                                          caller: caller)
        return try await novaGroup(group, caller: caller, remoteGroups: &remote)
    }

    func updateProxySecurityGroup(_ id: String, name: String, description: String, caller: AuthContext) async throws -> InstanceSecurityGroup {
        var remote: [String: SecurityGroup?] = [:]
        let group = try await network.updateSecurityGroup(id, JSONInput(["name": .string(name), "description": .string(description)], path: "security_group"),
                                                          caller: caller)
        return try await novaGroup(group, caller: caller, remoteGroups: &remote)
    }

    func deleteProxySecurityGroup(_ id: String, caller: AuthContext) async throws {
        try await network.deleteSecurityGroup(id, caller: caller)
    }

    func createProxySecurityGroupRule(_ request: ProxyRuleRequest, caller: AuthContext) async throws -> InstanceSecurityGroup.Rule {
        var fields: [String: JSON] = ["security_group_id": .string(request.parentGroupID), "direction": "ingress",
                                      "ethertype": request.cidr.flatMap { IPNetwork($0) }?.version == 6 ? "IPv6" : "IPv4"]
        if let cidr = request.cidr { fields["remote_ip_prefix"] = .string(cidr) }
        if let group = request.remoteGroupID { fields["remote_group_id"] = .string(group) }
        if let ipProtocol = request.ipProtocol { fields["protocol"] = .string(ipProtocol.lowercased()) }
        if let from = request.fromPort, from != -1 { fields["port_range_min"] = .int(from) }
        if let to = request.toPort, to != -1 { fields["port_range_max"] = .int(to) }
        let rule = try await network.createSecurityGroupRule(JSONInput(fields, path: "security_group_rule"), caller: caller)
        return Self.novaRule(rule, remote: nil)
    }

    func proxySecurityGroupRuleParent(_ id: String, caller: AuthContext) async throws -> String {
        try await network.securityGroupRule(id, caller: caller).securityGroupID
    }

    func deleteProxySecurityGroupRule(_ id: String, caller: AuthContext) async throws {
        try await network.deleteSecurityGroupRule(id, caller: caller)
    }

    /// A Neutron group as Nova shows it: its ingress rules, each naming its remote group (when
    /// the caller can see it; a rule whose remote group it cannot is left out, as in Nova).
    func novaGroup(_ group: SecurityGroup, caller: AuthContext, remoteGroups: inout [String: SecurityGroup?]) async throws -> InstanceSecurityGroup {
        var rules: [InstanceSecurityGroup.Rule] = []
        for rule in group.rules where rule.direction == .ingress {
            var remote: SecurityGroup?
            if let remoteID = rule.remoteGroupID {
                if remoteGroups[remoteID] == nil {
                    remoteGroups[remoteID] = .some(try await visible({ try await network.securityGroup(remoteID, caller: caller) }))
                }
                guard let found = remoteGroups[remoteID] ?? nil else { continue }
                remote = found
            }
            rules.append(Self.novaRule(rule, remote: remote))
        }
        return InstanceSecurityGroup(id: group.id, name: group.name, description: group.description, projectID: group.projectID, rules: rules)
    }

    /// Nova's reading of a Neutron rule: a protocol without a port range is 1–65535 for TCP
    /// and UDP and -1 otherwise; the remote prefix `0.0.0.0/0` when there is none.
    static func novaRule(_ rule: SecurityGroupRule, remote: SecurityGroup?) -> InstanceSecurityGroup.Rule {
        let ipProtocol = rule.etherType == .ipv6 && rule.protocol == "icmp" ? "icmpv6" : rule.protocol
        var (from, to) = (rule.portRangeMin, rule.portRangeMax)
        if let ipProtocol, from == nil, to == nil { (from, to) = ["tcp", "udp"].contains(ipProtocol) ? (1, 65535) : (-1, -1) }
        return InstanceSecurityGroup.Rule(id: rule.id, ipProtocol: ipProtocol, fromPort: from, toPort: to,
                                          cidr: remote == nil ? rule.remoteIPPrefix ?? "0.0.0.0/0" : nil,
                                          group: remote.map { ($0.name, $0.projectID) })
    }
}
