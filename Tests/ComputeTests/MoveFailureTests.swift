import Compute
import Foundation
import HostAgent
import HostAPI
import NimbusCore
import NimbusTestSupport
import Virt
import XCTest

/// Moves that fail part-way leave the server as it was, on its own host.
final class MoveFailureTests: XCTestCase {
    /// The destination cannot take the guest: the source, which stopped the guest to offer its
    /// disks, starts it again, and the server stays ACTIVE where it was.
    func testAColdMigrationWhoseImportFailsRestartsTheGuestAtTheSource() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(0)) { cloud, plane, api in
            let drivers = ["move-1": FakeDriver(), "move-2": FakeDriver()]
            var agents: [Task<Void, Never>] = []
            for (host, driver) in drivers.sorted(by: { $0.key < $1.key }) {
                agents.append(try await PowerSyncTests.startAgent(plane, host: host, driver: driver, syncEvery: .seconds(3600)))
            }
            defer { for agent in agents { agent.cancel() } }
            let admin = try await api.adminToken(cloud)
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let booted = try await Compute.boot(api, token: admin, image: image, flavor: flavor, name: "cannot-land")
            let id = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)
            let active = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
            let source = try XCTUnwrap(active["OS-EXT-SRV-ATTR:host"]?.stringValue)
            let destination = try XCTUnwrap(drivers.keys.first { $0 != source })
            drivers[destination]?.failSpawns(named: "cannot-land")

            let migrate = try await Compute.action(api, id, token: admin, ["migrate": .null])
            XCTAssertEqual(migrate.status, 202, migrate.text)
            // The move fails at the destination; the source's guest runs again.
            let deadline = Date().addingTimeInterval(30)
            while true {
                let running = try await drivers[source]?.powerState(of: id) == .running
                let task = try await Compute.call(api, .get, "/servers/\(id)", token: admin).json["server"]?["OS-EXT-STS:task_state"]
                let failed = try await Compute.call(api, .get, "/os-migrations?instance_uuid=\(id)", token: admin)
                    .json["migrations"]?.arrayValue?.first?["status"]?.stringValue == "error"
                if running && task == .null && failed { break }
                guard Date() < deadline else { return XCTFail("the guest did not run again at the source") }
                try await Task.sleep(nanoseconds: 20_000_000)
            }
            let server = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
            XCTAssertEqual(server["OS-EXT-SRV-ATTR:host"]?.stringValue, source)
            let state = try await drivers[source]?.powerState(of: id)
            XCTAssertEqual(state, .running)
            let landed = try await drivers[destination]?.listGuests()
            XCTAssertEqual(landed, [:], "nothing of the guest at the destination")
            let migrations = try await Compute.call(api, .get, "/os-migrations?instance_uuid=\(id)", token: admin).json["migrations"]?.arrayValue ?? []
            XCTAssertEqual(migrations.first?["status"]?.stringValue, "error", "\(migrations)")
        }
    }
}
