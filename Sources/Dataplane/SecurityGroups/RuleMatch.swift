import HostAPI
import NimbusCore

/// What one security group rule matches, as an nft expression for the inet family: the IP
/// version, the remote side (a prefix, or the remote group's set), the protocol, and its ports
/// or ICMP type and code. The remote side is the source for ingress and the destination for
/// egress; ports are always the destination's, as in Neutron.
struct RuleMatch {
    enum Direction: String { case ingress, egress }

    struct RemoteGroup: Equatable {
        let groupID: String
        let version: Int
        var name: String { RemoteGroupSet.name(groupID: groupID, version: version) }
    }

    let direction: Direction
    let text: String
    let remoteGroup: RemoteGroup?

    init(_ rule: HostNetworkState.Rule) throws {
        func invalid(_ reason: String) -> SecurityGroupFirewallError { .invalidInput("security group rule \(rule.id): \(reason)") }
        guard let direction = Direction(rawValue: rule.direction) else { throw invalid("direction \(rule.direction.debugDescription)") }
        let version: Int
        switch rule.ethertype {
        case "IPv4": version = 4
        case "IPv6": version = 6
        default: throw invalid("ethertype \(rule.ethertype.debugDescription)")
        }
        let ip = version == 4 ? "ip" : "ip6"
        let remoteField = direction == .ingress ? "saddr" : "daddr"
        var parts = ["meta nfproto ipv\(version)"]
        var remoteGroup: RemoteGroup?

        if let prefix = rule.remoteIPPrefix {
            guard let network = IPNetwork(prefix), network.version == version else {
                throw invalid("remote_ip_prefix \(prefix.debugDescription) is not an IPv\(version) prefix")
            }
            // A prefix of the whole family is no constraint.
            if network.prefixLength > 0 { parts.append("\(ip) \(remoteField) \(NFTText.element(network))") }
        }
        if let groupID = rule.remoteGroupID {
            try NFTText.checkIdentifier(groupID, "remote group id")
            let remote = RemoteGroup(groupID: groupID, version: version)
            parts.append("\(ip) \(remoteField) @\(remote.name)")
            remoteGroup = remote
        }
        parts += try Self.protocolMatch(rule, version: version, invalid: invalid)
        (self.direction, self.remoteGroup) = (direction, remoteGroup)
        text = parts.joined(separator: " ")
    }

    /// The protocol part: nothing for any protocol (or 0, which iptables also reads as any),
    /// `tcp dport …`-style for protocols with ports, type and code for ICMP.
    private static func protocolMatch(_ rule: HostNetworkState.Rule, version: Int,
                                      invalid: (String) -> SecurityGroupFirewallError) throws -> [String] {
        guard let name = rule.protocol?.lowercased(), name != "any" else {
            if rule.portRangeMin != nil || rule.portRangeMax != nil { throw invalid("a port range needs a protocol") }
            return []
        }
        guard var number = IPProtocols.number(name), (0...255).contains(number) else { throw invalid("protocol \(name.debugDescription)") }
        // An IPv6 rule's ICMP is ICMPv6, whichever way it was written (as Neutron's API stores it).
        if version == 6 && number == 1 { number = 58 }
        if number == 0 { return [] }
        let (low, high) = (rule.portRangeMin, rule.portRangeMax)
        switch number {
        case 1 where version == 4, 58 where version == 6:
            let (keyword, l4) = number == 1 ? ("icmp", "icmp") : ("icmpv6", "ipv6-icmp")
            var parts = ["meta l4proto \(l4)"]
            if let type = low {
                guard (0...255).contains(type) else { throw invalid("ICMP type \(type)") }
                parts.append("\(keyword) type \(type)")
                if let code = high {
                    guard (0...255).contains(code) else { throw invalid("ICMP code \(code)") }
                    parts.append("\(keyword) code \(code)")
                }
            } else if high != nil {
                throw invalid("an ICMP code needs an ICMP type")
            }
            return parts
        case let ported where IPProtocols.withPorts.contains(ported):
            guard let low else {
                if high != nil { throw invalid("port_range_max without port_range_min") }
                return ["meta l4proto \(number)"]
            }
            let top = high ?? low
            guard (1...65535).contains(low), (low...65535).contains(top) else { throw invalid("port range \(low)-\(top)") }
            let range = low == top ? "\(low)" : "\(low)-\(top)"
            switch number {
            case 6: return ["tcp dport \(range)"]
            case 17: return ["udp dport \(range)"]
            default: return ["meta l4proto \(number) th dport \(range)"]
            }
        default:
            if low != nil || high != nil { throw invalid("protocol \(name) has no ports") }
            return ["meta l4proto \(number)"]
        }
    }
}
