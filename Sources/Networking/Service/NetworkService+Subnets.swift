import Foundation
import NimbusCore
import NimbusStore

extension NetworkService {
    static let subnetAttributes: Set<String> = [
        "name", "description", "network_id", "ip_version", "cidr", "gateway_ip", "allocation_pools", "dns_nameservers", "host_routes",
        "enable_dhcp", "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id", "prefixlen", "use_default_subnetpool", "tags",
        "project_id", "tenant_id",
    ]
    static let ipv6Modes: Set<String> = ["slaac", "dhcpv6-stateful", "dhcpv6-stateless"]

    func subnets(where clause: String = "", _ binds: [SQLValue] = [], _ x: any SQLExecutor) async throws -> [Rendered] {
        let rows = try await x.query("""
            SELECT s.*, n.project_id AS network_project_id, n.shared AS network_shared, n.external AS network_external
            FROM network_subnet s JOIN network_network n ON n.id = s.network_id \(clause)
            """, binds)
        let tags = try await tags(rows.map { $0.string("id") }, x)
        let grants = try await networkGrants(Array(Set(rows.map { $0.string("network_id") })), x)
        return rows.map { row in
            var json = Self.standard(row, tags: tags[row.string("id")] ?? [])
            json["network_id"] = .string(row.string("network_id"))
            json["ip_version"] = .int(row.int("ip_version"))
            json["cidr"] = .string(row.string("cidr"))
            json["gateway_ip"] = .optional(row.optionalString("gateway_ip"))
            json["allocation_pools"] = Self.decode(row, "allocation_pools")
            json["dns_nameservers"] = Self.decode(row, "dns_nameservers")
            json["host_routes"] = Self.decode(row, "host_routes")
            json["enable_dhcp"] = .bool(row.bool("enable_dhcp"))
            json["ipv6_ra_mode"] = .optional(row.optionalString("ipv6_ra_mode"))
            json["ipv6_address_mode"] = .optional(row.optionalString("ipv6_address_mode"))
            json["subnetpool_id"] = .optional(row.optionalString("subnetpool_id"))
            json["segment_id"] = .null
            return Rendered(json: json, target: Self.withGrants(["project_id": row.string("project_id"), "tenant_id": row.string("project_id"),
                                                                 "network_project_id": row.string("network_project_id"),
                                                                 "shared": Self.flag(row.bool("network_shared")),
                                                                 "external": Self.flag(row.bool("network_external"))],
                                                                grants[row.string("network_id")]))
        }
    }

    public func listSubnets(caller: AuthContext) async throws -> [[String: JSON]] {
        try await subnets(where: "ORDER BY s.created_at, s.id", [], db).compactMap { visible("subnet", $0.json, target: $0.target, caller: caller) }
    }

    public func subnet(_ id: String, caller: AuthContext) async throws -> [String: JSON] {
        try await shown("subnet", id, caller: caller)
    }

    /// Checks a subnet create; the insert carves its CIDR from a pool when asked and counts its quota.
    func subnetInsert(_ input: JSONInput, caller: AuthContext) throws -> Insert {
        try Self.allowOnly(input, Self.subnetAttributes)
        let networkID = try input.requiredString("network_id")
        let project = try Self.owner(input, caller)
        let tags = try input.stringArray("tags") ?? []
        try Self.validateTags(tags)
        let id = Identifiers.uuid()
        return { x in
            let network = try await self.visibleNetwork(networkID, caller: caller, x)
            var target = network.target
            target["project_id"] = project
            try self.authorize("create_subnet", caller, target: target, attributes: input)
            try await self.enforceQuota("subnet", project: project, x)
            // Overlap is checked against the network's subnets: concurrent creates on it take turns.
            try await self.lock("network_network", networkID, x)
            let (cidr, poolID) = try await self.subnetCIDR(input, caller: caller, x)
            if let version = try input.int("ip_version"), version != Int64(cidr.version) {
                throw Self.badRequest("Invalid input for operation: Cidr \(cidr) does not match ip_version \(version).", code: "InvalidInput")
            }
            for row in try await x.query("SELECT cidr FROM network_subnet WHERE network_id = ?", .text(networkID)) {
                if let other = IPNetwork(row.string("cidr")), other.overlaps(cidr) {
                    throw Self.badRequest("Invalid input for operation: Requested subnet with cidr: \(cidr) for network: \(networkID) overlaps with another subnet.", code: "InvalidInput")
                }
            }
            let gateway = try Self.gateway(input, cidr)
            let pools = try Self.allocationPools(input, cidr, gateway: gateway)
            let (raMode, addressMode) = try Self.ipv6Modes(input, cidr)
            let now = Self.now()
            try await x.execute("""
                INSERT INTO network_subnet (id, project_id, network_id, name, description, ip_version, cidr, gateway_ip, allocation_pools,
                    dns_nameservers, host_routes, enable_dhcp, ipv6_ra_mode, ipv6_address_mode, subnetpool_id, revision_number, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
                """, [.text(id), .text(project), .text(networkID), .text(try input.optionalString("name") ?? ""),
                      .text(try input.optionalString("description") ?? ""), .integer(Int64(cidr.version)), .text(cidr.description),
                      .optional(gateway?.description), Self.encode(.array(pools.map(\.json))),
                      Self.encode(.array(try Self.nameservers(input).map { .string($0) })), Self.encode(try Self.hostRoutes(input, cidr.version)),
                      .bool(try input.bool("enable_dhcp") ?? true), .optional(raMode), .optional(addressMode), .optional(poolID), now, now])
            try await self.setTags(id, tags, x)
            try await self.touch("network_network", networkID, x)
            return id
        }
    }

    public func updateSubnet(_ id: String, _ body: JSON, caller: AuthContext) async throws -> [String: JSON] {
        let input = try JSONInput(body: body, key: "subnet")
        try Self.allowOnly(input, ["name", "description", "gateway_ip", "allocation_pools", "dns_nameservers", "host_routes", "enable_dhcp"])
        try await write { x in
            let subnet = try await self.forWrite("subnet", id, "update_subnet", caller: caller, input: input, x)
            guard let cidr = IPNetwork(subnet.json["cidr"]?.stringValue ?? "") else { return }
            var sets: [(String, SQLValue)] = []
            if let name = try input.optionalString("name") { sets.append(("name", .text(name))) }
            if let description = try input.optionalString("description") { sets.append(("description", .text(description))) }
            if let dhcp = try input.bool("enable_dhcp") { sets.append(("enable_dhcp", .bool(dhcp))) }
            if input.has("dns_nameservers") { sets.append(("dns_nameservers", Self.encode(.array(try Self.nameservers(input).map { .string($0) })))) }
            if input.has("host_routes") { sets.append(("host_routes", Self.encode(try Self.hostRoutes(input, cidr.version)))) }
            if input.has("gateway_ip") || input.has("allocation_pools") {
                let gateway = try input.has("gateway_ip") ? Self.gateway(input, cidr) : subnet.json["gateway_ip"]?.stringValue.flatMap(IPAddress.init)
                // Pools kept as they are must still leave the (new) gateway out.
                let pools = try Self.allocationPools(input.has("allocation_pools") ? input : JSONInput(["allocation_pools": subnet.json["allocation_pools"] ?? []], path: "subnet"),
                                                     cidr, gateway: gateway)
                sets.append(("gateway_ip", .optional(gateway?.description)))
                sets.append(("allocation_pools", Self.encode(.array(pools.map(\.json)))))
            }
            guard !sets.isEmpty else { return }
            try await x.execute("UPDATE network_subnet SET \(sets.map { "\($0.0) = ?" }.joined(separator: ", ")) WHERE id = ?", sets.map(\.1) + [.text(id)])
            try await self.touch("network_subnet", id, x)
        }
        return try await subnet(id, caller: caller)
    }

    /// Deletes a subnet whose addresses only DHCP ports hold; those give their address up.
    /// Anything else's address (an instance's, a router interface's) keeps it in use (409 SubnetInUse).
    public func deleteSubnet(_ id: String, caller: AuthContext) async throws {
        try await write { x in
            let subnet = try await self.forWrite("subnet", id, "delete_subnet", caller: caller, x)
            if try await x.first("""
                SELECT 1 FROM network_ip_allocation a JOIN network_port p ON p.id = a.port_id
                WHERE a.subnet_id = ? AND p.device_owner <> 'network:dhcp'
                """, .text(id)) != nil {
                throw Self.conflict("Unable to complete operation on subnet \(id): One or more ports have an IP allocation from this subnet.", code: "SubnetInUse")
            }
            try await x.execute("DELETE FROM network_ip_allocation WHERE subnet_id = ?", .text(id))
            try await x.execute("DELETE FROM network_tag WHERE resource_id = ?", .text(id))
            try await x.execute("DELETE FROM network_subnet WHERE id = ?", .text(id))
            try await self.touch("network_network", subnet.json["network_id"]?.stringValue ?? "", x)
        }
    }

    // MARK: Validation

    /// The CIDR asked for, or one carved from the subnet pool (`subnetpool_id` or the default
    /// pool) with `prefixlen`; the pool's id when one was used.
    func subnetCIDR(_ input: JSONInput, caller: AuthContext, _ x: any SQLExecutor) async throws -> (IPNetwork, String?) {
        var poolID = try input.string("subnetpool_id")
        if poolID == nil, try input.bool("use_default_subnetpool") == true {
            let version = try input.int("ip_version") ?? 4
            poolID = try await x.first("SELECT id FROM network_subnetpool WHERE is_default = 1 AND ip_version = ?", .integer(version))?.string("id")
            if poolID == nil { throw Self.badRequest("Invalid input for operation: No default subnetpool found for IPv\(version).", code: "InvalidInput") }
        }
        let asked = try input.string("cidr").map { text in
            guard let cidr = IPNetwork(text, strict: true) else {
                let hint = IPNetwork(text).map { ", '\($0)' is recommended" } ?? ""
                throw Self.badRequest("Invalid input for operation: '\(text)' isn't a recognized IP subnet cidr\(hint).", code: "InvalidInput")
            }
            return cidr
        }
        guard let poolID else {
            guard let asked else { throw Self.badRequest("Bad subnets request: a cidr must be specified in the absence of a subnet pool.", code: "BadRequest") }
            if try input.int("ip_version") == nil { throw Self.badRequest("Invalid input for ip_version. Reason: 'None' is not in [4, 6].", code: "InvalidInput") }
            return (asked, nil)
        }
        return (try await allocatePrefix(poolID, cidr: asked, prefixLength: try input.int("prefixlen"), caller: caller, x), poolID)
    }

    /// `gateway_ip`: given, `null` for none, or by default the first host address.
    static func gateway(_ input: JSONInput, _ cidr: IPNetwork) throws -> IPAddress? {
        guard input.has("gateway_ip") else { return cidr.size > 2 || cidr.version == 6 ? cidr.first.advanced(by: 1) : nil }
        guard let text = try input.string("gateway_ip") else { return nil }
        guard let gateway = IPAddress(text), gateway.version == cidr.version else {
            throw badRequest("Invalid input for gateway_ip. Reason: '\(text)' is not a valid IP address.", code: "InvalidInput")
        }
        if cidr.version == 4 && cidr.size > 2 && (gateway == cidr.first || gateway == cidr.last) {
            throw badRequest("Invalid input for operation: Gateway is not valid on subnet.", code: "InvalidInput")
        }
        return gateway
    }

    /// The usable addresses of a CIDR: all but the network and broadcast address (IPv4) or the
    /// subnet-router anycast address (IPv6).
    static func usable(_ cidr: IPNetwork) -> IPRange? {
        let reserveLast: UInt128 = cidr.version == 4 && cidr.size > 2 ? 1 : 0
        let reserveFirst: UInt128 = cidr.size > 2 || cidr.version == 6 ? 1 : 0
        guard cidr.size > reserveFirst + reserveLast else { return nil }
        return IPRange(start: cidr.first.advanced(by: reserveFirst), end: IPAddress(version: cidr.version, value: cidr.last.value - reserveLast))
    }

    /// `allocation_pools` as given (inside the CIDR, not overlapping, not holding the gateway),
    /// or by default the usable addresses less the gateway.
    static func allocationPools(_ input: JSONInput, _ cidr: IPNetwork, gateway: IPAddress?) throws -> [IPRange] {
        guard let given = try input.array("allocation_pools") else {
            guard let all = usable(cidr) else { return [] }
            guard let gateway, all.contains(gateway) else { return [all] }
            var pools: [IPRange] = []
            if gateway > all.start { pools.append(IPRange(start: all.start, end: IPAddress(version: gateway.version, value: gateway.value - 1))) }
            if gateway < all.end { pools.append(IPRange(start: gateway.advanced(by: 1), end: all.end)) }
            return pools
        }
        let pools = try given.map { item -> IPRange in
            guard let start = item["start"]?.stringValue.flatMap(IPAddress.init), let end = item["end"]?.stringValue.flatMap(IPAddress.init),
                  start.version == cidr.version, end.version == cidr.version, start <= end else {
                throw badRequest("Invalid input for operation: Invalid allocation pool \(item.serialized()).", code: "InvalidInput")
            }
            let range = IPRange(start: start, end: end)
            guard let usable = usable(cidr), usable.contains(start), usable.contains(end) else {
                throw badRequest("The allocation pool \(start)-\(end) spans beyond the subnet cidr \(cidr).", code: "OutOfBoundsAllocationPool")
            }
            if let gateway, range.contains(gateway) {
                throw conflict("Gateway ip \(gateway) conflicts with allocation pool \(start)-\(end).", code: "GatewayConflictWithAllocationPools")
            }
            return range
        }.sorted { $0.start < $1.start }
        for (a, b) in zip(pools, pools.dropFirst()) where a.overlaps(b) {
            throw badRequest("Found overlapping allocation pools: \(a.start)-\(a.end) and \(b.start)-\(b.end) for subnet \(cidr).", code: "OverlappingAllocationPools")
        }
        return pools
    }

    static func nameservers(_ input: JSONInput) throws -> [String] {
        let servers = try input.stringArray("dns_nameservers") ?? []
        for server in servers where IPAddress(server) == nil {
            throw badRequest("Invalid input for dns_nameservers. Reason: '\(server)' is not a valid nameserver.", code: "InvalidInput")
        }
        if Set(servers).count != servers.count { throw badRequest("Invalid input for dns_nameservers. Reason: Duplicate nameserver.", code: "InvalidInput") }
        return servers
    }

    static func hostRoutes(_ input: JSONInput, _ version: Int) throws -> JSON {
        .array(try (input.array("host_routes") ?? []).map { route in
            guard let destination = route["destination"]?.stringValue, let cidr = IPNetwork(destination), cidr.version == version,
                  let nexthop = route["nexthop"]?.stringValue, let hop = IPAddress(nexthop), hop.version == version else {
                throw badRequest("Invalid input for host_routes. Reason: '\(route.serialized())' is not a valid host route.", code: "InvalidInput")
            }
            return ["destination": .string(cidr.description), "nexthop": .string(hop.description)]
        })
    }

    static func ipv6Modes(_ input: JSONInput, _ cidr: IPNetwork) throws -> (String?, String?) {
        let ra = try input.string("ipv6_ra_mode"), address = try input.string("ipv6_address_mode")
        for mode in [ra, address].compactMap({ $0 }) where !ipv6Modes.contains(mode) {
            throw badRequest("Invalid input for operation: '\(mode)' is not in \(ipv6Modes.sorted()).", code: "InvalidInput")
        }
        if cidr.version == 4 && (ra != nil || address != nil) {
            throw badRequest("Invalid input for operation: ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False or ip_version is 4.", code: "InvalidInput")
        }
        if let ra, let address, ra != address {
            throw badRequest("Invalid input for operation: ipv6_ra_mode set to '\(ra)' with ipv6_address_mode set to '\(address)' is not valid.", code: "InvalidInput")
        }
        return (ra, address)
    }
}
