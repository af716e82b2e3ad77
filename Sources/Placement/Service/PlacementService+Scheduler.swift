import Foundation
import NimbusCore
import NimbusStore

/// The in-process API the scheduler, conductor and compute agent use: the same operations
/// the HTTP API offers, without HTTP, microversions or policy (callers are trusted code).
/// Errors are `APIError`s with placement's messages and codes.
extension PlacementService {
    /// Ways to satisfy `request`, and a summary of every provider of the trees they come from.
    /// Summaries list every class each provider has inventory of.
    public func allocationCandidates(_ request: ResourceRequest) async throws
        -> (candidates: [AllocationCandidate], summaries: [String: ProviderSummary])
    {
        let result = try await allocationCandidates(Self.query(request))
        return (result.candidates, result.summaries)
    }

    /// A provider that can hold the whole of a request by itself, as the scheduler weighs it.
    public struct HostCandidate: Sendable {
        public let uuid: String
        /// Class → amount to claim.
        public let allocation: [String: Int64]
        /// Class → capacity and class → amount used, for every class the provider has.
        public let capacity: [String: Int64]
        public let used: [String: Int64]
    }

    /// The candidates of `request` that one provider holds alone (a compute node), in
    /// provider order. Every boot asks this of every host, so a cloud of flat providers is
    /// answered by one scan of the cached host list that shares its dictionaries instead of
    /// building them per host; any other cloud goes through the general algorithm.
    public func hostCandidates(_ request: ResourceRequest) async throws -> [HostCandidate] {
        let s = try await db.readTransaction { x in try await self.store.snapshot(x, cache: self.structure) }
        if let table = s.flatHosts, !request.resources.isEmpty { return Self.flatCandidates(request, table, usages: s.usages) }
        let result = Self.candidates(Self.query(request), s)
        return result.candidates.compactMap { candidate in
            guard candidate.allocations.count == 1, let (uuid, allocation) = candidate.allocations.first, let summary = result.summaries[uuid] else { return nil }
            return HostCandidate(uuid: uuid, allocation: allocation, capacity: summary.resources.mapValues(\.capacity),
                                 used: summary.resources.mapValues(\.used))
        }
    }

    /// What `candidates(_:_:)` answers for providers that are each a tree of their own: the
    /// request's one group on the provider, which is also the root.
    static func flatCandidates(_ request: ResourceRequest, _ table: PlacementSnapshot.FlatHosts,
                               usages: [String: [String: Int64]]) -> [HostCandidate] {
        // Names the table does not know: a required one matches no host, a forbidden one any.
        var required: [Int] = []
        for trait in request.requiredTraits.union(request.rootRequiredTraits) {
            guard let n = table.traitNumbers[trait] else { return [] }
            required.append(n)
        }
        let forbidden = request.forbiddenTraits.union(request.rootForbiddenTraits).compactMap { table.traitNumbers[$0] }
        var resources: [(number: Int, name: String, amount: Int64)] = []
        for (rc, amount) in request.resources {
            guard let n = table.classNumbers[rc] else { return [] }
            resources.append((n, rc, amount))
        }
        let memberOf = request.memberOf.map { Set($0) }
        var used = [[String: Int64]?](repeating: nil, count: table.hosts.count)
        for (uuid, usage) in usages { if let i = table.positions[uuid] { used[i] = usage } }

        var out: [HostCandidate] = []
        out.reserveCapacity(min(request.limit ?? table.hosts.count, table.hosts.count))
        for (i, host) in table.hosts.enumerated() {
            if let limit = request.limit, out.count >= limit { break }
            if let tree = request.inTree, tree != host.uuid { continue }
            guard required.allSatisfy(host.has(trait:)), !forbidden.contains(where: host.has(trait:)),
                  memberOf.isEmpty || memberOf.allSatisfy({ !$0.isDisjoint(with: host.aggregates) }) else { continue }
            let usage = used[i]
            guard resources.allSatisfy({ rc in
                guard let inventory = host.inventories[rc.number] else { return false }
                return inventory.accepts(rc.amount) && inventory.fits(rc.amount, used: usage?[rc.name] ?? 0)
            }) else { continue }
            out.append(HostCandidate(uuid: host.uuid, allocation: request.resources, capacity: host.capacities, used: usage ?? [:]))
        }
        return out
    }

    static func query(_ request: ResourceRequest) -> CandidateQuery {
        var group = RequestGroup(resources: request.resources)
        group.requiredTraits = request.requiredTraits.sorted().map { [$0] }
        group.forbiddenTraits = request.forbiddenTraits
        group.memberOf = request.memberOf.map { Set($0) }
        group.inTree = request.inTree
        var query = CandidateQuery(groups: ["": group])
        query.rootRequired = request.rootRequiredTraits.sorted().map { [$0] }
        query.rootForbidden = request.rootForbiddenTraits
        query.limit = request.limit
        return query
    }

    /// Atomically replaces the consumer's allocations with `allocations` (provider uuid →
    /// class → amount). Returns false, writing nothing, if any provider lacks the inventory or
    /// the capacity, or an amount breaks min_unit/max_unit/step_size. Throws for an unknown
    /// provider or class, and 409 concurrent_update if other writers kept winning the race.
    public func claim(consumer: String, project: String, user: String, allocations: [String: [String: Int64]],
                      consumerType: String? = nil) async throws -> Bool {
        let request = ConsumerAllocations(consumer: consumer, project: project, user: user, generation: .none, consumerType: consumerType,
                                          allocations: allocations.filter { !$0.value.isEmpty })
        do {
            try await retrying("Inventory and/or allocations") { x in
                try await self.writeAllocationsInTransaction([request], x)
            }
            return true
        } catch is CapacityRefusal {
            return false
        }
    }

    /// Provider uuid → class → amount the consumer holds; empty when it holds nothing.
    public func allocations(consumer: String) async throws -> [String: [String: Int64]] {
        try await store.allocations(consumer: consumer, db)
    }

    /// Removes every allocation of the consumer (nothing to do is not an error).
    public func deleteAllocations(consumer: String) async throws {
        try await db.transaction { x in
            try await x.execute("DELETE FROM placement_allocation WHERE consumer_uuid = ?", [.text(consumer)])
            try await x.execute("DELETE FROM placement_consumer WHERE uuid = ?", [.text(consumer)])
        }
    }

    /// Moves all of `from`'s allocations to `to` in one transaction: Nova's migration-record
    /// trick for resize and cold migrate (the source host's usage is held by the migration
    /// while the instance claims the destination), and its reverse on revert. `to` ends with
    /// exactly what `from` had; `from` ends with nothing.
    public func moveAllocations(from: String, to: String, project: String, user: String, consumerType: String? = nil) async throws {
        try await retrying("Inventory and/or allocations") { x in
            let held = try await self.store.allocations(consumer: from, x)
            try await self.writeAllocationsInTransaction([
                ConsumerAllocations(consumer: from, project: project, user: user, generation: .none, consumerType: nil, allocations: [:]),
                ConsumerAllocations(consumer: to, project: project, user: user, generation: .none, consumerType: consumerType, allocations: held),
            ], x)
        }
    }

    /// Creates or updates a compute node's provider, as the agent's periodic report does: the
    /// name, the whole inventory (classes left out are removed, which fails with 409
    /// inventory.inuse while they have allocations), and the traits. `traits` replaces the
    /// provider's standard traits; custom traits (`CUSTOM_*`) an operator set are kept, and
    /// custom traits named in `traits` are created if needed. Nothing is written when nothing
    /// changed, so the generation only moves on real changes.
    public func syncProvider(uuid: String, name: String, inventory: [String: Inventory], traits: Set<String>) async throws {
        for trait in traits where Self.isCustom(trait) { _ = try await ensureTrait(trait) }
        do {
            try await retrying("Resource provider") { x in
                var provider: ResourceProvider
                if let existing = try await self.store.provider(uuid: uuid, x) {
                    provider = existing
                    if existing.name != name {
                        provider.name = name
                        try await self.store.update(provider, x)
                    }
                } else {
                    provider = ResourceProvider(uuid: uuid, name: name)
                    try await self.store.insert(provider, x)
                }
                let currentInventory = try await self.store.inventories(uuid, x)
                let currentTraits = Set(try await self.store.traits(uuid, x))
                let newTraits = traits.union(currentTraits.filter { Self.isCustom($0) && !traits.contains($0) })
                guard currentInventory != inventory || currentTraits != newTraits else { return }
                try await self.requireTraits(newTraits, x)
                guard try await self.store.bumpGeneration(uuid, expected: provider.generation, x) else { throw LostRace() }
                if currentInventory != inventory { try await self.replaceInventories(uuid, inventory, strictReserved: false, x) }
                if currentTraits != newTraits { try await self.store.setTraits(uuid, newTraits, x) }
            }
        } catch DatabaseError.uniqueViolation {
            throw Self.conflict("Conflicting resource provider name: \(name) already exists.", code: Code.duplicateName)
        }
    }

    /// Deletes a provider with its inventory, traits and aggregate links. 409 while it has
    /// allocations or children; deleting an unknown provider is not an error.
    public func deleteProvider(uuid: String) async throws {
        do {
            try await deleteProvider(uuid)
        } catch let error as APIError where error.status == .notFound {
            return
        }
    }

    /// Class → amount allocated to the project's consumers (and the user's, if given).
    public func usages(project: String, user: String?) async throws -> [String: Int64] {
        var total: [String: Int64] = [:]
        for (_, group) in try await projectUsages(project: project, user: user) {
            for (rc, amount) in group.usages { total[rc, default: 0] += amount }
        }
        return total.filter { $0.value > 0 }
    }

    /// Replaces the provider's aggregates (the API's host aggregates, mirrored so zone requests
    /// can use member_of).
    public func setAggregates(provider: String, aggregates: Set<String>) async throws {
        _ = try await setProviderAggregates(provider, generation: nil, aggregates)
    }

    /// The provider, or nil.
    public func resourceProvider(uuid: String) async throws -> ResourceProvider? {
        try await store.provider(uuid: uuid, db)
    }
}
