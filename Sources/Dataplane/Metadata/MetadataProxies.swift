import Foundation
import HostAPI
import Logging
import NimbusCore
#if canImport(Glibc)
import Glibc
#endif

/// A host's metadata proxies: one listener on 169.254.169.254:80 inside each `qrouter-`
/// namespace the host runs (Neutron's L3 agent's proxy: guests reach it through their
/// gateway), and inside each `qdhcp-` namespace of a network with an isolated subnet (Neutron's
/// DHCP agent with `enable_isolated_metadata`), all served by one `MetadataProxy` in the agent's
/// process, which finds a request's instance in the host's latest state (`InstanceLookup`).
public actor MetadataProxies: InstanceLookup {
    let makeProxy: @Sendable (any InstanceLookup) -> MetadataProxy
    let logger: Logger
    var state = HostNetworkState(host: "")
    /// Each network's listener, with an id that tells it from a later one for the same network.
    var serving: [MetadataScope: (id: String, task: Task<Void, Never>)] = [:]

    /// `makeProxy` gets the lookup the proxies use (this object).
    public init(makeProxy: @escaping @Sendable (any InstanceLookup) -> MetadataProxy, logger: Logger) {
        (self.makeProxy, self.logger) = (makeProxy, logger)
    }

    /// After `state` is applied: a proxy listens in each of its routers' namespaces and in the
    /// DHCP namespace of each of its networks with an isolated subnet, and no longer in the
    /// others. A listener that stopped (its namespace was remade) is started again.
    public func update(_ state: HostNetworkState) async {
        self.state = state
        let wanted = Set(state.dhcp.filter { $0.subnets.contains(where: \.isolated) }.map { MetadataScope.network($0.networkID) }
                         + state.routers.map { MetadataScope.router($0.id) })
        for (scope, listener) in serving where !wanted.contains(scope) {
            listener.task.cancel()
            serving[scope] = nil
        }
        let proxy = makeProxy(self)
        for scope in wanted.sorted(by: { $0.description < $1.description }) where serving[scope] == nil {
            let namespace: String
            switch scope {
            case .network(let id): namespace = DeviceNames.dhcpNamespace(network: id)
            case .router(let id): namespace = DeviceNames.routerNamespace(router: id)
            }
            do {
                let fd = try await NamespaceSocket.bind(namespace: namespace, address: MetadataAddress.ipv4, port: MetadataAddress.port)
                let logger = self.logger, id = Identifiers.hexID()
                serving[scope] = (id, Task {
                    do { try await proxy.serve(.socket(fd), scope: scope) } catch {
                        logger.warning("metadata proxy in \(namespace) stopped: \(error)")
                    }
                    self.stopped(scope, id: id)
                })
            } catch {
                logger.warning("no metadata proxy in \(namespace) yet: \(error)")
            }
        }
    }

    func stopped(_ scope: MetadataScope, id: String) {
        if serving[scope]?.id == id { serving[scope] = nil }
    }

    /// Stops every listener.
    public func stopAll() {
        for listener in serving.values { listener.task.cancel() }
        serving = [:]
    }

    public func instance(in scope: MetadataScope, address: String) async throws -> (instanceID: String, projectID: String)? {
        switch scope {
        case .network(let network):
            guard let server = state.dhcp.first(where: { $0.networkID == network }),
                  let host = server.hosts.first(where: { $0.ipAddress == address && $0.deviceOwner.hasPrefix("compute:") }),
                  !host.deviceID.isEmpty else { return nil }
            return (host.deviceID, host.projectID)
        case .router(let router):
            guard let client = state.routers.first(where: { $0.id == router })?.metadataClients.first(where: { $0.address == address }) else {
                return nil
            }
            return (client.instanceID, client.projectID)
        }
    }
}
