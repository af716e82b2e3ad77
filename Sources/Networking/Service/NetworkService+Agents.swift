import Foundation
import NimbusCore
import NimbusStore

extension NetworkService {
    /// Records an agent's report: the agent is created on its first report (one per type and
    /// host, whoever reports first) and its heartbeat refreshed on every one; its configuration
    /// too, unless the report has none (nil: a heartbeat that knows nothing of it, such as a
    /// compute host's, keeps what the agent itself reported).
    public func reportAgentState(host: String, type: AgentType, configurations: JSON? = nil, at now: Date = Date()) async throws {
        let time = SQLValue.real(now.timeIntervalSince1970)
        let update = configurations == nil ? "heartbeat_at = excluded.heartbeat_at"
                                           : "configurations = excluded.configurations, heartbeat_at = excluded.heartbeat_at"
        try await db.execute("""
            INSERT INTO network_agent (id, agent_type, binary_name, host, topic, availability_zone, admin_state_up, description,
                configurations, created_at, started_at, heartbeat_at)
            VALUES (?, ?, ?, ?, ?, ?, 1, NULL, ?, ?, ?, ?)
            ON CONFLICT (agent_type, host) DO UPDATE SET \(update)
            """, .text(Identifiers.uuid()), .text(type.rawValue), .text(type.binary), .text(host), .text(type.topic),
            .optional(type.availabilityZone), .text((configurations ?? [:]).serialized()), time, time, time)
    }

    /// Every agent, or none for a caller policy does not let see them (Neutron filters a
    /// list rather than refusing it).
    public func agents(caller: AuthContext) async throws -> [[String: JSON]] {
        guard policy.enforce("get_agent", credentials: caller.policyInput, target: [:]) else { return [] }
        let now = Date()
        return try await db.query("SELECT * FROM network_agent ORDER BY host, agent_type").map {
            Agent(row: $0).json(now: now, downTime: settings.agentDownTime)
        }
    }

    public func agent(_ id: String, caller: AuthContext) async throws -> [String: JSON] {
        try authorizeAgent("get_agent", caller)
        return try await storedAgent(id).json(now: Date(), downTime: settings.agentDownTime)
    }

    public func updateAgent(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try authorizeAgent("update_agent", caller)
        try input.rejectUnknown(["admin_state_up", "description"])
        let agent = try await storedAgent(id)
        var description = agent.description
        if input.has("description") { description = try input.optionalString("description") }
        try await db.execute("UPDATE network_agent SET admin_state_up = ?, description = ? WHERE id = ?",
                             .bool(try input.bool("admin_state_up") ?? agent.adminStateUp), .optional(description), .text(id))
        return try await self.agent(id, caller: caller)
    }

    public func deleteAgent(_ id: String, caller: AuthContext) async throws {
        try authorizeAgent("delete_agent", caller)
        guard try await db.execute("DELETE FROM network_agent WHERE id = ?", .text(id)) == 1 else { throw Self.agentNotFound(id) }
    }

    /// Agents belong to no project, so a caller refused by policy is told they do not exist,
    /// as Neutron answers for objects that are not the caller's.
    func authorizeAgent(_ action: String, _ caller: AuthContext) throws {
        guard policy.enforce(action, credentials: caller.policyInput, target: [:]) else {
            throw APIError.notFound("The resource could not be found.")
        }
    }

    func storedAgent(_ id: String) async throws -> Agent {
        guard let row = try await db.first("SELECT * FROM network_agent WHERE id = ?", .text(id)) else { throw Self.agentNotFound(id) }
        return Agent(row: row)
    }

    static func agentNotFound(_ id: String) -> APIError { APIError(.notFound, "Agent \(id) could not be found.", code: "AgentNotFound") }
}
