import HostAgent
import Compute
import ServiceLifecycle

/// The compute hosts that run inside this process: `nimbus up`'s own host and its fake hosts
/// (`--fake-hosts N`, tests).
public struct InProcessHosts: Service {
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
