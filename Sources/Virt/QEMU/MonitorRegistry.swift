import Foundation

/// The driver's QMP connections, one per running guest, kept open between calls (as libvirt
/// keeps its monitor connections): QEMU serves one monitor client at a time, so every call
/// for a guest shares this one connection, matching replies by id.
actor MonitorRegistry {
    private var clients: [String: QMPClient] = [:]
    private var connecting: [String: Task<QMPClient, any Error>] = [:]

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
        return client
    }

    /// Closes and forgets the guest's connection (its QEMU is gone or going).
    func drop(_ uuid: String) {
        clients.removeValue(forKey: uuid)?.close()
    }

    /// Closes every connection; the guests keep running.
    func closeAll() {
        for client in clients.values { client.close() }
        clients.removeAll()
    }
}
