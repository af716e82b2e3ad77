import Foundation
import NimbusCore

/// The guest's VNC server, for the controller's noVNC proxy. QEMU listens on TCP at
/// `configuration.vncListen` on a port it picked at start (`-vnc ADDR:0,to=…`), so the port is
/// asked of QEMU itself (`query-vnc`) rather than remembered: it changes whenever the guest's
/// QEMU starts again, and a stale port could belong to another guest by then.
extension QEMUDriver: VNCConsoleDriver {
    public func vncConsole(_ uuid: String) async throws -> VNCEndpoint {
        let client = try await runningMonitor(uuid)
        let vnc = try await client.execute("query-vnc")
        guard vnc["enabled"]?.boolValue == true else { throw VirtError.invalidState("Instance \(uuid) has no VNC server.") }
        // A guest started before VNC moved to TCP listens on a unix socket the proxy cannot reach.
        guard let family = vnc["family"]?.stringValue, family == "ipv4" || family == "ipv6",
              let host = vnc["host"]?.stringValue, let port = vnc["service"]?.stringValue.flatMap({ Int($0) }),
              let endpoint = VNCEndpoint(json: ["host": .string(host), "port": .int(Int64(port))]) else {
            throw VirtError.invalidState("The VNC server of instance \(uuid) is not on TCP (\(vnc.serialized())); stop and start the server to move it.")
        }
        return endpoint
    }
}
