import Dataplane
import Foundation
import HostAPI
import Logging
import NimbusCore

/// A host's network dataplane as its compute agent sees it: it runs beside the compute work
/// and wires guests' ports before a guest starts or arrives.
public protocol HostNetworking: Sendable {
    /// Keeps the host's dataplane up to date until cancelled.
    func run() async
    /// Postcondition: each VIF's tap exists, is up and is on its network's bridge, with
    /// everything else the host's state asks for applied; throws otherwise.
    func plug(_ vifs: [VIF]) async throws
    /// The ports need no longer stay wired for a guest here: their taps go once the controller
    /// no longer binds them to this host.
    func unplug(_ vifs: [VIF]) async
}

/// A host's network agent (Neutron's Linux bridge and DHCP agents' role): keeps the host's
/// dataplane matching what the controller says it should be, comparing every
/// `resyncInterval` and whenever a guest needs its ports, and reports itself alive with the
/// ports it wired. A restart compares the same way, so it finds its own work, keeps what is
/// right and removes what is left over.
public actor NetworkAgent: HostNetworking {
    public let host: String
    let tunnelingIP: String
    let link: any NetworkAgentLink
    let dataplane: LinuxBridgeDataplane
    /// The metadata proxies of the host's isolated networks (nil: none, guests use config drives).
    let metadata: MetadataProxies?
    let resyncInterval: Duration
    let logger: Logger
    /// Guests' ports plugged ahead of their binding to this host (a guest arriving by migration).
    var pinned: [String: VIF] = [:]
    /// The sync running or last run: syncs run one at a time, in the order asked.
    var latest: Task<LinuxBridgeDataplane.Outcome, any Error>?
    var reportedProblems: [String] = []

    public init(host: String, tunnelingIP: String, link: any NetworkAgentLink, dataplane: LinuxBridgeDataplane, metadata: MetadataProxies? = nil,
                resyncInterval: Duration, logger: Logger) {
        (self.host, self.tunnelingIP, self.link, self.dataplane, self.metadata, self.resyncInterval, self.logger) =
            (host, tunnelingIP, link, dataplane, metadata, resyncInterval, logger)
    }

    /// Syncs until cancelled. Failures to reach the controller are retried at the next interval.
    public func run() async {
        while !Task.isCancelled {
            do { try await sync() } catch { logger.warning("network agent \(host): sync failed: \(error)") }
            guard (try? await Task.sleep(for: resyncInterval)) != nil else { return }
        }
    }

    /// Fetches the host's state, applies it and reports; returns what the dataplane did.
    @discardableResult
    public func sync() async throws -> LinuxBridgeDataplane.Outcome {
        let previous = latest
        let task = Task { () async throws -> LinuxBridgeDataplane.Outcome in
            _ = try? await previous?.value
            return try await self.syncOnce()
        }
        latest = task
        return try await task.value
    }

    func syncOnce() async throws -> LinuxBridgeDataplane.Outcome {
        let state = try await link.networkState(host: host)
        for port in state.ports { pinned[port.id] = nil }  // bound here now: the state carries them
        let outcome = try await dataplane.apply(state, pinned: Array(pinned.values))
        await metadata?.update(state)
        if outcome.problems != reportedProblems {
            for problem in outcome.problems { logger.warning("network agent \(host): \(problem)") }
            reportedProblems = outcome.problems
        }
        try await link.reportNetwork(NetworkAgentReport(host: host, tunnelingIP: tunnelingIP, wiredPorts: outcome.wiredPorts))
        return outcome
    }

    public func plug(_ vifs: [VIF]) async throws {
        guard !vifs.isEmpty else { return }
        for vif in vifs { pinned[vif.portID] = vif }
        let outcome = try await sync()
        // A guest never starts on a port its security groups do not filter.
        let failed = outcome.problems.filter { problem in
            problem.hasPrefix("security groups") || vifs.contains { problem.contains($0.portID) || problem.contains($0.networkID) }
        }
        guard failed.isEmpty else { throw DataplaneError("cannot plug \(vifs.map(\.portID).joined(separator: ", ")): \(failed.joined(separator: "; "))") }
    }

    public func unplug(_ vifs: [VIF]) async {
        for vif in vifs { pinned[vif.portID] = nil }
    }
}
