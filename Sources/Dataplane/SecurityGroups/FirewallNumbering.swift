/// The small numbers the firewall's ruleset gives what it filters: each filtered port a number
/// (1…65535) that the bridge family writes into packets' mark — the sending port's in the high
/// 16 bits, the receiving port's in the low 16 — and each bridge a conntrack zone (1…65535),
/// so two networks with the same addresses never share a connection's state.
///
/// Numbers are kept while their port or bridge stays: a port changed on its own must keep the
/// number the other ports' rules were loaded with, and a zone that changed under live
/// connections would make their next packets look new. A restarted agent reads them back from
/// the loaded ruleset (`SecurityGroupFirewall`), so they survive restarts too.
public struct FirewallNumbering: Sendable, Equatable {
    /// Tap name → port number.
    public var ports: [String: Int]
    /// Bridge name → conntrack zone.
    public var zones: [String: Int]

    public static let range = 1...0xffff

    public init(ports: [String: Int] = [:], zones: [String: Int] = [:]) { (self.ports, self.zones) = (ports, zones) }

    /// Keeps the numbers of `taps` and `bridges` that have one, gives the others the lowest free
    /// numbers, and forgets everything else. Throws when more than 65535 would be needed.
    func renumbered(taps: [String], bridges: [String]) throws -> FirewallNumbering {
        FirewallNumbering(ports: try Self.assign(taps, keeping: ports), zones: try Self.assign(bridges, keeping: zones))
    }

    /// Adds a number for `tap` and a zone for `bridge` when they have none; keeps everything else.
    func adding(tap: String, bridge: String) throws -> FirewallNumbering {
        FirewallNumbering(ports: try Self.assign(Array(ports.keys) + [tap], keeping: ports),
                          zones: try Self.assign(Array(zones.keys) + [bridge], keeping: zones))
    }

    private static func assign(_ names: [String], keeping previous: [String: Int]) throws -> [String: Int] {
        let sorted = Set(names).sorted()
        var result: [String: Int] = [:]
        var used: Set<Int> = []
        for name in sorted {
            if let number = previous[name], range.contains(number), used.insert(number).inserted { result[name] = number }
        }
        var next = range.lowerBound
        for name in sorted where result[name] == nil {
            while used.contains(next) { next += 1 }
            guard range.contains(next) else { throw SecurityGroupFirewallError.invalidInput("more than \(range.upperBound) ports or bridges to number") }
            result[name] = next
            used.insert(next)
        }
        return result
    }
}
