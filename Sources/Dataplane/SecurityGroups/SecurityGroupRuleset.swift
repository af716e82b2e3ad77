import HostAPI

/// Compiles a host's ports and the security groups they use into nftables text: pure, no I/O.
///
/// Everything lives in two tables Nimbus owns, both named `nimbus-sg`:
/// - `bridge nimbus-sg`: the base chain `forward` (priority -300) sends a frame from a filtered
///   port to its `from-<tap>` chain (anti-spoofing, then the port's number into the high half of
///   the packet mark) and a frame to one to its `to-<tap>` chain (its number into the low half).
///   The bridge family has no conntrack on this kernel, so nothing stateful happens here.
/// - `inet nimbus-sg`: reached through br_netfilter, it sees only the bridge, never the tap, so
///   it dispatches on the mark: `egress-<tap>` of the sending port, then `ingress-<tap>` of the
///   receiving one (both, when both are filtered ports on this host). Each ends in drop; an
///   allowed packet returns. `prerouting` puts each bridge's traffic in its own conntrack zone.
///
/// Ports with `portSecurityEnabled == false` get no chains and no number: nothing stops them,
/// though a filtered port they talk to still applies its own rules.
public enum SecurityGroupRuleset {
    public static let table = "nimbus-sg"

    /// nft text, the numbering it was compiled with (to keep for the next update), and the
    /// remote-group sets it defines or refreshes.
    public struct Compiled: Sendable, Equatable {
        public var text: String
        public var numbering: FirewallNumbering
        public var sets: Set<String> = []
    }

    public static func fromChain(tap: String) -> String { "from-\(tap)" }
    public static func toChain(tap: String) -> String { "to-\(tap)" }
    public static func egressChain(tap: String) -> String { "egress-\(tap)" }
    public static func ingressChain(tap: String) -> String { "ingress-\(tap)" }

    /// The whole ruleset: loaded with `nft -f`, it replaces both tables in one transaction (each
    /// is created empty if missing, deleted, and defined anew) and touches nothing else. Ports
    /// and bridges keep their numbers from `numbering`; new ones get the lowest free.
    public static func ruleset(ports: [HostNetworkState.Port], securityGroups: [HostNetworkState.SecurityGroup],
                               numbering previous: FirewallNumbering = FirewallNumbering()) throws -> Compiled {
        let groups = try groupsByID(securityGroups)
        let filtered = ports.filter(\.portSecurityEnabled)
        for port in ports { try NFTText.checkIdentifier(port.id, "port id"); try NFTText.checkIdentifier(port.networkID, "network id") }
        let numbering = try previous.renumbered(taps: filtered.map { DeviceNames.tap(port: $0.id) },
                                                bridges: ports.map { DeviceNames.bridge(network: $0.networkID) })
        let remoteSets = RemoteSetCache()
        let filters = try filtered.map { try PortFilter(port: $0, groups: groups, number: numbering.ports[DeviceNames.tap(port: $0.id)]!,
                                                        remoteSetCache: remoteSets) }
            .sorted { $0.tap < $1.tap }
        guard Set(filters.map(\.tap)).count == filters.count else {
            throw SecurityGroupFirewallError.invalidInput("two ports share a tap name (the first 11 characters of their ids)")
        }
        var sets: [String: RemoteGroupSet] = [:]
        for filter in filters { for set in filter.remoteSets { sets[set.name] = set } }

        var bridge = Block("table bridge \(table)")
        bridge.add(set: "filtered-ports", type: "ifname", elements: filters.map { "\"\($0.tap)\"" })
        bridge.add(map: "from-port", type: "type ifname : verdict", elements: filters.map { "\"\($0.tap)\" : jump \(fromChain(tap: $0.tap))" })
        bridge.add(map: "to-port", type: "type ifname : verdict", elements: filters.map { "\"\($0.tap)\" : jump \(toChain(tap: $0.tap))" })
        bridge.add(chain: "forward", hook: "type filter hook forward priority -300; policy accept;", rules: bridgeForward)
        for filter in filters {
            bridge.add(chain: fromChain(tap: filter.tap), rules: filter.fromRules)
            bridge.add(chain: toChain(tap: filter.tap), rules: filter.toRules)
        }

        var inet = Block("table inet \(table)")
        inet.add(map: "zones", type: "typeof iifname : ct zone",
                 elements: numbering.zones.sorted { $0.key < $1.key }.map { "\"\($0.key)\" : \($0.value)" })
        inet.add(map: "egress-dispatch", type: "type mark : verdict",
                 elements: filters.map { "\(NFTText.hex(numbering.ports[$0.tap]! << 16)) : jump \(egressChain(tap: $0.tap))" })
        inet.add(map: "ingress-dispatch", type: "type mark : verdict",
                 elements: filters.map { "\(NFTText.hex(numbering.ports[$0.tap]!)) : jump \(ingressChain(tap: $0.tap))" })
        for set in sets.values.sorted(by: { $0.name < $1.name }) {
            inet.add(set: set.name, type: set.type, flags: "interval", elements: set.elements ?? [])
        }
        inet.add(chain: "prerouting", hook: "type filter hook prerouting priority raw; policy accept;", rules: inetPrerouting)
        inet.add(chain: "forward", hook: "type filter hook forward priority filter; policy accept;", rules: inetForward)
        for filter in filters {
            inet.add(chain: egressChain(tap: filter.tap), rules: filter.egressRules)
            inet.add(chain: ingressChain(tap: filter.tap), rules: filter.ingressRules)
        }
        let text = replace("bridge", bridge) + replace("inet", inet)
        return Compiled(text: text, numbering: numbering, sets: Set(sets.keys))
    }

    /// One port brought up to date alone, in one transaction: its four chains are flushed and
    /// refilled (created if new), its dispatch entries and its bridge's zone added, and the sets
    /// of the remote groups its rules name refreshed (those in `securityGroups`; the others are
    /// only created if missing). Other ports' chains are not touched. Needs
    /// the tables `ruleset` made. A port without port security has its chains removed instead.
    public static func portUpdate(_ port: HostNetworkState.Port, securityGroups: [HostNetworkState.SecurityGroup],
                                  numbering previous: FirewallNumbering) throws -> Compiled {
        let tap = DeviceNames.tap(port: port.id)
        guard port.portSecurityEnabled else {
            try NFTText.checkIdentifier(port.id, "port id")
            return portRemoval(tap: tap, numbering: previous)
        }
        let numbering = try previous.adding(tap: tap, bridge: DeviceNames.bridge(network: port.networkID))
        let number = numbering.ports[tap]!
        let filter = try PortFilter(port: port, groups: try groupsByID(securityGroups), number: number)
        var lines: [String] = []
        for (family, chain, rules) in [("bridge", fromChain(tap: tap), filter.fromRules), ("bridge", toChain(tap: tap), filter.toRules),
                                       ("inet", egressChain(tap: tap), filter.egressRules), ("inet", ingressChain(tap: tap), filter.ingressRules)] {
            lines += ["add chain \(family) \(table) \(chain)", "flush chain \(family) \(table) \(chain)"]
            lines += rules.map { "add rule \(family) \(table) \(chain) \($0)" }
        }
        for set in filter.remoteSets { lines += setRefresh(set) }
        lines += [
            "add element bridge \(table) filtered-ports { \"\(tap)\" }",
            "add element bridge \(table) from-port { \"\(tap)\" : jump \(fromChain(tap: tap)) }",
            "add element bridge \(table) to-port { \"\(tap)\" : jump \(toChain(tap: tap)) }",
            "add element inet \(table) zones { \"\(filter.bridge)\" : \(numbering.zones[filter.bridge]!) }",
            "add element inet \(table) egress-dispatch { \(NFTText.hex(number << 16)) : jump \(egressChain(tap: tap)) }",
            "add element inet \(table) ingress-dispatch { \(NFTText.hex(number)) : jump \(ingressChain(tap: tap)) }",
        ]
        return Compiled(text: lines.joined(separator: "\n") + "\n", numbering: numbering, sets: Set(filter.remoteSets.map(\.name)))
    }

    /// Removes one port's dispatch entries and chains in one transaction; empty text when the
    /// port has no number (nothing of it is loaded).
    public static func portRemoval(tap: String, numbering previous: FirewallNumbering) -> Compiled {
        guard let number = previous.ports[tap] else { return Compiled(text: "", numbering: previous) }
        var numbering = previous
        numbering.ports[tap] = nil
        let lines = [
            "delete element bridge \(table) filtered-ports { \"\(tap)\" }",
            "delete element bridge \(table) from-port { \"\(tap)\" }",
            "delete element bridge \(table) to-port { \"\(tap)\" }",
            "delete chain bridge \(table) \(fromChain(tap: tap))",
            "delete chain bridge \(table) \(toChain(tap: tap))",
            "delete element inet \(table) egress-dispatch { \(NFTText.hex(number << 16)) }",
            "delete element inet \(table) ingress-dispatch { \(NFTText.hex(number)) }",
            "delete chain inet \(table) \(egressChain(tap: tap))",
            "delete chain inet \(table) \(ingressChain(tap: tap))",
        ]
        return Compiled(text: lines.joined(separator: "\n") + "\n", numbering: numbering)
    }

    /// Rewrites the member sets of `group` that are among `loadedSets`, in one transaction; empty
    /// text when no loaded rule names the group.
    public static func remoteGroupUpdate(_ group: HostNetworkState.SecurityGroup, loadedSets: Set<String>) throws -> String {
        var lines: [String] = []
        for version in [4, 6] where loadedSets.contains(RemoteGroupSet.name(groupID: group.id, version: version)) {
            lines += setRefresh(try RemoteGroupSet(groupID: group.id, version: version, addresses: group.memberAddresses))
        }
        return lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
    }

    /// Deletes both tables (and so everything Nimbus loaded); loads without error when they are absent.
    public static let removal = replace("bridge", nil) + replace("inet", nil)

    // MARK: - Fixed parts

    static let bridgeForward = [
        "iifname != @filtered-ports oifname != @filtered-ports accept",
        "meta mark set 0x00000000",
        "iifname vmap @from-port",
        "oifname vmap @to-port",
    ]
    static let inetPrerouting = ["ct zone set iifname map @zones"]
    static let inetForward = [
        "meta mark and 0xffff0000 vmap @egress-dispatch",
        "meta mark and 0x0000ffff vmap @ingress-dispatch",
    ]

    // MARK: - Text

    private static func groupsByID(_ groups: [HostNetworkState.SecurityGroup]) throws -> [String: HostNetworkState.SecurityGroup] {
        var byID: [String: HostNetworkState.SecurityGroup] = [:]
        for group in groups {
            try NFTText.checkIdentifier(group.id, "security group id")
            byID[group.id] = group
        }
        return byID
    }

    /// Creates the set if missing; replaces its elements when they are known.
    private static func setRefresh(_ set: RemoteGroupSet) -> [String] {
        let create = "add set inet \(table) \(set.name) { type \(set.type); flags interval; }"
        guard let elements = set.elements else { return [create] }
        return [create, "flush set inet \(table) \(set.name)"]
            + (elements.isEmpty ? [] : ["add element inet \(table) \(set.name) { \(elements.joined(separator: ", ")) }"])
    }

    /// `add table` then `delete table` (so the delete never fails), then the new definition.
    private static func replace(_ family: String, _ block: Block?) -> String {
        "add table \(family) \(table)\ndelete table \(family) \(table)\n" + (block?.text ?? "")
    }

    private struct Block {
        var lines: [String]
        init(_ header: String) { lines = [header + " {"] }

        mutating func add(set name: String, type: String, flags: String? = nil, elements: [String]) {
            lines.append("\tset \(name) {")
            lines.append("\t\ttype \(type)")
            if let flags { lines.append("\t\tflags \(flags)") }
            if !elements.isEmpty { lines.append("\t\telements = { \(elements.joined(separator: ", ")) }") }
            lines.append("\t}")
        }

        /// `type` is the whole declaration: `type KEY : VALUE` or `typeof EXPR : EXPR`.
        mutating func add(map name: String, type: String, elements: [String]) {
            lines.append("\tmap \(name) {")
            lines.append("\t\t\(type)")
            if !elements.isEmpty { lines.append("\t\telements = { \(elements.joined(separator: ", ")) }") }
            lines.append("\t}")
        }

        mutating func add(chain name: String, hook: String? = nil, rules: [String]) {
            lines.append("\tchain \(name) {")
            if let hook { lines.append("\t\t\(hook)") }
            lines += rules.map { "\t\t" + $0 }
            lines.append("\t}")
        }

        var text: String { (lines + ["}"]).joined(separator: "\n") + "\n" }
    }
}
