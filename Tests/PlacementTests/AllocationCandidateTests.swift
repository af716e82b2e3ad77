import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

/// `GET /allocation_candidates` in its per-microversion shapes, with the filters Nova uses.
final class AllocationCandidateTests: XCTestCase {
    struct Cloud {
        var cn1: String, cn2: String, cn3: String, gpu: String, aggregate: String
    }

    /// cn1: 8 VCPU, 4096 MB, AVX2, in `aggregate`, with a child holding 2 VGPU.
    /// cn2: 4 VCPU, 2048 MB, disabled. cn3: 1 VCPU, 512 MB.
    static func build(_ api: API, token: String) async throws -> Cloud {
        let cn1 = try await api.createProvider("cn1", token: token)
        let cn2 = try await api.createProvider("cn2", token: token)
        let cn3 = try await api.createProvider("cn3", token: token)
        let gpu = try await api.createProvider("cn1-gpu", token: token, parent: cn1)
        try await api.setInventory(cn1, ["VCPU": ["total": 8], "MEMORY_MB": ["total": 4096]], token: token)
        try await api.setInventory(cn2, ["VCPU": ["total": 4], "MEMORY_MB": ["total": 2048]], token: token)
        try await api.setInventory(cn3, ["VCPU": ["total": 1], "MEMORY_MB": ["total": 512]], token: token)
        try await api.setInventory(gpu, ["VGPU": ["total": 2]], token: token)
        try await api.setTraits(cn1, ["COMPUTE_NODE", "HW_CPU_X86_AVX2"], token: token)
        try await api.setTraits(cn2, ["COMPUTE_NODE", "COMPUTE_STATUS_DISABLED"], token: token)
        try await api.setTraits(cn3, ["COMPUTE_NODE"], token: token)
        let aggregate = newUUID()
        let generation = try await api.placement(.get, "/resource_providers/\(cn1)", token: token).json["generation"] ?? 0
        let agg = try await api.placement(.put, "/resource_providers/\(cn1)/aggregates", token: token,
                                          body: ["aggregates": [.string(aggregate)], "resource_provider_generation": generation])
        XCTAssertEqual(agg.status, 200, agg.text)
        return Cloud(cn1: cn1, cn2: cn2, cn3: cn3, gpu: gpu, aggregate: aggregate)
    }

    static func providers(_ reply: API.Reply) -> [Set<String>] {
        (reply.json["allocation_requests"]?.arrayValue ?? []).map { Set($0["allocations"]?.objectValue?.keys.map { $0 } ?? []) }
    }

    func testFiltersLimitAndShapes() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let c = try await Self.build(api, token: admin)
            func get(_ query: String, _ version: String = "1.36") async throws -> API.Reply {
                try await api.placement(.get, "/allocation_candidates?\(query)", token: admin, version: version)
            }

            let two = try await get("resources=VCPU:2,MEMORY_MB:1024")
            XCTAssertEqual(two.status, 200, two.text)
            XCTAssertEqual(Self.providers(two), [[c.cn1], [c.cn2]])
            let first = two.json["allocation_requests"]?[0]
            XCTAssertEqual(first?["allocations"]?[c.cn1]?["resources"], ["VCPU": 2, "MEMORY_MB": 1024])
            XCTAssertEqual(first?["mappings"], ["": [.string(c.cn1)]])
            // 1.29+: every provider of each candidate tree is summarised, with every class.
            let summaries = try XCTUnwrap(two.json["provider_summaries"]?.objectValue)
            XCTAssertEqual(Set(summaries.keys), [c.cn1, c.gpu, c.cn2])
            XCTAssertEqual(summaries[c.cn1]?["resources"]?["VCPU"], ["capacity": 8, "used": 0])
            XCTAssertEqual(summaries[c.cn1]?["traits"], ["COMPUTE_NODE", "HW_CPU_X86_AVX2"])
            XCTAssertEqual(summaries[c.gpu]?["parent_provider_uuid"]?.stringValue, c.cn1)
            XCTAssertEqual(summaries[c.gpu]?["root_provider_uuid"]?.stringValue, c.cn1)

            let required = try await get("resources=VCPU:1&required=HW_CPU_X86_AVX2")
            XCTAssertEqual(Self.providers(required), [[c.cn1]])
            let forbidden = try await get("resources=VCPU:1&required=!HW_CPU_X86_AVX2")
            XCTAssertEqual(Self.providers(forbidden), [[c.cn2], [c.cn3]])
            let anyOf = try await get("resources=VCPU:1&required=in:HW_CPU_X86_AVX2,COMPUTE_STATUS_DISABLED", "1.39")
            XCTAssertEqual(Self.providers(anyOf), [[c.cn1], [c.cn2]])
            let anyOfOld = try await get("resources=VCPU:1&required=in:HW_CPU_X86_AVX2", "1.38")
            assertPlacementError(anyOfOld, 400)
            let enabled = try await get("resources=VCPU:1&root_required=!COMPUTE_STATUS_DISABLED")
            XCTAssertEqual(Self.providers(enabled), [[c.cn1], [c.cn3]])
            let member = try await get("resources=VCPU:1&member_of=in:\(c.aggregate),\(newUUID())")
            XCTAssertEqual(Self.providers(member), [[c.cn1]])
            let notMember = try await get("resources=VCPU:1&member_of=!\(c.aggregate)")
            XCTAssertEqual(Self.providers(notMember), [[c.cn2], [c.cn3]])
            let inTree = try await get("resources=VCPU:1&in_tree=\(c.cn3)")
            XCTAssertEqual(Self.providers(inTree), [[c.cn3]])

            let limited = try await get("resources=VCPU:1&limit=1")
            XCTAssertEqual(Self.providers(limited), [[c.cn1]])
            XCTAssertEqual(Set(limited.json["provider_summaries"]?.objectValue?.keys.map { $0 } ?? []), [c.cn1, c.gpu])
            let badLimit = try await get("resources=VCPU:1&limit=0")
            assertPlacementError(badLimit, 400)

            let nothing = try await get("resources=VCPU:100")
            XCTAssertEqual(nothing.json, ["allocation_requests": [], "provider_summaries": [:]])
            let unknownClass = try await get("resources=CUSTOM_NOPE:1")
            assertPlacementError(unknownClass, 400, message: "No such resource class CUSTOM_NOPE")
            let unknownTrait = try await get("resources=VCPU:1&required=CUSTOM_NOPE")
            assertPlacementError(unknownTrait, 400)
            let noResources = try await get("required=COMPUTE_NODE")
            assertPlacementError(noResources, 400, code: "placement.query.missing_value")
            let unknownParam = try await get("resources=VCPU:1&colour=red")
            assertPlacementError(unknownParam, 400)

            // Old shapes: 1.10 list form without traits; 1.17 dict form with traits and only
            // the requested classes; nested trees take no part below 1.29.
            let old = try await get("resources=VCPU:1", "1.10")
            XCTAssertEqual(old.json["allocation_requests"]?[0]?["allocations"]?[0]?["resource_provider"]?["uuid"]?.stringValue, c.cn2)
            XCTAssertEqual(Self.flatProviders(old), [c.cn2, c.cn3])
            XCTAssertNil(old.json["provider_summaries"]?[c.cn2]?["traits"])
            let v117 = try await get("resources=VCPU:1", "1.17")
            XCTAssertEqual(v117.json["provider_summaries"]?[c.cn2]?["resources"]?.objectValue?.keys.sorted(), ["VCPU"])
            XCTAssertNotNil(v117.json["provider_summaries"]?[c.cn2]?["traits"])
            XCTAssertNil(v117.json["provider_summaries"]?[c.cn2]?["root_provider_uuid"])
            XCTAssertNil(v117.json["allocation_requests"]?[0]?["mappings"])
            let v127 = try await get("resources=VCPU:1", "1.27")
            XCTAssertEqual(v127.json["provider_summaries"]?[c.cn2]?["resources"]?.objectValue?.keys.sorted(), ["MEMORY_MB", "VCPU"])
        }
    }

    static func flatProviders(_ reply: API.Reply) -> [String] {
        (reply.json["allocation_requests"]?.arrayValue ?? []).compactMap { $0["allocations"]?[0]?["resource_provider"]?["uuid"]?.stringValue }
    }

    func testNestedGranularAndCapacityAwareness() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let c = try await Self.build(api, token: admin)
            func get(_ query: String, _ version: String = "1.36") async throws -> API.Reply {
                try await api.placement(.get, "/allocation_candidates?\(query)", token: admin, version: version)
            }
            // The unsuffixed group spans the tree from 1.29.
            let nested = try await get("resources=VCPU:1,VGPU:1")
            XCTAssertEqual(nested.json["allocation_requests"]?.arrayValue?.count, 1, nested.text)
            let allocation = nested.json["allocation_requests"]?[0]?["allocations"]
            XCTAssertEqual(allocation?[c.cn1]?["resources"], ["VCPU": 1])
            XCTAssertEqual(allocation?[c.gpu]?["resources"], ["VGPU": 1])
            let flat = try await get("resources=VCPU:1,VGPU:1", "1.28")
            XCTAssertEqual(flat.json["allocation_requests"], [])
            // Granular groups: each suffixed group on one provider; isolate keeps them apart.
            let granular = try await get("resources1=VCPU:1&resources2=VGPU:1&group_policy=isolate")
            XCTAssertEqual(granular.json["allocation_requests"]?.arrayValue?.count, 1, granular.text)
            XCTAssertEqual(granular.json["allocation_requests"]?[0]?["mappings"], ["1": [.string(c.cn1)], "2": [.string(c.gpu)]])
            let needsPolicy = try await get("resources1=VCPU:1&resources2=VGPU:1")
            assertPlacementError(needsPolicy, 400)
            let isolated = try await get("resources1=VCPU:1&resources2=VCPU:1&group_policy=isolate")
            XCTAssertEqual(isolated.json["allocation_requests"], [], "two VCPU groups cannot be isolated on one flat host")
            let together = try await get("resources1=VCPU:1&resources2=VCPU:1&group_policy=none&in_tree=\(c.cn1)")
            XCTAssertEqual(together.json["allocation_requests"]?[0]?["allocations"]?[c.cn1]?["resources"], ["VCPU": 2], together.text)
            let stringSuffix = try await get("resources_compute=VCPU:1&required_compute=HW_CPU_X86_AVX2", "1.33")
            XCTAssertEqual(Self.providers(stringSuffix), [[c.cn1]])
            let stringSuffixOld = try await get("resources_compute=VCPU:1", "1.32")
            assertPlacementError(stringSuffixOld, 400)
            // Resourceless groups must be named in same_subtree.
            let resourceless = try await get("resources1=VGPU:1&required2=COMPUTE_NODE&same_subtree=1,2&group_policy=none")
            XCTAssertEqual(Self.providers(resourceless), [[c.gpu]], resourceless.text)
            let unnamed = try await get("resources1=VGPU:1&required2=COMPUTE_NODE&group_policy=none")
            assertPlacementError(unnamed, 400, code: "placement.query.bad_value")

            // Usage counts: fill cn3 and it drops out.
            let claimed = try await api.allocate(newUUID(), [c.cn3: ["VCPU": 1]], token: admin)
            XCTAssertEqual(claimed.status, 204, claimed.text)
            let remaining = try await get("resources=VCPU:1")
            XCTAssertEqual(Self.providers(remaining), [[c.cn1], [c.cn2]])
            let summary = try await get("resources=MEMORY_MB:1")
            XCTAssertEqual(summary.json["provider_summaries"]?[c.cn3]?["resources"]?["VCPU"], ["capacity": 1, "used": 1])
        }
    }

    func testSharingProviderJoinsTreesThroughAnAggregate() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let host = try await api.createProvider("host", token: admin)
            let storage = try await api.createProvider("shared-storage", token: admin)
            let lonely = try await api.createProvider("other-host", token: admin)
            try await api.setInventory(host, ["VCPU": ["total": 4]], token: admin)
            try await api.setInventory(lonely, ["VCPU": ["total": 4]], token: admin)
            try await api.setInventory(storage, ["DISK_GB": ["total": 1000]], token: admin)
            try await api.setTraits(storage, ["MISC_SHARES_VIA_AGGREGATE"], token: admin)
            let aggregate = newUUID()
            for rp in [host, storage] {
                let generation = try await api.placement(.get, "/resource_providers/\(rp)", token: admin).json["generation"] ?? 0
                let reply = try await api.placement(.put, "/resource_providers/\(rp)/aggregates", token: admin,
                                                    body: ["aggregates": [.string(aggregate)], "resource_provider_generation": generation])
                XCTAssertEqual(reply.status, 200, reply.text)
            }
            let reply = try await api.placement(.get, "/allocation_candidates?resources=VCPU:1,DISK_GB:100", token: admin)
            XCTAssertEqual(reply.json["allocation_requests"]?.arrayValue?.count, 1, reply.text)
            let allocation = reply.json["allocation_requests"]?[0]?["allocations"]
            XCTAssertEqual(allocation?[host]?["resources"], ["VCPU": 1])
            XCTAssertEqual(allocation?[storage]?["resources"], ["DISK_GB": 100])
            XCTAssertEqual(Set(reply.json["provider_summaries"]?.objectValue?.keys.map { $0 } ?? []), [host, storage])
            // A claim on both is one atomic write.
            let claimed = try await api.allocate(newUUID(), allocation?.objectValue?.mapValues { $0["resources"]?.objectValue?.mapValues { $0.intValue ?? 0 } ?? [:] } ?? [:],
                                                 token: admin)
            XCTAssertEqual(claimed.status, 204, claimed.text)
        }
    }
}
