import Foundation
import NimbusCore
import NimbusStore

/// Network IP availability (`/v2.0/network-ip-availabilities`, admins by default): per network
/// and per subnet, how many addresses the allocation pools hold and how many are allocated.
extension NetworkService {
    /// Every network's availability; `ipVersions`, when not empty, keeps only subnets of those
    /// versions and the networks that have one (Neutron's `ip_version` filter).
    public func listIPAvailabilities(ipVersions: [String] = [], caller: AuthContext) async throws -> [[String: JSON]] {
        try authorize("get_network_ip_availability", caller)
        return try await ipAvailabilities(where: "", [], ipVersions: ipVersions)
    }

    public func ipAvailability(_ network: String, caller: AuthContext) async throws -> [String: JSON] {
        try authorize("get_network_ip_availability", caller)
        guard let found = try await ipAvailabilities(where: "WHERE id = ?", [.text(network)], ipVersions: []).first else {
            throw Self.notFound("network", network)
        }
        return found
    }

    func ipAvailabilities(where clause: String, _ binds: [SQLValue], ipVersions: [String]) async throws -> [[String: JSON]] {
        let networks = try await db.query("SELECT id, name, project_id FROM network_network \(clause) ORDER BY created_at, id", binds)
        var subnets: [String: [Row]] = [:]
        let filter = clause.isEmpty ? "" : "WHERE network_id IN (SELECT id FROM network_network \(clause))"
        for row in try await db.query("SELECT id, network_id, name, cidr, ip_version, allocation_pools FROM network_subnet \(filter) ORDER BY created_at, id", binds)
        where ipVersions.isEmpty || ipVersions.contains(String(row.int("ip_version"))) {
            subnets[row.string("network_id"), default: []].append(row)
        }
        var used: [String: Int64] = [:]
        for row in try await db.query("SELECT subnet_id, COUNT(*) AS used FROM network_ip_allocation GROUP BY subnet_id") {
            used[row.string("subnet_id")] = row.int("used")
        }
        return networks.compactMap { network in
            let id = network.string("id")
            if !ipVersions.isEmpty && subnets[id] == nil { return nil }
            var totalIPs: UInt128 = 0, usedIPs: Int64 = 0
            let perSubnet: [JSON] = (subnets[id] ?? []).map { subnet in
                let total = Self.poolSize(Self.decode(subnet, "allocation_pools"))
                let inUse = used[subnet.string("id")] ?? 0
                totalIPs += total
                usedIPs += inUse
                return ["subnet_id": .string(subnet.string("id")), "subnet_name": .string(subnet.string("name")),
                        "cidr": .string(subnet.string("cidr")), "ip_version": .int(subnet.int("ip_version")),
                        "total_ips": Self.count(total), "used_ips": .int(inUse)]
            }
            return ["network_id": .string(id), "network_name": .string(network.string("name")),
                    "project_id": .string(network.string("project_id")), "tenant_id": .string(network.string("project_id")),
                    "total_ips": Self.count(totalIPs), "used_ips": .int(usedIPs), "subnet_ip_availability": .array(perSubnet)]
        }
    }

    /// The addresses `allocation_pools` (`[{"start", "end"}]`) hold.
    static func poolSize(_ pools: JSON) -> UInt128 {
        (pools.arrayValue ?? []).reduce(UInt128(0)) { sum, pool in
            guard let start = pool["start"]?.stringValue.flatMap(IPAddress.init), let end = pool["end"]?.stringValue.flatMap(IPAddress.init),
                  start <= end else { return sum }
            let size = end.value - start.value
            return size == UInt128.max ? UInt128.max : sum &+ size + 1
        }
    }

    /// A count as JSON: an integer while it fits, else (an IPv6 /64's pools) a number.
    static func count(_ value: UInt128) -> JSON { value <= UInt128(Int64.max) ? .int(Int64(value)) : .double(Double(value)) }
}
