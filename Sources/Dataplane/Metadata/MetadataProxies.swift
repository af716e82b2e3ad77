import Foundation
import HostAPI
import Logging
import NimbusCore
#if canImport(Glibc)
import Glibc
#endif

/// A host's metadata proxies for isolated networks (Neutron's DHCP agent with
/// `enable_isolated_metadata`): one listener on 169.254.169.254:80 inside each `qdhcp-`
/// namespace the host runs, all served by one `MetadataProxy` in the agent's process, which
/// finds a request's instance in the host's latest state (`InstanceLookup`).
public actor MetadataProxies: InstanceLookup {
    let makeProxy: @Sendable (any InstanceLookup) -> MetadataProxy
    let logger: Logger
    var state = HostNetworkState(host: "")
    /// Each network's listener, with an id that tells it from a later one for the same network.
    var serving: [String: (id: String, task: Task<Void, Never>)] = [:]

    /// `makeProxy` gets the lookup the proxies use (this object).
    public init(makeProxy: @escaping @Sendable (any InstanceLookup) -> MetadataProxy, logger: Logger) {
        (self.makeProxy, self.logger) = (makeProxy, logger)
    }

    /// After `state` is applied: a proxy listens in the DHCP namespace of each of its networks
    /// with an isolated subnet, and no longer in the others. A listener that stopped (its
    /// namespace was remade) is started again.
    public func update(_ state: HostNetworkState) async {
        self.state = state
        let wanted = Set(state.dhcp.filter { $0.subnets.contains(where: \.isolated) }.map(\.networkID))
        for (network, listener) in serving where !wanted.contains(network) {
            listener.task.cancel()
            serving[network] = nil
        }
        let proxy = makeProxy(self)
        for network in wanted.sorted() where serving[network] == nil {
            let namespace = DeviceNames.dhcpNamespace(network: network)
            do {
                let fd = try await NamespaceSocket.bind(namespace: namespace, address: MetadataAddress.ipv4, port: MetadataAddress.port)
                let logger = self.logger, id = Identifiers.hexID()
                serving[network] = (id, Task {
                    do { try await proxy.serve(.socket(fd), scope: .network(network)) } catch {
                        logger.warning("metadata proxy in \(namespace) stopped: \(error)")
                    }
                    self.stopped(network, id: id)
                })
            } catch {
                logger.warning("no metadata proxy in \(namespace) yet: \(error)")
            }
        }
    }

    func stopped(_ network: String, id: String) {
        if serving[network]?.id == id { serving[network] = nil }
    }

    /// Stops every listener.
    public func stopAll() {
        for listener in serving.values { listener.task.cancel() }
        serving = [:]
    }

    public func instance(in scope: MetadataScope, address: String) async throws -> (instanceID: String, projectID: String)? {
        guard case .network(let network) = scope, let server = state.dhcp.first(where: { $0.networkID == network }),
              let host = server.hosts.first(where: { $0.ipAddress == address && $0.deviceOwner.hasPrefix("compute:") }),
              !host.deviceID.isEmpty else { return nil }
        return (host.deviceID, host.projectID)
    }
}
