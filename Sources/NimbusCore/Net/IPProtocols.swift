/// The IP protocols a security group rule may name (Neutron's list), and which of them have
/// ports: shared by the API's validation and the dataplane's firewall.
public enum IPProtocols {
    public static let numbers: [String: Int] = [
        "ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1, "igmp": 2, "ip": 0, "ipip": 4,
        "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "ipv6-route": 43,
        "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
    ]
    /// Protocols whose rules may have a port range (dccp, sctp, tcp, udp, udplite).
    public static let withPorts: Set<Int> = [33, 132, 6, 17, 136]
    /// Protocols whose rules' "ports" are an ICMP type and code.
    public static let icmp: Set<Int> = [1, 58]
    /// Protocols that only exist in IPv6, so an IPv4 rule cannot name them.
    public static let ipv6Only: Set<Int> = [41, 44, 58, 59, 60, 43]

    public static func number(_ protocol: String) -> Int? { numbers[`protocol`] ?? Int(`protocol`) }
}
