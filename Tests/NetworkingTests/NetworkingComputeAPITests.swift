import Foundation
import NimbusCore
import NimbusTestSupport
import XCTest

/// The in-process API Nova uses for instance ports.
final class NetworkingComputeAPITests: XCTestCase {
    func testInstancePortsAreCreatedBoundListedAndReleased() async throws {
        try await onEachEngine { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let net = try await api.neutronCreate("networks", "network", ["name": "n"], token: alice.token)["id"]?.stringValue ?? ""
            _ = try await api.neutronCreate("subnets", "subnet", ["network_id": .string(net), "ip_version": 4, "cidr": "10.7.0.0/24"], token: alice.token)
            _ = try await api.neutronCreate("subnets", "subnet", ["network_id": .string(net), "ip_version": 6, "cidr": "2001:db8:7::/64",
                                                                  "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"], token: alice.token)
            let network = plane.network

            let port = try await network.createInstancePort(network: net, project: alice.project, instance: "vm-1", fixedIPv4: "10.7.0.20")
            let addresses = port["fixed_ips"]?.arrayValue?.compactMap { $0["ip_address"]?.stringValue } ?? []
            XCTAssertEqual(addresses.first, "10.7.0.20")
            // SLAAC: the prefix and the MAC's modified EUI-64, fa:16:3e:… → f816:3eff:fe…
            XCTAssertEqual(addresses.count, 2, "\(addresses)")
            XCTAssertTrue(addresses.last?.hasPrefix("2001:db8:7:0:f816:3eff:fe") == true, "\(addresses)")
            XCTAssertEqual(port["binding:vif_type"], "unbound")

            let id = port["id"]?.stringValue ?? ""
            let bound = try await network.bindPort(id, host: "fake-1", instance: "vm-1", availabilityZone: "nova")
            XCTAssertEqual(bound["binding:host_id"], "fake-1")
            XCTAssertEqual(bound["device_owner"], "compute:nova")
            XCTAssertEqual(bound["status"], "ACTIVE")
            XCTAssertEqual(bound["binding:vif_type"], "other")
            do {
                _ = try await network.bindPort(id, host: "fake-1", instance: "vm-2", availabilityZone: "nova")
                XCTFail("a port bound to one instance is not bound to another")
            } catch let error as APIError {
                XCTAssertEqual(error.code, "PortInUse")
            }

            let own = try await api.neutronCreate("ports", "port", ["network_id": .string(net)], token: alice.token)["id"]?.stringValue ?? ""
            _ = try await network.bindPort(own, host: "fake-1", instance: "vm-1", availabilityZone: "nova")
            let attached = try await network.devicePorts("vm-1")
            XCTAssertEqual(Set(attached.compactMap { $0["id"]?.stringValue }), [id, own])

            try await network.releaseDevicePorts("vm-1", keep: [own])
            let left = try await network.devicePorts("vm-1")
            XCTAssertEqual(left.count, 0)
            let kept = try await api.neutron(.get, "/ports/\(own)", token: admin)
            XCTAssertEqual(kept.json["port"]?["binding:vif_type"], "unbound", kept.text)
            XCTAssertEqual(kept.json["port"]?["device_id"], "")
            assertNeutronError(try await api.neutron(.get, "/ports/\(id)", token: admin), 404, type: "PortNotFound")

            do {
                let bob = try await api.projectUser(admin: admin, name: "bob")
                _ = try await network.createInstancePort(network: net, project: bob.project, instance: "vm-3")
                XCTFail("another project's private network takes no ports")
            } catch let error as APIError {
                XCTAssertEqual(error.code, "NetworkNotFound")
            }
        }
    }
}
