import Foundation
import NimbusCore
import NimbusTestSupport
import XCTest

/// Nova's floating IP proxies on Neutron's floating IPs: `os-floating-ips` below 2.36 and the
/// `addFloatingIp`/`removeFloatingIp` actions below 2.44; and `injectNetworkInfo`.
final class ComputeFloatingIPProxyTests: XCTestCase {
    func testFloatingIPsAreAllocatedAssociatedAndReleasedThroughTheProxies() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let member = try await api.projectUser(admin: admin, name: "floater")
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let external = try await api.call(.post, "/networking/v2.0/networks", token: admin,
                                              body: ["network": ["name": "ext", "router:external": true]])
            let externalID = try XCTUnwrap(external.json["network"]?["id"]?.stringValue, external.text)
            _ = try await api.call(.post, "/networking/v2.0/subnets", token: admin,
                                   body: ["subnet": ["network_id": .string(externalID), "cidr": "172.28.0.0/24", "ip_version": 4]])
            let network = try await api.call(.post, "/networking/v2.0/networks", token: member.token, body: ["network": ["name": "inside"]])
            let networkID = try XCTUnwrap(network.json["network"]?["id"]?.stringValue, network.text)
            let subnet = try await api.call(.post, "/networking/v2.0/subnets", token: member.token,
                                            body: ["subnet": ["network_id": .string(networkID), "cidr": "10.41.0.0/24", "ip_version": 4]])
            let subnetID = try XCTUnwrap(subnet.json["subnet"]?["id"]?.stringValue, subnet.text)
            let router = try await api.call(.post, "/networking/v2.0/routers", token: member.token,
                                            body: ["router": ["name": "r", "external_gateway_info": ["network_id": .string(externalID)]]])
            let routerID = try XCTUnwrap(router.json["router"]?["id"]?.stringValue, router.text)
            let joined = try await api.call(.put, "/networking/v2.0/routers/\(routerID)/add_router_interface", token: member.token,
                                            body: ["subnet_id": .string(subnetID)])
            XCTAssertEqual(joined.status, 200, joined.text)
            let booted = try await Compute.boot(api, token: member.token, image: image, flavor: flavor, extra: ["networks": [["uuid": .string(networkID)]]])
            let serverID = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)
            let server = try await Compute.waitFor(api, serverID, token: member.token, status: "ACTIVE")
            let fixed = try XCTUnwrap(server["addresses"]?["inside"]?.arrayValue?.first?["addr"]?.stringValue, server.serialized())

            // Allocate: from the pool named, or the only external network when none is.
            let v = "2.35"
            let allocated = try await Compute.call(api, .post, "/os-floating-ips", token: member.token, body: ["pool": "ext"], version: v)
            XCTAssertEqual(allocated.status, 200, allocated.text)
            let floating = try XCTUnwrap(allocated.json["floating_ip"])
            let floatingID = try XCTUnwrap(floating["id"]?.stringValue)
            let address = try XCTUnwrap(floating["ip"]?.stringValue)
            XCTAssertTrue(address.hasPrefix("172.28.0."), allocated.text)
            XCTAssertEqual(floating["pool"], "ext")
            XCTAssertEqual(floating["instance_id"], .null)
            XCTAssertEqual(floating["fixed_ip"], .null)
            let neutronSide = try await api.call(.get, "/networking/v2.0/floatingips/\(floatingID)", token: member.token)
            XCTAssertEqual(neutronSide.json["floatingip"]?["project_id"]?.stringValue, member.project, neutronSide.text)
            let defaultPool = try await Compute.call(api, .post, "/os-floating-ips", token: member.token, body: [:], version: v)
            XCTAssertEqual(defaultPool.json["floating_ip"]?["pool"], "ext", defaultPool.text)
            let unknownPool = try await Compute.call(api, .post, "/os-floating-ips", token: member.token, body: ["pool": "nowhere"], version: v)
            XCTAssertEqual(unknownPool.status, 404, unknownPool.text)
            XCTAssertEqual(unknownPool.json["itemNotFound"]?["message"]?.stringValue, "Floating IP pool not found.")
            let listed = try await Compute.call(api, .get, "/os-floating-ips", token: member.token, version: v)
            XCTAssertEqual(Set(listed.json["floating_ips"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []),
                           [floatingID, defaultPool.json["floating_ip"]?["id"]?.stringValue ?? ""], listed.text)
            let adminList = try await Compute.call(api, .get, "/os-floating-ips", token: admin, version: v)
            XCTAssertEqual(adminList.json["floating_ips"], [], "an admin lists its own project's only: \(adminList.text)")
            let unknown = try await Compute.call(api, .get, "/os-floating-ips/\(Identifiers.uuid())", token: member.token, version: v)
            XCTAssertEqual(unknown.status, 404, unknown.text)

            // Associate: the server's first IPv4 address unless one is named.
            for (body, status) in [(["address": ""] as JSON, 400), (["address": .string(address), "fixed_address": "10.41.0.250"], 400),
                                   (["address": .string(address), "extra": 1], 400), (["address": "192.0.2.1"], 404)] {
                let refused = try await Compute.action(api, serverID, token: member.token, ["addFloatingIp": body], version: v)
                XCTAssertEqual(refused.status, status, "\(body.serialized()): \(refused.text)")
            }
            let added = try await Compute.action(api, serverID, token: member.token, ["addFloatingIp": ["address": .string(address)]], version: v)
            XCTAssertEqual(added.status, 202, added.text)
            let associated = try await Compute.call(api, .get, "/os-floating-ips/\(floatingID)", token: member.token, version: v)
            XCTAssertEqual(associated.json["floating_ip"]?["instance_id"]?.stringValue, serverID, associated.text)
            XCTAssertEqual(associated.json["floating_ip"]?["fixed_ip"]?.stringValue, fixed)
            let shown = try await Compute.call(api, .get, "/servers/\(serverID)", token: member.token)
            XCTAssertEqual(shown.json["server"]?["addresses"]?["inside"]?.arrayValue?.compactMap { $0["addr"]?.stringValue }, [fixed, address], shown.text)
            let tooNew = try await Compute.action(api, serverID, token: member.token, ["addFloatingIp": ["address": .string(address)]], version: "2.44")
            XCTAssertEqual(tooNew.status, 404, tooNew.text)

            // Remove: only from the server it is associated with.
            let removed = try await Compute.action(api, serverID, token: member.token, ["removeFloatingIp": ["address": .string(address)]], version: v)
            XCTAssertEqual(removed.status, 202, removed.text)
            let again = try await Compute.action(api, serverID, token: member.token, ["removeFloatingIp": ["address": .string(address)]], version: v)
            XCTAssertEqual(again.status, 409, again.text)
            let unassociated = try await Compute.call(api, .get, "/os-floating-ips/\(floatingID)", token: member.token, version: v)
            XCTAssertEqual(unassociated.json["floating_ip"]?["instance_id"], .null, unassociated.text)
            let after = try await Compute.call(api, .get, "/servers/\(serverID)", token: member.token)
            XCTAssertEqual(after.json["server"]?["addresses"]?["inside"]?.arrayValue?.count, 1, after.text)

            // Release, associated or not.
            _ = try await Compute.action(api, serverID, token: member.token, ["addFloatingIp": ["address": .string(address), "fixed_address": .string(fixed)]],
                                         version: v)
            let released = try await Compute.call(api, .delete, "/os-floating-ips/\(floatingID)", token: member.token, version: v)
            XCTAssertEqual(released.status, 202, released.text)
            let gone = try await Compute.call(api, .get, "/os-floating-ips/\(floatingID)", token: member.token, version: v)
            XCTAssertEqual(gone.status, 404, gone.text)
            let goneAgain = try await Compute.call(api, .delete, "/os-floating-ips/\(floatingID)", token: member.token, version: v)
            XCTAssertEqual(goneAgain.status, 404, goneAgain.text)
            let removedProxy = try await Compute.call(api, .get, "/os-floating-ips", token: member.token, version: "2.36")
            XCTAssertEqual(removedProxy.status, 404, removedProxy.text)
        }
    }

    /// `injectNetworkInfo`: admin only (an admin passes a server's lock, as in Nova), and then
    /// nothing more to do (no driver Nimbus has rewrites a guest's network configuration).
    func testInjectNetworkInfoIsAnAdminActionThatChecksTheLock() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let member = try await api.projectUser(admin: admin, name: "injected")
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let booted = try await Compute.boot(api, token: member.token, image: image, flavor: flavor)
            let serverID = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)
            _ = try await Compute.waitFor(api, serverID, token: member.token, status: "ACTIVE")
            let asMember = try await Compute.action(api, serverID, token: member.token, ["injectNetworkInfo": .null])
            XCTAssertEqual(asMember.status, 403, asMember.text)
            let asAdmin = try await Compute.action(api, serverID, token: admin, ["injectNetworkInfo": .null])
            XCTAssertEqual(asAdmin.status, 202, asAdmin.text)
            let locked = try await Compute.action(api, serverID, token: member.token, ["lock": .null])
            XCTAssertEqual(locked.status, 202, locked.text)
            let lockedAdmin = try await Compute.action(api, serverID, token: admin, ["injectNetworkInfo": .null])
            XCTAssertEqual(lockedAdmin.status, 202, "an admin passes the lock: \(lockedAdmin.text)")
            let unknown = try await Compute.action(api, Identifiers.uuid(), token: admin, ["injectNetworkInfo": .null])
            XCTAssertEqual(unknown.status, 404, unknown.text)
            _ = try await Compute.waitFor(api, serverID, token: member.token, status: "ACTIVE")
        }
    }
}
