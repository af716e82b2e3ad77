import Foundation
import HostAPI
import Networking
import NimbusCore
import NimbusTestSupport
import XCTest

/// A rule's `remote_ip_prefix` is kept as the client gave it (host bits and all), with
/// `normalized_cidr` beside it; duplicates and the hosts' firewalls go by the normalized one.
final class SecurityGroupRulePrefixTests: XCTestCase {
    func testRemotePrefixesAreKeptAsGivenAndMatchedNormalized() async throws {
        try await onEachEngine { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            try await plane.network.applyNetworkReport(NetworkAgentReport(host: "net-a", tunnelingIP: "10.250.0.1"))
            let group = (try await api.neutronCreate("security-groups", "security_group", ["name": "web"], token: alice.token))["id"]?.stringValue ?? ""
            func rule(_ prefix: String, ethertype: String = "IPv4", port: Int64 = 80) async throws -> API.Reply {
                try await api.neutron(.post, "/security-group-rules", token: alice.token, body: ["security_group_rule": [
                    "security_group_id": .string(group), "direction": "ingress", "ethertype": .string(ethertype), "protocol": "tcp",
                    "port_range_min": .int(port), "port_range_max": .int(port), "remote_ip_prefix": .string(prefix)]])
            }
            let hostBits = try await rule("10.2.3.4/24")
            XCTAssertEqual(hostBits.status, 201, hostBits.text)
            XCTAssertEqual(hostBits.json["security_group_rule"]?["remote_ip_prefix"], "10.2.3.4/24")
            XCTAssertEqual(hostBits.json["security_group_rule"]?["normalized_cidr"], "10.2.3.0/24")
            let ruleID = hostBits.json["security_group_rule"]?["id"]?.stringValue ?? ""
            let shown = try await api.neutron(.get, "/security-group-rules/\(ruleID)", token: alice.token)
            XCTAssertEqual(shown.json["security_group_rule"]?["remote_ip_prefix"], "10.2.3.4/24", shown.text)
            let bare = try await rule("192.0.2.7", port: 81)
            XCTAssertEqual(bare.json["security_group_rule"]?["remote_ip_prefix"], "192.0.2.7/32", bare.text)
            XCTAssertEqual(bare.json["security_group_rule"]?["normalized_cidr"], "192.0.2.7/32")
            let v6 = try await rule("2001:DB8:0::1/64", ethertype: "IPv6")
            XCTAssertEqual(v6.json["security_group_rule"]?["remote_ip_prefix"], "2001:db8::1/64", v6.text)
            XCTAssertEqual(v6.json["security_group_rule"]?["normalized_cidr"], "2001:db8::/64")
            // The same network written with other host bits is the same rule.
            assertNeutronError(try await rule("10.2.3.200/24"), 409, type: "SecurityGroupRuleExists")
            let noPrefix = try await api.neutron(.post, "/security-group-rules", token: alice.token, body: ["security_group_rule": [
                "security_group_id": .string(group), "direction": "ingress", "protocol": "udp"]])
            XCTAssertEqual(noPrefix.json["security_group_rule"]?["normalized_cidr"], .null, noPrefix.text)
            let extensions = try await api.neutron(.get, "/extensions", token: alice.token)
            XCTAssertTrue(extensions.json["extensions"]?.arrayValue?.contains { $0["alias"] == "security-groups-normalized-cidr" } ?? false)

            // A host's firewall gets the network, which nftables takes (it refuses host bits).
            let net = (try await api.neutronCreate("networks", "network", [:], token: alice.token))["id"]?.stringValue ?? ""
            _ = try await api.neutronCreate("subnets", "subnet", ["network_id": .string(net), "ip_version": 4, "cidr": "10.78.0.0/24"], token: alice.token)
            _ = try await api.neutronCreate("ports", "port", ["network_id": .string(net), "security_groups": [.string(group)], "device_owner": "compute:nova",
                                                              "binding:host_id": "net-a", "project_id": .string(alice.project)], token: admin)
            let state = try await plane.network.hostNetworkState(host: "net-a")
            let prefixes = state.securityGroups.first { $0.id == group }?.rules.filter { $0.direction == "ingress" }.compactMap(\.remoteIPPrefix) ?? []
            XCTAssertEqual(Set(prefixes), ["10.2.3.0/24", "192.0.2.7/32", "2001:db8::/64"], "\(state.securityGroups)")
        }
    }
}
