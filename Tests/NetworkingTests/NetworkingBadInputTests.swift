import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

/// Request input that once reached a trapping operation in Neutron's API (issue #12).
final class NetworkingBadInputTests: XCTestCase {
    /// A subnet pool's owner could update an IPv4 pool's prefix bounds to /64 (the update
    /// took 0…128 whatever the version, and did not keep min ≤ default ≤ max); carving a
    /// subnet from it then built a network with negative host bits and trapped. The update is
    /// checked as the create is now.
    func testSubnetPoolBoundsOnUpdate() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let member = try await api.projectUser(admin: admin, name: "pool-owner")
            let net = try await api.neutronCreate("networks", "network", ["name": "n"], token: member.token)["id"] ?? .null
            let pool = try await api.neutronCreate("subnetpools", "subnetpool", ["name": "p", "prefixes": ["10.50.0.0/16"], "default_prefixlen": 24],
                                                   token: member.token)
            let path = "/subnetpools/\(pool["id"]?.stringValue ?? "")"
            assertNeutronError(try await api.neutron(.put, path, token: member.token, body: ["subnetpool": ["max_prefixlen": 64, "default_prefixlen": 64]]), 400)
            assertNeutronError(try await api.neutron(.put, path, token: member.token, body: ["subnetpool": ["min_prefixlen": 28]]), 400,
                               type: "IllegalSubnetPoolPrefixBounds")
            let narrowed = try await api.neutron(.put, path, token: member.token, body: ["subnetpool": ["max_prefixlen": 30, "default_prefixlen": 26]])
            XCTAssertEqual(narrowed.status, 200, narrowed.text)
            let subnet = try await api.neutronCreate("subnets", "subnet", ["network_id": net, "ip_version": 4, "subnetpool_id": pool["id"] ?? .null],
                                                     token: member.token)
            XCTAssertEqual(subnet["cidr"], "10.50.0.0/26")
        }
    }
}
