import Logging
import Networking
import ServiceLifecycle

/// The networking agents whose work the controller process does itself (DHCP, L3, metadata),
/// reported at startup and every `report_interval` as Neutron's agents report their state,
/// so `openstack network agent list` shows them alive while the controller runs.
public struct ControllerNetworkAgents: Service {
    let network: NetworkService
    let host: String
    let types: [AgentType]
    let interval: Duration
    let logger: Logger

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                for type in types {
                    do { try await network.reportAgentState(host: host, type: type) } catch {
                        logger.warning("cannot record the \(type.rawValue) of \(host): \(error)")
                    }
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
