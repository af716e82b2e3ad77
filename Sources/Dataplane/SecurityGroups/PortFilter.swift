import Foundation
import HostAPI
import NimbusCore

/// One filtered port's four chains, as nft rule texts: the bridge family's `from-<tap>` (what
/// the port may send at all: its MACs, its addresses, no DHCP server, no router advertisements;
/// then the sending half of the mark) and `to-<tap>` (the receiving half of the mark), and the
/// inet family's `egress-<tap>` and `ingress-<tap>` (the security groups' rules, stateful).
struct PortFilter: Equatable {
    let tap: String
    let bridge: String
    let fromRules: [String]
    let toRules: [String]
    let egressRules: [String]
    let ingressRules: [String]
    /// The remote-group sets the port's rules match against.
    let remoteSets: [RemoteGroupSet]

    /// `remoteSetCache`: the remote-group sets already built for other ports of the same ruleset.
    init(port: HostNetworkState.Port, groups: [String: HostNetworkState.SecurityGroup], number: Int,
         remoteSetCache: RemoteSetCache = RemoteSetCache()) throws {
        try NFTText.checkIdentifier(port.id, "port id")
        try NFTText.checkIdentifier(port.networkID, "network id")
        tap = DeviceNames.tap(port: port.id)
        bridge = DeviceNames.bridge(network: port.networkID)
        let addresses = try PortAddresses(port)
        fromRules = [String(format: "meta mark set 0x%08x", number << 16)] + addresses.antiSpoofingRules
        toRules = [String(format: "meta mark set meta mark or 0x%08x", number)]

        var egress = Self.fixedEgress, ingress = Self.fixedIngress
        var seen: Set<String> = []
        var sets: [String: RemoteGroupSet] = [:]
        for groupID in port.securityGroupIDs {
            try NFTText.checkIdentifier(groupID, "security group id")
            guard let group = groups[groupID] else {
                throw SecurityGroupFirewallError.invalidInput("port \(port.id) uses security group \(groupID), which the state does not include")
            }
            for rule in group.rules {
                let match = try RuleMatch(rule)
                if let remote = match.remoteGroup {
                    sets[remote.name] = try remoteSetCache.set(groupID: remote.groupID, version: remote.version,
                                                               addresses: groups[remote.groupID]?.memberAddresses)
                }
                // Groups often repeat a rule (every default group allows the same egress): one copy.
                guard seen.insert("\(match.direction) \(match.text)").inserted else { continue }
                let line = "\(match.text) return comment \(NFTText.quoted("rule \(rule.id)"))"
                if match.direction == .ingress { ingress.append(line) } else { egress.append(line) }
            }
        }
        egressRules = egress + ["drop"]
        ingressRules = ingress + ["drop"]
        remoteSets = sets.values.sorted { $0.name < $1.name }
    }

    /// What a port may always send, after the bridge family checked its source (Neutron's fixed
    /// egress rules), then the state of connections: replies pass, invalid packets do not.
    static let fixedEgress = [
        "meta nfproto ipv4 udp sport 68 udp dport 67 return comment \"DHCP client\"",
        "meta nfproto ipv6 meta l4proto ipv6-icmp return comment \"ICMPv6 (router advertisements are dropped earlier)\"",
        "meta nfproto ipv6 udp sport 546 udp dport 547 return comment \"DHCPv6 client\"",
        "ct state established,related return",
        "ct state invalid drop",
    ]

    /// What a port may always receive: DHCP replies, multicast listener queries, router
    /// advertisements and neighbour discovery (Neutron's fixed ingress rules), then replies.
    static let fixedIngress = [
        "meta nfproto ipv4 udp sport 67 udp dport 68 return comment \"DHCP server\"",
        "meta nfproto ipv6 udp sport 547 udp dport 546 return comment \"DHCPv6 server\"",
        "icmpv6 type { mld-listener-query, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } return",
        "ct state established,related return",
        "ct state invalid drop",
    ]
}

/// The sources a port may send from: (MAC, address or prefix) pairs from its fixed IPs and
/// allowed address pairs, the IPv6 link-local address of each of its MACs, and, for a port with
/// no fixed IP, any address from its own MAC (as Neutron).
struct PortAddresses {
    let macs: [String]
    let ipv4: [(mac: String, network: IPNetwork)]
    let ipv6: [(mac: String, network: IPNetwork)]

    init(_ port: HostNetworkState.Port) throws {
        let mac = try NFTText.mac(port.macAddress)
        var pairs: [(String, IPNetwork)] = []
        for fixed in port.fixedIPs {
            guard let address = IPAddress(fixed.address) else {
                throw SecurityGroupFirewallError.invalidInput("port \(port.id) has fixed IP \(fixed.address), not an address")
            }
            pairs.append((mac, IPNetwork(address: address, prefixLength: address.bits)))
        }
        for pair in port.allowedAddressPairs {
            guard let network = IPNetwork(pair.ipAddress) else {
                throw SecurityGroupFirewallError.invalidInput("port \(port.id) has allowed address pair \(pair.ipAddress), not an address or CIDR")
            }
            pairs.append((try pair.macAddress.map(NFTText.mac) ?? mac, network))
        }
        if port.fixedIPs.isEmpty {
            pairs += [(mac, IPNetwork(address: IPAddress(version: 4, value: 0), prefixLength: 0)),
                      (mac, IPNetwork(address: IPAddress(version: 6, value: 0), prefixLength: 0))]
        }
        var macs = [mac]
        for (pairMAC, _) in pairs where !macs.contains(pairMAC) { macs.append(pairMAC) }
        for each in macs { pairs.append((each, IPNetwork(address: Self.linkLocal(mac: each), prefixLength: 128))) }
        self.macs = macs
        ipv4 = Self.withoutOverlaps(pairs.filter { $0.1.version == 4 })
        ipv6 = Self.withoutOverlaps(pairs.filter { $0.1.version == 6 })
    }

    /// The bridge family's checks of what the port sends, in order; anything failing one is dropped.
    var antiSpoofingRules: [String] {
        // ARP probes (RFC 5227) come from 0.0.0.0.
        let unspecified = IPNetwork(address: IPAddress(version: 4, value: 0), prefixLength: 32)
        let arpSources = Self.withoutOverlaps(ipv4.map { ($0.mac, $0.network) } + macs.map { ($0, unspecified) })
            .map { "\($0.mac) . \(NFTText.element($0.network))" }
        let ipv4Check = ipv4.isEmpty ? "ether type ip drop"
            : "ip saddr . ether saddr != { \(ipv4.map { "\(NFTText.element($0.network)) . \($0.mac)" }.joined(separator: ", ")) } drop"
        return [
            "ether saddr != { \(macs.joined(separator: ", ")) } drop",
            "arp saddr ether . arp saddr ip != { \(arpSources.joined(separator: ", ")) } drop",
            "ether type ip udp sport 67 udp dport 68 drop comment \"no DHCP server\"",
            "ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 return comment \"DHCP discovery\"",
            ipv4Check,
            "icmpv6 type nd-router-advert drop comment \"no router advertisements\"",
            "ether type ip6 udp sport 547 udp dport 546 drop comment \"no DHCPv6 server\"",
            "ip6 saddr :: ip6 daddr ff02::/16 icmpv6 type { mld-listener-report, nd-neighbor-solicit, mld2-listener-report } return comment \"duplicate address detection\"",
            "ip6 saddr . ether saddr != { \(ipv6.map { "\(NFTText.element($0.network)) . \($0.mac)" }.joined(separator: ", ")) } drop",
            "ether type != { arp, ip, ip6 } drop",
        ]
    }

    /// fe80::/64 with the modified EUI-64 interface identifier of `mac` (RFC 4291).
    static func linkLocal(mac: String) -> IPAddress {
        let bytes = mac.split(separator: ":").map { UInt8($0, radix: 16) ?? 0 }
        let identifier = [bytes[0] ^ 0x02, bytes[1], bytes[2], 0xff, 0xfe, bytes[3], bytes[4], bytes[5]]
        let low = identifier.reduce(UInt128(0)) { $0 << 8 | UInt128($1) }
        return IPAddress(version: 6, value: UInt128(0xfe80) << 112 | low)
    }

    /// Drops each pair another pair of the same MAC covers: nft refuses overlapping intervals in
    /// one set, and the covered pair allows nothing the other does not.
    static func withoutOverlaps(_ pairs: [(String, IPNetwork)]) -> [(mac: String, network: IPNetwork)] {
        var kept: [(mac: String, network: IPNetwork)] = []
        for (index, pair) in pairs.enumerated() {
            let covered = pairs.enumerated().contains { other in
                other.element.0 == pair.0 && other.element.1.contains(pair.1)
                    && (other.element.1 != pair.1 || other.offset < index)
            }
            if !covered { kept.append((pair.0, pair.1)) }
        }
        return kept
    }
}

/// Remote-group sets built once for a whole ruleset: a set depends only on its group's members
/// (the same for every port of one ruleset), and a thousand ports of a group that is its own
/// remote group would otherwise each parse and sort the thousand member addresses again (the
/// compile took 4 s of a 1,000-port agent's restart here, and 0.4 s once the sets were shared).
final class RemoteSetCache {
    private var built: [String: RemoteGroupSet] = [:]

    func set(groupID: String, version: Int, addresses: [String]?) throws -> RemoteGroupSet {
        let name = RemoteGroupSet.name(groupID: groupID, version: version)
        if let set = built[name] { return set }
        let set = try RemoteGroupSet(groupID: groupID, version: version, addresses: addresses)
        built[name] = set
        return set
    }
}

/// A remote group's member addresses of one IP version: the named set `sg-<group>-v4|v6` in the
/// inet table, which rules naming the group match, so a membership change rewrites only it.
struct RemoteGroupSet: Equatable {
    let groupID: String
    let version: Int
    /// nil when the state handed in did not include the group: its members are unknown here.
    let elements: [String]?

    var name: String { Self.name(groupID: groupID, version: version) }
    var type: String { version == 4 ? "ipv4_addr" : "ipv6_addr" }

    static func name(groupID: String, version: Int) -> String { "sg-\(groupID)-v\(version)" }

    init(groupID: String, version: Int, addresses: [String]?) throws {
        try NFTText.checkIdentifier(groupID, "security group id")
        (self.groupID, self.version) = (groupID, version)
        guard let addresses else {
            elements = nil
            return
        }
        var networks: [IPNetwork] = []
        for address in addresses {
            guard let network = IPNetwork(address) else {
                throw SecurityGroupFirewallError.invalidInput("security group \(groupID) has member address \(address), not an address or CIDR")
            }
            if network.version == version { networks.append(network) }
        }
        let kept = PortAddresses.withoutOverlaps(networks.map { ("", $0) }).map(\.network)
        elements = kept.sorted { ($0.address, $0.prefixLength) < ($1.address, $1.prefixLength) }.map(NFTText.element)
    }
}

/// Text that goes into the ruleset, checked first: every value written there comes from the
/// controller's state, and none may end a token or a statement early.
enum NFTText {
    static func checkIdentifier(_ value: String, _ what: String) throws {
        guard !value.isEmpty, value.count <= 64,
              value.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) && $0.isASCII || $0 == "-" || $0 == "_" })
        else { throw SecurityGroupFirewallError.invalidInput("\(what) \(value.debugDescription) is not a plain identifier") }
    }

    /// A MAC address in nft's form (lower case, colons); throws for anything else.
    static func mac(_ value: String) throws -> String {
        let octets = value.lowercased().split(separator: ":", omittingEmptySubsequences: false)
        guard octets.count == 6, octets.allSatisfy({ $0.count == 2 && UInt8($0, radix: 16) != nil }) else {
            throw SecurityGroupFirewallError.invalidInput("\(value.debugDescription) is not a MAC address")
        }
        return octets.joined(separator: ":")
    }

    /// An address alone for a host, else the CIDR (host bits already cleared by `IPNetwork`).
    static func element(_ network: IPNetwork) -> String {
        network.prefixLength == network.address.bits ? network.address.description : network.description
    }

    static func quoted(_ text: String) -> String { "\"" + text.filter { $0 != "\"" && $0 != "\\" && !$0.isNewline } + "\"" }

    static func hex(_ value: Int) -> String { String(format: "0x%08x", value) }
}
