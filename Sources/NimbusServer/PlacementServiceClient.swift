import Compute
import Foundation
import Placement

/// The compute service's view of placement, in process.
struct PlacementServiceClient: PlacementClient {
    let placement: PlacementService

    func candidates(_ request: PlacementRequest) async throws -> [ProviderCandidate] {
        var query = ResourceRequest(resources: request.resources)
        query.requiredTraits = request.requiredTraits
        query.memberOf = request.memberOf
        query.inTree = request.inTree
        query.limit = request.limit
        // Disabled hosts carry COMPUTE_STATUS_DISABLED on their root provider (Nova's prefilter).
        query.rootForbiddenTraits = request.forbiddenTraits
        return try await placement.hostCandidates(query).map {
            ProviderCandidate(uuid: $0.uuid, allocation: $0.allocation, capacity: $0.capacity, used: $0.used)
        }
    }

    func claim(consumer: String, project: String, user: String, allocations: [String: [String: Int64]]) async throws -> Bool {
        try await placement.claim(consumer: consumer, project: project, user: user, allocations: allocations)
    }

    func allocations(consumer: String) async throws -> [String: [String: Int64]] { try await placement.allocations(consumer: consumer) }

    func deleteAllocations(consumer: String) async throws { try await placement.deleteAllocations(consumer: consumer) }

    func moveAllocations(from: String, to: String, project: String, user: String) async throws {
        try await placement.moveAllocations(from: from, to: to, project: project, user: user)
    }

    func syncProvider(uuid: String, name: String, inventory: [String: ProviderInventory], traits: Set<String>) async throws {
        try await placement.syncProvider(uuid: uuid, name: name, inventory: inventory.mapValues {
            Inventory(total: $0.total, reserved: $0.reserved, maxUnit: $0.maxUnit, allocationRatio: $0.allocationRatio)
        }, traits: traits)
    }

    func setAggregates(provider: String, aggregates: Set<String>) async throws {
        try await placement.setAggregates(provider: provider, aggregates: aggregates)
    }

    func deleteProvider(uuid: String) async throws { try await placement.deleteProvider(uuid: uuid) }
}
