import HostAgent
import Compute
import ServiceLifecycle

/// In-process compute hosts with the fake driver (`nimbus up --fake-hosts N`, tests).
public struct FakeHostFleet: Service {
    public let agents: [ComputeAgent]

    /// Until the server shuts down.
    public func run() async throws {
        await cancelWhenGracefulShutdown { await runAgents() }
    }

    /// Until cancelled.
    public func runAgents() async {
        await withTaskGroup(of: Void.self) { group in
            for agent in agents { group.addTask { await agent.run() } }
            await group.waitForAll()
        }
    }
}
