import NimbusCore

extension ComputeService {
    /// The server's ports in Nova's `os-interface` shape (`interfaceAttachments`), in the order
    /// they were attached; from 2.70 with the `tag` each was given.
    public func interfaces(_ uuid: String, version: Microversion, caller: AuthContext) async throws -> [JSON] {
        try authorize("os_compute_api:os-attach-interfaces:list", caller)
        let instance = try await visibleInstance(uuid, caller: caller)
        return try await ports(of: instance).map { Self.attachment($0, of: instance, version: version) }
    }

    /// One of the server's ports (`interfaceAttachment`); 404 when the port is not the server's.
    public func interface(_ uuid: String, port: String, version: Microversion, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-attach-interfaces:show", caller)
        let instance = try await visibleInstance(uuid, caller: caller)
        guard let nic = try await ports(of: instance).first(where: { $0.portID == port }) else {
            throw APIError.notFound("Port \(port) is not attached to instance \(uuid).")
        }
        return Self.attachment(nic, of: instance, version: version)
    }

    static func attachment(_ nic: AttachedNIC, of instance: Instance, version: Microversion) -> JSON {
        attachment(nic, tag: instance.interfaceTags[nic.portID], version: version)
    }

    /// One port as `os-interface` shows it: from 2.70 with its `tag` (null for none).
    static func attachment(_ nic: AttachedNIC, tag: String?, version: Microversion) -> JSON {
        var shown = nic.interfaceAttachment.objectValue ?? [:]
        if version >= Microversion(2, 70) { shown["tag"] = tag.map(JSON.string) ?? .null }
        return .object(shown)
    }

    /// The server's ports as the networking service has them now.
    func ports(of instance: Instance) async throws -> [AttachedNIC] {
        guard let network = conductor.network else { return [] }
        return try await network.attached(instance: instance.uuid)
    }
}

extension Instance {
    /// The `tag` given to each of the server's ports (at boot or attach), by port id.
    var interfaceTags: [String: String] { extra["interface_tags"]?.objectValue?.compactMapValues(\.stringValue) ?? [:] }
}
