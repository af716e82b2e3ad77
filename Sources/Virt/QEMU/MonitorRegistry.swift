import Foundation

/// The driver's QMP connections, one per running guest, kept open between calls (as libvirt
/// keeps its monitor connections): QEMU serves one monitor client at a time, so every call
/// for a guest shares this one connection, matching replies by id.
///
/// An open connection also tells when its QEMU ends: QEMU closes the monitor as it exits, so
/// a connection that closes without the driver closing it means the guest powered itself off
/// or its process was killed. Its uuid then goes to `exits` (libvirt's lifecycle event).
/// QEMU exits the driver brings about itself (`expectExit`: a power-off, `quit`, a move
/// stopping the guest) are not events, as a destroy is not: the operation reports its outcome.
actor MonitorRegistry {
    private var clients: [String: QMPClient] = [:]
    /// Guests whose QEMU the driver is ending, until their connection is dropped.
    private var ending: Set<String> = []
    private var connecting: [String: Task<QMPClient, any Error>] = [:]
    /// Guests whose QEMU ended by itself, once the process is gone.
    nonisolated let exits = GuestEventChannel()

    /// The open connection to the guest's monitor, connecting (once, for concurrent callers)
    /// if there is none or the last one closed.
    func client(for paths: GuestPaths, timeout: Duration) async throws -> QMPClient {
        if let client = clients[paths.uuid], !client.isClosed { return client }
        if let pending = connecting[paths.uuid] { return try await pending.value }
        let task = Task { try await QMPClient.connect(path: paths.qmpSocket, timeout: timeout) }
        connecting[paths.uuid] = task
        defer { connecting[paths.uuid] = nil }
        let client = try await task.value
        clients[paths.uuid] = client
        watch(client, paths)
        return client
    }

    /// Waits for the connection to close; if nobody here closed it, QEMU did, and once its
    /// process is gone the guest's uuid is sent to `exits`.
    private func watch(_ client: QMPClient, _ paths: GuestPaths) {
        let pid = GuestProcess.running(paths)
        Task { [weak self] in
            // The wait is bounded, as every QMP wait is; a guest runs for longer, so it is renewed.
            while (try? await client.waitUntilClosed(timeout: .seconds(600))) == nil {}
            guard let self, await self.forgetClosedByQEMU(client, uuid: paths.uuid) else { return }
            // The monitor closes a moment before the process is gone.
            if let pid { _ = await GuestProcess.waitForExit(paths, pid: pid, timeout: .seconds(5)) }
            self.exits.send(paths.uuid)
        }
    }

    /// Whether `client` was still the guest's connection (so the driver did not close it) and
    /// the driver was not ending that QEMU; it is forgotten.
    private func forgetClosedByQEMU(_ client: QMPClient, uuid: String) -> Bool {
        guard clients[uuid] === client else { return false }
        clients[uuid] = nil
        return !ending.contains(uuid)
    }

    /// The driver is about to end the guest's QEMU (or have the guest end it): its monitor
    /// closing is no event. Lasts until `drop`, or `exitNoLongerExpected` when the attempt failed.
    func expectExit(_ uuid: String) {
        ending.insert(uuid)
    }

    func exitNoLongerExpected(_ uuid: String) {
        ending.remove(uuid)
    }

    /// Closes and forgets the guest's connection (its QEMU is gone or going).
    func drop(_ uuid: String) {
        ending.remove(uuid)
        clients.removeValue(forKey: uuid)?.close()
    }

    /// Closes every connection; the guests keep running.
    func closeAll() {
        for client in clients.values { client.close() }
        clients.removeAll()
    }
}
