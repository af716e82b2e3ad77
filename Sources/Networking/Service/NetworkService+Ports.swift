import Foundation
import NimbusCore
import NimbusStore

/// One `fixed_ips` entry a caller asked for: a subnet, an address, or both.
struct FixedIPRequest: Sendable {
    var subnetID: String?
    var address: IPAddress?
}

extension NetworkService {
    static let portAttributes: Set<String> = [
        "name", "description", "network_id", "admin_state_up", "mac_address", "fixed_ips", "device_id", "device_owner",
        "port_security_enabled", "allowed_address_pairs", "security_groups", "binding:host_id", "binding:profile", "binding:vnic_type",
        "tags", "project_id", "tenant_id", "extra_dhcp_opts", "qos_policy_id",
    ]
    static let vnicTypes: Set<String> = ["normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder", "smart-nic", "vdpa", "remote-managed"]

    func ports(where clause: String = "", _ binds: [SQLValue] = [], _ x: any SQLExecutor) async throws -> [Rendered] {
        let rows = try await x.query("""
            SELECT p.*, n.project_id AS network_project_id, n.shared AS network_shared
            FROM network_port p JOIN network_network n ON n.id = p.network_id \(clause)
            """, binds)
        let ids = rows.map { $0.string("id") }
        let tags = try await tags(ids, x)
        let qos = try await qosBindings(.port, ids, x)
        let networkQoS = try await qosBindings(.network, Array(Set(rows.map { $0.string("network_id") })), x)
        let trunks = try await trunkDetails(ids, x)
        var fixedIPs: [String: [JSON]] = [:], groups: [String: [JSON]] = [:]
        let filter = clause.isEmpty ? "" : "WHERE port_id IN (SELECT p.id FROM network_port p JOIN network_network n ON n.id = p.network_id \(clause))"
        // Allocation order is the order the addresses were asked for: by insertion, as stored.
        for row in try await x.query("SELECT port_id, subnet_id, ip_address FROM network_ip_allocation \(filter)", binds) {
            fixedIPs[row.string("port_id"), default: []].append(["subnet_id": .string(row.string("subnet_id")), "ip_address": .string(row.string("ip_address"))])
        }
        for row in try await x.query("SELECT port_id, security_group_id FROM network_port_security_group \(filter) ORDER BY security_group_id", binds) {
            groups[row.string("port_id"), default: []].append(.string(row.string("security_group_id")))
        }
        return rows.map { row in
            let id = row.string("id")
            var json = Self.standard(row, tags: tags[id] ?? [])
            json["network_id"] = .string(row.string("network_id"))
            json["mac_address"] = .string(row.string("mac_address"))
            json["admin_state_up"] = .bool(row.bool("admin_state_up"))
            json["status"] = .string(row.string("status"))
            json["device_id"] = .string(row.string("device_id"))
            json["device_owner"] = .string(row.string("device_owner"))
            json["fixed_ips"] = .array(fixedIPs[id] ?? [])
            json["security_groups"] = .array(groups[id] ?? [])
            json["port_security_enabled"] = .bool(row.bool("port_security_enabled"))
            json["allowed_address_pairs"] = Self.decode(row, "allowed_address_pairs")
            json["binding:host_id"] = .string(row.string("host_id"))
            json["binding:vif_type"] = .string(row.string("vif_type"))
            json["binding:vif_details"] = Self.decode(row, "vif_details")
            json["binding:vnic_type"] = .string(row.string("vnic_type"))
            json["binding:profile"] = Self.decode(row, "profile")
            json["extra_dhcp_opts"] = Self.decode(row, "extra_dhcp_opts")
            // The port's own policy, and its network's, which applies when the port has none.
            json["qos_policy_id"] = .optional(qos[id])
            json["qos_network_policy_id"] = .optional(networkQoS[row.string("network_id")])
            if let details = trunks[id] { json["trunk_details"] = details }
            return Rendered(json: json, target: ["project_id": row.string("project_id"), "tenant_id": row.string("project_id"),
                                                 "network_project_id": row.string("network_project_id"),
                                                 "shared": Self.flag(row.bool("network_shared")), "external": "False"])
        }
    }

    /// Ports the caller may see; `fixed_ips` filters (`ip_address=…`, `subnet_id=…`,
    /// `ip_address_substr=…`, each entry of one address) are applied here, as the generic
    /// listing skips list attributes.
    public func listPorts(fixedIPFilters: [String], caller: AuthContext) async throws -> [[String: JSON]] {
        let wanted = fixedIPFilters.map { filter in
            Dictionary(filter.split(separator: "&").compactMap { part -> (String, String)? in
                let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
                return kv.count == 2 ? (kv[0], kv[1]) : nil
            }, uniquingKeysWith: { _, b in b })
        }
        return try await ports(where: "ORDER BY p.created_at, p.id", [], db).compactMap { port in
            let entries = port.json["fixed_ips"]?.arrayValue ?? []
            for filter in wanted where !entries.contains(where: { entry in filter.allSatisfy { key, value in
                key == "ip_address_substr" ? entry["ip_address"]?.stringValue?.contains(value) == true : entry[key]?.stringValue == value
            } }) {
                return nil
            }
            return visible("port", port.json, target: port.target, caller: caller)
        }
    }

    public func port(_ id: String, caller: AuthContext) async throws -> [String: JSON] {
        try await shown("port", id, caller: caller)
    }

    /// Checks a port create, the API's or Nova's (no `caller`: Nova has checked its user, so
    /// only the network's owner or sharing decides); the insert gives it a MAC and addresses.
    func portInsert(_ input: JSONInput, project: String, caller: AuthContext?) throws -> Insert {
        let networkID = try input.requiredString("network_id")
        let requests = try input.array("fixed_ips").map(Self.fixedIPRequests)
        let pairs = try input.array("allowed_address_pairs")
        let asked = try input.optionalString("mac_address").map { try Self.mac($0) }
        let vnic = try input.optionalString("binding:vnic_type") ?? "normal"
        guard Self.vnicTypes.contains(vnic) else { throw Self.badRequest("Invalid input for binding:vnic_type. Reason: '\(vnic)' is not in \(Self.vnicTypes.sorted()).", code: "InvalidInput") }
        let profile = try input.object("binding:profile").map { JSON.object($0.fields) } ?? [:]
        let host = try input.optionalString("binding:host_id") ?? ""
        let dhcpOptions = try Self.extraDHCPOptions(input.array("extra_dhcp_opts") ?? [], merging: [])
        let tags = try input.stringArray("tags") ?? []
        try Self.validateTags(tags)
        let id = Identifiers.uuid()
        return { x in
            guard let network = try await self.networks(where: "WHERE id = ?", [.text(networkID)], x).first,
                  caller.map({ self.visible("network", network.json, target: network.target, caller: $0) != nil }) ?? true,
                  // Only the owner's, shared or (for admins) any network takes ports: seeing an
                  // external network is not being allowed to plug into it.
                  caller?.isAdmin == true || Self.usable(network, by: project) else {
                throw Self.notFound("network", networkID)
            }
            if let caller {
                var target = network.target
                target["project_id"] = project
                target["tenant_id"] = project
                try self.authorize("create_port", caller, target: target, attributes: input)
                if requests?.contains(where: { $0.address != nil }) == true {
                    try self.authorize("create_port:fixed_ips:ip_address", caller, target: target)
                }
            }
            try await self.enforceQuota("port", project: project, x)
            let security = try input.bool("port_security_enabled") ?? (network.json["port_security_enabled"]?.boolValue ?? true)
            let mac = try await self.macAddress(asked, network: networkID, x)
            let addressPairs = try Self.addressPairs(pairs, mac: mac, portSecurity: security)
            let groups = try await self.securityGroups(input, portSecurity: security, project: project, x)
            try await self.insertPortRow(id, project: project, network: networkID, mac: mac, device: try input.optionalString("device_id") ?? "",
                                         owner: try input.optionalString("device_owner") ?? "", portSecurity: security,
                                         name: try input.optionalString("name") ?? "", description: try input.optionalString("description") ?? "",
                                         adminUp: try input.bool("admin_state_up") ?? true, addressPairs: addressPairs, vnic: vnic, profile: profile, dhcpOptions: dhcpOptions, x)
            try await self.allocateAddresses(requests, port: id, network: networkID, mac: mac, x)
            for group in groups {
                try await x.execute("INSERT INTO network_port_security_group (port_id, security_group_id) VALUES (?, ?)", .text(id), .text(group))
            }
            try await self.setTags(id, tags, x)
            try await self.bindQoSPolicy(.port, id, input.fields["qos_policy_id"], caller: caller, x)
            if !host.isEmpty { try await self.bind(id, host: host, x) }
            try await self.mechanism.portPrecommit(try await self.stored("port", id, x).json, x)
            return id
        }
    }

    /// A new port's row; its addresses, groups and tags are the caller's to add.
    func insertPortRow(_ id: String, project: String, network: String, mac: String, device: String, owner: String, portSecurity: Bool,
                       name: String = "", description: String = "", adminUp: Bool = true,
                       addressPairs: JSON = [], vnic: String = "normal", profile: JSON = [:], dhcpOptions: JSON = [],
                       _ x: any SQLExecutor) async throws {
        let now = Self.now()
        try await x.execute("""
            INSERT INTO network_port (id, project_id, network_id, name, description, mac_address, admin_state_up, status, device_id, device_owner,
                port_security_enabled, allowed_address_pairs, host_id, vif_type, vif_details, vnic_type, profile, extra_dhcp_opts,
                revision_number, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, 'DOWN', ?, ?, ?, ?, '', 'unbound', '{}', ?, ?, ?, 0, ?, ?)
            """, [.text(id), .text(project), .text(network), .text(name), .text(description), .text(mac), .bool(adminUp),
                  .text(device), .text(owner), .bool(portSecurity), Self.encode(addressPairs), .text(vnic), Self.encode(profile),
                  Self.encode(dhcpOptions), now, now])
    }

    /// A port Neutron makes for one of its own devices (a router's gateway or interface, a
    /// floating IP): no security groups, no quota (Neutron counts only what projects create),
    /// addresses as `fixedIPs` asks or one of each IP version. Returns its id.
    func insertServicePort(project: String, network: String, device: String, owner: String, fixedIPs: [FixedIPRequest]?,
                           versions: [Int] = [4, 6], _ x: any SQLExecutor) async throws -> String {
        let id = Identifiers.uuid()
        let mac = try await macAddress(nil, network: network, x)
        try await insertPortRow(id, project: project, network: network, mac: mac, device: device, owner: owner, portSecurity: false, x)
        try await allocateAddresses(fixedIPs, port: id, network: network, mac: mac, versions: versions, x)
        try await x.execute("UPDATE network_port SET status = 'ACTIVE' WHERE id = ?", .text(id))
        return id
    }

    public func updatePort(_ id: String, _ body: JSON, caller: AuthContext) async throws -> [String: JSON] {
        let input = try JSONInput(body: body, key: "port")
        try Self.allowOnly(input, Self.portAttributes.subtracting(["network_id", "project_id", "tenant_id", "tags"]))
        try await write { x in
            let port = try await self.forWrite("port", id, "update_port", caller: caller, input: input, x)
            let networkID = port.json["network_id"]?.stringValue ?? ""
            var sets: [(String, SQLValue)] = []
            if let name = try input.optionalString("name") { sets.append(("name", .text(name))) }
            if let description = try input.optionalString("description") { sets.append(("description", .text(description))) }
            if let up = try input.bool("admin_state_up") { sets.append(("admin_state_up", .bool(up))) }
            if let device = try input.optionalString("device_id") { sets.append(("device_id", .text(device))) }
            if let owner = try input.optionalString("device_owner") { sets.append(("device_owner", .text(owner))) }
            if let vnic = try input.optionalString("binding:vnic_type") { sets.append(("vnic_type", .text(vnic))) }
            if let profile = try input.object("binding:profile") { sets.append(("profile", Self.encode(.object(profile.fields)))) }
            if let options = try input.array("extra_dhcp_opts") {
                sets.append(("extra_dhcp_opts", Self.encode(try Self.extraDHCPOptions(options, merging: port.json["extra_dhcp_opts"]?.arrayValue ?? []))))
            }
            var mac = port.json["mac_address"]?.stringValue ?? ""
            if let asked = try input.optionalString("mac_address").map({ try Self.mac($0) }), asked != mac {
                if port.json["binding:vif_type"]?.stringValue != "unbound" {
                    throw Self.conflict("Port \(id) is bound: its MAC address cannot change.", code: "PortBound")
                }
                mac = try await self.macAddress(asked, network: networkID, x)
                sets.append(("mac_address", .text(mac)))
            }
            let security = try input.bool("port_security_enabled") ?? (port.json["port_security_enabled"]?.boolValue ?? true)
            sets.append(("port_security_enabled", .bool(security)))
            let pairs = try input.array("allowed_address_pairs") ?? port.json["allowed_address_pairs"]?.arrayValue
            sets.append(("allowed_address_pairs", Self.encode(try Self.addressPairs(pairs, mac: mac, portSecurity: security))))
            if input.has("security_groups") || input.has("port_security_enabled") {
                var groups = security ? (port.json["security_groups"]?.arrayValue ?? []).compactMap(\.stringValue) : []
                if input.has("security_groups") {
                    groups = try await self.securityGroups(input, portSecurity: security, project: port.target["project_id"] ?? "", x)
                }
                if !security && !groups.isEmpty {
                    throw Self.conflict("Port has security group associated. Cannot disable port security or IP address until security group is removed.", code: "PortSecurityPortHasSecurityGroup")
                }
                try await x.execute("DELETE FROM network_port_security_group WHERE port_id = ?", .text(id))
                for group in groups {
                    try await x.execute("INSERT INTO network_port_security_group (port_id, security_group_id) VALUES (?, ?)", .text(id), .text(group))
                }
            }
            if let entries = try input.array("fixed_ips") {
                if entries.contains(where: { $0["ip_address"] != nil }) {
                    try self.authorize("update_port:fixed_ips:ip_address", caller, target: port.target)
                }
                // Addresses the port keeps are re-inserted in the same transaction, so they are never free in between.
                var requests = try Self.fixedIPRequests(entries)
                var current = (port.json["fixed_ips"]?.arrayValue ?? []).compactMap { entry in
                    entry["ip_address"]?.stringValue.flatMap(IPAddress.init).map { (entry["subnet_id"]?.stringValue ?? "", $0) }
                }
                for index in requests.indices where requests[index].address == nil {
                    let asked = Set(requests.compactMap(\.address))
                    if let kept = current.firstIndex(where: { $0.0 == requests[index].subnetID && !asked.contains($0.1) }) {
                        requests[index].address = current.remove(at: kept).1
                    }
                }
                try await x.execute("DELETE FROM network_ip_allocation WHERE port_id = ?", .text(id))
                try await self.allocateAddresses(requests, port: id, network: networkID, mac: mac, x)
            }
            try await self.bindQoSPolicy(.port, id, input.fields["qos_policy_id"], caller: caller, x)
            try await x.execute("UPDATE network_port SET \(sets.map { "\($0.0) = ?" }.joined(separator: ", ")) WHERE id = ?", sets.map(\.1) + [.text(id)])
            if let host = try input.string("binding:host_id") {
                if host.isEmpty { try await self.unbind(id, x) } else { try await self.bind(id, host: host, x) }
            }
            try await self.touch("network_port", id, x)
        }
        return try await port(id, caller: caller)
    }

    public func deletePort(_ id: String, caller: AuthContext) async throws {
        try await write { x in
            let port = try await self.forWrite("port", id, "delete_port", caller: caller, x)
            try await self.refuseL3PortDeletion(port.json, x)
            try await self.removePort(id, x)
        }
    }

    /// Deletes a port; its addresses and security group links go with it (ON DELETE CASCADE),
    /// and floating IPs on it are disassociated, as Neutron does when an instance goes.
    func removePort(_ id: String, _ x: any SQLExecutor) async throws {
        try await refuseServicePortDeletion(id, x)
        try await disassociate(where: "port_id", id, x)
        try await x.execute("DELETE FROM network_tag WHERE resource_id = ?", .text(id))
        try await x.execute("DELETE FROM network_port WHERE id = ?", .text(id))
    }

    // MARK: Binding

    /// Binds the port on `host` through the mechanism driver: `binding:vif_type` and details
    /// from the driver, status ACTIVE. A driver that cannot bind, a network with no segment, or
    /// a host whose Linux bridge agent cannot carry the network's segment, leaves
    /// `binding_failed` and status DOWN.
    func bind(_ id: String, host: String, _ x: any SQLExecutor) async throws {
        guard let port = try await ports(where: "WHERE p.id = ?", [.text(id)], x).first else { throw Self.notFound("port", id) }
        var bound: (vifType: String, vifDetails: [String: JSON])?
        if let segment = try await boundSegment(network: port.json["network_id"]?.stringValue ?? "", x), try await hostAgentCarries(segment, host: host, x) {
            bound = mechanism.bind(port: port.json, host: host, segment: segment)
        }
        try await x.execute("UPDATE network_port SET host_id = ?, vif_type = ?, vif_details = ?, status = ? WHERE id = ?",
                            .text(host), .text(bound?.vifType ?? "binding_failed"), Self.encode(.object(bound?.vifDetails ?? [:])),
                            .text(bound == nil ? "DOWN" : "ACTIVE"), .text(id))
    }

    /// Whether `host`'s Linux bridge agent can carry `segment`, as ML2's Linux bridge mechanism
    /// driver decides: such an agent carries `local`, `flat`, `vlan` and the `tunnel_types` it
    /// reports (`vxlan`), so a `gre` segment is never bound to it (Neutron's Linux bridge agent
    /// has no GRE). A host whose agent reports no `tunnel_types` runs no dataplane (fake hosts,
    /// `--dataplane none`) and binds anything, as before.
    func hostAgentCarries(_ segment: SegmentSpec, host: String, _ x: any SQLExecutor) async throws -> Bool {
        guard let row = try await x.first("SELECT configurations FROM network_agent WHERE agent_type = ? AND host = ?",
                                          .text(AgentType.linuxBridge.rawValue), .text(host)),
              let tunnelTypes = (try? JSON.parse(row.string("configurations")))?["tunnel_types"]?.arrayValue else { return true }
        return [NetworkType.local, .flat, .vlan].contains(segment.type) || tunnelTypes.contains(.string(segment.type.rawValue))
    }

    func unbind(_ id: String, _ x: any SQLExecutor) async throws {
        try await x.execute("UPDATE network_port SET host_id = '', vif_type = 'unbound', vif_details = '{}', status = 'DOWN' WHERE id = ?", .text(id))
    }

    // MARK: Addresses

    static func fixedIPRequests(_ entries: [JSON]) throws -> [FixedIPRequest] {
        try entries.map { entry in
            guard let object = entry.objectValue else { throw badRequest("Invalid input for fixed_ips. Reason: '\(entry.serialized())' is not a dictionary.", code: "InvalidInput") }
            let subnet = object["subnet_id"]?.stringValue
            let address = try object["ip_address"]?.stringValue.map { text in
                try IPAddress(text) ?? { throw badRequest("Invalid input for ip_address. Reason: '\(text)' is not a valid IP address.", code: "InvalidInput") }()
            }
            if subnet == nil && address == nil { throw badRequest("Invalid input for fixed_ips. Reason: an entry needs subnet_id or ip_address.", code: "InvalidInput") }
            return FixedIPRequest(subnetID: subnet, address: address)
        }
    }

    /// Gives the port its addresses: each requested one (409 IpAddressAlreadyAllocated when
    /// taken), or with no request one address of each IP version (of `versions`) from the
    /// network's subnets.
    ///
    /// Each subnet's row is locked before its addresses are read, so on PostgreSQL concurrent
    /// allocations from one subnet take turns; `network_ip_allocation`'s primary key
    /// (network, address) is the backstop that makes a duplicate impossible on any engine.
    func allocateAddresses(_ requests: [FixedIPRequest]?, port: String, network: String, mac: String, versions: [Int] = [4, 6],
                           _ x: any SQLExecutor) async throws {
        let subnets = try await x.query("SELECT * FROM network_subnet WHERE network_id = ? ORDER BY created_at, id", .text(network))
        func subnet(_ id: String) throws -> Row {
            guard let row = subnets.first(where: { $0.string("id") == id }) else {
                throw Self.badRequest("Invalid input for operation: Failed to create port on network \(network), because fixed_ips included invalid subnet \(id).", code: "InvalidInput")
            }
            return row
        }
        // Address-autoconfigured subnets (SLAAC) give every port its EUI-64 address, asked for or not.
        let automatic = subnets.filter { ["slaac", "dhcpv6-stateless"].contains($0.optionalString("ipv6_address_mode") ?? "") }
        var plan: [(subnet: Row, address: IPAddress?)] = []
        if let requests {
            for request in requests {
                if let address = request.address {
                    let row = try request.subnetID.map(subnet) ?? subnets.first { IPNetwork($0.string("cidr"))?.contains(address) == true } ?? {
                        throw Self.badRequest("IP address \(address) is not a valid IP for any of the subnets on the specified network.", code: "InvalidIpForNetwork")
                    }()
                    guard IPNetwork(row.string("cidr"))?.contains(address) == true else {
                        throw Self.badRequest("IP address \(address) is not a valid IP for the specified subnet.", code: "InvalidIpForSubnet")
                    }
                    plan.append((row, address))
                } else if let subnetID = request.subnetID {
                    plan.append((try subnet(subnetID), nil))
                }
            }
            // An explicit empty list asks for no address at all.
            if !requests.isEmpty {
                plan += automatic.filter { row in !plan.contains { $0.subnet.string("id") == row.string("id") } }.map { ($0, nil) }
            }
        } else {
            // One address of each IP version (IPv6 only without SLAAC): the first subnet of it with one free.
            for version in versions where automatic.isEmpty || version == 4 {
                let candidates = subnets.filter { $0.int("ip_version") == Int64(version) }
                guard !candidates.isEmpty else { continue }
                var done = false
                for row in candidates where !done {
                    try await lock("network_subnet", row.string("id"), x)
                    if let address = try await freeAddress(row, mac: mac, x) {
                        try await insertAllocation(address, subnet: row, port: port, x)
                        done = true
                    }
                }
                if !done { throw Self.conflict("No more IP addresses available on network \(network).", code: "IpAddressGenerationFailure") }
            }
            plan = versions.contains(6) ? automatic.map { ($0, nil) } : []
        }
        for (row, address) in plan {
            try await lock("network_subnet", row.string("id"), x)
            if let address {
                if try await x.first("SELECT 1 FROM network_ip_allocation WHERE network_id = ? AND ip_address = ?", .text(network), .text(address.description)) != nil {
                    throw Self.conflict("Unable to complete operation for network \(network). The IP address \(address) is in use.", code: "IpAddressAlreadyAllocated")
                }
                try await insertAllocation(address, subnet: row, port: port, x)
            } else {
                guard let free = try await freeAddress(row, mac: mac, x) else {
                    throw Self.conflict("No more IP addresses available on network \(network).", code: "IpAddressGenerationFailure")
                }
                try await insertAllocation(free, subnet: row, port: port, x)
            }
        }
    }

    func insertAllocation(_ address: IPAddress, subnet: Row, port: String, _ x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO network_ip_allocation (network_id, ip_address, subnet_id, port_id) VALUES (?, ?, ?, ?)",
                            .text(subnet.string("network_id")), .text(address.description), .text(subnet.string("id")), .text(port))
    }

    /// The lowest free address of the subnet's pools; on a SLAAC subnet the port's EUI-64 address.
    func freeAddress(_ subnet: Row, mac: String, _ x: any SQLExecutor) async throws -> IPAddress? {
        guard let cidr = IPNetwork(subnet.string("cidr")) else { return nil }
        let used = Set(try await x.query("SELECT ip_address FROM network_ip_allocation WHERE subnet_id = ?", .text(subnet.string("id"))).map { $0.string("ip_address") })
        if let mode = subnet.optionalString("ipv6_address_mode"), mode != "dhcpv6-stateful", let eui = Self.eui64(cidr, mac: mac) {
            return used.contains(eui.description) ? nil : eui
        }
        for pool in Self.decode(subnet, "allocation_pools").arrayValue ?? [] {
            guard let start = pool["start"]?.stringValue.flatMap(IPAddress.init), let end = pool["end"]?.stringValue.flatMap(IPAddress.init) else { continue }
            // At most one step per used address plus one; stops at `end`, which may be the last
            // address there is.
            var candidate = start
            while true {
                if !used.contains(candidate.description) { return candidate }
                if candidate >= end { break }
                candidate = candidate.advanced(by: 1)
            }
        }
        return nil
    }

    /// The SLAAC address of a MAC on a /64: the prefix and the modified EUI-64 interface id.
    static func eui64(_ cidr: IPNetwork, mac: String) -> IPAddress? {
        let octets = mac.split(separator: ":").compactMap { UInt8($0, radix: 16) }
        guard cidr.version == 6, cidr.prefixLength == 64, octets.count == 6 else { return nil }
        let interface = [octets[0] ^ 0x02, octets[1], octets[2], 0xff, 0xfe, octets[3], octets[4], octets[5]].reduce(UInt128(0)) { $0 << 8 | UInt128($1) }
        return IPAddress(version: 6, value: cidr.first.value | interface)
    }

    // MARK: MAC addresses, pairs, groups, DHCP options

    /// `extra_dhcp_opts` after a request: each option replaces the one of its name and IP
    /// version in `current`, and one whose `opt_value` is null removes it (Neutron's update rule).
    static func extraDHCPOptions(_ asked: [JSON], merging current: [JSON]) throws -> JSON {
        var options = current
        for entry in asked {
            guard let name = entry["opt_name"]?.stringValue, !name.isEmpty, entry["opt_value"] != nil,
                  entry.objectValue?.keys.allSatisfy({ ["opt_name", "opt_value", "ip_version"].contains($0) }) == true else {
                throw badRequest("Invalid input for extra_dhcp_opts. Reason: '\(entry.serialized())' needs opt_name and opt_value.", code: "InvalidInput")
            }
            let version = entry["ip_version"]?.intValue ?? entry["ip_version"]?.stringValue.flatMap { Int64($0) } ?? 4
            guard version == 4 || version == 6 else {
                throw badRequest("Invalid input for extra_dhcp_opts. Reason: ip_version must be 4 or 6.", code: "InvalidInput")
            }
            options.removeAll { $0["opt_name"]?.stringValue == name && ($0["ip_version"]?.intValue ?? 4) == version }
            if let value = entry["opt_value"]?.stringValue {
                options.append(["opt_name": .string(name), "opt_value": .string(value), "ip_version": .int(version)])
            } else if entry["opt_value"] != .null {
                throw badRequest("Invalid input for extra_dhcp_opts. Reason: opt_value of \(name) must be a string.", code: "InvalidInput")
            }
        }
        return .array(options)
    }

    static func mac(_ text: String) throws -> String {
        let octets = text.lowercased().split(separator: ":", omittingEmptySubsequences: false)
        guard octets.count == 6, octets.allSatisfy({ $0.count == 2 && UInt8($0, radix: 16) != nil }) else {
            throw badRequest("Invalid input for mac_address. Reason: '\(text)' is not a valid MAC address.", code: "InvalidInput")
        }
        return octets.joined(separator: ":")
    }

    /// The asked MAC (409 MacAddressInUse when the network has it), or `base_mac` with its zero
    /// octets randomised. A random clash on commit is a unique violation that `write` retries.
    func macAddress(_ asked: String?, network: String, _ x: any SQLExecutor) async throws -> String {
        if let asked {
            if try await x.first("SELECT 1 FROM network_port WHERE network_id = ? AND mac_address = ?", .text(network), .text(asked)) != nil {
                throw Self.conflict("Unable to complete operation for network \(network). The mac address \(asked) is in use.", code: "MacAddressInUse")
            }
            return asked
        }
        let base = settings.baseMAC.split(separator: ":").map { UInt8($0, radix: 16) ?? 0 }
        return Hex.encode(base.enumerated().map { index, octet in index >= 3 && octet == 0 ? UInt8.random(in: 0...255) : octet },
                          separator: ":")
    }

    static func addressPairs(_ pairs: [JSON]?, mac: String, portSecurity: Bool) throws -> JSON {
        guard let pairs, !pairs.isEmpty else { return [] }
        if !portSecurity {
            throw conflict("Port Security must be enabled in order to have allowed address pairs on a port.", code: "AddressPairAndPortSecurityRequired")
        }
        return .array(try pairs.map { pair in
            guard let ip = pair["ip_address"]?.stringValue, IPNetwork(ip) != nil else {
                throw badRequest("Invalid input for allowed_address_pairs. Reason: '\(pair.serialized())' needs a valid ip_address.", code: "InvalidInput")
            }
            return ["ip_address": .string(ip), "mac_address": .string(try pair["mac_address"]?.stringValue.map { try Self.mac($0) } ?? mac)]
        })
    }

    /// The groups a port gets: those asked for, which must be the port's project's or shared
    /// with it (another project's group is 404 SecurityGroupNotFound, as if it did not exist),
    /// or with port security the project's default group.
    func securityGroups(_ input: JSONInput, portSecurity: Bool, project: String, _ x: any SQLExecutor) async throws -> [String] {
        if let asked = try input.stringArray("security_groups") {
            if !portSecurity && !asked.isEmpty {
                throw Self.badRequest("Port security must be enabled and port must have an IP address in order to use security groups.",
                                      code: "PortSecurityAndIPRequiredForSecurityGroups")
            }
            let groups = Array(Set(asked)).sorted()
            let shared = try await sharedSecurityGroups(project: project, x)
            for group in groups where try await x.first("SELECT 1 FROM network_security_group WHERE id = ? AND project_id = ?",
                                                        .text(group), .text(project)) == nil && !shared.contains(group) {
                throw Self.groupNotFound(group)
            }
            return groups
        }
        return portSecurity ? try await defaultSecurityGroupIDs(project: project, x) : []
    }
}
