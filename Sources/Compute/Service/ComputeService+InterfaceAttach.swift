import Foundation
import HostAPI
import NimbusCore
import NimbusStore
import Synchronization

/// `POST /servers/{id}/os-interface` and `DELETE /servers/{id}/os-interface/{port_id}`, as
/// Nova's compute API and manager do them. Attach is synchronous: the port is made (or taken
/// over) and bound to the server's host, the host plugs it into the guest, and the answer is
/// the attachment once that is done; the report, applied with the message's acknowledgement,
/// records the NIC on the server, or lets the port go when the host failed. Detach is
/// asynchronous (202): the host unplugs the NIC, and its report drops it from the server and
/// deletes the port (when compute made it) or unbinds it (the user's).
extension ComputeService {
    /// How long attach waits for the host, as Nova's RPC call waits (`rpc_response_timeout`).
    static let attachTimeout: Duration = .seconds(60)

    static func interfaceRule(_ label: String, _ policy: String) -> ActionRule {
        ActionRule(label: label, policy: "os_compute_api:os-attach-interfaces:\(policy)", vmStates: [.active, .paused, .stopped])
    }

    public func attachInterface(_ uuid: String, _ body: JSON, version: Microversion, caller: AuthContext, requestID: String) async throws -> JSON {
        let request = try Self.interfaceRequest(body, version: version)
        let instance = try await visibleInstance(uuid, caller: caller)
        let rule = Self.interfaceRule("attach_interface", "create")
        try check(instance, rule, caller: caller)
        let host = try await interfaceHost(instance)
        guard let network = conductor.network else {
            throw APIError.badRequest("No specific network was requested and none are available for project '\(instance.projectID)'.")
        }
        let zone = try await conductor.zone(of: host)
        let attached = try await network.attachPort(request, instance: uuid, project: instance.projectID, host: host, zone: zone,
                                                    securityGroups: instance.securityGroupIDs, caller: caller)
        let messageID: Int64
        do {
            messageID = try await db.transaction { x -> Int64 in
                try await self.interfaceAction(uuid, rule, host: host, caller: caller, requestID: requestID, kind: .attachInterface, x) { actionID in
                    ["action_id": .int(actionID), "vif": attached.nic.vif.json, "nic": attached.nic.json, "request": attached.request.json,
                     "created": .bool(attached.created)]
                }
            }
        } catch {
            // Refused after the port was bound (the server changed meanwhile): it goes back.
            try? await network.releasePort(attached.nic.portID, instance: uuid, delete: attached.created)
            throw error
        }
        await conductor.wake(host)
        guard let report = await conductor.hub.awaitReply(messageID, timeout: Self.attachTimeout) else {
            throw APIError(.serviceUnavailable, "The compute host \(host) did not answer in time.")
        }
        if let error = report.error {
            logger.warning("attaching port \(attached.nic.portID) to \(uuid) failed on \(host): \(error)")
            throw APIError(.internalServerError, "Failed to attach network adapter device to \(uuid)")
        }
        return Self.attachment(attached.nic, tag: attached.request.tag, version: version)
    }

    public func detachInterface(_ uuid: String, port: String, caller: AuthContext, requestID: String) async throws {
        let instance = try await visibleInstance(uuid, caller: caller)
        let rule = Self.interfaceRule("detach_interface", "delete")
        try check(instance, rule, caller: caller)
        let host = try await interfaceHost(instance)
        guard let nic = instance.attachedNICs.first(where: { $0.portID == port }) else {
            throw APIError.notFound("Port \(port) is not attached")
        }
        _ = try await db.transaction { x -> Int64 in
            try await self.interfaceAction(uuid, rule, host: host, caller: caller, requestID: requestID, kind: .detachInterface, x) { actionID in
                ["action_id": .int(actionID), "vif": nic.vif.json]
            }
        }
        await conductor.wake(host)
    }

    /// The server's host, when its driver can plug interfaces (Nova's
    /// AttachInterfaceNotSupported otherwise).
    func interfaceHost(_ instance: Instance) async throws -> String {
        guard let host = instance.host else { throw APIError.conflict("Instance \(instance.uuid) is not ready") }
        if let node = try await store.node(host: host, db), !DriverCapabilities(json: node.capabilities).attachInterface {
            throw APIError.badRequest("Attaching interfaces is not supported for instance \(instance.uuid).")
        }
        return host
    }

    /// Checks the rule again on the server as it is now (still on `host`), records the
    /// action with its event and queues the host's message; returns the message's id.
    func interfaceAction(_ uuid: String, _ rule: ActionRule, host: String, caller: AuthContext, requestID: String, kind: AgentMessage.Kind,
                         _ x: any SQLExecutor, payload: (Int64) -> JSON) async throws -> Int64 {
        guard let current = try await store.instance(uuid: uuid, x), current.deletedAt == nil else {
            throw APIError.notFound("Instance \(uuid) could not be found.")
        }
        try check(current, rule, caller: caller)
        guard current.host == host else { throw APIError.conflict("Instance \(uuid) is not ready") }
        let actionID = try await store.startAction(uuid, action: rule.label, requestID: requestID, userID: caller.userID,
                                                   projectID: current.projectID, event: "compute_\(rule.label)", x)
        return try await store.send(host: host, kind: kind.rawValue, instanceUUID: uuid, orderingKey: AgentMessage.orderingKey(instance: uuid),
                                    payload: payload(actionID), x)
    }

    /// Nova's `interfaceAttachment` schema: `port_id`, or `net_id` with at most one
    /// `fixed_ips` entry, or neither; `tag` from 2.49.
    static func interfaceRequest(_ body: JSON, version: Microversion) throws -> RequestedNIC {
        guard let top = body.objectValue else { throw APIError.badRequest("Invalid input for field/attribute body. Value: \(body.serialized()). is not of type 'object'") }
        if let unknown = top.keys.first(where: { $0 != "interfaceAttachment" }) {
            throw APIError.badRequest("Additional properties are not allowed ('\(unknown)' was unexpected)")
        }
        guard let value = top["interfaceAttachment"] else { return RequestedNIC() }
        guard let fields = value.objectValue else {
            throw APIError.badRequest("Invalid input for field/attribute interfaceAttachment. Value: \(value.serialized()). is not of type 'object'")
        }
        let allowed: Set<String> = version >= Microversion(2, 49) ? ["net_id", "port_id", "fixed_ips", "tag"] : ["net_id", "port_id", "fixed_ips"]
        if let unknown = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw APIError.badRequest("Invalid input for field/attribute interfaceAttachment. Additional properties are not allowed ('\(unknown)' was unexpected)")
        }
        func uuid(_ name: String) throws -> String? {
            guard let field = fields[name] else { return nil }
            guard let text = field.stringValue, Self.uuidLike(text) else {
                throw APIError.badRequest("Invalid input for field/attribute \(name). Value: \(field.serialized()). '\(field.stringValue ?? field.serialized())' is not a 'uuid'")
            }
            return text
        }
        var request = RequestedNIC(networkID: try uuid("net_id"), portID: try uuid("port_id"))
        if let fixed = fields["fixed_ips"] {
            guard let entries = fixed.arrayValue, entries.count <= 1 else {
                throw APIError.badRequest("Invalid input for field/attribute fixed_ips. Value: \(fixed.serialized()). is not valid under the given schema")
            }
            for entry in entries {
                guard let object = entry.objectValue, object.keys.allSatisfy({ $0 == "ip_address" }), let address = object["ip_address"]?.stringValue,
                      (try? canonicalAddress(address, field: address.contains(":") ? "accessIPv6" : "accessIPv4")) != nil else {
                    throw APIError.badRequest("Invalid input for field/attribute fixed_ips. Value: \(fixed.serialized()). is not valid under the given schema")
                }
                request.fixedIP = address
            }
        }
        if let tag = fields["tag"] {
            guard let text = tag.stringValue, (1...60).contains(text.count), !text.contains(","), !text.contains("/") else {
                throw APIError.badRequest("Invalid input for field/attribute tag. Value: \(tag.serialized()). is not valid")
            }
            request.tag = text
        }
        if request.portID != nil && request.networkID != nil { throw APIError.badRequest("Must not input both network_id and port_id") }
        if request.fixedIP != nil && request.networkID == nil { throw APIError.badRequest("Must input network_id when request IP address") }
        return request
    }

    /// Nova's `uuid` format: 32 hexadecimal digits, with or without the dashes.
    static func uuidLike(_ text: String) -> Bool {
        let digits = text.lowercased().replacingOccurrences(of: "-", with: "")
        return digits.count == 32 && digits.allSatisfy(\.isHexDigit) && (text.count == 32 || text.count == 36)
    }

    // MARK: changePassword

    /// `changePassword`: Nova's set_admin_password, a synchronous call to the host while the
    /// server is `updating_password`. A host whose driver cannot set passwords answers as
    /// Nova's libvirt driver does for an image without the QEMU guest agent (409).
    func changePassword(_ uuid: String, _ value: JSON, caller: AuthContext, requestID: String) async throws {
        guard let fields = value.objectValue, let password = fields["adminPass"]?.stringValue else {
            throw APIError.badRequest("Invalid input for field/attribute changePassword. Value: \(value.serialized()). 'adminPass' is a required property")
        }
        if let unknown = fields.keys.first(where: { $0 != "adminPass" }) {
            throw APIError.badRequest("Invalid input for field/attribute changePassword. Additional properties are not allowed ('\(unknown)' was unexpected)")
        }
        let instance = try await visibleInstance(uuid, caller: caller)
        let rule = ActionRule(label: "changePassword", policy: "os_compute_api:os-admin-password", vmStates: [.active])
        try check(instance, rule, caller: caller)
        guard let host = instance.host else { throw APIError.conflict("Instance \(uuid) is not ready") }
        if let node = try await store.node(host: host, db), !DriverCapabilities(json: node.capabilities).setAdminPassword {
            throw APIError.conflict(node.hypervisorType.lowercased() == "qemu" ? "QEMU guest agent is not enabled" : "Set admin password is not supported")
        }
        let sent = Mutex<Int64>(0)
        try await transition(uuid, rule, caller: caller, requestID: requestID, action: "changePassword",
                             event: "compute_set_admin_password") { instance, actionID, x in
            guard instance.host == host else { throw APIError.conflict("Instance \(uuid) is not ready") }
            instance.taskState = .updatingPassword
            let id = try await self.store.send(host: host, kind: AgentMessage.Kind.setAdminPassword.rawValue, instanceUUID: uuid,
                                               orderingKey: AgentMessage.orderingKey(instance: uuid),
                                               payload: ["action_id": .int(actionID), "password": .string(password)], x)
            sent.withLock { $0 = id }
        }
        let messageID = sent.withLock { $0 }
        await conductor.wake(host)
        guard let report = await conductor.hub.awaitReply(messageID, timeout: Self.attachTimeout) else {
            throw APIError(.serviceUnavailable, "The compute host \(host) did not answer in time.")
        }
        if report.error != nil {
            throw APIError.conflict("Failed to set admin password on \(uuid) because error setting admin password")
        }
    }
}

extension Instance {
    /// The ports the server has, as last recorded (its `addresses` come from them).
    var attachedNICs: [AttachedNIC] { (extra["nics"]?.arrayValue ?? []).compactMap(AttachedNIC.init(json:)) }
}
