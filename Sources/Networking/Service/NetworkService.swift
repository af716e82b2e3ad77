import Foundation
import Logging
import NimbusCore
import NimbusStore

/// Neutron's logic: networks and their segments (ML2 type drivers), subnets, subnet pools and
/// IP address management, ports and their bindings, and the rest of the resource families in
/// `NetworkService+<Family>.swift`. No HTTP here; the routes translate JSON to these calls,
/// and Nova's side calls the public methods in-process.
public final class NetworkService: Sendable {
    let db: any Database
    let policy: PolicyEngine
    let settings: Settings
    let logger: Logger
    let mechanism: any MechanismDriver = NoopMechanismDriver()
    public let notifier = NetworkNotifier()
    /// When this service started: the default segment ranges' creation time, as Neutron
    /// recreates its default ranges from the configuration at every start.
    let startedAt = Date().timeIntervalSince1970

    /// What `nimbus.conf` decides for networking.
    public struct Settings: Sendable {
        public var ml2 = ML2Settings()
        /// `[DEFAULT] base_mac`: ports' MAC addresses keep its non-zero octets and randomise the rest.
        public var baseMAC = "fa:16:3e:00:00:00"
        /// `[quotas] quota_<resource>`: each project's limit unless set for it; -1 is unlimited.
        public var quotaDefaults: [String: Int64] = NetworkQuotas.defaults
        /// How often a write that lost an allocation race (segment id, address, MAC) is retried.
        public var allocationRetries = 20
        /// `[DEFAULT] agent_down_time`: seconds without a report after which an agent is dead.
        public var agentDownTime: TimeInterval = 75
        public init() {}
    }

    public init(db: any Database, policy: PolicyEngine, settings: Settings, logger: Logger) {
        self.db = db
        self.policy = policy
        self.settings = settings
        self.logger = logger
    }

    /// Whether `caller` may do `action` on a target with these attributes; 403 in Neutron's
    /// words otherwise. Callers that must hide existence (another project's network) check
    /// visibility first and answer 404 themselves.
    func authorize(_ action: String, _ caller: AuthContext, target: [String: String] = [:]) throws {
        guard policy.enforce(action, credentials: caller.policyInput, target: Self.personalized(target, for: caller.projectID)) else {
            throw APIError(.forbidden, "(rule:\(action)) is disallowed by policy", code: "PolicyNotAuthorized")
        }
    }
}
