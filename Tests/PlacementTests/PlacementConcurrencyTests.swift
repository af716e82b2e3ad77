import Foundation
import HTTPTypes
import Logging
import NimbusCore
import NimbusServer
import NimbusStore
import NimbusTestSupport
import Placement
import XCTest

/// Claims racing for one provider never oversubscribe it, on either engine, through HTTP and
/// through the in-process API the scheduler uses.
final class PlacementConcurrencyTests: XCTestCase {
    func testConcurrentHTTPClaimsNeverExceedCapacity() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let rp = try await api.createProvider("contended", token: admin)
            try await api.setInventory(rp, ["VCPU": ["total": 8], "MEMORY_MB": ["total": 16384]], token: admin)
            let statuses = try await withThrowingTaskGroup(of: API.Reply.self) { group in
                for _ in 0..<50 {
                    group.addTask { try await api.allocate(newUUID(), [rp: ["VCPU": 1, "MEMORY_MB": 128]], token: admin) }
                }
                var out: [API.Reply] = []
                for try await reply in group { out.append(reply) }
                return out
            }
            XCTAssertEqual(statuses.filter { $0.status == 204 }.count, 8, statuses.filter { $0.status != 204 && $0.status != 409 }.map(\.text).joined())
            XCTAssertEqual(statuses.filter { $0.status == 409 }.count, 42)
            for reply in statuses where reply.status == 409 {
                let detail = reply.json["errors"]?[0]?["detail"]?.stringValue ?? ""
                XCTAssertTrue(detail.contains("exceed the capacity") || detail.contains("changed while attempting"), detail)
            }
            let usages = try await api.placement(.get, "/resource_providers/\(rp)/usages", token: admin)
            XCTAssertEqual(usages.json["usages"], ["VCPU": 8, "MEMORY_MB": 1024])
            let allocations = try await api.placement(.get, "/resource_providers/\(rp)/allocations", token: admin)
            XCTAssertEqual(allocations.json["allocations"]?.objectValue?.count, 8)
        }
    }

    func testConcurrentServiceClaimsNeverExceedCapacity() async throws {
        for engine in TestCloud.engines {
            let cloud = try await TestCloud.make(engine)
            let plane = try await cloud.start()
            do {
                let placement = plane.placement
                let rp = newUUID()
                try await placement.syncProvider(uuid: rp, name: "contended-\(engine)", inventory: ["VCPU": Inventory(total: 8)], traits: ["COMPUTE_NODE"])
                let results = try await withThrowingTaskGroup(of: Bool.self) { group in
                    for _ in 0..<50 {
                        group.addTask {
                            do {
                                return try await placement.claim(consumer: newUUID(), project: "p", user: "u", allocations: [rp: ["VCPU": 1]])
                            } catch let error as APIError where error.code == "placement.concurrent_update" {
                                return false
                            }
                        }
                    }
                    var out: [Bool] = []
                    for try await ok in group { out.append(ok) }
                    return out
                }
                XCTAssertEqual(results.filter { $0 }.count, 8, "\(engine)")
                let usage = try await placement.usages(project: "p", user: nil)
                XCTAssertEqual(usage, ["VCPU": 8], "\(engine)")
            } catch {
                await plane.close()
                throw error
            }
            await plane.close()
        }
    }
}
