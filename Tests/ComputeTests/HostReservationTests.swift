import Compute
import Foundation
import NimbusCore
import NimbusTestSupport
import XCTest

/// `[DEFAULT] reserved_host_*` on a host become the `reserved` of its provider's inventory, as
/// Nova's compute reports them, so placement never gives a server what the host keeps.
final class HostReservationTests: XCTestCase {
    func testReservationsAreTheProvidersReservedAndABootPastThemIsRefused() async throws {
        let reserved = ["reserved_host_memory_mb": "4096", "reserved_host_cpus": "2", "reserved_host_disk_mb": "10241"]
        try await onEachEngine(settings: Compute.fakeHosts(1, extra: ["DEFAULT": reserved])) { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            // The host registers in the background: wait for its provider.
            var provider: String?
            for _ in 0..<200 where provider == nil {
                let providers = try await api.call(.get, "/placement/resource_providers?name=fake-1", token: admin)
                provider = providers.json["resource_providers"]?.arrayValue?.first?["uuid"]?.stringValue
                if provider == nil { try await Task.sleep(for: .milliseconds(50)) }
            }
            let providerID = try XCTUnwrap(provider, "fake-1 registered no resource provider")
            let inventories = try await api.call(.get, "/placement/resource_providers/\(providerID)/inventories", token: admin)
            let inventory = inventories.json["inventories"] ?? .null
            XCTAssertEqual(inventory["MEMORY_MB"]?["total"], 16384, inventories.text)
            XCTAssertEqual(inventory["MEMORY_MB"]?["reserved"], 4096, inventories.text)
            XCTAssertEqual(inventory["VCPU"]?["total"], 8, inventories.text)
            XCTAssertEqual(inventory["VCPU"]?["reserved"], 2, inventories.text)
            XCTAssertEqual(inventory["DISK_GB"]?["total"], 200, inventories.text)
            XCTAssertEqual(inventory["DISK_GB"]?["reserved"], 11, "10241 MiB is reserved as whole GiB, rounded up: \(inventories.text)")

            // RAM for servers: (16384 − 4096) × 1.0. One MiB more does not fit anywhere.
            let (image, tooBig) = try await Compute.bootables(api, admin: admin, vcpus: 1, ram: 12289)
            let refused = try await Compute.boot(api, token: admin, image: image, flavor: tooBig, name: "too-big")
            let refusedID = try XCTUnwrap(refused.json["server"]?["id"]?.stringValue, refused.text)
            let failed = try await Compute.waitFor(api, refusedID, token: admin, status: "ERROR")
            XCTAssertTrue(failed["fault"]?["message"]?.stringValue?.hasPrefix("No valid host was found") == true, failed.serialized())

            let (_, fits) = try await Compute.bootables(api, admin: admin, vcpus: 1, ram: 12288)
            let booted = try await Compute.boot(api, token: admin, image: image, flavor: fits, name: "fits")
            let bootedID = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)
            _ = try await Compute.waitFor(api, bootedID, token: admin, status: "ACTIVE")

            // The hypervisor counts the reservation as used, as Nova's resource tracker does.
            let hypervisors = try await Compute.call(api, .get, "/os-hypervisors/detail", token: admin, version: "2.87")
            let node = hypervisors.json["hypervisors"]?.arrayValue?.first ?? .null
            XCTAssertEqual(node["memory_mb"], 16384, hypervisors.text)
            XCTAssertEqual(node["memory_mb_used"], 16384, hypervisors.text)
            XCTAssertEqual(node["free_ram_mb"], 0, hypervisors.text)
            XCTAssertEqual(node["local_gb_used"], 12, hypervisors.text)
            XCTAssertEqual(node["vcpus_used"], 1, hypervisors.text)
        }
    }
}
