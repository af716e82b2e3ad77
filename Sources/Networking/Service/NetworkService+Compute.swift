import Foundation
import NimbusCore
import NimbusStore

/// What Nova calls in-process to give instances their ports. Nova has already authorised its
/// own caller, so these take the instance's project instead of a token; results are ports as
/// an admin sees them in the API (`fixed_ips`, `mac_address`, `binding:vif_type`…).
extension NetworkService {
    /// Creates a port for `instance` on `network` (the project's own or a shared one; 404
    /// NetworkNotFound otherwise), with `fixedIPv4` as its address when given, else one
    /// address of each IP version from the network's subnets. Counts against the project's
    /// port quota (409 OverQuota); 409 IpAddressGenerationFailure when no address is free.
    public func createInstancePort(network: String, project: String, instance: String, fixedIPv4: String? = nil,
                                   securityGroups: [String] = []) async throws -> [String: JSON] {
        var fields: [String: JSON] = ["network_id": .string(network), "device_id": .string(instance)]
        if let fixedIPv4 { fields["fixed_ips"] = [["ip_address": .string(fixedIPv4)]] }
        if !securityGroups.isEmpty { fields["security_groups"] = .array(securityGroups.map { .string($0) }) }
        let id = try await write(try portInsert(JSONInput(fields, path: "port"), project: project, caller: nil))
        let port = try await adminPort(id)
        await mechanism.portPostcommit(port)
        return port
    }

    /// Binds the port to `host` for `instance`: `binding:host_id`, `device_id`, `device_owner`
    /// `compute:<availabilityZone>`, the VIF type and details from the mechanism driver, and
    /// status ACTIVE. A port already bound to another instance is 409 PortInUse.
    public func bindPort(_ id: String, host: String, instance: String, availabilityZone: String) async throws -> [String: JSON] {
        try await write { x in
            guard let row = try await x.first("SELECT device_id FROM network_port WHERE id = ?\(x.dialect.forUpdate)", .text(id)) else {
                throw Self.notFound("port", id)
            }
            let device = row.string("device_id")
            if !device.isEmpty && device != instance {
                throw Self.conflict("Unable to complete operation on port \(id) for network. Port already has an attached device \(device).", code: "PortInUse")
            }
            try await x.execute("UPDATE network_port SET device_id = ?, device_owner = ? WHERE id = ?",
                                .text(instance), .text("compute:\(availabilityZone)"), .text(id))
            try await self.bind(id, host: host, x)
            try await self.touch("network_port", id, x)
        }
        return try await adminPort(id)
    }

    /// The ports whose `device_id` is `device` (an instance's uuid), oldest first.
    public func devicePorts(_ device: String) async throws -> [[String: JSON]] {
        try await ports(where: "WHERE p.device_id = ? ORDER BY p.created_at, p.id", [.text(device)], db).map(\.json)
    }

    /// Detaches an instance from its ports: those in `keep` (ports the user made and handed to
    /// Nova) are unbound and cleared of the device, keeping their addresses; the rest, which
    /// Nova created for the instance, are deleted with their addresses.
    public func releaseDevicePorts(_ device: String, keep: Set<String> = []) async throws {
        try await write { x in
            for row in try await x.query("SELECT id FROM network_port WHERE device_id = ?", .text(device)) {
                let id = row.string("id")
                if keep.contains(id) {
                    try await self.unbind(id, x)
                    try await x.execute("UPDATE network_port SET device_id = '', device_owner = '' WHERE id = ?", .text(id))
                    try await self.touch("network_port", id, x)
                } else {
                    try await self.removePort(id, x)
                }
            }
        }
    }

    func adminPort(_ id: String) async throws -> [String: JSON] { try await stored("port", id, db).json }

    /// The project's security group with this id or name, as (id, name): what Nova's
    /// `security_groups` entries name. `default` is made on first use, as anywhere else.
    /// Nil when there is none, or when a name is ambiguous (Neutron's clients refuse those too).
    public func projectSecurityGroup(_ nameOrID: String, project: String) async throws -> (id: String, name: String)? {
        if nameOrID == "default" { try await ensureDefaultSecurityGroup(project: project) }
        let rows = try await db.query("SELECT id, name FROM network_security_group WHERE project_id = ? AND (id = ? OR name = ?)",
                                      .text(project), .text(nameOrID), .text(nameOrID))
        let row = rows.first { $0.string("id") == nameOrID } ?? (rows.count == 1 ? rows[0] : nil)
        return row.map { ($0.string("id"), $0.string("name")) }
    }
}
