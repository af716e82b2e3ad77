import Foundation
import NimbusCore
import NimbusServer
import NimbusTestSupport
import Placement
import XCTest

/// The in-process API the scheduler and the compute agent use.
final class PlacementServiceTests: XCTestCase {
    func onEachEngine(_ body: (PlacementService) async throws -> Void) async throws {
        for engine in TestCloud.engines {
            let cloud = try await TestCloud.make(engine)
            let plane = try await cloud.start()
            do {
                try await body(plane.placement)
            } catch {
                await plane.close()
                throw error
            }
            await plane.close()
        }
    }

    /// Candidates reuse inventories, traits and aggregates between requests; every change to
    /// them shows in the next request.
    func testCandidatesSeeEveryStructureChange() async throws {
        try await onEachEngine { placement in
            let cn = newUUID()
            try await placement.syncProvider(uuid: cn, name: "host", inventory: ["VCPU": Inventory(total: 2)], traits: ["COMPUTE_NODE"])
            let request = ResourceRequest(resources: ["VCPU": 1], requiredTraits: ["CUSTOM_FAST"])
            let none = try await placement.allocationCandidates(request).candidates
            XCTAssertTrue(none.isEmpty)
            try await placement.syncProvider(uuid: cn, name: "host", inventory: ["VCPU": Inventory(total: 2)], traits: ["COMPUTE_NODE", "CUSTOM_FAST"])
            let one = try await placement.allocationCandidates(request).candidates
            XCTAssertEqual(one.count, 1, "a new trait is seen")
            let bigger = ResourceRequest(resources: ["VCPU": 3])
            let tooSmall = try await placement.allocationCandidates(bigger).candidates
            XCTAssertTrue(tooSmall.isEmpty)
            try await placement.syncProvider(uuid: cn, name: "host", inventory: ["VCPU": Inventory(total: 4)], traits: ["COMPUTE_NODE", "CUSTOM_FAST"])
            let grown = try await placement.allocationCandidates(bigger).candidates
            XCTAssertEqual(grown.count, 1, "a larger inventory is seen")
            let inAggregate = ResourceRequest(resources: ["VCPU": 1], memberOf: [["0c4a0e0c-0000-4000-8000-000000000001"]])
            let outside = try await placement.allocationCandidates(inAggregate).candidates
            XCTAssertTrue(outside.isEmpty)
            try await placement.setAggregates(provider: cn, aggregates: ["0c4a0e0c-0000-4000-8000-000000000001"])
            let inside = try await placement.allocationCandidates(inAggregate).candidates
            XCTAssertEqual(inside.count, 1, "new aggregate membership is seen")
            let claimed = try await placement.claim(consumer: newUUID(), project: "p", user: "u", allocations: [cn: ["VCPU": 4]])
            XCTAssertTrue(claimed)
            let full = try await placement.allocationCandidates(bigger).candidates
            XCTAssertTrue(full.isEmpty, "usage is read each time")
        }
    }

    func testComputeNodeLifecycle() async throws {
        try await onEachEngine { placement in
            let cn1 = newUUID(), cn2 = newUUID()
            let inventory = ["VCPU": Inventory(total: 4, allocationRatio: 4.0), "MEMORY_MB": Inventory(total: 8192, reserved: 512),
                             "DISK_GB": Inventory(total: 100)]
            try await placement.syncProvider(uuid: cn1, name: "host1", inventory: inventory, traits: ["COMPUTE_NODE", "CUSTOM_AGENT_OWNED"])
            try await placement.syncProvider(uuid: cn2, name: "host2", inventory: inventory, traits: ["COMPUTE_NODE", "COMPUTE_STATUS_DISABLED"])
            // A second report with nothing new does not move the generation.
            let before = try await placement.resourceProvider(uuid: cn1)?.generation
            try await placement.syncProvider(uuid: cn1, name: "host1", inventory: inventory, traits: ["COMPUTE_NODE", "CUSTOM_AGENT_OWNED"])
            let after = try await placement.resourceProvider(uuid: cn1)?.generation
            XCTAssertEqual(before, after)

            var request = ResourceRequest(resources: ["VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 10], rootForbiddenTraits: ["COMPUTE_STATUS_DISABLED"])
            var (candidates, summaries) = try await placement.allocationCandidates(request)
            XCTAssertEqual(candidates.map(\.allocations), [[cn1: ["VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 10]]])
            XCTAssertEqual(summaries[cn1]?.resources["VCPU"], ResourceUsage(capacity: 16, used: 0))
            XCTAssertEqual(summaries[cn1]?.resources["MEMORY_MB"], ResourceUsage(capacity: 7680, used: 0))
            XCTAssertEqual(summaries[cn1]?.name, "host1")
            XCTAssertTrue(summaries[cn1]?.traits.contains("CUSTOM_AGENT_OWNED") ?? false)

            let instance = newUUID()
            let claimed = try await placement.claim(consumer: instance, project: "proj", user: "user", allocations: candidates[0].allocations)
            XCTAssertTrue(claimed)
            let value1 = try await placement.allocations(consumer: instance)
            XCTAssertEqual(value1, candidates[0].allocations)
            let usage1 = try await placement.usages(project: "proj", user: nil)
            XCTAssertEqual(usage1, ["VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 10])
            let tooBig = try await placement.claim(consumer: newUUID(), project: "proj", user: "user", allocations: [cn1: ["DISK_GB": 91]])
            XCTAssertFalse(tooBig)
            let usage2 = try await placement.usages(project: "proj", user: "user")
            XCTAssertEqual(usage2["DISK_GB"], 10, "a refused claim writes nothing")

            // Resize: the migration record takes the source allocation, the instance claims anew.
            let migration = newUUID()
            try await placement.moveAllocations(from: instance, to: migration, project: "proj", user: "user")
            let value2 = try await placement.allocations(consumer: instance)
            XCTAssertEqual(value2, [:])
            let value3 = try await placement.allocations(consumer: migration)
            XCTAssertEqual(value3, candidates[0].allocations)
            let resized = try await placement.claim(consumer: instance, project: "proj", user: "user", allocations: [cn1: ["VCPU": 4]])
            XCTAssertTrue(resized)
            request.resources = ["VCPU": 11]
            (candidates, summaries) = try await placement.allocationCandidates(request)
            XCTAssertTrue(candidates.isEmpty, "16 VCPU with 6 used")
            XCTAssertTrue(summaries.isEmpty)
            try await placement.deleteAllocations(consumer: migration)
            try await placement.deleteAllocations(consumer: migration)
            let usage3 = try await placement.usages(project: "proj", user: nil)
            XCTAssertEqual(usage3, ["VCPU": 4])

            // Operators' custom traits survive the agent's report; its own standard ones are replaced.
            try await placement.syncProvider(uuid: cn2, name: "host2", inventory: inventory, traits: ["COMPUTE_NODE"])
            (candidates, _) = try await placement.allocationCandidates(ResourceRequest(resources: ["VCPU": 1], rootForbiddenTraits: ["COMPUTE_STATUS_DISABLED"]))
            XCTAssertEqual(Set(candidates.flatMap(\.allocations.keys)), [cn1, cn2])
            (candidates, _) = try await placement.allocationCandidates(ResourceRequest(resources: ["VCPU": 1], requiredTraits: ["CUSTOM_AGENT_OWNED"], limit: 5))
            XCTAssertEqual(candidates.map { Array($0.allocations.keys) }, [[cn1]])

            // Removing a class still allocated is refused; deleting a busy provider too.
            do {
                try await placement.syncProvider(uuid: cn1, name: "host1", inventory: ["MEMORY_MB": Inventory(total: 8192)], traits: ["COMPUTE_NODE"])
                XCTFail("removed an inventory in use")
            } catch let error as APIError {
                XCTAssertEqual(error.code, "placement.inventory.inuse")
            }
            do {
                try await placement.deleteProvider(uuid: cn1)
                XCTFail("deleted a provider with allocations")
            } catch let error as APIError {
                XCTAssertEqual(error.code, "placement.resource_provider.inuse")
            }
            try await placement.deleteAllocations(consumer: instance)
            try await placement.deleteProvider(uuid: cn1)
            try await placement.deleteProvider(uuid: cn1)
            let value4 = try await placement.resourceProvider(uuid: cn1)
            XCTAssertNil(value4)
        }
    }
    /// The scheduler's scan of a cloud of flat hosts answers exactly what the general
    /// algorithm answers for the same requests: the same hosts in the same order, with the
    /// same capacities and usage. A nested provider then sends every request the general way.
    func testHostCandidatesAgreeWithTheGeneralAlgorithm() async throws {
        try await onEachEngine { placement in
            let aggregate = "0c4a0e0c-0000-4000-8000-000000000002"
            var hosts: [String] = []
            for i in 0..<12 {
                let uuid = newUUID()
                hosts.append(uuid)
                var inventory = ["VCPU": Inventory(total: Int64(2 + i % 4)), "MEMORY_MB": Inventory(total: 4096, reserved: Int64(i * 100))]
                if i % 3 != 0 { inventory["DISK_GB"] = Inventory(total: 50, maxUnit: Int64(10 + i)) }
                var traits: Set<String> = ["COMPUTE_NODE"]
                if i % 2 == 0 { traits.insert("CUSTOM_FAST") }
                if i % 5 == 0 { traits.insert("COMPUTE_STATUS_DISABLED") }
                try await placement.syncProvider(uuid: uuid, name: "host\(i)", inventory: inventory, traits: traits)
                if i % 4 == 1 { try await placement.setAggregates(provider: uuid, aggregates: [aggregate]) }
            }
            for (i, host) in hosts.enumerated() where i % 3 == 1 {
                let claimed = try await placement.claim(consumer: newUUID(), project: "p", user: "u", allocations: [host: ["VCPU": 2, "MEMORY_MB": 1024]])
                XCTAssertTrue(claimed)
            }
            let requests = [
                ResourceRequest(resources: ["VCPU": 1]),
                ResourceRequest(resources: ["VCPU": 2, "MEMORY_MB": 2048, "DISK_GB": 5], rootForbiddenTraits: ["COMPUTE_STATUS_DISABLED"]),
                ResourceRequest(resources: ["VCPU": 1, "DISK_GB": 12]),
                ResourceRequest(resources: ["VCPU": 1], requiredTraits: ["CUSTOM_FAST"], forbiddenTraits: ["CUSTOM_UNKNOWN"]),
                ResourceRequest(resources: ["VCPU": 1], requiredTraits: ["CUSTOM_UNKNOWN"]),
                ResourceRequest(resources: ["VCPU": 1], memberOf: [[aggregate]], rootRequiredTraits: ["COMPUTE_NODE"]),
                ResourceRequest(resources: ["VCPU": 1], inTree: hosts[4]),
                ResourceRequest(resources: ["VCPU": 1], inTree: newUUID()),
                ResourceRequest(resources: ["CUSTOM_GPU": 1]),
                ResourceRequest(resources: ["VCPU": 1, "MEMORY_MB": 1], rootForbiddenTraits: ["COMPUTE_STATUS_DISABLED"], limit: 3),
            ]
            func general(_ request: ResourceRequest) async throws -> [String] {
                let (candidates, summaries) = try await placement.allocationCandidates(request)
                return candidates.compactMap { c in
                    guard c.allocations.count == 1, let (uuid, allocation) = c.allocations.first, let summary = summaries[uuid] else { return nil }
                    let resources = summary.resources.keys.sorted().map { "\($0)=\(summary.resources[$0]!.capacity)/\(summary.resources[$0]!.used)" }
                    return "\(uuid) \(allocation.keys.sorted().map { "\($0):\(allocation[$0]!)" }) \(resources)"
                }
            }
            func fast(_ request: ResourceRequest) async throws -> [String] {
                try await placement.hostCandidates(request).map { c in
                    let resources = c.capacity.keys.sorted().map { "\($0)=\(c.capacity[$0]!)/\(c.used[$0] ?? 0)" }
                    return "\(c.uuid) \(c.allocation.keys.sorted().map { "\($0):\(c.allocation[$0]!)" }) \(resources)"
                }
            }
            for (i, request) in requests.enumerated() {
                let expected = try await general(request)
                let scanned = try await fast(request)
                XCTAssertEqual(scanned, expected, "request \(i)")
            }
            let some = try await general(requests[0])
            XCTAssertFalse(some.isEmpty)

            // A provider sharing disk with the aggregate: no flat table any more, and the same
            // answers from the general way (candidates that need two providers left out).
            let sharer = newUUID()
            try await placement.syncProvider(uuid: sharer, name: "shared-disk", inventory: ["DISK_GB": Inventory(total: 1000)],
                                             traits: ["MISC_SHARES_VIA_AGGREGATE"])
            try await placement.setAggregates(provider: sharer, aggregates: [aggregate])
            for request in requests {
                let expected = try await general(request)
                let answered = try await fast(request)
                XCTAssertEqual(answered, expected)
            }
        }
    }
}
