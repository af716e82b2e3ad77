import Foundation
import NimbusCore
import NimbusStore

/// Local IPs (`local_ip`): a virtual address, held by a port, that each port associated with
/// it reaches on its own host (Neutron's OVS agent answers it locally). Stored and checked as
/// Neutron does; the Linux bridge dataplane does not translate local IPs.
extension NetworkService {
    static let localIPOwner = "network:local_ip"

    static func localIPNotFound(_ id: String) -> APIError { APIError(.notFound, "Local IP \(id) could not be found.", code: "LocalIPNotFound") }

    func localIPs(where clause: String = "", _ binds: [SQLValue] = [], _ x: any SQLExecutor) async throws -> [Rendered] {
        try await x.query("SELECT * FROM network_local_ip \(clause)", binds).map { row in
            var json = Self.standard(row, tags: [])
            json["tags"] = nil
            for key in ["local_port_id", "network_id", "local_ip_address", "ip_mode"] { json[key] = .string(row.string(key)) }
            let project = row.string("project_id")
            return Rendered(json: json, target: ["project_id": project, "tenant_id": project])
        }
    }

    func visibleLocalIP(_ id: String, caller: AuthContext, _ x: any SQLExecutor) async throws -> Rendered {
        guard let localIP = try await localIPs(where: "WHERE id = ?", [.text(id)], x).first,
              visible("local_ip", localIP.json, target: localIP.target, caller: caller) != nil else { throw Self.localIPNotFound(id) }
        return localIP
    }

    public func listLocalIPs(caller: AuthContext) async throws -> [[String: JSON]] {
        try await localIPs(where: "ORDER BY created_at, id", [], db).compactMap { visible("local_ip", $0.json, target: $0.target, caller: caller) }
    }

    public func localIP(_ id: String, caller: AuthContext) async throws -> [String: JSON] {
        try await visibleLocalIP(id, caller: caller, db).json
    }

    /// A local IP on a port (`local_port_id`: its address, or the one asked for, which it must
    /// have) or on a network (`network_id`: a new port there, owned by the local IP).
    public func createLocalIP(_ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try Self.allowOnly(input, ["name", "description", "local_port_id", "network_id", "local_ip_address", "ip_mode", "project_id", "tenant_id"])
        let project = try Self.owner(input, caller)
        try authorize("create_local_ip", caller, target: ["project_id": project, "tenant_id": project], attributes: input)
        let portID = try input.string("local_port_id"), networkID = try input.string("network_id")
        guard portID != nil || networkID != nil else {
            throw Self.badRequest("Bad local_ip request: Either Port ID or Network ID must be specified for Local IP create.", code: "BadRequest")
        }
        let asked = try input.string("local_ip_address").map { text -> IPAddress in
            guard let address = IPAddress(text) else {
                throw Self.badRequest("Invalid input for local_ip_address. Reason: '\(text)' is not a valid IP address.", code: "InvalidInput")
            }
            return address
        }
        let mode = try input.string("ip_mode") ?? "translate"
        guard ["translate", "passthrough"].contains(mode) else {
            throw Self.badRequest("Invalid input for ip_mode. Reason: '\(mode)' is not in ['translate', 'passthrough'].", code: "InvalidInput")
        }
        let id = Identifiers.uuid(), now = Self.now()
        try await write { x in
            let port: Rendered
            if let portID {
                port = try await self.visiblePort(portID, caller: caller, x)
                if let networkID, networkID != port.json["network_id"]?.stringValue {
                    throw Self.badRequest("Bad local_ip request: Port \(portID) is not on network \(networkID).", code: "BadRequest")
                }
            } else {
                let network = try await self.visibleNetwork(networkID ?? "", caller: caller, x)
                let made = try await self.insertServicePort(project: project, network: network.json["id"]?.stringValue ?? "", device: id,
                                                            owner: Self.localIPOwner, fixedIPs: asked.map { [FixedIPRequest(subnetID: nil, address: $0)] }, x)
                port = try await self.stored("port", made, x)
            }
            let addresses = (port.json["fixed_ips"]?.arrayValue ?? []).compactMap { $0["ip_address"]?.stringValue }
            guard let address = asked.map({ $0.description }) ?? addresses.first, addresses.contains(address) else {
                throw Self.badRequest("Bad local_ip request: Requested Local IP address \(asked?.description ?? "") was not found on port \(port.json["id"]?.stringValue ?? "").",
                                      code: "LocalIPRequestedIPNotFound")
            }
            try await x.execute("""
                INSERT INTO network_local_ip (id, project_id, name, description, local_port_id, network_id, local_ip_address, ip_mode,
                    revision_number, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
                """, [.text(id), .text(project), .text(try input.optionalString("name") ?? ""), .text(try input.optionalString("description") ?? ""),
                      .text(port.json["id"]?.stringValue ?? ""), .text(port.json["network_id"]?.stringValue ?? ""), .text(address), .text(mode), now, now])
        }
        return try await localIP(id, caller: caller)
    }

    public func updateLocalIP(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try Self.allowOnly(input, ["name", "description"])
        try await write { x in
            let localIP = try await self.visibleLocalIP(id, caller: caller, x)
            try self.authorize("update_local_ip", caller, target: localIP.target, attributes: input)
            var sets: [(String, SQLValue)] = []
            if let name = try input.optionalString("name") { sets.append(("name", .text(name))) }
            if let description = try input.optionalString("description") { sets.append(("description", .text(description))) }
            guard !sets.isEmpty else { return }
            try await x.execute("UPDATE network_local_ip SET \(sets.map { "\($0.0) = ?" }.joined(separator: ", ")) WHERE id = ?", sets.map(\.1) + [.text(id)])
            try await self.touch("network_local_ip", id, x)
        }
        return try await localIP(id, caller: caller)
    }

    /// Deletes a local IP without associations (409 LocalIPInUse), with the port it made.
    public func deleteLocalIP(_ id: String, caller: AuthContext) async throws {
        try await write { x in
            let localIP = try await self.visibleLocalIP(id, caller: caller, x)
            try self.authorize("delete_local_ip", caller, target: localIP.target)
            if try await x.first("SELECT 1 FROM network_local_ip_association WHERE local_ip_id = ?", .text(id)) != nil {
                throw Self.conflict("Local IP \(id) is still associated with one or more ports.", code: "LocalIPInUse")
            }
            try await x.execute("DELETE FROM network_local_ip WHERE id = ?", .text(id))
            let port = localIP.json["local_port_id"]?.stringValue ?? ""
            if try await x.first("SELECT 1 FROM network_port WHERE id = ? AND device_owner = ? AND device_id = ?",
                                 .text(port), .text(Self.localIPOwner), .text(id)) != nil {
                try await self.removePort(port, x)
            }
        }
    }

    // MARK: Port associations

    func localIPAssociations(_ localIP: Rendered, _ x: any SQLExecutor) async throws -> [[String: JSON]] {
        let id = localIP.json["id"]?.stringValue ?? ""
        return try await x.query("""
            SELECT a.*, p.host_id FROM network_local_ip_association a JOIN network_port p ON p.id = a.fixed_port_id
            WHERE a.local_ip_id = ? ORDER BY a.created_at, a.fixed_port_id
            """, .text(id)).map { row in
            ["local_ip_id": .string(id), "local_ip_address": localIP.json["local_ip_address"] ?? .null,
             "fixed_port_id": .string(row.string("fixed_port_id")), "fixed_ip": .string(row.string("fixed_ip")), "host": .string(row.string("host_id"))]
        }
    }

    public func localIPAssociations(_ id: String, caller: AuthContext) async throws -> [[String: JSON]] {
        let localIP = try await visibleLocalIP(id, caller: caller, db)
        try authorize("get_local_ip_port_association", caller, target: localIP.target)
        return try await localIPAssociations(localIP, db)
    }

    /// Associates a port (one of its addresses: the one asked for, or its only one) with the local IP.
    public func associateLocalIP(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try Self.allowOnly(input, ["fixed_port_id", "fixed_ip"])
        let portID = try input.requiredString("fixed_port_id")
        let asked = try input.string("fixed_ip")
        return try await write { x in
            let localIP = try await self.visibleLocalIP(id, caller: caller, x)
            try self.authorize("create_local_ip_port_association", caller, target: localIP.target)
            let port = try await self.visiblePort(portID, caller: caller, x)
            let addresses = (port.json["fixed_ips"]?.arrayValue ?? []).compactMap { $0["ip_address"]?.stringValue }
            let fixed: String
            if let asked {
                guard addresses.contains(asked) else {
                    throw Self.badRequest("Bad local_ip_association request: Requested fixed IP \(asked) was not found on port \(portID).",
                                          code: "LocalIPRequestedIPNotFound")
                }
                fixed = asked
            } else if addresses.count == 1 {
                fixed = addresses[0]
            } else {
                throw Self.badRequest("Bad local_ip_association request: Port \(portID) has \(addresses.count) fixed IPs; one must be specified.",
                                      code: addresses.isEmpty ? "LocalIPNoIP" : "LocalIPNoRequestedIP")
            }
            if try await x.first("SELECT 1 FROM network_local_ip_association WHERE local_ip_id = ? AND fixed_port_id = ?", .text(id), .text(portID)) != nil {
                throw Self.conflict("Local IP \(id) is already associated with port \(portID).", code: "LocalIPAssociationExists")
            }
            try await x.execute("INSERT INTO network_local_ip_association (local_ip_id, fixed_port_id, fixed_ip, created_at) VALUES (?, ?, ?, ?)",
                                .text(id), .text(portID), .text(fixed), Self.now())
            return try await self.localIPAssociations(localIP, x).first { $0["fixed_port_id"]?.stringValue == portID } ?? [:]
        }
    }

    public func disassociateLocalIP(_ id: String, port portID: String, caller: AuthContext) async throws {
        try await write { x in
            let localIP = try await self.visibleLocalIP(id, caller: caller, x)
            try self.authorize("delete_local_ip_port_association", caller, target: localIP.target)
            guard try await x.execute("DELETE FROM network_local_ip_association WHERE local_ip_id = ? AND fixed_port_id = ?", .text(id), .text(portID)) > 0 else {
                throw APIError(.notFound, "Local IP \(id) association with port \(portID) could not be found.", code: "LocalIPAssociationNotFound")
            }
        }
    }

    /// A local IP's port is not deleted under it (409, as Neutron's plugin refuses).
    func refuseLocalIPPortDeletion(_ id: String, _ x: any SQLExecutor) async throws {
        if let row = try await x.first("SELECT id FROM network_local_ip WHERE local_port_id = ?", .text(id)) {
            throw Self.conflict("Port \(id) is used by Local IP \(row.string("id")).", code: "LocalIPPortInUse")
        }
    }
}
