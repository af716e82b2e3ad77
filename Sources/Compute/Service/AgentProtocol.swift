import Foundation
import NimbusCore

/// A unit of work for a host's agent, read from the durable outbox.
public struct AgentMessage: Sendable {
    public var id: Int64
    public var kind: String
    public var instanceUUID: String?
    public var payload: JSON

    public init(id: Int64, kind: String, instanceUUID: String?, payload: JSON) {
        (self.id, self.kind, self.instanceUUID, self.payload) = (id, kind, instanceUUID, payload)
    }

    public var json: JSON {
        ["id": .int(id), "kind": .string(kind), "instance_uuid": .optional(instanceUUID), "payload": payload]
    }

    public init?(json: JSON) {
        guard let id = json["id"]?.intValue, let kind = json["kind"]?.stringValue else { return nil }
        self.init(id: id, kind: kind, instanceUUID: json["instance_uuid"]?.stringValue, payload: json["payload"] ?? .null)
    }
}

/// What the agent did with a message. Reporting it also acknowledges the message, in the same
/// transaction as the state change it causes.
public struct AgentReport: Sendable {
    public var messageID: Int64
    public var host: String
    /// nil on success.
    public var error: String?
    public var output: JSON

    public init(messageID: Int64, host: String, error: String?, output: JSON = .null) {
        (self.messageID, self.host, self.error, self.output) = (messageID, host, error, output)
    }

    public var json: JSON { ["message_id": .int(messageID), "host": .string(host), "error": .optional(error), "output": output] }

    public init?(json: JSON) {
        guard let id = json["message_id"]?.intValue, let host = json["host"]?.stringValue else { return nil }
        self.init(messageID: id, host: host, error: json["error"]?.stringValue, output: json["output"] ?? .null)
    }
}

/// A host announcing itself: what it has and what its driver can do.
public struct AgentRegistration: Sendable {
    public var host: String
    public var hostIP: String
    public var resources: HostResources
    public var capabilities: DriverCapabilities

    public init(host: String, hostIP: String, resources: HostResources, capabilities: DriverCapabilities) {
        (self.host, self.hostIP, self.resources, self.capabilities) = (host, hostIP, resources, capabilities)
    }
}

/// How an agent reaches the control plane. In one process it is a direct call; a separate
/// `nimbus agent` speaks the same four calls over HTTP with its own credentials. Either way
/// the agent never touches the database.
public protocol AgentLink: Sendable {
    func register(_ registration: AgentRegistration) async throws
    func heartbeat(host: String) async throws
    /// Messages for the host after `after`, waiting up to `wait` for one to arrive.
    func fetch(host: String, after: Int64, wait: Duration) async throws -> [AgentMessage]
    func report(_ report: AgentReport) async throws
}

extension GuestSpec {
    var json: JSON {
        ["uuid": .string(uuid), "name": .string(name), "vcpus": .int(vcpus), "memory_mb": .int(memoryMB), "disk_gb": .int(diskGB),
         "image_ref": .string(imageRef), "user_data": .optional(userData), "key_data": .optional(keyData),
         "metadata": .object(metadata.mapValues { .string($0) }), "nics": .array(nics.map(\.json))]
    }

    init?(json: JSON) {
        guard let uuid = json["uuid"]?.stringValue else { return nil }
        self.init(uuid: uuid, name: json["name"]?.stringValue ?? "", vcpus: json["vcpus"]?.intValue ?? 0, memoryMB: json["memory_mb"]?.intValue ?? 0,
                  diskGB: json["disk_gb"]?.intValue ?? 0, imageRef: json["image_ref"]?.stringValue ?? "",
                  userData: json["user_data"]?.stringValue, keyData: json["key_data"]?.stringValue,
                  metadata: json["metadata"]?.objectValue?.compactMapValues(\.stringValue) ?? [:],
                  nics: json["nics"]?.arrayValue?.compactMap(AttachedNIC.init(json:)) ?? [])
    }
}
