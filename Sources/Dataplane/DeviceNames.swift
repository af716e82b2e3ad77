import Foundation

/// The names of what the dataplane creates, as Neutron's Linux bridge, DHCP and L3 agents name
/// theirs, so an operator's habits (`ip netns`, `brctl show`, `ip link`) carry over and a
/// restarted agent recognises its own work by name alone. Interface names are at most 15
/// characters (the kernel's limit): a prefix and the first characters of the resource's id.
public enum DeviceNames {
    /// The bridge of a network on a host: `brq` + 11 characters of the network's id.
    public static func bridge(network: String) -> String { "brq" + network.prefix(11) }
    /// A port's tap (or the bridge-side end of a namespace's veth): `tap` + 11 of the port's id.
    public static func tap(port: String) -> String { "tap" + port.prefix(11) }
    /// A `vxlan` network's VXLAN interface: `vxlan-` and its VNI.
    public static func vxlan(vni: Int) -> String { "vxlan-\(vni)" }
    /// The DHCP namespace of a network.
    public static func dhcpNamespace(network: String) -> String { "qdhcp-" + network }
    /// The namespace end of a DHCP port's veth: `ns-` + 11 of the port's id.
    public static func dhcpInterface(port: String) -> String { "ns-" + port.prefix(11) }
    /// A router's namespace.
    public static func routerNamespace(router: String) -> String { "qrouter-" + router }
    /// A router's interface on one of its subnets (`network:router_interface` port).
    public static func routerInterface(port: String) -> String { "qr-" + port.prefix(11) }
    /// A router's interface on its external network (`network:router_gateway` port).
    public static func routerGateway(port: String) -> String { "qg-" + port.prefix(11) }

    /// Prefixes of every interface and namespace the dataplane owns: a name with one of these
    /// that no current state accounts for is a leftover.
    public static let interfacePrefixes = ["brq", "tap", "vxlan-", "ns-", "qr-", "qg-"]
    public static let namespacePrefixes = ["qdhcp-", "qrouter-"]
}
