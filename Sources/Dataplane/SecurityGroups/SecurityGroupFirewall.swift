import Foundation
#if canImport(Glibc)
import Glibc
#endif
import HostAPI
import Logging
import NimbusCore

public enum SecurityGroupFirewallError: Error, CustomStringConvertible, Sendable {
    /// The state handed in cannot be written as rules (an id, address or rule field that is not
    /// what Neutron allows). Nothing was loaded.
    case invalidInput(String)
    /// The kernel would not show bridged traffic to the inet family, so rules there would
    /// silently pass everything: `net.bridge.bridge-nf-call-iptables`/`-ip6tables` must be 1.
    case bridgeNetfilterOff(String)
    /// `nft` refused a change (nothing of it applied) or a listing: its status and stderr.
    case nftFailed(status: Int32, message: String)
    /// `nft` listed the tables in a form this code does not read.
    case unreadableRuleset(String)

    public var description: String {
        switch self {
        case .invalidInput(let reason): return "security groups: \(reason)"
        case .bridgeNetfilterOff(let reason): return "security groups need br_netfilter: \(reason)"
        case .nftFailed(let status, let message): return "security groups: nft failed (status \(status)): \(message)"
        case .unreadableRuleset(let reason): return "security groups: cannot read the loaded ruleset: \(reason)"
        }
    }
}

/// Keeps a host's security groups in nftables: the ruleset `SecurityGroupRuleset` compiles, in
/// the tables `bridge nimbus-sg` and `inet nimbus-sg`, and nothing else on the host.
///
/// Every change is one `nft -f -` transaction: it takes effect whole or not at all, and a
/// failed one leaves what was loaded before. It runs `nft` in the network namespace of the
/// calling process, or in `namespace` when one is named (tests keep the root namespace's
/// firewall untouched that way). It remembers the port numbers and zones it loaded; a new
/// instance reads them back from the kernel on first use, so a restarted agent keeps them.
/// Calls are serialised (an actor); one instance per namespace.
public actor SecurityGroupFirewall {
    private let namespace: String?
    private let logger: Logger
    /// What is loaded, once known; nil until the first call reads or replaces it, and again
    /// after a load failed.
    private var known: Known?

    private enum Known {
        case absent
        case present(numbering: FirewallNumbering, sets: Set<String>)
    }

    /// Where `apply` keeps the ruleset it last loaded, removed before any other change is
    /// loaded: a restarted agent whose first `apply` compiles the same text, with every chain of
    /// it still in the kernel, skips reloading it (nil: always loads).
    private let rulesetFile: String?

    public init(namespace: String? = nil, rulesetFile: String? = nil, logger: Logger = Logger(label: "nimbus.dataplane.security-groups")) {
        (self.namespace, self.rulesetFile, self.logger) = (namespace, rulesetFile, logger)
    }

    /// Afterwards Nimbus's two tables hold exactly the chains for `ports` (those with port
    /// security), with the rules of `securityGroups`, replacing whatever they held, in one
    /// transaction. Ports still present keep their numbers. Throws before loading anything when
    /// the input is invalid or br_netfilter does not pass bridged IPv4 and IPv6 to the inet family.
    public func apply(ports: [HostNetworkState.Port], securityGroups: [HostNetworkState.SecurityGroup]) async throws {
        try await checkBridgeNetfilter()
        var previous = FirewallNumbering()
        do {
            if case .present(let numbering, _) = try await current() { previous = numbering }
        } catch {
            // Whatever is loaded is replaced anyway; only its numbers are lost.
            logger.warning("security groups: numbering from scratch", metadata: ["error": "\(error)"])
        }
        let compiled = try SecurityGroupRuleset.ruleset(ports: ports, securityGroups: securityGroups, numbering: previous)
        if case .present = known, try await isLoadedAlready(compiled.text) {
            // Loading it again would change nothing, and nft takes seconds for a thousand ports.
            logger.info("security groups already loaded", metadata: ["ports": "\(compiled.numbering.ports.count)"])
            return
        }
        try await load(compiled.text)
        known = .present(numbering: compiled.numbering, sets: compiled.sets)
        if let rulesetFile {
            do {
                try FileManager.default.createDirectory(atPath: (rulesetFile as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try Data(compiled.text.utf8).write(to: URL(fileURLWithPath: rulesetFile), options: .atomic)
            } catch {
                logger.warning("security groups: cannot keep the loaded ruleset", metadata: ["error": "\(error)"])
            }
        }
        logger.info("security groups loaded", metadata: ["ports": "\(compiled.numbering.ports.count)", "groups": "\(securityGroups.count)"])
    }

    /// Afterwards `port`'s chains hold its current rules (or, without port security, it has no
    /// chains), and the member sets its rules name exist, holding the members of those of the
    /// remote groups that `securityGroups` includes (the others' sets are left as they were); no
    /// other port's chains changed. `securityGroups` must include the port's own groups. When
    /// nothing is loaded yet, this loads the tables with this port alone.
    public func updatePort(_ port: HostNetworkState.Port, securityGroups: [HostNetworkState.SecurityGroup]) async throws {
        guard case .present(let numbering, let sets) = try await current() else {
            return try await apply(ports: [port], securityGroups: securityGroups)
        }
        let compiled = try SecurityGroupRuleset.portUpdate(port, securityGroups: securityGroups, numbering: numbering)
        try await load(compiled.text)
        known = .present(numbering: compiled.numbering, sets: sets.union(compiled.sets))
    }

    /// Afterwards the port (by id) has no chains; other ports are untouched. Nothing happens when
    /// it had none.
    public func removePort(id: String) async throws {
        try NFTText.checkIdentifier(id, "port id")
        guard case .present(let numbering, let sets) = try await current() else { return }
        let compiled = SecurityGroupRuleset.portRemoval(tap: DeviceNames.tap(port: id), numbering: numbering)
        guard !compiled.text.isEmpty else { return }
        try await load(compiled.text)
        known = .present(numbering: compiled.numbering, sets: sets)
    }

    /// Afterwards the member sets of `group` that loaded rules use hold `group.memberAddresses`;
    /// no chain changed. Nothing happens when no loaded rule names the group.
    public func updateRemoteGroup(_ group: HostNetworkState.SecurityGroup) async throws {
        guard case .present(_, let sets) = try await current() else { return }
        let text = try SecurityGroupRuleset.remoteGroupUpdate(group, loadedSets: sets)
        if !text.isEmpty { try await load(text) }
    }

    /// Afterwards neither Nimbus table exists (whether or not they did).
    public func removeAll() async throws {
        try await load(SecurityGroupRuleset.removal)
        known = .absent
        logger.info("security groups removed")
    }

    /// Whether the port's four chains (`from-`, `to-`, `egress-`, `ingress-<tap>`) are all
    /// loaded, read from the kernel, not from memory.
    public func isFiltering(portID: String) async throws -> Bool {
        try NFTText.checkIdentifier(portID, "port id")
        let tap = DeviceNames.tap(port: portID)
        let present = try await loadedChains()
        return [
            "bridge \(SecurityGroupRuleset.fromChain(tap: tap))", "bridge \(SecurityGroupRuleset.toChain(tap: tap))",
            "inet \(SecurityGroupRuleset.egressChain(tap: tap))", "inet \(SecurityGroupRuleset.ingressChain(tap: tap))",
        ].allSatisfy(present.contains)
    }

    // MARK: - The kernel

    /// What is loaded: remembered, else read from the inet table (its dispatch map gives each
    /// port's number, its zone map each bridge's zone, and its sets the remote groups'); absent
    /// when either table is missing.
    ///
    /// Only those two maps and the sets' names are listed, never a whole table or `list
    /// tables`: with 1,000 ports' chains loaded, nft 1.0.6 took seconds for `list table` and
    /// 1.2 s for `list tables` here, against 0.01–0.03 s for each of these, and a restarted
    /// agent waits for this before anything else.
    private func current() async throws -> Known {
        if let known { return known }
        // The bridge table is there when its set of filtered ports is; the inet one when its map is.
        let bridgeSets = try Self.objects(in: try await nft(["-t", "-j", "list", "sets", "bridge"]), kind: "set")
        let dispatch = try await run("nft", ["-j", "list", "map", "inet", SecurityGroupRuleset.table, "egress-dispatch"])
        guard bridgeSets.contains(where: { $0["table"] as? String == SecurityGroupRuleset.table }), dispatch.status == 0 else {
            known = .absent
            return .absent
        }
        let maps = try Self.objects(in: dispatch.stdout, kind: "map")
            + Self.objects(in: try await nft(["-j", "list", "map", "inet", SecurityGroupRuleset.table, "zones"]), kind: "map")
        var numbering = FirewallNumbering()
        for map in maps {
            let elements = map["elem"] as? [[Any]] ?? []
            switch map["name"] as? String {
            case "egress-dispatch":
                for element in elements {
                    guard element.count == 2, let mark = element[0] as? Int, let verdict = element[1] as? [String: Any],
                          let target = (verdict["jump"] as? [String: Any])?["target"] as? String, target.hasPrefix("egress-")
                    else { throw SecurityGroupFirewallError.unreadableRuleset("egress-dispatch element \(element)") }
                    numbering.ports[String(target.dropFirst("egress-".count))] = mark >> 16
                }
            case "zones":
                for element in elements {
                    guard element.count == 2, let bridge = element[0] as? String, let zone = element[1] as? Int
                    else { throw SecurityGroupFirewallError.unreadableRuleset("zones element \(element)") }
                    numbering.zones[bridge] = zone
                }
            default: break
            }
        }
        // Names only (-t): the sets' members are not needed.
        let sets = Set(try Self.objects(in: try await nft(["-t", "-j", "list", "sets", "inet"]), kind: "set")
            .filter { $0["table"] as? String == SecurityGroupRuleset.table }.compactMap { $0["name"] as? String })
        let state = Known.present(numbering: numbering, sets: sets)
        known = state
        return state
    }

    private func checkBridgeNetfilter() async throws {
        for key in ["net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"] {
            let output = try await run("sysctl", ["-n", key])
            let value = output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            guard output.status == 0, value == "1" else {
                throw SecurityGroupFirewallError.bridgeNetfilterOff("\(key) is \(value.isEmpty ? "missing" : value)")
            }
        }
    }

    /// Whether `text` is what `apply` last loaded (the ruleset file) and the kernel still has
    /// exactly its chains in Nimbus's tables. A rule changed by hand inside a chain that is
    /// still there is not noticed: it is replaced with the next change of the host's ports or groups.
    private func isLoadedAlready(_ text: String) async throws -> Bool {
        guard let rulesetFile, let saved = FileManager.default.contents(atPath: rulesetFile), saved == Data(text.utf8) else { return false }
        var wanted: Set<String> = [], family: String?
        for line in text.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if words.count >= 3, words[0] == "table", words[2] == SecurityGroupRuleset.table { family = String(words[1]) }
            if words.count >= 2, words[0] == "chain", let family { wanted.insert("\(family) \(words[1])") }
        }
        guard !wanted.isEmpty else { return false }
        return try await loadedChains() == wanted
    }

    /// The chains of Nimbus's two tables in the kernel, as `<family> <name>`.
    private func loadedChains() async throws -> Set<String> {
        let chains = try Self.objects(in: try await nft(["-j", "list", "chains"]), kind: "chain")
        return Set(chains.compactMap { chain -> String? in
            guard chain["table"] as? String == SecurityGroupRuleset.table, let family = chain["family"] as? String,
                  let name = chain["name"] as? String else { return nil }
            return "\(family) \(name)"
        })
    }

    /// One transaction. When it fails nothing of it applied, but memory is dropped anyway, so
    /// the next call reads what is loaded instead of trusting it. The ruleset file goes first:
    /// after any change but `apply`'s, the kernel no longer holds what it says.
    private func load(_ text: String) async throws {
        if let rulesetFile { unlink(rulesetFile) }
        do {
            _ = try await nft(["-f", "-"], input: text)
        } catch {
            known = nil
            throw error
        }
    }

    private func nft(_ arguments: [String], input: String? = nil) async throws -> String {
        let output = try await run("nft", arguments, input: input)
        guard output.status == 0 else {
            throw SecurityGroupFirewallError.nftFailed(status: output.status, message: output.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return output.stdout
    }

    /// Runs `tool` in this process's namespace, or inside `namespace`.
    private func run(_ tool: String, _ arguments: [String], input: String? = nil) async throws -> HostProcess.Output {
        guard let namespace else { return try await HostProcess.run(tool, arguments, input: input) }
        return try await HostProcess.run("ip", ["netns", "exec", namespace, tool] + arguments, input: input)
    }

    /// The objects of one kind (`chain`, `set`, `map`) in `nft -j` output.
    private static func objects(in json: String, kind: String) throws -> [[String: Any]] {
        guard let root = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              let items = root["nftables"] as? [[String: Any]] else {
            throw SecurityGroupFirewallError.unreadableRuleset("not nft JSON: \(json.prefix(200))")
        }
        return items.compactMap { $0[kind] as? [String: Any] }
    }
}
