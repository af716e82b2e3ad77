import Foundation
import HostAPI
import NimbusCore
import NimbusStore

/// What an interface attach or detach report changes on the server, applied in the report's
/// transaction (`apply`).
extension Conductor {
    /// Attached: the NIC joins the server's (its `addresses`, and what a move or rebuild gives
    /// the guest) and the request joins its requested networks, so a move rebinds the port
    /// and a delete treats it as the server's. Failed to attach: the port is let go of.
    /// Detached: the NIC and its request leave the server, and the port goes — deleted when
    /// compute made it, unbound when the user gave it. Failed to detach: nothing changes.
    func applyInterface(_ kind: AgentMessage.Kind, _ message: AgentMessage, failed: Bool, to instance: inout Instance,
                        after: AfterCommit, _ x: any SQLExecutor) async throws {
        var nics = instance.attachedNICs
        var spec = instance.extra["request_spec"]?.objectValue ?? [:]
        var requests = spec["networks"]?.arrayValue ?? []
        var tags = instance.extra["interface_tags"]?.objectValue ?? [:]
        switch (kind, failed) {
        case (.attachInterface, false):
            guard let nic = message.payload["nic"].flatMap(AttachedNIC.init(json:)), let request = message.payload["request"] else { return }
            guard !nics.contains(where: { $0.portID == nic.portID }) else { return }
            nics.append(nic)
            requests.append(request)
            tags[nic.portID] = request["tag"]
        case (.attachInterface, true):
            try await releaseAttachedPort(message, instance: instance.uuid, after: after, x)
            return
        case (.detachInterface, false):
            guard let port = message.payload["vif"]?["port_id"]?.stringValue, let index = nics.firstIndex(where: { $0.portID == port }) else { return }
            let networkID = nics.remove(at: index).networkID
            tags[port] = nil
            let given = instance.requestedNICs.contains { $0.portID == port }
            if given {
                requests.removeAll { RequestedNIC(json: $0).portID == port }
            } else if let made = requests.lastIndex(where: { RequestedNIC(json: $0).portID == nil && RequestedNIC(json: $0).networkID == networkID }) {
                requests.remove(at: made)
            }
            try await record(.releasePort(instance: instance.uuid, port: port, delete: !given), in: after, x)
        default:
            return
        }
        instance.extra["nics"] = .array(nics.map(\.json))
        instance.extra["addresses"] = AttachedNIC.addresses(nics)
        spec["networks"] = .array(requests)
        instance.extra["request_spec"] = .object(spec)
        instance.extra["interface_tags"] = tags.isEmpty ? nil : .object(tags)
    }

    /// The port of an attach that did not happen goes back: deleted when compute made it.
    func releaseAttachedPort(_ message: AgentMessage, instance: String, after: AfterCommit, _ x: any SQLExecutor) async throws {
        guard let port = message.payload["vif"]?["port_id"]?.stringValue else { return }
        try await record(.releasePort(instance: instance, port: port, delete: message.payload["created"]?.boolValue ?? false), in: after, x)
    }
}
