import Foundation
import NimbusCore

/// `POST /os-server-external-events`: what other services tell Nova about its servers.
/// `network-changed` makes the conductor read the server's ports again (the in-process
/// networking service sends it the same way); the others are acknowledged, as nothing here
/// waits on them (the fake and QEMU drivers do not wait for `network-vif-plugged`).
extension ComputeService {
    static let externalEventNames: Set<String> = [
        "network-changed", "network-vif-plugged", "network-vif-unplugged", "network-vif-deleted", "volume-extended",
        "power-update", "accelerator-request-bound", "volume-reimaged",
    ]

    /// Each event comes back with its `code` (200 done, 404 no such server, 422 a server not
    /// on a host yet) and `status`; the whole answer is 200 when all were done, 404 when none
    /// found its server, 207 otherwise.
    public func externalEvents(_ body: JSON, caller: AuthContext) async throws -> (status: Int, body: JSON) {
        try authorize("os_compute_api:os-server-external-events:create", caller)
        guard let events = body["events"]?.arrayValue, !events.isEmpty else {
            throw APIError.badRequest("Invalid input for field/attribute events. 'events' is a required non-empty list.")
        }
        var parsed: [(name: String, server: String, tag: String?, status: String)] = []
        for event in events {
            guard let name = event["name"]?.stringValue, Self.externalEventNames.contains(name),
                  let server = event["server_uuid"]?.stringValue else {
                throw APIError.badRequest("Invalid input for field/attribute events: \(event.serialized()).")
            }
            let status = event["status"]?.stringValue ?? "completed"
            guard ["completed", "failed", "in-progress"].contains(status) else {
                throw APIError.badRequest("Invalid input for field/attribute status. Value: \(status).")
            }
            parsed.append((name, server, event["tag"]?.stringValue, status))
        }
        var answered: [JSON] = []
        var codes: [Int] = []
        for event in parsed {
            let instance = try await store.instance(uuid: event.server, db)
            let code = instance == nil || instance?.deletedAt != nil ? 404 : (instance?.host == nil ? 422 : 200)
            if code == 200 && event.name == "network-changed" { await conductor.networkChanged(instance: event.server) }
            var out: [String: JSON] = ["name": .string(event.name), "server_uuid": .string(event.server), "code": .int(Int64(code)),
                                       "status": .string(code == 200 ? event.status : "failed")]
            if let tag = event.tag { out["tag"] = .string(tag) }
            answered.append(.object(out))
            codes.append(code)
        }
        let status = codes.allSatisfy { $0 == 200 } ? 200 : (codes.allSatisfy { $0 == 404 } ? 404 : 207)
        return (status, ["events": .array(answered)])
    }
}
