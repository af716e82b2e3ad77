import Foundation
import NimbusCore
import NimbusTestSupport
import XCTest

/// Behaviours Tempest's compute tests check that sit between the main server calls:
/// `OS-DCF:diskConfig` through rebuild and resize, createImage's metadata and its 409 while a
/// snapshot is under way, security groups checked for a server without ports, the proxy's
/// rule CIDRs as given, and get-me-a-network for several servers at once.
final class ComputeTempestGapTests: XCTestCase {
    func testDiskConfigGivenToRebuildAndResizeIsKept() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(2)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let bigger = try await Compute.call(api, .post, "/flavors", token: admin,
                                                body: ["flavor": ["name": "bigger", "ram": 1024, "vcpus": 2, "disk": 1]])
            let biggerID = try XCTUnwrap(bigger.json["flavor"]?["id"]?.stringValue, bigger.text)
            let booted = try await Compute.boot(api, token: admin, image: image, flavor: flavor, extra: ["OS-DCF:diskConfig": "AUTO"])
            let id = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)
            let shown1 = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
            XCTAssertEqual(shown1["OS-DCF:diskConfig"], "AUTO")

            let rebuilt = try await Compute.action(api, id, token: admin, ["rebuild": ["imageRef": .string(image), "OS-DCF:diskConfig": "MANUAL"]])
            XCTAssertEqual(rebuilt.status, 202, rebuilt.text)
            XCTAssertEqual(rebuilt.json["server"]?["OS-DCF:diskConfig"], "MANUAL", rebuilt.text)
            let shown2 = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
            XCTAssertEqual(shown2["OS-DCF:diskConfig"], "MANUAL")

            let badValue = try await Compute.action(api, id, token: admin, ["resize": ["flavorRef": .string(biggerID), "OS-DCF:diskConfig": "SOMETIMES"]])
            XCTAssertEqual(badValue.status, 400, badValue.text)
            let resized = try await Compute.action(api, id, token: admin, ["resize": ["flavorRef": .string(biggerID), "OS-DCF:diskConfig": "AUTO"]])
            XCTAssertEqual(resized.status, 202, resized.text)
            let shown3 = try await Compute.waitFor(api, id, token: admin, status: "VERIFY_RESIZE")
            XCTAssertEqual(shown3["OS-DCF:diskConfig"], "AUTO")
            let confirmed = try await Compute.action(api, id, token: admin, ["confirmResize": .null])
            XCTAssertEqual(confirmed.status, 204, confirmed.text)
            let shown4 = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
            XCTAssertEqual(shown4["OS-DCF:diskConfig"], "AUTO")
            let badCreate = try await Compute.boot(api, token: admin, image: image, flavor: flavor, extra: ["OS-DCF:diskConfig": "auto"])
            XCTAssertEqual(badCreate.status, 400, badCreate.text)
        }
    }

    /// Before 2.75 the server a rebuild or an update answers with shows its addresses without
    /// the OS-EXT-IPS extensions (Nova's `extend_address=False`); from 2.75 as GET shows them.
    func testRebuildAndUpdateShowPlainAddressesBefore275() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let network = try await api.call(.post, "/networking/v2.0/networks", token: admin, body: ["network": ["name": "plain"]])
            let networkID = try XCTUnwrap(network.json["network"]?["id"]?.stringValue, network.text)
            _ = try await api.call(.post, "/networking/v2.0/subnets", token: admin,
                                   body: ["subnet": ["network_id": .string(networkID), "cidr": "10.31.0.0/24", "ip_version": 4]])
            let booted = try await Compute.boot(api, token: admin, image: image, flavor: flavor, extra: ["networks": [["uuid": .string(networkID)]]])
            let id = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)
            _ = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
            let old = try await Compute.action(api, id, token: admin, ["rebuild": ["imageRef": .string(image)]], version: "2.1")
            XCTAssertEqual(old.status, 202, old.text)
            let entry = try XCTUnwrap(old.json["server"]?["addresses"]?["plain"]?.arrayValue?.first, old.text)
            XCTAssertEqual(Set(entry.objectValue?.keys.map { $0 } ?? []), ["version", "addr"], old.text)
            _ = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
            let renamed = try await Compute.call(api, .put, "/servers/\(id)", token: admin, body: ["server": ["name": "again"]], version: "2.74")
            XCTAssertEqual(renamed.json["server"]?["addresses"]?["plain"]?.arrayValue?.first?["OS-EXT-IPS:type"], nil, renamed.text)
            let full = try await Compute.call(api, .put, "/servers/\(id)", token: admin, body: ["server": ["name": "full"]], version: "2.75")
            XCTAssertEqual(full.json["server"]?["addresses"]?["plain"]?.arrayValue?.first?["OS-EXT-IPS:type"], "fixed", full.text)
        }
    }

    func testCreateImageMetadataWinsAndASecondSnapshotWaitsForTheFirst() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1, extra: ["fake_hosts": ["snapshot_seconds": "2"]])) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let (id, _) = try await Compute.activeServer(api, admin: admin)
            let first = try await Compute.action(api, id, token: admin, ["createImage": ["name": "snap", "metadata": ["image_type": "test", "k": "v"]]])
            XCTAssertEqual(first.status, 202, first.text)
            let imageID = try XCTUnwrap(first.json["image_id"]?.stringValue, first.text)
            let second = try await Compute.action(api, id, token: admin, ["createImage": ["name": "snap2"]])
            XCTAssertEqual(second.status, 409, "a snapshot is under way: \(second.text)")
            XCTAssertTrue(second.json["conflictingRequest"]?["message"]?.stringValue?.contains("task_state") ?? false, second.text)
            _ = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
            let image = try await api.call(.get, "/image/v2/images/\(imageID)", token: admin)
            XCTAssertEqual(image.json["image_type"], "test", image.text)
            XCTAssertEqual(image.json["k"], "v")
            XCTAssertEqual(image.json["instance_uuid"]?.stringValue, id)
            let third = try await Compute.action(api, id, token: admin, ["createImage": ["name": "snap3"]])
            XCTAssertEqual(third.status, 202, "the first one is done: \(third.text)")
            _ = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
        }
    }

    func testServersChecksTheirSecurityGroupsEvenWithoutAPort() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let member = try await api.projectUser(admin: admin, name: "grouped")
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let unknown = try await Compute.boot(api, token: member.token, image: image, flavor: flavor,
                                                 extra: ["security_groups": [["name": "no-such-group"]]])
            XCTAssertEqual(unknown.status, 400, unknown.text)
            XCTAssertEqual(unknown.json["badRequest"]?["message"]?.stringValue, "Security group no-such-group not found for project \(member.project).")
            let known = try await Compute.boot(api, token: member.token, image: image, flavor: flavor, extra: ["security_groups": [["name": "default"]]])
            XCTAssertEqual(known.status, 202, known.text)
            _ = try await Compute.waitFor(api, try XCTUnwrap(known.json["server"]?["id"]?.stringValue), token: member.token, status: "ACTIVE")
        }
    }

    func testTheRuleProxyKeepsTheCIDRAsGiven() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let member = try await api.projectUser(admin: admin, name: "cidrs")
            let group = try await Compute.call(api, .post, "/os-security-groups", token: member.token,
                                               body: ["security_group": ["name": "g", "description": "d"]], version: "2.35")
            let groupID = try XCTUnwrap(group.json["security_group"]?["id"]?.stringValue, group.text)
            let rule = try await Compute.call(api, .post, "/os-security-group-rules", token: member.token, body: ["security_group_rule": [
                "parent_group_id": .string(groupID), "ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.2.3.124/24"]], version: "2.35")
            XCTAssertEqual(rule.status, 200, rule.text)
            XCTAssertEqual(rule.json["security_group_rule"]?["ip_range"], ["cidr": "10.2.3.124/24"])
            let shown = try await Compute.call(api, .get, "/os-security-groups/\(groupID)", token: member.token, version: "2.35")
            XCTAssertEqual(shown.json["security_group"]?["rules"]?.arrayValue?.first?["ip_range"], ["cidr": "10.2.3.124/24"], shown.text)
        }
    }

    /// Tempest's `test_server_multi_create_auto_allocate`: three servers with `auto` in one
    /// request all get an address on the project's one auto-allocated network.
    func testSeveralServersWithAutoShareTheAutoAllocatedNetwork() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let member = try await api.projectUser(admin: admin, name: "gman")
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let external = try await api.call(.post, "/networking/v2.0/networks", token: admin,
                                              body: ["network": ["name": "public", "router:external": true, "is_default": true]])
            let externalID = try XCTUnwrap(external.json["network"]?["id"]?.stringValue, external.text)
            _ = try await api.call(.post, "/networking/v2.0/subnets", token: admin,
                                   body: ["subnet": ["network_id": .string(externalID), "cidr": "172.29.0.0/24", "ip_version": 4]])
            _ = try await api.call(.post, "/networking/v2.0/subnetpools", token: admin, body: ["subnetpool": [
                "name": "default", "prefixes": ["10.210.0.0/16"], "default_prefixlen": 24, "is_default": true, "shared": true]])
            let booted = try await Compute.call(api, .post, "/servers", token: member.token, body: ["server": [
                "name": "many", "imageRef": .string(image), "flavorRef": .string(flavor), "networks": "auto", "min_count": 3]], version: "2.37")
            XCTAssertEqual(booted.status, 202, booted.text)
            let listed = try await Compute.call(api, .get, "/servers?name=many", token: member.token)
            let ids = listed.json["servers"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
            XCTAssertEqual(ids.count, 3, listed.text)
            var networks: Set<String> = []
            for id in ids {
                let server = try await Compute.waitFor(api, id, token: member.token, status: "ACTIVE")
                let addresses = server["addresses"]?.objectValue ?? [:]
                XCTAssertEqual(addresses.count, 1, server.serialized())
                networks.formUnion(addresses.keys)
            }
            XCTAssertEqual(networks, ["auto_allocated_network"])
            let own = try await api.call(.get, "/networking/v2.0/networks?project_id=\(member.project)", token: member.token)
            XCTAssertEqual(own.json["networks"]?.arrayValue?.count, 1, own.text)
        }
    }
}
