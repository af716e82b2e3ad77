import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

extension API {
    /// Creates a Neutron resource and returns it, failing the test on anything but 201.
    func neutronCreate(_ collection: String, _ key: String, _ fields: JSON, token: String,
                       file: StaticString = #filePath, line: UInt = #line) async throws -> JSON {
        let reply = try await neutron(.post, "/\(collection)", token: token, body: [key: fields])
        XCTAssertEqual(reply.status, 201, reply.text, file: file, line: line)
        return try XCTUnwrap(reply.json[key], reply.text, file: file, line: line)
    }
}

final class NetworkingCoreTests: XCTestCase {
    func testNetworkCRUDVisibilityAndProviderAttributes() async throws {
        try await onEachEngine(settings: ["ml2_type_vlan": ["network_vlan_ranges": "physnet1:100:199"]]) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")

            let net = try await api.neutronCreate("networks", "network", ["name": "private", "tags": ["a"]], token: alice.token)
            let id = try XCTUnwrap(net["id"]?.stringValue)
            XCTAssertEqual(net["status"], "ACTIVE")
            XCTAssertEqual(net["project_id"]?.stringValue, alice.project)
            XCTAssertEqual(net["tenant_id"]?.stringValue, alice.project)
            XCTAssertEqual(net["mtu"], 1450)  // vxlan: 1500 less 50
            XCTAssertEqual(net["shared"], false)
            XCTAssertEqual(net["router:external"], false)
            XCTAssertEqual(net["revision_number"], 0)
            XCTAssertNotNil(net["created_at"]?.stringValue.flatMap(Timestamps.parse), "\(net)")
            XCTAssertEqual(net["created_at"]?.stringValue?.count, "2026-01-01T00:00:00Z".count)
            XCTAssertEqual(net["tags"], ["a"])
            XCTAssertNil(net["provider:network_type"], "provider attributes are admin-only to see")

            let asAdmin = try await api.neutron(.get, "/networks/\(id)", token: admin)
            XCTAssertEqual(asAdmin.json["network"]?["provider:network_type"], "vxlan")
            XCTAssertEqual(asAdmin.json["network"]?["provider:segmentation_id"], 1)

            assertNeutronError(try await api.neutron(.get, "/networks/\(id)", token: bob.token), 404, type: "NetworkNotFound")
            assertNeutronError(try await api.neutron(.delete, "/networks/\(id)", token: bob.token), 404, type: "NetworkNotFound")
            assertNeutronError(try await api.neutron(.post, "/networks", token: alice.token, body: ["network": ["provider:network_type": "vlan"]]),
                               403, type: "PolicyNotAuthorized")
            assertNeutronError(try await api.neutron(.post, "/networks", token: alice.token, body: ["network": ["shared": true]]), 403)

            let shared = try await api.neutronCreate("networks", "network", ["name": "public", "shared": true], token: admin)
            let seen = try await api.neutron(.get, "/networks", token: bob.token)
            XCTAssertEqual(seen.json["networks"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [shared["id"]?.stringValue].compactMap { $0 })

            let updated = try await api.neutron(.put, "/networks/\(id)", token: alice.token, body: ["network": ["name": "renamed"]])
            XCTAssertEqual(updated.json["network"]?["name"], "renamed", updated.text)
            XCTAssertEqual(updated.json["network"]?["revision_number"], 1)

            // A provider VLAN; the same id again is taken.
            let vlan = try await api.neutronCreate("networks", "network", ["provider:network_type": "vlan", "provider:physical_network": "physnet1",
                                                                           "provider:segmentation_id": 101], token: admin)
            XCTAssertEqual(vlan["mtu"], 1500)
            XCTAssertEqual(vlan["provider:segmentation_id"], 101)
            assertNeutronError(try await api.neutron(.post, "/networks", token: admin, body: ["network": [
                "provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 101]]), 409, type: "VlanIdInUse")
            assertNeutronError(try await api.neutron(.post, "/networks", token: admin, body: ["network": [
                "provider:network_type": "vlan", "provider:physical_network": "physnet9", "provider:segmentation_id": 5]]), 400)
            assertNeutronError(try await api.neutron(.post, "/networks", token: admin, body: ["network": [
                "provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 4095]]), 400)
            _ = try await api.neutronCreate("networks", "network", ["provider:network_type": "flat", "provider:physical_network": "physnet1"], token: admin)
            assertNeutronError(try await api.neutron(.post, "/networks", token: admin, body: ["network": [
                "provider:network_type": "flat", "provider:physical_network": "physnet1"]]), 409, type: "FlatNetworkInUse")
            let segments = try await api.neutron(.get, "/segments?network_id=\(vlan["id"]?.stringValue ?? "")", token: admin)
            XCTAssertEqual(segments.json["segments"]?.arrayValue?.first?["segmentation_id"], 101, segments.text)

            assertStatus(try await api.neutron(.delete, "/networks/\(id)", token: alice.token), 204)
            assertNeutronError(try await api.neutron(.get, "/networks/\(id)", token: alice.token), 404)
        }
    }

    func testTenantSegmentsRunOutAndComeBack() async throws {
        try await onEachEngine(settings: ["ml2_type_vxlan": ["vni_ranges": "1:5"]]) { cloud, api in
            let admin = try await api.adminToken(cloud)
            var ids: [String] = []
            for index in 0..<5 {
                ids.append(try await api.neutronCreate("networks", "network", ["name": .string("n\(index)")], token: admin)["id"]?.stringValue ?? "")
            }
            let sixth = try await api.neutron(.post, "/networks", token: admin, body: ["network": ["name": "n5"]])
            assertNeutronError(sixth, 503, type: "NoNetworkAvailable")
            XCTAssertEqual(sixth.json["NeutronError"]?["message"], "Unable to create the network. No tenant network is available for allocation.")
            assertStatus(try await api.neutron(.delete, "/networks/\(ids[2])", token: admin), 204)
            let again = try await api.neutronCreate("networks", "network", ["name": "n5"], token: admin)
            let shown = try await api.neutron(.get, "/networks/\(again["id"]?.stringValue ?? "")", token: admin)
            XCTAssertEqual(shown.json["network"]?["provider:segmentation_id"], 3)
        }
    }

    func testSubnetsValidateAndSubnetPoolsCarve() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let net = try await api.neutronCreate("networks", "network", ["name": "n"], token: admin)["id"]!
            let subnet = try await api.neutronCreate("subnets", "subnet", [
                "network_id": net, "ip_version": 4, "cidr": "10.0.0.0/24", "dns_nameservers": ["8.8.8.8"],
                "host_routes": [["destination": "10.1.0.0/16", "nexthop": "10.0.0.254"]]], token: admin)
            XCTAssertEqual(subnet["gateway_ip"], "10.0.0.1")
            XCTAssertEqual(subnet["allocation_pools"], [["start": "10.0.0.2", "end": "10.0.0.254"]])
            XCTAssertEqual(subnet["enable_dhcp"], true)
            assertNeutronError(try await api.neutron(.post, "/subnets", token: admin, body: ["subnet": [
                "network_id": net, "ip_version": 4, "cidr": "10.0.0.128/25"]]), 400, type: "InvalidInput")
            assertNeutronError(try await api.neutron(.post, "/subnets", token: admin, body: ["subnet": [
                "network_id": net, "ip_version": 4, "cidr": "10.2.0.1/24"]]), 400)
            assertNeutronError(try await api.neutron(.post, "/subnets", token: admin, body: ["subnet": [
                "network_id": net, "ip_version": 4, "cidr": "10.3.0.0/24", "allocation_pools": [["start": "10.3.0.1", "end": "10.3.0.9"]]]]),
                               409, type: "GatewayConflictWithAllocationPools")
            let v6 = try await api.neutronCreate("subnets", "subnet", ["network_id": net, "ip_version": 6, "cidr": "2001:db8::/64",
                                                                       "gateway_ip": .null], token: admin)
            XCTAssertEqual(v6["gateway_ip"], .null)
            XCTAssertEqual(v6["allocation_pools"], [["start": "2001:db8::1", "end": "2001:db8::ffff:ffff:ffff:ffff"]])

            let pool = try await api.neutronCreate("subnetpools", "subnetpool", ["name": "pool", "prefixes": ["192.168.0.0/16"],
                                                                                 "default_prefixlen": 24], token: admin)
            let first = try await api.neutronCreate("subnets", "subnet", ["network_id": net, "ip_version": 4, "subnetpool_id": pool["id"]!], token: admin)
            let second = try await api.neutronCreate("subnets", "subnet", ["network_id": net, "ip_version": 4, "subnetpool_id": pool["id"]!,
                                                                           "prefixlen": 26], token: admin)
            XCTAssertEqual(first["cidr"], "192.168.0.0/24")
            XCTAssertEqual(second["cidr"], "192.168.1.0/26")
            assertNeutronError(try await api.neutron(.delete, "/subnetpools/\(pool["id"]?.stringValue ?? "")", token: admin), 409)

            let port = try await api.neutronCreate("ports", "port", ["network_id": net, "fixed_ips": [["subnet_id": subnet["id"]!]]], token: admin)
            assertNeutronError(try await api.neutron(.delete, "/subnets/\(subnet["id"]?.stringValue ?? "")", token: admin), 409, type: "SubnetInUse")
            assertStatus(try await api.neutron(.delete, "/ports/\(port["id"]?.stringValue ?? "")", token: admin), 204)
            assertStatus(try await api.neutron(.delete, "/subnets/\(subnet["id"]?.stringValue ?? "")", token: admin), 204)
        }
    }

    func testConcurrentSubnetsNeitherOverlapNorShareAPoolPrefix() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let net = try await api.neutronCreate("networks", "network", ["name": "n"], token: alice.token)["id"] ?? .null
            let same = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<10 {
                    group.addTask { try await api.neutron(.post, "/subnets", token: alice.token, body: ["subnet": ["network_id": net, "ip_version": 4, "cidr": "10.8.0.0/24"]]).status }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            XCTAssertEqual(same.sorted(), [201] + Array(repeating: 400, count: 9))

            let pool = try await api.neutronCreate("subnetpools", "subnetpool", ["prefixes": ["172.20.0.0/24"], "default_prefixlen": 28, "shared": true], token: admin)
            let carved = try await withThrowingTaskGroup(of: API.Reply.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        let network = try await api.neutron(.post, "/networks", token: alice.token, body: ["network": [:]]).json["network"]?["id"] ?? .null
                        return try await api.neutron(.post, "/subnets", token: alice.token, body: ["subnet": ["network_id": network, "ip_version": 4, "subnetpool_id": pool["id"] ?? .null]])
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let cidrs = carved.compactMap { $0.json["subnet"]?["cidr"]?.stringValue }
            XCTAssertEqual(cidrs.count, 16)
            XCTAssertEqual(Set(cidrs).count, 16)
            for failure in carved where failure.status != 201 { assertNeutronError(failure, 409, type: "SubnetAllocationError") }
        }
    }

    func testPortsAllocateEveryAddressOnceUnderConcurrency() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let net = try await api.neutronCreate("networks", "network", ["name": "n"], token: admin)["id"]?.stringValue ?? ""
            let subnet = try await api.neutronCreate("subnets", "subnet", ["network_id": .string(net), "ip_version": 4, "cidr": "10.9.0.0/28"], token: admin)
            let results = try await withThrowingTaskGroup(of: API.Reply.self) { group in
                for _ in 0..<300 {
                    group.addTask { try await api.neutron(.post, "/ports", token: admin, body: ["port": ["network_id": .string(net)]]) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let created = results.filter { $0.status == 201 }
            XCTAssertEqual(created.count, 13)
            for failure in results where failure.status != 201 { assertNeutronError(failure, 409, type: "IpAddressGenerationFailure") }
            let addresses = created.compactMap { $0.json["port"]?["fixed_ips"]?.arrayValue?.first?["ip_address"]?.stringValue }
            XCTAssertEqual(Set(addresses).count, 13)
            XCTAssertEqual(Set(created.compactMap { $0.json["port"]?["mac_address"]?.stringValue }).count, 13)
            XCTAssertFalse(addresses.contains("10.9.0.1"), "the gateway is not in the pool")
            let listed = try await api.neutron(.get, "/ports?network_id=\(net)", token: admin)
            XCTAssertEqual(listed.json["ports"]?.arrayValue?.count, 13)
            XCTAssertEqual(created.first?.json["port"]?["fixed_ips"]?.arrayValue?.first?["subnet_id"], subnet["id"])
        }
    }

    func testPortsExplicitAddressesBindingAndFilters() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let net = try await api.neutronCreate("networks", "network", ["name": "n"], token: alice.token)["id"]?.stringValue ?? ""
            let subnet = try await api.neutronCreate("subnets", "subnet", ["network_id": .string(net), "ip_version": 4, "cidr": "10.5.0.0/24"],
                                                     token: alice.token)["id"]?.stringValue ?? ""
            let port = try await api.neutronCreate("ports", "port", ["network_id": .string(net), "device_id": "vm-1",
                                                                     "fixed_ips": [["subnet_id": .string(subnet), "ip_address": "10.5.0.50"]]], token: alice.token)
            XCTAssertEqual(port["fixed_ips"], [["subnet_id": .string(subnet), "ip_address": "10.5.0.50"]])
            XCTAssertEqual(port["status"], "DOWN")
            XCTAssertEqual(port["mac_address"]?.stringValue?.hasPrefix("fa:16:3e:"), true)
            XCTAssertNil(port["binding:vif_type"], "binding details are admin-only")
            assertNeutronError(try await api.neutron(.post, "/ports", token: alice.token, body: ["port": [
                "network_id": .string(net), "fixed_ips": [["ip_address": "10.5.0.50"]]]]), 409, type: "IpAddressAlreadyAllocated")
            assertNeutronError(try await api.neutron(.post, "/ports", token: alice.token, body: ["port": [
                "network_id": .string(net), "binding:host_id": "h1"]]), 403)

            // A bulk create makes all of its ports or none.
            assertNeutronError(try await api.neutron(.post, "/ports", token: alice.token, body: ["ports": [
                ["network_id": .string(net)], ["network_id": .string(net), "fixed_ips": [["ip_address": "10.5.0.50"]]]]]), 409, type: "IpAddressAlreadyAllocated")
            let before = try await api.neutron(.get, "/ports?network_id=\(net)", token: alice.token)
            XCTAssertEqual(before.json["ports"]?.arrayValue?.count, 1, before.text)
            let pair = try await api.neutron(.post, "/ports", token: alice.token, body: ["ports": [["network_id": .string(net)], ["network_id": .string(net)]]])
            assertStatus(pair, 201)
            XCTAssertEqual(pair.json["ports"]?.arrayValue?.count, 2)

            let bob = try await api.projectUser(admin: admin, name: "bob")
            assertNeutronError(try await api.neutron(.post, "/ports", token: bob.token, body: ["port": ["network_id": .string(net)]]), 404, type: "NetworkNotFound")
            assertStatus(try await api.neutron(.put, "/networks/\(net)", token: admin, body: ["network": ["shared": true]]), 200)
            assertStatus(try await api.neutron(.post, "/ports", token: bob.token, body: ["port": ["network_id": .string(net)]]), 201)
            assertNeutronError(try await api.neutron(.post, "/ports", token: bob.token, body: ["port": [
                "network_id": .string(net), "fixed_ips": [["ip_address": "10.5.0.1"]]]]), 403)
            assertNeutronError(try await api.neutron(.post, "/ports", token: bob.token, body: ["port": [
                "network_id": .string(net), "device_owner": "network:dhcp"]]), 403)
            assertStatus(try await api.neutron(.post, "/ports", token: bob.token, body: ["port": ["network_id": .string(net), "device_owner": "compute:nova"]]), 201)
            assertNeutronError(try await api.neutron(.put, "/networks/\(net)", token: admin, body: ["network": ["shared": false]]), 409, type: "InvalidSharedSetting")

            let id = port["id"]?.stringValue ?? ""
            let bound = try await api.neutron(.put, "/ports/\(id)", token: admin, body: ["port": ["binding:host_id": "host-1"]])
            XCTAssertEqual(bound.json["port"]?["binding:vif_type"], "other", bound.text)
            XCTAssertEqual(bound.json["port"]?["status"], "ACTIVE")
            _ = try await api.neutronCreate("ports", "port", ["network_id": .string(net)], token: alice.token)
            for query in ["device_id=vm-1", "fixed_ips=ip_address%3D10.5.0.50", "fixed_ips=ip_address_substr%3D0.50", "mac_address=\(port["mac_address"]?.stringValue ?? "")"] {
                let found = try await api.neutron(.get, "/ports?\(query)", token: alice.token)
                XCTAssertEqual(found.json["ports"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [id], query)
            }
            let moved = try await api.neutron(.put, "/ports/\(id)", token: alice.token, body: ["port": ["fixed_ips": [["ip_address": "10.5.0.60"]]]])
            XCTAssertEqual(moved.json["port"]?["fixed_ips"]?.arrayValue?.first?["ip_address"], "10.5.0.60", moved.text)
            assertNeutronError(try await api.neutron(.delete, "/networks/\(net)", token: alice.token), 409, type: "NetworkInUse")
        }
    }

    func testExtraDHCPOptionsAreSetMergedAndRemoved() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let net = try await api.neutronCreate("networks", "network", ["name": "n"], token: admin)["id"]?.stringValue ?? ""
            let port = try await api.neutronCreate("ports", "port", ["network_id": .string(net), "extra_dhcp_opts": [
                ["opt_name": "tftp-server", "opt_value": "10.0.0.5"], ["opt_name": "bootfile-name", "opt_value": "pxelinux.0"]]], token: admin)
            XCTAssertEqual(port["extra_dhcp_opts"]?.arrayValue?.count, 2, "\(port)")
            let id = port["id"]?.stringValue ?? ""
            let updated = try await api.neutron(.put, "/ports/\(id)", token: admin, body: ["port": ["extra_dhcp_opts": [
                ["opt_name": "tftp-server", "opt_value": "10.0.0.6"], ["opt_name": "bootfile-name", "opt_value": .null]]]])
            XCTAssertEqual(updated.json["port"]?["extra_dhcp_opts"], [["opt_name": "tftp-server", "opt_value": "10.0.0.6", "ip_version": 4]], updated.text)
            assertNeutronError(try await api.neutron(.put, "/ports/\(id)", token: admin, body: ["port": ["extra_dhcp_opts": [["opt_value": "x"]]]]),
                               400, type: "InvalidInput")
        }
    }

    func testQuotasLimitCreatesAndReportUsage() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let set = try await api.neutron(.put, "/quotas/\(alice.project)", token: admin, body: ["quota": ["network": 2, "port": 5]])
            XCTAssertEqual(set.json["quota"]?["network"], 2, set.text)
            assertNeutronError(try await api.neutron(.put, "/quotas/\(alice.project)", token: alice.token, body: ["quota": ["network": 50]]), 403)
            let results = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<6 { group.addTask { try await api.neutron(.post, "/networks", token: alice.token, body: ["network": [:]]).status } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            XCTAssertEqual(results.filter { $0 == 201 }.count, 2)
            assertNeutronError(try await api.neutron(.post, "/networks", token: alice.token, body: ["network": [:]]), 409, type: "OverQuota")
            let details = try await api.neutron(.get, "/quotas/\(alice.project)/details", token: alice.token)
            XCTAssertEqual(details.json["quota"]?["network"], ["limit": 2, "used": 2, "reserved": 0], details.text)
            XCTAssertEqual(details.json["quota"]?["subnet"]?["limit"], 100)
            let defaults = try await api.neutron(.get, "/quotas/\(alice.project)/default", token: alice.token)
            XCTAssertEqual(defaults.json["quota"]?["network"], 100)
            let listed = try await api.neutron(.get, "/quotas", token: admin)
            XCTAssertEqual(listed.json["quotas"]?.arrayValue?.first?["project_id"]?.stringValue, alice.project)
            assertStatus(try await api.neutron(.delete, "/quotas/\(alice.project)", token: admin), 204)
            let reset = try await api.neutron(.get, "/quotas/\(alice.project)", token: admin)
            XCTAssertEqual(reset.json["quota"]?["network"], 100)
            let zones = try await api.neutron(.get, "/availability_zones", token: alice.token)
            XCTAssertEqual(zones.json["availability_zones"]?.arrayValue?.count, 2, zones.text)
        }
    }

    func testListingPagesSortsProjectsAndTags() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            var ids: [String] = []
            for name in ["c", "a", "d", "b"] {
                ids.append(try await api.neutronCreate("networks", "network", ["name": .string(name)], token: admin)["id"]?.stringValue ?? "")
            }
            let sorted = try await api.neutron(.get, "/networks?sort_key=name&sort_dir=asc&fields=name&fields=id", token: admin)
            XCTAssertEqual(sorted.json["networks"]?.arrayValue?.compactMap { $0["name"]?.stringValue }, ["a", "b", "c", "d"])
            XCTAssertEqual(sorted.json["networks"]?.arrayValue?.first?.objectValue?.keys.sorted(), ["id", "name"])
            let page = try await api.neutron(.get, "/networks?sort_key=name&limit=2", token: admin)
            XCTAssertEqual(page.json["networks"]?.arrayValue?.compactMap { $0["name"]?.stringValue }, ["a", "b"])
            let next = try XCTUnwrap(page.json["networks_links"]?.arrayValue?.first { $0["rel"] == "next" }?["href"]?.stringValue)
            let marker = try XCTUnwrap(page.json["networks"]?.arrayValue?.last?["id"]?.stringValue)
            XCTAssertTrue(next.contains("marker=\(marker)"), next)
            let rest = try await api.neutron(.get, "/networks?sort_key=name&limit=2&marker=\(marker)", token: admin)
            XCTAssertEqual(rest.json["networks"]?.arrayValue?.compactMap { $0["name"]?.stringValue }, ["c", "d"])

            assertStatus(try await api.neutron(.put, "/networks/\(ids[0])/tags", token: admin, body: ["tags": ["red", "blue"]]), 200)
            assertStatus(try await api.neutron(.put, "/networks/\(ids[1])/tags/red", token: admin), 201)
            let red = try await api.neutron(.get, "/networks?tags=red", token: admin)
            XCTAssertEqual(Set(red.json["networks"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []), Set(ids[0...1]))
            let tags = try await api.neutron(.get, "/networks/\(ids[0])/tags", token: admin)
            XCTAssertEqual(tags.json["tags"], ["blue", "red"])
            assertStatus(try await api.neutron(.delete, "/networks/\(ids[0])/tags/red", token: admin), 204)
            assertNeutronError(try await api.neutron(.delete, "/networks/\(ids[0])/tags/red", token: admin), 404)
            let revised = try await api.neutron(.get, "/networks/\(ids[0])", token: admin)
            XCTAssertEqual(revised.json["network"]?["revision_number"], 2)
        }
    }

    /// Filters on a list attribute keep items whose list holds a value asked for (`openstack
    /// port list --security-group`); a value a boolean or integer attribute cannot take is a 400.
    func testListFiltersOnListsAndTypedValues() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let network = try await api.neutronCreate("networks", "network", ["name": "n"], token: admin)
            let networkID = try XCTUnwrap(network["id"]?.stringValue)
            let web = try await api.neutronCreate("security-groups", "security_group", ["name": "web"], token: admin)
            let db = try await api.neutronCreate("security-groups", "security_group", ["name": "db"], token: admin)
            let webID = try XCTUnwrap(web["id"]?.stringValue), dbID = try XCTUnwrap(db["id"]?.stringValue)
            var ports: [String: String] = [:]
            for (name, groups) in [("w", [webID]), ("wd", [webID, dbID]), ("d", [dbID]), ("none", [])] {
                let port = try await api.neutronCreate("ports", "port", ["network_id": .string(networkID), "name": .string(name),
                                                                          "security_groups": .array(groups.map { .string($0) })], token: admin)
                ports[name] = port["id"]?.stringValue
            }
            func names(_ query: String) async throws -> Set<String> {
                let reply = try await api.neutron(.get, "/ports?network_id=\(networkID)&\(query)", token: admin)
                XCTAssertEqual(reply.status, 200, "\(query): \(reply.text)")
                return Set(reply.json["ports"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? [])
            }
            var value = try await names("security_groups=\(webID)")
            XCTAssertEqual(value, ["w", "wd"])
            value = try await names("security_groups=\(dbID)")
            XCTAssertEqual(value, ["wd", "d"])
            value = try await names("security_groups=\(webID)&security_groups=\(dbID)")
            XCTAssertEqual(value, ["w", "wd", "d"])
            value = try await names("security_groups=00000000-0000-0000-0000-000000000000")
            XCTAssertEqual(value, [])
            value = try await names("admin_state_up=True")
            XCTAssertEqual(value.count, 4)
            value = try await names("admin_state_up=0")
            XCTAssertEqual(value, [])

            for path in ["/ports?admin_state_up=bogus", "/networks?shared=yes", "/networks?mtu=big", "/routers?admin_state_up=maybe",
                         "/subnets?ip_version=four", "/networks?router:external=nope&name=none-such"] {
                let reply = try await api.neutron(.get, path, token: admin)
                assertNeutronError(reply, 400)
                XCTAssertEqual(reply.json["NeutronError"]?["type"]?.stringValue, "InvalidInput", "\(path): \(reply.text)")
            }
        }
    }
}
