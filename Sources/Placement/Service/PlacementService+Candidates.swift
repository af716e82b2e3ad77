import Foundation
import NimbusCore
import NimbusStore

/// Allocation candidates, computed from one read of the providers' state.
///
/// Per provider tree (and the sharing providers associated with it through an aggregate):
/// each suffixed request group is satisfied by one provider; the unsuffixed group may take
/// each resource class from a different provider of the tree or from a sharing provider, and
/// its required traits are met by the union of the contributing providers' traits. The groups'
/// choices are combined per tree (a cartesian product), and combinations that together exceed
/// a provider's capacity or max_unit, break `group_policy=isolate` or `same_subtree`, are
/// dropped. Candidates keep the provider creation order; `limit` applies last.
extension PlacementService {
    static let sharingTrait = "MISC_SHARES_VIA_AGGREGATE"

    struct CandidateResult: Sendable {
        var candidates: [AllocationCandidate]
        /// Every provider the summaries should describe (all providers of each candidate's tree
        /// from 1.29, otherwise just those allocated from).
        var summaries: [String: ProviderSummary]
    }

    /// One group's way of being satisfied in a tree.
    private struct GroupChoice {
        var allocations: [String: [String: Int64]]
        var providers: [String]
    }

    func allocationCandidates(_ query: CandidateQuery) async throws -> CandidateResult {
        let s = try await db.readTransaction { x in try await self.store.snapshot(x, cache: self.structure) }
        return Self.candidates(query, s)
    }

    static func candidates(_ query: CandidateQuery, _ s: PlacementSnapshot) -> CandidateResult {
        let (trees, rootOrder, sharing) = (s.layout.trees, s.layout.rootOrder, s.layout.sharing)

        func traits(_ p: String) -> Set<String> { s.traits[p] ?? [] }
        func aggregates(_ p: String) -> Set<String> { s.aggregates[p] ?? [] }
        /// A provider's aggregates for member_of, which nested providers inherit from their root.
        func memberAggregates(_ p: String) -> Set<String> {
            guard let root = s.providers[p]?.rootUUID, root != p else { return aggregates(p) }
            return aggregates(p).union(aggregates(root))
        }
        func isAncestorOrSelf(_ a: String, of b: String) -> Bool {
            var current: String? = b
            while let c = current {
                if c == a { return true }
                current = s.providers[c]?.parentUUID
            }
            return false
        }
        func satisfiesAggregates(_ p: String, _ g: RequestGroup) -> Bool {
            if g.memberOf.isEmpty && g.forbiddenAggregates.isEmpty { return true }
            let aggs = memberAggregates(p)
            return g.memberOf.allSatisfy { !$0.isDisjoint(with: aggs) } && g.forbiddenAggregates.isDisjoint(with: aggs)
        }
        func hasCapacity(_ p: String, _ rc: String, _ amount: Int64) -> Bool {
            guard let inv = s.inventories[p]?[rc] else { return false }
            return inv.accepts(amount) && inv.fits(amount, used: s.usages[p]?[rc] ?? 0)
        }

        var inTreeRoots: [String: String?] = [:]  // suffix → root of in_tree (nil = unknown provider)
        for (suffix, g) in query.groups {
            if let t = g.inTree { inTreeRoots[suffix] = .some(s.providers[t]?.rootUUID) }
        }

        var seen: Set<AllocationCandidate> = []
        var results: [(candidate: AllocationCandidate, root: String, used: Set<String>)] = []
        let suffixes = query.groups.keys.sorted()

        for root in rootOrder {
            let members = trees[root] ?? []
            // Below 1.29 only flat providers take part.
            if !query.nestedAware && members.count > 1 { continue }
            let rootTraits = traits(root)
            guard query.rootRequired.allSatisfy({ !$0.isDisjoint(with: rootTraits) }), query.rootForbidden.isDisjoint(with: rootTraits) else { continue }
            // Sharing providers from other trees that share an aggregate with this one.
            let treeAggregates = sharing.isEmpty ? [] : members.reduce(into: Set<String>()) { $0.formUnion(aggregates($1)) }
            let sharers = sharing.isEmpty ? [] : sharing.filter { sp in
                s.providers[sp]?.rootUUID != root && !aggregates(sp).isDisjoint(with: treeAggregates)
                    && (query.nestedAware || trees[s.providers[sp]?.rootUUID ?? ""]?.count == 1)
            }

            // The common case (a flat host, one unsuffixed group, no sharing): the host alone
            // holds everything or nothing, and its one candidate cannot repeat another's, so
            // the general combination and de-duplication below are skipped.
            if members.count == 1 && sharers.isEmpty && query.sameSubtree.isEmpty && query.groups.count == 1,
               let g = query.groups[""], !g.resources.isEmpty, g.inTree == nil {
                let t = traits(root)
                if g.resources.allSatisfy({ hasCapacity(root, $0.key, $0.value) })
                    && g.requiredTraits.allSatisfy({ !$0.isDisjoint(with: t) }) && g.forbiddenTraits.isDisjoint(with: t) && satisfiesAggregates(root, g) {
                    let candidate = AllocationCandidate(allocations: [root: g.resources], mappings: ["": [root]])
                    results.append((candidate, root, [root]))
                }
                continue
            }

            var choicesPerGroup: [[GroupChoice]] = []
            var groupSuffixes: [String] = []
            var feasible = true
            for suffix in suffixes {
                let g = query.groups[suffix]!
                var pool = members + sharers
                if let inTreeRoot = inTreeRoots[suffix] {
                    guard inTreeRoot == root else { feasible = false; break }
                    pool = members
                }
                func matches(_ p: String) -> Bool {
                    let t = traits(p)
                    return g.resources.allSatisfy { hasCapacity(p, $0.key, $0.value) }
                        && g.requiredTraits.allSatisfy { !$0.isDisjoint(with: t) } && g.forbiddenTraits.isDisjoint(with: t)
                        && satisfiesAggregates(p, g)
                }
                if suffix.isEmpty && g.resources.isEmpty {
                    // A resourceless unsuffixed group (say, only `in_tree`) constrains the tree.
                    if !pool.contains(where: matches) { feasible = false; break }
                    continue
                }
                let choices: [GroupChoice]
                if suffix.isEmpty {
                    choices = unsuffixedChoices(g, pool: pool, traits: traits, hasCapacity: hasCapacity, satisfiesAggregates: satisfiesAggregates)
                } else {
                    // One provider for the whole group (a resourceless group just names one).
                    choices = pool.filter(matches).map { GroupChoice(allocations: g.resources.isEmpty ? [:] : [$0: g.resources], providers: [$0]) }
                }
                if choices.isEmpty { feasible = false; break }
                choicesPerGroup.append(choices)
                groupSuffixes.append(suffix)
            }
            guard feasible else { continue }

            // Every combination of the groups' choices.
            var indices = [Int](repeating: 0, count: choicesPerGroup.count)
            combinations: while true {
                let picked = indices.enumerated().map { choicesPerGroup[$0.offset][$0.element] }
                if let candidate = combine(picked, suffixes: groupSuffixes, query: query, s: s, isAncestorOrSelf: isAncestorOrSelf),
                   seen.insert(candidate).inserted
                {
                    results.append((candidate, root, Set(candidate.allocations.keys)))
                }
                var i = indices.count - 1
                while i >= 0 {
                    indices[i] += 1
                    if indices[i] < choicesPerGroup[i].count { break }
                    indices[i] = 0
                    i -= 1
                }
                if i < 0 { break combinations }
            }
        }

        if let limit = query.limit, results.count > limit { results = Array(results.prefix(limit)) }

        var summaryProviders: Set<String> = []
        for r in results {
            summaryProviders.formUnion(r.used)
            if query.nestedAware { summaryProviders.formUnion(trees[r.root] ?? []) }
        }
        var summaries: [String: ProviderSummary] = [:]
        for uuid in summaryProviders {
            guard let p = s.providers[uuid] else { continue }
            var resources: [String: ResourceUsage] = [:]
            for (rc, inv) in s.inventories[uuid] ?? [:] {
                resources[rc] = ResourceUsage(capacity: inv.displayCapacity, used: s.usages[uuid]?[rc] ?? 0)
            }
            summaries[uuid] = ProviderSummary(uuid: uuid, name: p.name, parentUUID: p.parentUUID, rootUUID: p.rootUUID, resources: resources,
                                              traits: traits(uuid), aggregates: aggregates(uuid))
        }
        return CandidateResult(candidates: results.map(\.candidate), summaries: summaries)
    }

    /// The unsuffixed group: each class from any provider of the pool that can hold it, the
    /// required traits met by the contributing providers together, forbidden traits on none.
    private static func unsuffixedChoices(_ g: RequestGroup, pool: [String], traits: (String) -> Set<String>,
                                          hasCapacity: (String, String, Int64) -> Bool,
                                          satisfiesAggregates: (String, RequestGroup) -> Bool) -> [GroupChoice] {
        let classes = g.resources.keys.sorted()
        var perClass: [[String]] = []
        for rc in classes {
            let amount = g.resources[rc]!
            let options = pool.filter { p in
                hasCapacity(p, rc, amount) && g.forbiddenTraits.isDisjoint(with: traits(p)) && satisfiesAggregates(p, g)
            }
            if options.isEmpty { return [] }
            perClass.append(options)
        }
        var out: [GroupChoice] = []
        var indices = [Int](repeating: 0, count: perClass.count)
        while true {
            var allocations: [String: [String: Int64]] = [:]
            var providers: [String] = []
            var union: Set<String> = []
            for (i, rc) in classes.enumerated() {
                let p = perClass[i][indices[i]]
                allocations[p, default: [:]][rc] = g.resources[rc]
                if !providers.contains(p) {
                    providers.append(p)
                    union.formUnion(traits(p))
                }
            }
            if g.requiredTraits.allSatisfy({ !$0.isDisjoint(with: union) }) {
                out.append(GroupChoice(allocations: allocations, providers: providers))
            }
            var i = indices.count - 1
            while i >= 0 {
                indices[i] += 1
                if indices[i] < perClass[i].count { break }
                indices[i] = 0
                i -= 1
            }
            if i < 0 { break }
        }
        return out
    }

    /// One choice per group → a candidate, or nil when the combination does not fit together.
    private static func combine(_ picked: [GroupChoice], suffixes: [String], query: CandidateQuery, s: PlacementSnapshot,
                                isAncestorOrSelf: (String, String) -> Bool) -> AllocationCandidate? {
        var allocations: [String: [String: Int64]] = [:]
        var mappings: [String: [String]] = [:]
        var isolated: Set<String> = []
        for (i, choice) in picked.enumerated() {
            let suffix = suffixes[i]
            if query.isolate && !suffix.isEmpty && !choice.allocations.isEmpty {
                for p in choice.allocations.keys where !isolated.insert(p).inserted { return nil }
            }
            for (p, resources) in choice.allocations {
                for (rc, amount) in resources { allocations[p, default: [:]][rc, default: 0] += amount }
            }
            mappings[suffix] = choice.providers.sorted()
        }
        // Amounts that several groups put on one provider must fit together.
        for (p, resources) in allocations {
            for (rc, amount) in resources {
                guard let inv = s.inventories[p]?[rc], amount <= inv.maxUnit, inv.fits(amount, used: s.usages[p]?[rc] ?? 0) else { return nil }
            }
        }
        for group in query.sameSubtree {
            let providers = Set(group.flatMap { mappings[$0] ?? [] })
            guard providers.contains(where: { top in providers.allSatisfy { isAncestorOrSelf(top, $0) } }) else { return nil }
        }
        guard !allocations.isEmpty else { return nil }
        return AllocationCandidate(allocations: allocations, mappings: mappings)
    }
}
