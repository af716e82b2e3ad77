import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

/// A network another project shared through an RBAC policy takes that project's servers.
final class SharedNetworkBootTests: XCTestCase {
    func testAServerBootsOnANetworkSharedWithItsProjectOnly() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")
            let carol = try await api.projectUser(admin: admin, name: "carol")
            let network = try await api.call(.post, "/networking/v2.0/networks", token: alice.token, body: ["network": ["name": "alices"]])
            let networkID = try XCTUnwrap(network.json["network"]?["id"]?.stringValue, network.text)
            let subnet = try await api.call(.post, "/networking/v2.0/subnets", token: alice.token,
                                            body: ["subnet": ["network_id": .string(networkID), "cidr": "10.33.0.0/24", "ip_version": 4]])
            XCTAssertEqual(subnet.status, 201, subnet.text)
            let shared = try await api.call(.post, "/networking/v2.0/rbac-policies", token: alice.token, body: ["rbac_policy": [
                "object_type": "network", "object_id": .string(networkID), "action": "access_as_shared", "target_tenant": .string(bob.project)]])
            XCTAssertEqual(shared.status, 201, shared.text)

            let booted = try await Compute.boot(api, token: bob.token, image: image, flavor: flavor, extra: ["networks": [["uuid": .string(networkID)]]])
            let serverID = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)
            _ = try await Compute.waitFor(api, serverID, token: bob.token, status: "ACTIVE")
            let ports = try await api.call(.get, "/networking/v2.0/ports?device_id=\(serverID)", token: bob.token)
            let port = try XCTUnwrap(ports.json["ports"]?.arrayValue?.first, ports.text)
            XCTAssertEqual(port["network_id"]?.stringValue, networkID)
            XCTAssertEqual(port["project_id"]?.stringValue, bob.project)

            let refused = try await Compute.boot(api, token: carol.token, image: image, flavor: flavor, extra: ["networks": [["uuid": .string(networkID)]]])
            XCTAssertEqual(refused.status, 400, refused.text)
            // Bob's server's port keeps the policy in use.
            let policy = shared.json["rbac_policy"]?["id"]?.stringValue ?? ""
            let inUse = try await api.call(.delete, "/networking/v2.0/rbac-policies/\(policy)", token: alice.token)
            XCTAssertEqual(inUse.status, 409, inUse.text)
        }
    }
}
