import XCTest
import HostAPI
import NimbusCore
@testable import Dataplane

/// The compiler's text for a few rules, and that nft itself accepts it (checked in a throwaway
/// network namespace when root and nft are there).
final class SecurityGroupRulesetTests: XCTestCase {
    typealias Port = HostNetworkState.Port
    typealias Group = HostNetworkState.SecurityGroup
    typealias Rule = HostNetworkState.Rule

    let web = Group(id: "sg-web", rules: [
        Rule(id: "r-egress4", direction: "egress", ethertype: "IPv4"),
        Rule(id: "r-egress6", direction: "egress", ethertype: "IPv6"),
        Rule(id: "r-ssh", direction: "ingress", protocol: "tcp", portRangeMin: 22, portRangeMax: 22, remoteIPPrefix: "0.0.0.0/0"),
        Rule(id: "r-web", direction: "ingress", protocol: "6", portRangeMin: 8000, portRangeMax: 8080, remoteIPPrefix: "192.168.7.9/16"),
        Rule(id: "r-echo", direction: "ingress", protocol: "icmp", portRangeMin: 8, portRangeMax: 0),
        Rule(id: "r-echo6", direction: "ingress", ethertype: "IPv6", protocol: "icmp", portRangeMin: 128),
        Rule(id: "r-sctp", direction: "ingress", protocol: "sctp", portRangeMin: 5000, portRangeMax: 5001),
        Rule(id: "r-gre", direction: "ingress", protocol: "gre"),
        Rule(id: "r-friends", direction: "ingress", protocol: "udp", portRangeMin: 53, portRangeMax: 53, remoteGroupID: "sg-friends"),
        Rule(id: "r-dns-out", direction: "egress", protocol: "udp", portRangeMin: 53, portRangeMax: 53, remoteIPPrefix: "10.9.9.9/32"),
    ])
    let friends = Group(id: "sg-friends", memberAddresses: ["10.0.0.12", "10.0.0.13", "10.0.1.0/24", "10.0.1.7", "2001:db8::5"])
    // The same egress rule in a second group is written once.
    let copy = Group(id: "sg-copy", rules: [Rule(id: "r-egress4-again", direction: "egress", ethertype: "IPv4")])

    var portA: Port {
        Port(id: "port-a-0000-1111", networkID: "net-1", macAddress: "02:00:00:00:00:0A",
             fixedIPs: [.init(subnetID: "s", address: "10.0.0.10")],
             allowedAddressPairs: [.init(ipAddress: "10.0.5.0/24"), .init(ipAddress: "10.0.6.6", macAddress: "02:00:00:00:00:66")],
             securityGroupIDs: ["sg-web", "sg-copy"])
    }
    var portB: Port { Port(id: "port-b-0000-1111", networkID: "net-1", macAddress: "02:00:00:00:00:0b", securityGroupIDs: ["sg-friends"]) }
    var unfiltered: Port { Port(id: "port-c-0000-1111", networkID: "net-2", macAddress: "02:00:00:00:00:0c", portSecurityEnabled: false) }

    func testRulesetForAFewRules() throws {
        let compiled = try SecurityGroupRuleset.ruleset(ports: [portB, portA, unfiltered], securityGroups: [web, friends, copy])
        let text = compiled.text
        XCTAssertEqual(compiled.numbering, FirewallNumbering(ports: ["tapport-a-0000": 1, "tapport-b-0000": 2],
                                                             zones: ["brqnet-1": 1, "brqnet-2": 2]))
        XCTAssertTrue(text.hasPrefix("add table bridge nimbus-sg\ndelete table bridge nimbus-sg\ntable bridge nimbus-sg {\n"), text)
        XCTAssertTrue(text.contains("add table inet nimbus-sg\ndelete table inet nimbus-sg\ntable inet nimbus-sg {\n"))

        // Dispatch: each filtered port in both halves of the mark; the unfiltered one nowhere.
        XCTAssertTrue(text.contains("elements = { \"tapport-a-0000\" : jump from-tapport-a-0000, \"tapport-b-0000\" : jump from-tapport-b-0000 }"))
        XCTAssertTrue(text.contains("elements = { 0x00010000 : jump egress-tapport-a-0000, 0x00020000 : jump egress-tapport-b-0000 }"))
        XCTAssertTrue(text.contains("elements = { 0x00000001 : jump ingress-tapport-a-0000, 0x00000002 : jump ingress-tapport-b-0000 }"))
        XCTAssertTrue(text.contains("elements = { \"brqnet-1\" : 1, \"brqnet-2\" : 2 }"))
        XCTAssertFalse(text.contains("tapport-c-0000"), "a port without port security has no chains")

        // Anti-spoofing of A: its MACs, its fixed IP and pairs (the pair's own MAC), link-local addresses from both MACs.
        let from = try chain("from-tapport-a-0000", in: text)
        XCTAssertEqual(from.first, "meta mark set 0x00010000")
        XCTAssertTrue(from.contains("ether saddr != { 02:00:00:00:00:0a, 02:00:00:00:00:66 } drop"), "\(from)")
        XCTAssertTrue(from.contains("ip saddr . ether saddr != { 10.0.0.10 . 02:00:00:00:00:0a, 10.0.5.0/24 . 02:00:00:00:00:0a, 10.0.6.6 . 02:00:00:00:00:66 } drop"), "\(from)")
        XCTAssertTrue(from.contains("ip6 saddr . ether saddr != { fe80::ff:fe00:a . 02:00:00:00:00:0a, fe80::ff:fe00:66 . 02:00:00:00:00:66 } drop"), "\(from)")
        XCTAssertTrue(from.contains("arp saddr ether . arp saddr ip != { 02:00:00:00:00:0a . 10.0.0.10, 02:00:00:00:00:0a . 10.0.5.0/24, 02:00:00:00:00:66 . 10.0.6.6, 02:00:00:00:00:0a . 0.0.0.0, 02:00:00:00:00:66 . 0.0.0.0 } drop"), "\(from)")
        XCTAssertTrue(from.contains("ether type ip udp sport 67 udp dport 68 drop comment \"no DHCP server\""))
        XCTAssertEqual(try chain("to-tapport-a-0000", in: text), ["meta mark set meta mark or 0x00000001"])
        // B has no fixed IP: any address from its own MAC, as Neutron.
        XCTAssertTrue(try chain("from-tapport-b-0000", in: text).contains("ip saddr . ether saddr != { 0.0.0.0/0 . 02:00:00:00:00:0b } drop"))

        let ingress = try chain("ingress-tapport-a-0000", in: text)
        XCTAssertEqual(Array(ingress.suffix(8)), [
            "meta nfproto ipv4 tcp dport 22 return comment \"rule r-ssh\"",
            "meta nfproto ipv4 ip saddr 192.168.0.0/16 tcp dport 8000-8080 return comment \"rule r-web\"",
            "meta nfproto ipv4 meta l4proto icmp icmp type 8 icmp code 0 return comment \"rule r-echo\"",
            "meta nfproto ipv6 meta l4proto ipv6-icmp icmpv6 type 128 return comment \"rule r-echo6\"",
            "meta nfproto ipv4 meta l4proto 132 th dport 5000-5001 return comment \"rule r-sctp\"",
            "meta nfproto ipv4 meta l4proto 47 return comment \"rule r-gre\"",
            "meta nfproto ipv4 ip saddr @sg-sg-friends-v4 udp dport 53 return comment \"rule r-friends\"",
            "drop",
        ])
        XCTAssertTrue(ingress.contains("ct state established,related return"))
        XCTAssertLessThan(ingress.firstIndex(of: "ct state invalid drop")!, ingress.firstIndex(of: "meta nfproto ipv4 tcp dport 22 return comment \"rule r-ssh\"")!)
        let egress = try chain("egress-tapport-a-0000", in: text)
        XCTAssertEqual(Array(egress.suffix(4)), [
            "meta nfproto ipv4 return comment \"rule r-egress4\"",
            "meta nfproto ipv6 return comment \"rule r-egress6\"",
            "meta nfproto ipv4 ip daddr 10.9.9.9 udp dport 53 return comment \"rule r-dns-out\"",
            "drop",
        ])
        // B's group has no egress rule: nothing but the fixed rules leaves it.
        XCTAssertEqual(try chain("egress-tapport-b-0000", in: text), PortFilter.fixedEgress + ["drop"])

        // The remote group's set: its IPv4 members, an address inside a member prefix folded into it.
        XCTAssertTrue(text.contains("\tset sg-sg-friends-v4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements = { 10.0.0.12, 10.0.0.13, 10.0.1.0/24 }\n\t}"), text)
        try checkWithNFT(text)
    }

    func testUpdatesTouchOnlyTheirPortOrSet() throws {
        let full = try SecurityGroupRuleset.ruleset(ports: [portA], securityGroups: [web, friends, copy])
        let update = try SecurityGroupRuleset.portUpdate(portB, securityGroups: [friends], numbering: full.numbering)
        XCTAssertEqual(update.numbering.ports, ["tapport-a-0000": 1, "tapport-b-0000": 2], "A keeps its number, B takes the next")
        XCTAssertFalse(update.text.contains("tapport-a-0000"))
        XCTAssertTrue(update.text.contains("flush chain inet nimbus-sg ingress-tapport-b-0000\n"))
        XCTAssertTrue(update.text.contains("add element inet nimbus-sg ingress-dispatch { 0x00000002 : jump ingress-tapport-b-0000 }"))

        let removal = SecurityGroupRuleset.portRemoval(tap: "tapport-a-0000", numbering: update.numbering)
        XCTAssertEqual(removal.numbering.ports, ["tapport-b-0000": 2])
        XCTAssertTrue(removal.text.contains("delete element inet nimbus-sg egress-dispatch { 0x00010000 }\n"))
        XCTAssertEqual(SecurityGroupRuleset.portRemoval(tap: "tapnot-loaded", numbering: update.numbering).text, "")
        let off = try SecurityGroupRuleset.portUpdate(Port(id: "port-a-0000-1111", networkID: "net-1", macAddress: "02:00:00:00:00:0a",
                                                           portSecurityEnabled: false), securityGroups: [], numbering: full.numbering)
        XCTAssertEqual(off, SecurityGroupRuleset.portRemoval(tap: "tapport-a-0000", numbering: full.numbering), "port security off removes its chains")

        let members = try SecurityGroupRuleset.remoteGroupUpdate(Group(id: "sg-friends", memberAddresses: ["10.0.0.20"]),
                                                                 loadedSets: full.sets)
        XCTAssertEqual(members, "add set inet nimbus-sg sg-sg-friends-v4 { type ipv4_addr; flags interval; }\n"
            + "flush set inet nimbus-sg sg-sg-friends-v4\nadd element inet nimbus-sg sg-sg-friends-v4 { 10.0.0.20 }\n")
        XCTAssertEqual(try SecurityGroupRuleset.remoteGroupUpdate(Group(id: "sg-unused"), loadedSets: full.sets), "")
        // A port update whose state leaves out a remote group keeps that group's set as it is.
        let withoutFriends = try SecurityGroupRuleset.portUpdate(portA, securityGroups: [web, copy], numbering: full.numbering)
        XCTAssertTrue(withoutFriends.text.contains("add set inet nimbus-sg sg-sg-friends-v4 { type ipv4_addr; flags interval; }\n"))
        XCTAssertFalse(withoutFriends.text.contains("flush set"), withoutFriends.text)
        try checkWithNFT(full.text + update.text + members + withoutFriends.text + removal.text)
    }

    func testInputThatCannotBeWrittenIsRefused() {
        let injected = Port(id: "x\" ; flush ruleset", networkID: "net-1", macAddress: "02:00:00:00:00:0a")
        let badMAC = Port(id: "port-d", networkID: "net-1", macAddress: "02:00:00:00:00")
        let badIP = Port(id: "port-e", networkID: "net-1", macAddress: "02:00:00:00:00:0e", fixedIPs: [.init(subnetID: "s", address: "10.0.0.300")])
        let missingGroup = Port(id: "port-f", networkID: "net-1", macAddress: "02:00:00:00:00:0f", securityGroupIDs: ["sg-nowhere"])
        for port in [injected, badMAC, badIP, missingGroup] {
            XCTAssertThrowsError(try SecurityGroupRuleset.ruleset(ports: [port], securityGroups: [])) { error in
                guard case SecurityGroupFirewallError.invalidInput = error else { return XCTFail("\(error)") }
            }
        }
        for rule in [Rule(id: "r", direction: "sideways"), Rule(id: "r", direction: "ingress", ethertype: "IPX"),
                     Rule(id: "r", direction: "ingress", protocol: "tcp", portRangeMin: 0, portRangeMax: 10),
                     Rule(id: "r", direction: "ingress", protocol: "bogus"),
                     Rule(id: "r", direction: "ingress", protocol: "gre", portRangeMin: 1, portRangeMax: 2),
                     Rule(id: "r", direction: "ingress", ethertype: "IPv6", remoteIPPrefix: "10.0.0.0/8")] {
            let port = Port(id: "port-g", networkID: "net-1", macAddress: "02:00:00:00:00:0a", securityGroupIDs: ["sg"])
            XCTAssertThrowsError(try SecurityGroupRuleset.ruleset(ports: [port], securityGroups: [Group(id: "sg", rules: [rule])]), "\(rule)")
        }
    }

    func testNumbersAreKeptAndReused() throws {
        let first = try FirewallNumbering().renumbered(taps: ["tapb", "tapa", "tapc"], bridges: ["brq1"])
        XCTAssertEqual(first.ports, ["tapa": 1, "tapb": 2, "tapc": 3])
        let second = try first.renumbered(taps: ["tapc", "tapd"], bridges: ["brq2", "brq1"])
        XCTAssertEqual(second.ports, ["tapc": 3, "tapd": 1], "kept numbers stay, freed ones are reused")
        XCTAssertEqual(second.zones, ["brq1": 1, "brq2": 2])
    }

    // MARK: - Helpers

    /// The rule lines of `name`'s chain in a full ruleset's text.
    private func chain(_ name: String, in text: String) throws -> [String] {
        let start = try XCTUnwrap(text.range(of: "\tchain \(name) {\n"), "no chain \(name)")
        let body = text[start.upperBound...]
        let end = try XCTUnwrap(body.range(of: "\n\t}"))
        return body[..<end.lowerBound].split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// `nft -c` (parse and check with the kernel, apply nothing) in a new network namespace of its own.
    private func checkWithNFT(_ text: String) throws {
        guard getuid() == 0, HostProcess.locate("nft") != nil, HostProcess.locate("unshare") != nil else { return }
        let expectation = expectation(description: "nft -c")
        Task {
            defer { expectation.fulfill() }
            do {
                let output = try await HostProcess.run("unshare", ["--net", "nft", "-c", "-f", "-"], input: text)
                XCTAssertEqual(output.status, 0, "nft refused the text: \(output.stderr)\n\(text)")
            } catch { XCTFail("\(error)") }
        }
        wait(for: [expectation], timeout: 30)
    }
}
