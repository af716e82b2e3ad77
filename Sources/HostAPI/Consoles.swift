import Foundation
import NimbusCore

/// Where a guest's graphical console — its VNC (RFB) server — listens, as its host reports it:
/// an address and TCP port the controller's console proxy connects to (Nova's `ConsoleVNC`
/// host and port). Only the proxy's websocket is public; this endpoint is for the proxy.
public struct VNCEndpoint: Sendable, Equatable {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) { (self.host, self.port) = (host, port) }

    public var json: JSON { ["host": .string(host), "port": .int(Int64(port))] }

    /// Nil unless both fields are there and the port is a TCP port.
    public init?(json: JSON) {
        guard let host = json["host"]?.stringValue, !host.isEmpty, let port = json["port"]?.intValue, (1...65535).contains(port) else { return nil }
        self.init(host: host, port: Int(port))
    }
}
