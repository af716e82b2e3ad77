import Foundation
import NimbusCore
import NimbusStore

/// Consumers' allocations: the capacity check and the write happen in one transaction, after
/// the generation of every provider written to has been moved by compare-and-swap, so no
/// other claim on those providers can interleave. A lost race is retried from the start.
extension PlacementService {
    /// A capacity or inventory-constraint refusal: 409 with placement's default code. The
    /// Swift API answers `false` for these instead of throwing.
    struct CapacityRefusal: Error {
        let message: String
        var apiError: APIError { PlacementService.conflict(message) }
    }

    /// Replaces the allocations of every consumer in `requests` at once (`PUT /allocations/{c}`
    /// is one consumer, `POST /allocations` several). With `inventories`, the reshaper's
    /// inventory replacements are applied first, in the same transaction.
    func writeAllocations(_ requests: [ConsumerAllocations],
                          inventories: [(provider: String, generation: Int64, inventories: [String: Inventory])] = []) async throws {
        do {
            try await retrying("Inventory and/or allocations") { x in
                try await self.writeAllocationsInTransaction(requests, inventories: inventories, x)
            }
        } catch let refusal as CapacityRefusal {
            throw refusal.apiError
        }
    }

    /// The write itself, inside the caller's transaction; throws `LostRace` to be retried.
    func writeAllocationsInTransaction(_ requests: [ConsumerAllocations],
                                       inventories: [(provider: String, generation: Int64, inventories: [String: Inventory])] = [],
                                       _ x: any SQLExecutor) async throws {
        var bumped: Set<String> = []
        for change in inventories {
            guard let provider = try await store.provider(uuid: change.provider, x) else {
                throw APIError(.badRequest, "Resource provider \(change.provider) not found.", code: Code.providerNotFound)
            }
            guard provider.generation == change.generation, try await store.bumpGeneration(change.provider, expected: change.generation, x) else {
                throw Self.generationConflict()
            }
            bumped.insert(change.provider)
            try await replaceInventories(change.provider, change.inventories, strictReserved: false, checkInUse: false, x)
        }

        // Consumers: the generation the client saw must be the stored one.
        var consumers: [String: PlacementStore.Consumer] = [:]
        for request in requests {
            let existing = try await store.consumer(request.consumer, x)
            if case .expect(let expected) = request.generation, existing?.generation != expected {
                throw Self.conflict("consumer generation conflict - expected \(existing.map { String($0.generation) } ?? "null") but got \(expected.map(String.init) ?? "None")",
                                    code: Code.concurrentUpdate)
            }
            if let existing { consumers[request.consumer] = existing }
        }

        // Providers and classes named must exist.
        var requested: [String: [String: Int64]] = [:]
        for request in requests {
            for (provider, resources) in request.allocations {
                // Two consumers' amounts can pass Int64.max; the per-consumer check below refuses them.
                for (rc, amount) in resources {
                    requested[provider, default: [:]][rc] = requested[provider, default: [:]][rc, default: 0].addingSaturating(amount)
                }
            }
        }
        var providers: [String: ResourceProvider] = [:]
        for uuid in requested.keys.sorted() {
            guard let p = try await store.provider(uuid: uuid, x) else {
                throw APIError.badRequest("Allocation for resource provider '\(uuid)' that does not exist.")
            }
            providers[uuid] = p
        }
        for request in requests {
            for rc in Set(request.allocations.values.flatMap(\.keys)).sorted() where try await !classExists(rc, x) {
                throw APIError.badRequest("Unable to allocate inventory for consumer \(request.consumer): No such resource class \(rc).")
            }
        }

        // Lock: move the generation of every provider written to, and of those a consumer is
        // emptied from, in one order so that concurrent writers cannot deadlock.
        var old: [String: [String: [String: Int64]]] = [:]
        var toBump = Set(requested.keys)
        for request in requests {
            let held = try await store.allocations(consumer: request.consumer, x)
            old[request.consumer] = held
            if request.allocations.isEmpty { toBump.formUnion(held.keys) }
        }
        for uuid in toBump.subtracting(bumped).sorted() {
            var generation = providers[uuid]?.generation
            if generation == nil { generation = try await store.provider(uuid: uuid, x)?.generation }
            guard let generation, try await store.bumpGeneration(uuid, expected: generation, x) else { throw LostRace() }
        }

        // Capacity, against everything committed before the lock plus this write.
        var usedBefore: [String: [String: Int64]] = [:]
        for uuid in requested.keys { usedBefore[uuid] = try await store.usages(uuid, x) }
        for request in requests {
            try await x.execute("DELETE FROM placement_allocation WHERE consumer_uuid = ?", [.text(request.consumer)])
        }
        for (uuid, resources) in requested.sorted(by: { $0.key < $1.key }) {
            let inventory = try await store.inventories(uuid, x)
            let used = try await store.usages(uuid, x)
            for (rc, amount) in resources.sorted(by: { $0.key < $1.key }) {
                guard let inv = inventory[rc] else {
                    throw CapacityRefusal(message: "Unable to allocate inventory: Inventory for '\(rc)' on resource provider '\(uuid)' invalid.")
                }
                for request in requests {
                    if let one = request.allocations[uuid]?[rc], !inv.accepts(one) {
                        throw CapacityRefusal(message: "Unable to allocate inventory: Unable to create allocation for '\(rc)' on resource provider '\(uuid)'. The requested amount would violate inventory constraints.")
                    }
                }
                let after = (used[rc] ?? 0) + amount
                // A provider already over capacity (inventory shrunk under it) still takes a
                // write that does not make things worse.
                if Double(after) > inv.capacity && after > (usedBefore[uuid]?[rc] ?? 0) {
                    throw CapacityRefusal(message: "Unable to allocate inventory: Unable to create allocation for '\(rc)' on resource provider '\(uuid)'. The requested amount would exceed the capacity.")
                }
            }
        }

        let now = Date().timeIntervalSince1970
        for request in requests {
            for (provider, resources) in request.allocations.sorted(by: { $0.key < $1.key }) {
                for (rc, amount) in resources.sorted(by: { $0.key < $1.key }) {
                    try await x.execute("""
                        INSERT INTO placement_allocation (consumer_uuid, provider_uuid, resource_class, used, created_at) VALUES (?, ?, ?, ?, ?)
                        """, [.text(request.consumer), .text(provider), .text(rc), .integer(amount), .real(now)])
                }
            }
            // The consumer row: gone with its last allocation, otherwise one generation on.
            if request.allocations.isEmpty {
                try await x.execute("DELETE FROM placement_consumer WHERE uuid = ?", [.text(request.consumer)])
            } else if let existing = consumers[request.consumer] {
                let changed = try await x.execute("""
                    UPDATE placement_consumer SET generation = generation + 1, project_id = ?, user_id = ?, consumer_type = ?, updated_at = ?
                    WHERE uuid = ? AND generation = ?
                    """, [.text(request.project), .text(request.user), .optional(request.consumerType ?? existing.consumerType), .real(now),
                          .text(request.consumer), .integer(existing.generation)])
                if changed != 1 {
                    if case .expect = request.generation {
                        throw Self.conflict("consumer generation conflict - expected \(existing.generation) but got a concurrent update",
                                            code: Code.concurrentUpdate)
                    }
                    throw LostRace()
                }
            } else {
                try await x.execute("""
                    INSERT INTO placement_consumer (uuid, project_id, user_id, consumer_type, generation, created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?)
                    """, [.text(request.consumer), .text(request.project), .text(request.user), .optional(request.consumerType), .real(now), .real(now)])
            }
        }
        if !inventories.isEmpty { try await checkReshapedInventories(inventories.map(\.provider), x) }
    }

    /// After a reshape, every allocation on a reshaped provider must still have inventory.
    func checkReshapedInventories(_ providers: [String], _ x: any SQLExecutor) async throws {
        for uuid in providers {
            let classes = Set(try await store.inventories(uuid, x).keys)
            let orphaned = try await store.usages(uuid, x).filter { $0.value > 0 && !classes.contains($0.key) }.keys.sorted()
            if !orphaned.isEmpty {
                throw Self.conflict("Inventory for '\(orphaned.joined(separator: ", "))' on resource provider '\(uuid)' in use.", code: Code.inventoryInUse)
            }
        }
    }

    /// `GET /allocations/{c}`.
    func consumerAllocations(_ consumer: String) async throws -> ConsumerView {
        try await db.transaction { x in
            let held = try await self.store.allocations(consumer: consumer, x)
            guard !held.isEmpty else { return ConsumerView(allocations: [:]) }
            var allocations: [String: (generation: Int64, resources: [String: Int64])] = [:]
            for (uuid, resources) in held {
                allocations[uuid] = (try await self.store.provider(uuid: uuid, x)?.generation ?? 0, resources)
            }
            let c = try await self.store.consumer(consumer, x)
            return ConsumerView(allocations: allocations, project: c?.project, user: c?.user, generation: c?.generation, consumerType: c?.consumerType)
        }
    }

    /// `DELETE /allocations/{c}`: 404 when there is nothing to delete.
    func deleteConsumer(_ consumer: String) async throws {
        try await db.transaction { x in
            let removed = try await x.execute("DELETE FROM placement_allocation WHERE consumer_uuid = ?", [.text(consumer)])
            try await x.execute("DELETE FROM placement_consumer WHERE uuid = ?", [.text(consumer)])
            if removed == 0 { throw APIError.notFound("No allocations for consumer '\(consumer)'") }
        }
    }

    /// `GET /resource_providers/{u}/allocations`: consumer → (resources, consumer generation).
    func providerAllocations(_ uuid: String) async throws
        -> (generation: Int64, allocations: [String: (resources: [String: Int64], consumerGeneration: Int64?)])
    {
        try await db.transaction { x in
            let p = try await self.requireProvider(uuid, x)
            let held = try await self.store.allocations(provider: uuid, x)
            let generations = try await self.store.consumerGenerations(held.keys.sorted(), x)
            var out: [String: (resources: [String: Int64], consumerGeneration: Int64?)] = [:]
            for (consumer, resources) in held { out[consumer] = (resources, generations[consumer]) }
            return (p.generation, out)
        }
    }
}
