import Foundation
import HostAPI
import NimbusCore

/// The agent link for agents running inside the control plane's process (`nimbus up
/// --fake-hosts N`, tests): the same five calls a remote agent makes over HTTP, as direct
/// calls, still through the durable outbox.
public struct LocalAgentLink: AgentLink {
    let conductor: Conductor

    public init(conductor: Conductor) { self.conductor = conductor }

    public func register(_ registration: AgentRegistration) async throws { try await conductor.register(registration) }
    public func heartbeat(host: String) async throws { try await conductor.heartbeat(host: host) }
    public func fetch(host: String, after: Int64, wait: Duration) async throws -> [AgentMessage] {
        try await conductor.fetch(host: host, after: after, wait: wait)
    }
    public func report(_ report: AgentReport) async throws { try await conductor.apply(report) }
    public func syncPowerStates(_ report: PowerStateReport) async throws { try await conductor.syncPowerStates(report) }
}
