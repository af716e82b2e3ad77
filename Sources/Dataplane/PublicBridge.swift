import Foundation
import NimbusCore

/// The host end of `nimbus up`'s default `public` network, DevStack's `br-ex`: a bridge that
/// holds the public subnet's gateway address, so that the host reaches the routers' gateways
/// and floating IPs on it, and a veth pair joining it to the dataplane, whose end
/// `physicalInterface` is the `public` physical network's interface (`physical_interface_mappings`).
///
/// With `namespace`, the bridge and its address live in that network namespace instead of the
/// host's own, so nothing in the host's routing changes: the public side is then reached with
/// `ip netns exec <namespace> …` (tests on shared machines use this).
public struct PublicBridge: Sendable {
    public static let bridge = "br-ex"
    /// The veth end the dataplane puts on the public network's `brq…` bridge.
    public static let physicalInterface = "phy-br-ex"
    /// Its peer, a port of `br-ex`.
    static let bridgePort = "int-br-ex"
    /// The physical network name the default `public` network is on, as in DevStack.
    public static let physicalNetwork = "public"

    /// The gateway address with its prefix, e.g. `172.24.4.1/24`.
    public var gatewayCIDR: String
    /// The network namespace of `br-ex`; nil: the caller's.
    public var namespace: String?

    public init(gatewayCIDR: String, namespace: String?) {
        self.gatewayCIDR = gatewayCIDR
        self.namespace = namespace
    }

    /// Postcondition: `namespace` exists (made when missing, its `lo` up); `br-ex` exists and is
    /// up in it, holding `gatewayCIDR`; `phy-br-ex` is up in the caller's namespace and its peer
    /// is up on `br-ex`. What already exists is kept as it is, so calling it again on a running
    /// host interrupts nothing.
    public func ensure() async throws {
        if let namespace, !(try await IPRoute.namespaces()).contains(namespace) {
            try await HostProcess.check("ip", ["netns", "add", namespace])
            try await IPRoute.ip(["link", "set", "lo", "up"], netns: namespace)
        }
        let bridged = Set(try await IPRoute.links(netns: namespace).map(\.ifname))
        if !bridged.contains(Self.bridge) {
            try await IPRoute.ip(["link", "add", Self.bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0"], netns: namespace)
        }
        try await IPRoute.ip(["link", "set", Self.bridge, "up"], netns: namespace)
        if !(try await IPRoute.addresses(Self.bridge, netns: namespace)).contains(gatewayCIDR) {
            try await IPRoute.ip(["addr", "add", gatewayCIDR, "dev", Self.bridge], netns: namespace)
        }
        let local = Set(try await IPRoute.links().map(\.ifname))
        if !local.contains(Self.physicalInterface) {
            // A veth pair dies with either end's namespace, so one end alone is never left here.
            try await IPRoute.ip(["link", "add", Self.physicalInterface, "type", "veth", "peer", "name", Self.bridgePort])
            if let namespace { try await IPRoute.ip(["link", "set", Self.bridgePort, "netns", namespace]) }
        }
        try await IPRoute.ip(["link", "set", Self.bridgePort, "master", Self.bridge, "up"], netns: namespace)
        try await IPRoute.ip(["link", "set", Self.physicalInterface, "up"])
    }
}
