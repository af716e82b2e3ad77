import Foundation
import NimbusCore
import NimbusStore

extension NetworkService {
    static let networkAttributes: Set<String> = [
        "name", "description", "admin_state_up", "shared", "router:external", "mtu", "port_security_enabled", "availability_zone_hints",
        "is_default", "tags", "project_id", "tenant_id", "provider:network_type", "provider:physical_network", "provider:segmentation_id",
        "qos_policy_id", "segments",
    ]
    static let providerAttributes = ["provider:network_type", "provider:physical_network", "provider:segmentation_id"]

    /// Neutron's answer to attributes it does not know.
    static func allowOnly(_ input: JSONInput, _ allowed: Set<String>) throws {
        let unknown = input.fields.keys.filter { !allowed.contains($0) }.sorted()
        guard unknown.isEmpty else { throw badRequest("Unrecognized attribute(s) '\(unknown.joined(separator: ", "))'") }
    }

    /// Neutron's 400 for an update naming an attribute that is set only at create.
    static func refuseReadOnly(_ input: JSONInput, updatable: Set<String>) throws {
        if let readOnly = input.fields.keys.sorted().first(where: { !updatable.contains($0) }) {
            throw badRequest("Cannot update read-only attribute \(readOnly)")
        }
    }

    static func flag(_ value: Bool) -> String { value ? "True" : "False" }

    func networks(where clause: String = "", _ binds: [SQLValue] = [], _ x: any SQLExecutor) async throws -> [Rendered] {
        let rows = try await x.query("SELECT * FROM network_network \(clause)", binds)
        let ids = rows.map { $0.string("id") }
        let tags = try await tags(ids, x)
        let grants = try await networkGrants(ids, x)
        let scopes = try await networkAddressScopes(ids, x)
        let qos = try await qosBindings(.network, ids, x)
        var segments: [String: [Row]] = [:], subnets: [String: [String]] = [:]
        let filter = clause.isEmpty ? "" : "WHERE network_id IN (SELECT id FROM network_network \(clause))"
        for row in try await x.query("SELECT * FROM network_segment \(filter) ORDER BY segment_index, created_at, id", binds) {
            segments[row.string("network_id"), default: []].append(row)
        }
        for row in try await x.query("SELECT id, network_id FROM network_subnet \(filter) ORDER BY created_at, id", binds) {
            subnets[row.string("network_id"), default: []].append(row.string("id"))
        }
        return rows.map { row in
            let id = row.string("id")
            var json = Self.standard(row, tags: tags[id] ?? [])
            json["status"] = "ACTIVE"
            json["admin_state_up"] = .bool(row.bool("admin_state_up"))
            json["shared"] = .bool(row.bool("shared"))
            json["router:external"] = .bool(row.bool("external"))
            json["is_default"] = .bool(row.bool("is_default"))
            json["mtu"] = .int(row.int("mtu"))
            json["port_security_enabled"] = .bool(row.bool("port_security_enabled"))
            json["availability_zone_hints"] = Self.decode(row, "availability_zone_hints")
            json["availability_zones"] = []
            json["subnets"] = .array((subnets[id] ?? []).map { .string($0) })
            json["ipv4_address_scope"] = .optional(scopes[id]?[4])
            json["ipv6_address_scope"] = .optional(scopes[id]?[6])
            Self.renderProvider(&json, segments[id] ?? [])
            json["qos_policy_id"] = .optional(qos[id])
            return Rendered(json: json, target: Self.withGrants(["project_id": row.string("project_id"), "tenant_id": row.string("project_id"),
                                                                 "network_project_id": row.string("project_id"),
                                                                 "shared": Self.flag(row.bool("shared")), "external": Self.flag(row.bool("external"))],
                                                                grants[id]))
        }
    }

    /// The network as the caller may see it; 404 when they may not.
    func visibleNetwork(_ id: String, caller: AuthContext, _ x: any SQLExecutor) async throws -> Rendered {
        guard let network = try await networks(where: "WHERE id = ?", [.text(id)], x).first,
              let json = visible("network", network.json, target: network.target, caller: caller) else {
            throw Self.notFound("network", id)
        }
        return Rendered(json: json, target: network.target)
    }

    /// `action` on a resource the caller can see; 404 when they cannot see it, 403 when they
    /// see it but may not do this (Neutron hides what a caller cannot read).
    func authorizeVisible(_ action: String, _ kind: String, _ item: Rendered, id: String, caller: AuthContext, input: JSONInput? = nil) throws {
        guard visible(kind, item.json, target: item.target, caller: caller) != nil else { throw Self.notFound(kind, id) }
        if let input { try authorize(action, caller, target: item.target, attributes: input) } else { try authorize(action, caller, target: item.target) }
    }

    // MARK: API

    public func listNetworks(caller: AuthContext) async throws -> [[String: JSON]] {
        try await networks(where: "ORDER BY created_at, id", [], db).compactMap { visible("network", $0.json, target: $0.target, caller: caller) }
    }

    public func network(_ id: String, caller: AuthContext) async throws -> [String: JSON] {
        try await shown("network", id, caller: caller)
    }

    /// Checks a network create; the insert allocates its segment and counts its quota.
    func networkInsert(_ input: JSONInput, caller: AuthContext) throws -> Insert {
        try Self.allowOnly(input, Self.networkAttributes)
        let project = try Self.owner(input, caller)
        try authorize("create_network", caller, target: ["project_id": project, "tenant_id": project], attributes: input)
        let provider = try providerSpec(input)
        let requestedSegments = try multiProviderSpecs(input)
        let external = try input.bool("router:external") ?? false
        let isDefault = try input.bool("is_default") ?? false
        if isDefault && !external { throw Self.defaultNeedsExternal }
        let hints = try availabilityZoneHints(input)
        let tags = try input.stringArray("tags") ?? []
        let id = Identifiers.uuid()
        return { x in
            try await self.enforceQuota("network", project: project, x)
            // A multi-provider network's segments are claimed once it exists, each seeing the
            // ones before it; its MTU is what every one of their types carries.
            let segment = requestedSegments == nil ? try await self.allocateSegment(provider, project: project, x) : nil
            let maxMTU = Int64((requestedSegments ?? segment.map { [$0] } ?? []).map { self.settings.ml2.mtu($0.type) }.min() ?? self.settings.ml2.pathMTU)
            let mtu = try input.int("mtu", in: 68...Int64.max) ?? maxMTU
            if mtu > maxMTU {
                throw Self.badRequest("Invalid input for operation: Requested MTU is too big, maximum is \(maxMTU).", code: "InvalidInput")
            }
            let now = Self.now()
            try await x.execute("""
                INSERT INTO network_network (id, project_id, name, description, admin_state_up, shared, external, is_default, mtu,
                    port_security_enabled, availability_zone_hints, revision_number, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
                """, [.text(id), .text(project), .text(try input.optionalString("name") ?? ""), .text(try input.optionalString("description") ?? ""),
                      .bool(try input.bool("admin_state_up") ?? true), .bool(try input.bool("shared") ?? false), .bool(external), .bool(isDefault),
                      .integer(mtu), .bool(try input.bool("port_security_enabled") ?? true), Self.encode(.array(hints.map { .string($0) })),
                      now, now])
            for spec in requestedSegments ?? [] { try await self.insertSegment(try await self.allocateSegment(spec, project: project, x), network: id, x) }
            if let segment { try await self.insertSegment(segment, network: id, x) }
            // Sharing and externality are wildcard RBAC policies of the network's owner.
            if try input.bool("shared") == true {
                try await self.insertGrant(project: project, object: id, action: "access_as_shared", target: "*", revise: false, x)
            }
            if external { try await self.insertGrant(project: project, object: id, action: "access_as_external", target: "*", revise: false, x) }
            try await self.setTags(id, tags, x)
            try await self.bindNewNetworkQoSPolicy(id, project: project, input, caller: caller, x)
            try await self.mechanism.networkPrecommit(try await self.stored("network", id, x).json, x)
            return id
        }
    }

    public func updateNetwork(_ id: String, _ body: JSON, caller: AuthContext) async throws -> [String: JSON] {
        let input = try JSONInput(body: body, key: "network")
        try Self.allowOnly(input, Self.networkAttributes.subtracting(["project_id", "tenant_id", "tags"]))
        try await write { x in
            let network = try await self.forWrite("network", id, "update_network", caller: caller, input: input, x)
            for attribute in Self.providerAttributes + ["segments"] where input.has(attribute) && input.fields[attribute] != network.json[attribute] {
                throw Self.badRequest("Invalid input for operation: Plugin does not support updating provider attributes.", code: "InvalidInput")
            }
            var sets: [(String, SQLValue)] = []
            if let name = try input.optionalString("name") { sets.append(("name", .text(name))) }
            if let description = try input.optionalString("description") { sets.append(("description", .text(description))) }
            if let up = try input.bool("admin_state_up") { sets.append(("admin_state_up", .bool(up))) }
            if let security = try input.bool("port_security_enabled") { sets.append(("port_security_enabled", .bool(security))) }
            if input.has("availability_zone_hints") { sets.append(("availability_zone_hints", Self.encode(.array(try self.availabilityZoneHints(input).map { .string($0) })))) }
            if let external = try input.bool("router:external") {
                if !external, try await x.first("SELECT 1 FROM network_port WHERE network_id = ? AND device_owner = ?", .text(id), .text(Self.gatewayOwner)) != nil {
                    throw Self.conflict("External network \(id) cannot be updated to be made non-external, since it has existing gateway ports.",
                                        code: "ExternalNetworkInUse")
                }
                sets.append(("external", .bool(external)))
            }
            if let isDefault = try input.bool("is_default") {
                let external = try input.bool("router:external") ?? network.json["router:external"]?.boolValue ?? false
                if isDefault && !external { throw Self.defaultNeedsExternal }
                sets.append(("is_default", .bool(isDefault)))
            }
            if let mtu = try input.int("mtu", in: 68...Int64.max) {
                let maxMTU = try await self.maximumMTU(network: id, x)
                if mtu > maxMTU { throw Self.badRequest("Invalid input for operation: Requested MTU is too big, maximum is \(maxMTU).", code: "InvalidInput") }
                sets.append(("mtu", .integer(mtu)))
            }
            // Sharing and externality are the owner's wildcard RBAC policies (made or removed here).
            let owner = network.target["project_id"] ?? ""
            if let shared = try input.bool("shared") {
                if shared {
                    try await self.insertGrant(project: owner, object: id, action: "access_as_shared", target: "*", x)
                } else {
                    let inUse = Self.conflict("Unable to reconfigure sharing settings for network \(id). Multiple tenants are using it.", code: "InvalidSharedSetting")
                    try await self.removeGrant(network: id, action: "access_as_shared", target: "*", conflict: inUse, x)
                }
            }
            if let external = try input.bool("router:external") {
                if external {
                    try await self.insertGrant(project: owner, object: id, action: "access_as_external", target: "*", x)
                } else {
                    try await x.execute("DELETE FROM network_rbac_policy WHERE object_type = 'network' AND object_id = ? AND action = 'access_as_external'", .text(id))
                }
            }
            let qosChanged = try await self.bindQoSPolicy(.network, id, input.fields["qos_policy_id"], caller: caller, x)
            guard !sets.isEmpty else {
                if qosChanged { try await self.touch("network_network", id, x) }
                return
            }
            try await x.execute("UPDATE network_network SET \(sets.map { "\($0.0) = ?" }.joined(separator: ", ")) WHERE id = ?", sets.map(\.1) + [.text(id)])
            try await self.touch("network_network", id, x)
        }
        return try await network(id, caller: caller)
    }

    /// Deletes the network with its subnets, its DHCP ports and the floating IPs taken from
    /// it; any other port (an instance's, a router's gateway or interface) keeps it in use (409
    /// NetworkInUse). An associated floating IP needs a router's gateway here, so it never goes.
    public func deleteNetwork(_ id: String, caller: AuthContext) async throws {
        try await write { x in
            _ = try await self.forWrite("network", id, "delete_network", caller: caller, x)
            if try await x.first("SELECT 1 FROM network_router WHERE gateway_network_id = ?", .text(id)) == nil {
                try await self.removeFloatingIPs(where: "floating_network_id = ?", .text(id), x)
            }
            if try await x.first("SELECT 1 FROM network_port WHERE network_id = ? AND device_owner <> 'network:dhcp'", .text(id)) != nil {
                throw Self.conflict("Unable to complete operation on network \(id). There are one or more ports still in use on the network.", code: "NetworkInUse")
            }
            try await self.removeNetwork(id, x)
        }
    }

    /// Deletes the network with its subnets, ports and tags, once nothing else needs it.
    func removeNetwork(_ id: String, _ x: any SQLExecutor) async throws {
        let doomed = try await x.query("SELECT id FROM network_port WHERE network_id = ? UNION SELECT id FROM network_subnet WHERE network_id = ?", .text(id), .text(id))
        for row in doomed { try await x.execute("DELETE FROM network_tag WHERE resource_id = ?", .text(row.string("id"))) }
        try await x.execute("DELETE FROM network_port WHERE network_id = ?", .text(id))
        try await x.execute("DELETE FROM network_subnet WHERE network_id = ?", .text(id))
        try await x.execute("DELETE FROM network_tag WHERE resource_id = ?", .text(id))
        try await x.execute("DELETE FROM network_rbac_policy WHERE object_type = 'network' AND object_id = ?", .text(id))
        // Segments and their allocations go with the network (ON DELETE CASCADE), freeing the id.
        try await x.execute("DELETE FROM network_network WHERE id = ?", .text(id))
    }

    // MARK: Segments

    /// The provider segment an admin asked for, or nil for a tenant network.
    func providerSpec(_ input: JSONInput) throws -> SegmentSpec? {
        guard Self.providerAttributes.contains(where: input.has) else { return nil }
        return try segmentSpec(input, prefix: "provider:")
    }

    /// The segment `<prefix>network_type`, `<prefix>physical_network` and
    /// `<prefix>segmentation_id` describe, checked against the type drivers (400 otherwise).
    func segmentSpec(_ input: JSONInput, prefix: String) throws -> SegmentSpec {
        guard let typeName = try input.string(prefix + "network_type") else {
            throw Self.badRequest("Invalid input for operation: network_type required.", code: "InvalidInput")
        }
        guard let type = NetworkType(rawValue: typeName) else {
            throw Self.badRequest("Invalid input for operation: network_type value '\(typeName)' not supported.", code: "InvalidInput")
        }
        let segmentation: Int64?
        switch input.fields[prefix + "segmentation_id"] {
        case .string(let text)?: segmentation = try Int64(text) ?? { throw Self.badRequest("Invalid input for operation: segmentation_id '\(text)' is not an integer.", code: "InvalidInput") }()
        default: segmentation = try input.int(prefix + "segmentation_id")
        }
        let spec = SegmentSpec(type: type, physicalNetwork: try input.string(prefix + "physical_network"), segmentationID: segmentation)
        try settings.ml2.validate(spec)
        return spec
    }

    /// The segment for a new network (or a segment added to one): the provider's as asked (409
    /// when its id is taken), any free id of the type's ranges when the provider named none, or
    /// for a tenant network the first free id the project may take (`freeTenantSegment`) of the
    /// first tenant network type that has one (503 when none does).
    /// The allocation row's primary key is what keeps two networks off one id; a race lost
    /// to it is retried by `write`, whose second attempt sees the id taken.
    func allocateSegment(_ provider: SegmentSpec?, project: String, _ x: any SQLExecutor) async throws -> SegmentSpec {
        guard var spec = provider else {
            for type in settings.ml2.tenantNetworkTypes {
                if type == .local { return SegmentSpec(type: .local) }
                if let found = try await freeTenantSegment(type, project: project, x) { return found }
            }
            throw Self.noNetworkAvailable
        }
        switch spec.type {
        case .local:
            return spec
        case .flat:
            if try await allocation(spec.type, spec.physicalNetwork ?? "", 0, x) {
                throw Self.conflict("Unable to create the flat network. Physical network \(spec.physicalNetwork ?? "") is in use.", code: "FlatNetworkInUse")
            }
            return spec
        case .vlan, .vxlan, .gre:
            guard let id = spec.segmentationID else {
                guard let found = try await freeSegment(spec.type, physicalNetwork: spec.physicalNetwork, x) else { throw Self.noNetworkAvailable }
                return found
            }
            if spec.type != .vlan { spec.physicalNetwork = nil }
            if try await allocation(spec.type, spec.physicalNetwork ?? "", id, x) {
                let on = spec.type == .vlan ? " on physical network \(spec.physicalNetwork ?? "")" : ""
                throw Self.conflict("Unable to create the network. The \(spec.type == .vlan ? "VLAN" : "tunnel") \(id)\(on) is in use.", code: spec.type == .vlan ? "VlanIdInUse" : "TunnelIdInUse")
            }
            return spec
        }
    }

    /// The default external network (`is_default`) is what auto-allocation plugs routers into.
    static let defaultNeedsExternal = badRequest("Invalid input for operation: is_default can only be set on external networks.", code: "InvalidInput")

    static let noNetworkAvailable = APIError(.serviceUnavailable, "Unable to create the network. No tenant network is available for allocation.",
                                             code: "NoNetworkAvailable")

    func allocation(_ type: NetworkType, _ physicalNetwork: String, _ id: Int64, _ x: any SQLExecutor) async throws -> Bool {
        try await x.first("SELECT 1 FROM network_segment_allocation WHERE network_type = ? AND physical_network = ? AND segmentation_id = ?",
                          .text(type.rawValue), .text(physicalNetwork), .integer(id)) != nil
    }

    /// Records a segment of the network and claims its id (a flat network claims id 0 of its
    /// physical network; local networks claim nothing), after the network's other segments.
    @discardableResult
    func insertSegment(_ spec: SegmentSpec, network: String, name: String? = nil, description: String = "", _ x: any SQLExecutor) async throws -> String {
        if spec.type != .local {
            try await x.execute("INSERT INTO network_segment_allocation (network_type, physical_network, segmentation_id, network_id) VALUES (?, ?, ?, ?)",
                                .text(spec.type.rawValue), .text(spec.physicalNetwork ?? ""), .integer(spec.segmentationID ?? 0), .text(network))
        }
        let index = try await x.first("SELECT MAX(segment_index) AS last FROM network_segment WHERE network_id = ?", .text(network))?
            .optionalInt("last").map { $0 + 1 } ?? 0
        let now = Self.now(), id = Identifiers.uuid()
        try await x.execute("""
            INSERT INTO network_segment (id, network_id, name, description, network_type, physical_network, segmentation_id, segment_index,
                revision_number, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
            """, .text(id), .text(network), .optional(name), .text(description), .text(spec.type.rawValue), .optional(spec.physicalNetwork),
                            spec.segmentationID.map { .integer($0) } ?? .null, .integer(index), now, now)
        return id
    }

    // MARK: Availability zones

    /// The one zone Nimbus has, for networks and routers alike.
    public static let availabilityZone = "nova"

    func availabilityZoneHints(_ input: JSONInput) throws -> [String] {
        let hints = try input.stringArray("availability_zone_hints") ?? []
        for hint in hints where hint != Self.availabilityZone {
            throw APIError(.notFound, "AvailabilityZone \(hint) could not be found.", code: "AvailabilityZoneNotFound")
        }
        return hints
    }

    public func availabilityZones(caller: AuthContext) throws -> [[String: JSON]] {
        try authorize("get_availability_zone", caller)
        return ["network", "router"].map { ["name": .string(Self.availabilityZone), "resource": .string($0), "state": "available"] }
    }
}
