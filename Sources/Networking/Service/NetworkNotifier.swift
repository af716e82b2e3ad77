import Foundation
import NimbusCore

/// Neutron's Nova notifier: tells the compute service that what one of its servers' ports
/// shows has changed (`network-changed`: a floating IP came or went), so the server's
/// `addresses` follow. The control plane sets the handler once both services exist.
public final class NetworkNotifier: @unchecked Sendable {
    public typealias Handler = @Sendable (_ device: String, _ port: String) async -> Void
    private let lock = NSLock()
    private var handler: Handler?

    public init() {}

    public func onNetworkChanged(_ handler: @escaping Handler) {
        lock.withLock { self.handler = handler }
    }

    /// Tells compute about each floating IP's port that belongs to a server (`compute:*` owner).
    func floatingIPsChanged(_ floatingIPs: [[String: JSON]]) async {
        guard let handler = lock.withLock({ self.handler }) else { return }
        var told: Set<String> = []
        for floating in floatingIPs {
            guard let port = floating["port_id"]?.stringValue, let details = floating["port_details"],
                  details["device_owner"]?.stringValue?.hasPrefix("compute:") == true,
                  let device = details["device_id"]?.stringValue, !device.isEmpty, told.insert(port).inserted else { continue }
            await handler(device, port)
        }
    }
}
