import NimbusCore

extension ComputeService {
    /// The server's ports in Nova's `os-interface` shape (`interfaceAttachments`), in the order
    /// they were attached.
    public func interfaces(_ uuid: String, caller: AuthContext) async throws -> [JSON] {
        try authorize("os_compute_api:os-attach-interfaces:list", caller)
        return try await attachedNICs(uuid, caller: caller).map(\.interfaceAttachment)
    }

    /// One of the server's ports (`interfaceAttachment`); 404 when the port is not the server's.
    public func interface(_ uuid: String, port: String, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-attach-interfaces:show", caller)
        guard let nic = try await attachedNICs(uuid, caller: caller).first(where: { $0.portID == port }) else {
            throw APIError.notFound("Port \(port) is not attached to instance \(uuid).")
        }
        return nic.interfaceAttachment
    }

    func attachedNICs(_ uuid: String, caller: AuthContext) async throws -> [AttachedNIC] {
        let instance = try await visibleInstance(uuid, caller: caller)
        guard let network = conductor.network else { return [] }
        return try await network.attached(instance: instance.uuid)
    }
}
