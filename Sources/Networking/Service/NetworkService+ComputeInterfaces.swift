import NimbusStore

extension NetworkService {
    /// Lets go of one port of an instance (Nova's `deallocate_port_for_instance` after an
    /// interface detach, or the undoing of a failed attach): deleted with its addresses when
    /// `delete` (Nova made it), otherwise unbound and cleared of the device, keeping its
    /// addresses. A port that is gone, or no longer the instance's, is left alone, so running
    /// it twice changes nothing.
    public func releaseInstancePort(_ id: String, instance: String, delete: Bool) async throws {
        try await write { x in
            guard let row = try await x.first("SELECT device_id FROM network_port WHERE id = ?\(x.dialect.forUpdate)", .text(id)),
                  row.string("device_id") == instance else { return }
            if delete {
                try await self.removePort(id, x)
            } else {
                try await self.unbind(id, x)
                try await x.execute("UPDATE network_port SET device_id = '', device_owner = '' WHERE id = ?", .text(id))
                try await self.touch("network_port", id, x)
            }
        }
    }
}
