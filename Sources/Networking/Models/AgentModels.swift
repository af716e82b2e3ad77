import Foundation
import NimbusCore
import NimbusStore

/// The kinds of Neutron agent Nimbus reports: what `openstack network agent list` shows for
/// the controller's DHCP, L3 and metadata roles and for each compute host's L2 agent.
public enum AgentType: String, Sendable, CaseIterable {
    case linuxBridge = "Linux bridge agent"
    case dhcp = "DHCP agent"
    case l3 = "L3 agent"
    case metadata = "Metadata agent"

    var binary: String {
        switch self {
        case .linuxBridge: return "neutron-linuxbridge-agent"
        case .dhcp: return "neutron-dhcp-agent"
        case .l3: return "neutron-l3-agent"
        case .metadata: return "neutron-metadata-agent"
        }
    }

    /// The RPC topic Neutron's agents of this kind report on.
    var topic: String {
        switch self {
        case .dhcp: return "dhcp_agent"
        case .l3: return "l3_agent"
        case .linuxBridge, .metadata: return "N/A"
        }
    }

    /// Only the agents that schedule networks and routers have a zone.
    var availabilityZone: String? { self == .dhcp || self == .l3 ? "nova" : nil }
}

/// One agent's record: what it is, where it runs, and when it last reported.
public struct Agent: Sendable {
    public var id: String
    public var type: AgentType
    public var host: String
    public var adminStateUp: Bool
    public var description: String?
    public var configurations: JSON
    public var createdAt: Date
    public var startedAt: Date
    public var heartbeatAt: Date

    init(row: Row) {
        id = row.string("id")
        type = AgentType(rawValue: row.string("agent_type")) ?? .linuxBridge
        host = row.string("host")
        adminStateUp = row.bool("admin_state_up")
        description = row.optionalString("description")
        configurations = (try? JSON.parse(row.string("configurations"))) ?? [:]
        createdAt = Date(timeIntervalSince1970: row.double("created_at"))
        startedAt = Date(timeIntervalSince1970: row.double("started_at"))
        heartbeatAt = Date(timeIntervalSince1970: row.double("heartbeat_at"))
    }

    /// Neutron's representation; `alive` as of `now`.
    func json(now: Date, downTime: TimeInterval) -> [String: JSON] {
        // Neutron prints agent times as naive UTC with a space: `2026-11-26 03:00:00`.
        func time(_ date: Date) -> JSON { .string(Timestamps.iso8601(date).dropLast().replacingOccurrences(of: "T", with: " ")) }
        return ["id": .string(id), "agent_type": .string(type.rawValue), "binary": .string(type.binary), "host": .string(host),
                "topic": .string(type.topic), "availability_zone": .optional(type.availabilityZone),
                "alive": .bool(now.timeIntervalSince(heartbeatAt) <= downTime), "admin_state_up": .bool(adminStateUp),
                "description": .optional(description), "configurations": configurations, "resources_synced": .null,
                "created_at": time(createdAt), "started_at": time(startedAt), "heartbeat_timestamp": time(heartbeatAt)]
    }
}
