import Foundation
import NimbusCore
import NimbusStore

/// Trunks (Neutron's `trunk` service plugin): a parent port that carries, tagged with a
/// VLAN id each, the traffic of its sub-ports, so one guest interface reaches many networks.
///
/// Status as Neutron's Linux bridge trunk driver reports it: DOWN while the parent port is
/// not bound; once it is, the agent would make a VLAN sub-interface of the parent's tap per
/// sub-port. Nimbus's dataplane has no trunk wiring and makes none (nor could it on a host
/// without 802.1Q, where `type vlan` is an unknown device type), so a bound trunk is ERROR,
/// as the driver reports a trunk it failed to wire.
extension NetworkService {
    static let trunkAttributes: Set<String> = ["name", "description", "port_id", "admin_state_up", "sub_ports", "tags", "project_id", "tenant_id"]
    static let subportOwner = "trunk:subport"
    /// Whether the dataplane can wire VLAN sub-ports; see the note on this extension.
    static let trunkWiring = false

    static func trunkNotFound(_ id: String) -> APIError { APIError(.notFound, "Trunk \(id) could not be found.", code: "TrunkNotFound") }

    func trunks(where clause: String = "", _ binds: [SQLValue] = [], _ x: any SQLExecutor) async throws -> [Rendered] {
        let rows = try await x.query("""
            SELECT t.*, p.vif_type AS parent_vif_type FROM network_trunk t JOIN network_port p ON p.id = t.port_id \(clause)
            """, binds)
        let ids = rows.map { $0.string("id") }
        let tags = try await tags(ids, x)
        let subports = try await trunkSubports(ids, x)
        return rows.map { row in
            let id = row.string("id"), project = row.string("project_id")
            var json = Self.standard(row, tags: tags[id] ?? [])
            json["port_id"] = .string(row.string("port_id"))
            json["admin_state_up"] = .bool(row.bool("admin_state_up"))
            json["sub_ports"] = .array((subports[id] ?? []).map { .object($0.filter { $0.key != "mac_address" }) })
            let bound = !["unbound", "binding_failed", ""].contains(row.string("parent_vif_type"))
            json["status"] = .string(!bound ? "DOWN" : Self.trunkWiring ? "ACTIVE" : "ERROR")
            return Rendered(json: json, target: ["project_id": project, "tenant_id": project])
        }
    }

    /// Each trunk's sub-ports, in the order they were added, with their MAC addresses.
    func trunkSubports(_ trunkIDs: [String], _ x: any SQLExecutor) async throws -> [String: [[String: JSON]]] {
        guard !trunkIDs.isEmpty else { return [:] }
        var out: [String: [[String: JSON]]] = [:]
        let marks = Array(repeating: "?", count: trunkIDs.count).joined(separator: ",")
        for row in try await x.query("""
            SELECT s.*, p.mac_address FROM network_trunk_subport s JOIN network_port p ON p.id = s.port_id
            WHERE s.trunk_id IN (\(marks)) ORDER BY s.created_at, s.port_id
            """, trunkIDs.map { .text($0) }) {
            out[row.string("trunk_id"), default: []].append([
                "port_id": .string(row.string("port_id")), "segmentation_type": .string(row.string("segmentation_type")),
                "segmentation_id": .int(row.int("segmentation_id")), "mac_address": .string(row.string("mac_address")),
            ])
        }
        return out
    }

    /// `trunk_details` of parent ports (`trunk-details`), by port id.
    func trunkDetails(_ portIDs: [String], _ x: any SQLExecutor) async throws -> [String: JSON] {
        guard !portIDs.isEmpty else { return [:] }
        var trunkOf: [String: String] = [:]
        for chunk in stride(from: 0, to: portIDs.count, by: 500).map({ Array(portIDs[$0..<min($0 + 500, portIDs.count)]) }) {
            let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
            for row in try await x.query("SELECT id, port_id FROM network_trunk WHERE port_id IN (\(marks))", chunk.map { .text($0) }) {
                trunkOf[row.string("port_id")] = row.string("id")
            }
        }
        let subports = try await trunkSubports(Array(trunkOf.values), x)
        return trunkOf.mapValues { trunk in ["trunk_id": .string(trunk), "sub_ports": .array((subports[trunk] ?? []).map { .object($0) })] }
    }

    func visibleTrunk(_ id: String, caller: AuthContext, _ x: any SQLExecutor) async throws -> Rendered {
        guard let trunk = try await trunks(where: "WHERE t.id = ?", [.text(id)], x).first,
              visible("trunk", trunk.json, target: trunk.target, caller: caller) != nil else { throw Self.trunkNotFound(id) }
        return trunk
    }

    public func listTrunks(caller: AuthContext) async throws -> [[String: JSON]] {
        try await trunks(where: "ORDER BY t.created_at, t.id", [], db).compactMap { visible("trunk", $0.json, target: $0.target, caller: caller) }
    }

    public func trunk(_ id: String, caller: AuthContext) async throws -> [String: JSON] {
        let trunk = try await visibleTrunk(id, caller: caller, db)
        return visible("trunk", trunk.json, target: trunk.target, caller: caller) ?? [:]
    }

    public func createTrunk(_ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try Self.allowOnly(input, Self.trunkAttributes)
        let project = try Self.owner(input, caller)
        try authorize("create_trunk", caller, target: ["project_id": project, "tenant_id": project], attributes: input)
        let portID = try input.requiredString("port_id")
        let subports = try Self.subportRequests(input)
        let tags = try input.stringArray("tags") ?? []
        try Self.validateTags(tags)
        let id = Identifiers.uuid(), now = Self.now()
        try await write { x in
            try await self.requireTrunkablePort(portID, caller: caller, x)
            try await x.execute("""
                INSERT INTO network_trunk (id, project_id, name, description, port_id, admin_state_up, revision_number, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)
                """, [.text(id), .text(project), .text(try input.optionalString("name") ?? ""), .text(try input.optionalString("description") ?? ""),
                      .text(portID), .bool(try input.bool("admin_state_up") ?? true), now, now])
            try await self.addSubports(subports, trunk: id, parent: portID, caller: caller, x)
            try await self.setTags(id, tags, x)
        }
        return try await trunk(id, caller: caller)
    }

    public func updateTrunk(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try Self.allowOnly(input, ["name", "description", "admin_state_up"])
        try await write { x in
            let trunk = try await self.visibleTrunk(id, caller: caller, x)
            try self.authorize("update_trunk", caller, target: trunk.target, attributes: input)
            var sets: [(String, SQLValue)] = []
            if let name = try input.optionalString("name") { sets.append(("name", .text(name))) }
            if let description = try input.optionalString("description") { sets.append(("description", .text(description))) }
            if let up = try input.bool("admin_state_up") { sets.append(("admin_state_up", .bool(up))) }
            guard !sets.isEmpty else { return }
            try await x.execute("UPDATE network_trunk SET \(sets.map { "\($0.0) = ?" }.joined(separator: ", ")) WHERE id = ?", sets.map(\.1) + [.text(id)])
            try await self.touch("network_trunk", id, x)
        }
        return try await trunk(id, caller: caller)
    }

    /// Deletes a trunk; its sub-ports become plain ports again. A disabled trunk cannot be managed (409).
    public func deleteTrunk(_ id: String, caller: AuthContext) async throws {
        try await write { x in
            let trunk = try await self.visibleTrunk(id, caller: caller, x)
            try self.authorize("delete_trunk", caller, target: trunk.target)
            try Self.requireEnabled(trunk, id)
            for subport in trunk.json["sub_ports"]?.arrayValue ?? [] { try await self.releaseSubport(subport["port_id"]?.stringValue ?? "", x) }
            try await x.execute("DELETE FROM network_trunk_subport WHERE trunk_id = ?", .text(id))
            try await x.execute("DELETE FROM network_tag WHERE resource_id = ?", .text(id))
            try await x.execute("DELETE FROM network_trunk WHERE id = ?", .text(id))
        }
    }

    public func trunkSubports(_ id: String, caller: AuthContext) async throws -> [JSON] {
        let trunk = try await visibleTrunk(id, caller: caller, db)
        try authorize("get_subports", caller, target: trunk.target)
        return trunk.json["sub_ports"]?.arrayValue ?? []
    }

    /// Adds (or removes) the sub-ports of `body`'s `sub_ports`; the trunk as it then is.
    public func changeSubports(_ id: String, adding: Bool, _ body: JSON, caller: AuthContext) async throws -> [String: JSON] {
        let input = JSONInput(body.objectValue ?? [:], path: "")
        guard input.has("sub_ports") else { throw Self.badRequest("Invalid input for operation: sub_ports is required.", code: "InvalidInput") }
        let requests = adding ? try Self.subportRequests(input) : []
        let removals: [String] = adding ? [] : try (input.array("sub_ports") ?? []).map { entry in
            guard let port = entry["port_id"]?.stringValue else {
                throw Self.badRequest("Invalid input for operation: each sub-port needs a port_id.", code: "InvalidInput")
            }
            return port
        }
        try await write { x in
            let trunk = try await self.visibleTrunk(id, caller: caller, x)
            try self.authorize(adding ? "add_subports" : "remove_subports", caller, target: trunk.target)
            try Self.requireEnabled(trunk, id)
            try await self.lock("network_trunk", id, x)
            if adding {
                try await self.addSubports(requests, trunk: id, parent: trunk.json["port_id"]?.stringValue ?? "", caller: caller, x)
            } else {
                let current = Set((trunk.json["sub_ports"]?.arrayValue ?? []).compactMap { $0["port_id"]?.stringValue })
                for port in removals {
                    guard current.contains(port) else {
                        throw APIError(.notFound, "SubPort \(port) cannot be found on trunk \(id).", code: "SubPortNotFound")
                    }
                    try await x.execute("DELETE FROM network_trunk_subport WHERE port_id = ?", .text(port))
                    try await self.releaseSubport(port, x)
                }
            }
            try await self.touch("network_trunk", id, x)
        }
        return try await trunk(id, caller: caller)
    }

    static func requireEnabled(_ trunk: Rendered, _ id: String) throws {
        if trunk.json["admin_state_up"] == false {
            throw conflict("Trunk \(id) is currently disabled.", code: "TrunkDisabled")
        }
    }

    /// One sub-port as asked: a port and, for `vlan`, a VLAN id (1–4094); `inherit` takes the
    /// id of the port's network's segment when added.
    struct SubportRequest: Sendable {
        var port: String
        var type: String
        var segmentationID: Int64?
    }

    static func subportRequests(_ input: JSONInput) throws -> [SubportRequest] {
        try (input.array("sub_ports") ?? []).enumerated().map { index, entry in
            guard let fields = entry.objectValue else {
                throw badRequest("Invalid input for sub_ports. Reason: '\(entry.serialized())' is not a dictionary.", code: "InvalidInput")
            }
            let item = JSONInput(fields, path: "sub_ports[\(index)]")
            try allowOnly(item, ["port_id", "segmentation_type", "segmentation_id"])
            let port = try item.requiredString("port_id")
            let type = try item.string("segmentation_type") ?? "vlan"
            guard ["vlan", "inherit"].contains(type) else {
                throw badRequest("Invalid input for sub_ports. Reason: segmentation_type '\(type)' is not in ['inherit', 'vlan'].", code: "InvalidInput")
            }
            let segmentationID = try item.int("segmentation_id")
            if type == "vlan" {
                guard let segmentationID, (1...4094).contains(segmentationID) else {
                    throw badRequest("Invalid input for sub_ports. Reason: segmentation_id of a vlan sub-port must be between 1 and 4094.",
                                     code: "InvalidInput")
                }
            }
            return SubportRequest(port: port, type: type, segmentationID: segmentationID)
        }
    }

    /// A port may be the parent of one trunk, and not while it is a sub-port (409s as Neutron's).
    func requireTrunkablePort(_ portID: String, caller: AuthContext, _ x: any SQLExecutor) async throws {
        _ = try await visiblePort(portID, caller: caller, x)
        if try await x.first("SELECT id FROM network_trunk WHERE port_id = ?", .text(portID)) != nil {
            throw Self.conflict("Port \(portID) is in use by another trunk.", code: "TrunkPortInUse")
        }
        if let row = try await x.first("SELECT trunk_id FROM network_trunk_subport WHERE port_id = ?", .text(portID)) {
            throw Self.conflict("Port \(portID) is currently a subport for trunk \(row.string("trunk_id")).", code: "PortInUseAsSubPort")
        }
    }

    func visiblePort(_ id: String, caller: AuthContext, _ x: any SQLExecutor) async throws -> Rendered {
        guard let port = try await ports(where: "WHERE p.id = ?", [.text(id)], x).first,
              visible("port", port.json, target: port.target, caller: caller) != nil else { throw Self.notFound("port", id) }
        return port
    }

    func addSubports(_ requests: [SubportRequest], trunk id: String, parent: String, caller: AuthContext, _ x: any SQLExecutor) async throws {
        var taken = Set(try await x.query("SELECT segmentation_type, segmentation_id FROM network_trunk_subport WHERE trunk_id = ?", .text(id))
            .map { "\($0.string("segmentation_type"))/\($0.int("segmentation_id"))" })
        for request in requests {
            let port = try await visiblePort(request.port, caller: caller, x)
            if request.port == parent {
                throw Self.conflict("Port \(parent) is currently a parent port for trunk \(id).", code: "PortInUseAsTrunkParent")
            }
            if let row = try await x.first("SELECT id FROM network_trunk WHERE port_id = ?", .text(request.port)) {
                throw Self.conflict("Port \(request.port) is currently a parent port for trunk \(row.string("id")).", code: "PortInUseAsTrunkParent")
            }
            if let row = try await x.first("SELECT trunk_id FROM network_trunk_subport WHERE port_id = ?", .text(request.port)) {
                throw Self.conflict("Port \(request.port) is currently a subport for trunk \(row.string("trunk_id")).", code: "PortInUseAsSubPort")
            }
            var segmentationID = request.segmentationID
            if request.type == "inherit" {
                let network = try await stored("network", port.json["network_id"]?.stringValue ?? "", x)
                guard let inherited = network.json["provider:segmentation_id"]?.intValue else {
                    throw Self.badRequest("Segmentation type inherit: the network of port \(request.port) has no segmentation id.",
                                          code: "SubPortValidationError")
                }
                segmentationID = inherited
            }
            let key = "\(request.type)/\(segmentationID ?? 0)"
            guard taken.insert(key).inserted else {
                throw Self.conflict("segmentation_type \(request.type) and segmentation_id \(segmentationID ?? 0) already in use on trunk \(id).",
                                    code: "DuplicateSubPort")
            }
            try await x.execute("""
                INSERT INTO network_trunk_subport (port_id, trunk_id, segmentation_type, segmentation_id, created_at) VALUES (?, ?, ?, ?, ?)
                """, .text(request.port), .text(id), .text(request.type), .integer(segmentationID ?? 0), Self.now())
            // As Neutron's plugin does: the sub-port is the trunk's device.
            try await x.execute("UPDATE network_port SET device_owner = ?, device_id = ? WHERE id = ?", .text(Self.subportOwner), .text(id), .text(request.port))
            try await touch("network_port", request.port, x)
        }
    }

    /// A sub-port leaving its trunk is nobody's device again.
    func releaseSubport(_ port: String, _ x: any SQLExecutor) async throws {
        try await x.execute("UPDATE network_port SET device_owner = '', device_id = '' WHERE id = ? AND device_owner = ?", .text(port), .text(Self.subportOwner))
        try await touch("network_port", port, x)
    }

    /// A port a trunk or local IP holds is not deleted under it (409s as Neutron's plugins).
    func refuseServicePortDeletion(_ id: String, _ x: any SQLExecutor) async throws {
        try await refuseTrunkPortDeletion(id, x)
        try await refuseLocalIPPortDeletion(id, x)
    }

    /// A trunk's parent or sub-port is not deleted under it (409 as Neutron's trunk plugin).
    func refuseTrunkPortDeletion(_ id: String, _ x: any SQLExecutor) async throws {
        if let row = try await x.first("SELECT id FROM network_trunk WHERE port_id = ?", .text(id)) {
            throw Self.conflict("Port \(id) is currently a parent port for trunk \(row.string("id")).", code: "PortInUseAsTrunkParent")
        }
        if let row = try await x.first("SELECT trunk_id FROM network_trunk_subport WHERE port_id = ?", .text(id)) {
            throw Self.conflict("Port \(id) is currently a subport for trunk \(row.string("trunk_id")).", code: "PortInUseAsSubPort")
        }
    }
}
