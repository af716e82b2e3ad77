import Foundation
import HostAPI
import NimbusCore

/// Neutron's L3 agent's work on one host (legacy, centralised routers): each router is a
/// network namespace `qrouter-<id>` that forwards IPv4 between its interfaces (`qr-…`, one per
/// project subnet port) and its gateway (`qg-…` on the external network), with nftables NAT
/// for SNAT and floating IPs. The namespace's ends of the veths carry the router's ports'
/// MACs and addresses; the host's ends (`tap…`) are on the networks' bridges like any port.
extension LinuxBridgeDataplane {
    var routerRoot: String { settings.stateDirectory + "/routers" }
    /// The one nftables table Nimbus owns in a router's namespace.
    static let natTable = "nimbus-nat"

    /// The host-side ends of the router's veths, which are on the networks' bridges.
    static func bridgeSideDevices(_ router: HostNetworkState.Router) -> [String] {
        (router.interfaces + router.gatewayPorts).map { DeviceNames.tap(port: $0.id) }
    }

    /// Postconditions: `qrouter-<id>` exists with `net.ipv4.ip_forward` 1 (in it only); each
    /// interface's `qr-` and each gateway's `qg-` are up with their port's MAC, MTU and IPv4
    /// addresses (the first gateway also has each floating address as /32), their host ends on
    /// the networks' bridges, and no other `qr-`/`qg-` is left in the namespace; the first
    /// gateway proxies NDP for exactly the router's `ndpProxies` (see `syncNDPProxies`); the static routes
    /// tagged `proto static` are exactly the default route (via the gateway's next hop) and the
    /// router's routes; `lo` holds 169.254.169.254 for the metadata proxy; the table
    /// `ip nimbus-nat` holds exactly `natRuleset(router)` (absent when that is nil), changed in
    /// one transaction and only when it differs.
    func ensureRouter(_ router: HostNetworkState.Router, links: inout [String: IPRoute.Link]) async throws {
        let namespace = DeviceNames.routerNamespace(router: router.id)
        let directory = "\(routerRoot)/\(router.id)"
        // The directory first: it is what marks the namespace as this host's to remove.
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        try await ensureNamespace(namespace)
        let forwarding = try await HostProcess.check("ip", ["netns", "exec", namespace, "sysctl", "-n", "net.ipv4.ip_forward"])
        if forwarding.trimmingCharacters(in: .whitespacesAndNewlines) != "1" {
            try await HostProcess.check("ip", ["netns", "exec", namespace, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        }

        let insideLinks = try await IPRoute.links(netns: namespace)
        var inside: Set<String> = []
        for port in router.interfaces {
            let name = DeviceNames.routerInterface(port: port.id)
            inside.insert(name)
            try await ensureVeth(outside: DeviceNames.tap(port: port.id), inside: name, namespace: namespace, insideLinks: insideLinks,
                                 bridge: DeviceNames.bridge(network: port.networkID), mac: port.macAddress, mtu: port.mtu,
                                 addresses: Self.interfaceAddresses(port), links: &links)
        }
        // Every gateway is plugged; the first also holds the floating IPs (their NAT uses it).
        let floating = Set(router.floatingIPs.map { "\($0.floatingAddress)/32" })
        let gateways = (router.gateway.map { [$0.port] } ?? []) + router.extraGateways
        for (index, port) in gateways.enumerated() {
            let name = DeviceNames.routerGateway(port: port.id)
            inside.insert(name)
            try await ensureVeth(outside: DeviceNames.tap(port: port.id), inside: name, namespace: namespace, insideLinks: insideLinks,
                                 bridge: DeviceNames.bridge(network: port.networkID), mac: port.macAddress, mtu: port.mtu,
                                 addresses: Self.interfaceAddresses(port).union(index == 0 ? floating : []), links: &links)
        }
        // Ports the router no longer has: deleting the namespace's end deletes the host's too.
        for link in insideLinks where (link.ifname.hasPrefix("qr-") || link.ifname.hasPrefix("qg-")) && !inside.contains(link.ifname) {
            try await IPRoute.ip(["link", "del", link.ifname], netns: namespace)
        }

        // The metadata proxy listens on 169.254.169.254 here; guests reach it through their gateway.
        let metadata = "\(MetadataAddress.ipv4)/32"
        if !(try await IPRoute.addresses("lo", netns: namespace)).contains(metadata) {
            try await IPRoute.ip(["addr", "add", metadata, "dev", "lo"], netns: namespace)
        }

        try await syncRoutes(router, namespace: namespace)
        try await syncNAT(router, namespace: namespace, directory: directory)
        try await syncNDPProxies(router, namespace: namespace)
    }

    /// A port's IPv4 addresses with their subnets' prefix lengths (`10.0.0.1/24`).
    static func interfaceAddresses(_ port: HostNetworkState.RouterPort) -> Set<String> {
        Set(port.addresses.compactMap { address in IPNetwork(address.cidr).map { "\(address.address)/\($0.prefixLength)" } })
    }

    // MARK: Routes

    /// Destination (a CIDR, `0.0.0.0/0` for the default) → next hops (several make a multipath
    /// route): the router's routes, and the default route via the gateway's next hop unless a
    /// route of the router's own already covers 0.0.0.0/0.
    static func wantedRoutes(_ router: HostNetworkState.Router) -> [String: [String]] {
        var routes: [String: [String]] = [:]
        for route in router.routes {
            guard let destination = IPNetwork(route.destination), destination.version == 4 else { continue }
            routes[destination.description, default: []].append(route.nexthop)
        }
        if let nexthop = router.gateway?.nexthop, routes["0.0.0.0/0"] == nil { routes["0.0.0.0/0"] = [nexthop] }
        return routes.mapValues { Array(Set($0)).sorted() }
    }

    /// One route as `ip -json route show` describes it.
    struct Route: Decodable {
        struct Nexthop: Decodable { var gateway: String? }
        var dst: String
        var gateway: String?
        var nexthops: [Nexthop]?
        var `protocol`: String?

        /// The destination as a CIDR (`ip` writes `default` and host routes without a length).
        var destination: String {
            if dst == "default" { return "0.0.0.0/0" }
            return IPNetwork(dst)?.description ?? dst
        }
        var gateways: [String] { (gateway.map { [$0] } ?? (nexthops ?? []).compactMap(\.gateway)).sorted() }
    }

    /// Makes the routes Nimbus added (`proto static`) in the router's main table exactly
    /// `wantedRoutes`; the kernel's own routes (its subnets') are left alone.
    func syncRoutes(_ router: HostNetworkState.Router, namespace: String) async throws {
        let wanted = Self.wantedRoutes(router)
        let text = try await IPRoute.ip(["-json", "-4", "route", "show", "table", "main"], netns: namespace)
        let current = try JSONDecoder().decode([Route].self, from: Data(text.utf8)).filter { $0.protocol == "static" }
        var had: [String: [String]] = [:]
        for route in current { had[route.destination] = route.gateways }
        let gatewayDevice = router.gateway.map { DeviceNames.routerGateway(port: $0.port.id) }
        let gatewayNetworks = router.gateway.map { $0.port.addresses.compactMap { IPNetwork($0.cidr) } } ?? []
        for (destination, nexthops) in wanted.sorted(by: { $0.key < $1.key }) where had[destination] != nexthops {
            var arguments = ["route", "replace", destination, "proto", "static"]
            if nexthops.count == 1 {
                arguments += ["via", nexthops[0]]
                // The default route leaves by the gateway, even to a next hop outside its
                // subnets (Neutron allows an external subnet's gateway IP there).
                if destination == "0.0.0.0/0", nexthops[0] == router.gateway?.nexthop, let gatewayDevice {
                    arguments += ["dev", gatewayDevice]
                    if let address = IPAddress(nexthops[0]), !gatewayNetworks.contains(where: { $0.contains(address) }) { arguments.append("onlink") }
                }
            } else {
                for nexthop in nexthops { arguments += ["nexthop", "via", nexthop] }
            }
            try await IPRoute.ip(arguments, netns: namespace)
        }
        for destination in Set(had.keys).subtracting(wanted.keys).sorted() {
            try await IPRoute.ip(["route", "del", destination, "proto", "static"], netns: namespace)
        }
    }

    // MARK: NAT

    /// The router's NAT as nftables text (the table `ip nimbus-nat`), or nil when it needs none
    /// (no gateway, or SNAT off and no floating IP). As Neutron's L3 agent does it:
    /// - a floating address is DNATed to its fixed address, from outside and from the router;
    /// - traffic between the router's own networks keeps its addresses, unless it was DNATed
    ///   (a guest reaching another's floating address: the "hairpin");
    /// - a fixed address with a floating IP sends from the floating address;
    /// - with SNAT on, anything else leaving by the gateway, and hairpin traffic that did not
    ///   come in by the gateway, takes the gateway's first address.
    static func natRuleset(_ router: HostNetworkState.Router) -> String? {
        guard let gateway = router.gateway else { return nil }
        let device = DeviceNames.routerGateway(port: gateway.port.id)
        let snatAddress = router.enableSNAT ? gateway.port.addresses.first?.address : nil
        guard snatAddress != nil || !router.floatingIPs.isEmpty else { return nil }
        var dnat: [String] = [], snat: [String] = []
        for floating in router.floatingIPs {
            dnat.append("ip daddr \(floating.floatingAddress) dnat to \(floating.fixedAddress)")
            snat.append("ip saddr \(floating.fixedAddress) snat to \(floating.floatingAddress)")
        }
        if let snatAddress {
            snat.append("oifname \"\(device)\" snat to \(snatAddress)")
            snat.append("iifname != \"\(device)\" ct status dnat snat to \(snatAddress)")
        }
        let indent = { (rules: [String]) in rules.map { "\t\t\($0)\n" }.joined() }
        return """
            table ip \(natTable) {
            \tchain prerouting {
            \t\ttype nat hook prerouting priority dstnat; policy accept;
            \(indent(dnat))\t}
            \tchain output {
            \t\ttype nat hook output priority -100; policy accept;
            \(indent(dnat))\t}
            \tchain postrouting {
            \t\ttype nat hook postrouting priority srcnat; policy accept;
            \t\toifname != "\(device)" ct status ! dnat accept
            \(indent(snat))\t}
            }

            """
    }

    /// Makes the router namespace's `ip nimbus-nat` table hold `natRuleset(router)`. What was
    /// loaded last is kept in the router's directory with the kernel's listing of it: when both
    /// still match, nothing is done; otherwise the table is replaced in one `nft -f`
    /// transaction (so no packet meets half a ruleset).
    func syncNAT(_ router: HostNetworkState.Router, namespace: String, directory: String) async throws {
        let rulesetPath = "\(directory)/nat.nft", listingPath = "\(directory)/nat.listing"
        let wanted = Self.natRuleset(router)
        let listing = try await natListing(namespace: namespace)
        let loaded = FileManager.default.contents(atPath: rulesetPath).map { String(decoding: $0, as: UTF8.self) }
        let listed = FileManager.default.contents(atPath: listingPath).map { String(decoding: $0, as: UTF8.self) }
        guard let wanted else {
            if listing != nil { try await nft(["delete", "table", "ip", Self.natTable], namespace: namespace) }
            for path in [rulesetPath, listingPath] where FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
            return
        }
        if wanted == loaded, let listing, listing == listed { return }
        // Declaring the table first makes the delete valid when there is none.
        try await nft(["-f", "-"], input: "table ip \(Self.natTable)\ndelete table ip \(Self.natTable)\n" + wanted, namespace: namespace)
        _ = try Self.write(wanted, to: rulesetPath)
        _ = try Self.write(try await natListing(namespace: namespace) ?? "", to: listingPath)
    }

    // MARK: NDP proxies

    /// Makes the proxy neighbour entries on the first gateway's device (`ip -6 neigh … proxy`)
    /// exactly the router's NDP proxies, and turns `proxy_ndp` on for that device (in the
    /// router's namespace only) while it has any, as Neutron's L3 agent does.
    func syncNDPProxies(_ router: HostNetworkState.Router, namespace: String) async throws {
        guard let gateway = router.gateway else { return }
        let device = DeviceNames.routerGateway(port: gateway.port.id)
        let wanted = Set(router.ndpProxies.compactMap { IPAddress($0) }.filter { $0.version == 6 }.map(\.description))
        let setting = "net.ipv6.conf.\(device).proxy_ndp"
        let enabled = try await HostProcess.check("ip", ["netns", "exec", namespace, "sysctl", "-n", setting])
            .trimmingCharacters(in: .whitespacesAndNewlines) == "1"
        if !wanted.isEmpty && !enabled {
            try await HostProcess.check("ip", ["netns", "exec", namespace, "sysctl", "-q", "-w", "\(setting)=1"])
        }
        let current = try await ndpProxyEntries(device: device, namespace: namespace)
        for address in wanted.subtracting(current).sorted() {
            try await IPRoute.ip(["-6", "neigh", "add", "proxy", address, "dev", device], netns: namespace)
        }
        for address in current.subtracting(wanted).sorted() {
            try await IPRoute.ip(["-6", "neigh", "del", "proxy", address, "dev", device], netns: namespace)
        }
        if wanted.isEmpty && enabled {
            try await HostProcess.check("ip", ["netns", "exec", namespace, "sysctl", "-q", "-w", "\(setting)=0"])
        }
    }

    /// The addresses `device` answers neighbour solicitations for (`ip -6 neigh show proxy`).
    func ndpProxyEntries(device: String, namespace: String) async throws -> Set<String> {
        let text = try await IPRoute.ip(["-6", "neigh", "show", "proxy", "dev", device], netns: namespace)
        return Set(text.split(separator: "\n").compactMap { line in
            line.split(separator: " ").first.flatMap { IPAddress(String($0)) }?.description
        })
    }

    /// The kernel's listing of the router's NAT table, or nil when it has none.
    func natListing(namespace: String) async throws -> String? {
        let output = try await HostProcess.run("ip", ["netns", "exec", namespace, "nft", "list", "table", "ip", Self.natTable])
        if output.status == 0 { return output.stdout }
        if output.stderr.contains("No such file or directory") { return nil }
        throw DataplaneError("nft list table ip \(Self.natTable) failed (status \(output.status)): \(output.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
    }

    func nft(_ arguments: [String], input: String? = nil, namespace: String) async throws {
        let output = try await HostProcess.run("ip", ["netns", "exec", namespace, "nft"] + arguments, input: input)
        guard output.status == 0 else {
            throw DataplaneError("nft \(arguments.joined(separator: " ")) failed (status \(output.status)): \(output.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    // MARK: Leftovers

    /// Removes every router of this host's (a directory under `routers/`) not in `keeping`:
    /// its namespace (with it go its veths, NAT table and connections) and its directory.
    /// Returns what could not be removed.
    func removeRouters(keeping: Set<String>) async -> [String] {
        let present = (try? FileManager.default.contentsOfDirectory(atPath: routerRoot)) ?? []
        guard present.contains(where: { !keeping.contains($0) }) else { return [] }
        var problems: [String] = []
        let namespaces = (try? await IPRoute.namespaces()) ?? []
        for router in present.sorted() where !keeping.contains(router) {
            let namespace = DeviceNames.routerNamespace(router: router)
            do {
                if namespaces.contains(namespace) { try await IPRoute.ip(["netns", "del", namespace]) }
                try FileManager.default.removeItem(atPath: "\(routerRoot)/\(router)")
            } catch {
                problems.append("router \(router): \(error)")
            }
        }
        return problems
    }
}
