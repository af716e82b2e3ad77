import Foundation
import NimbusCore
import NimbusStore

/// Everything placement knows about the providers, read at once: what allocation candidates
/// and filtered provider lists are computed from.
struct PlacementSnapshot: Sendable {
    var providers: [String: ResourceProvider] = [:]
    /// Provider uuids in creation order, the order lists and candidates follow.
    var order: [String] = []
    var inventories: [String: [String: Inventory]] = [:]
    var usages: [String: [String: Int64]] = [:]
    var traits: [String: Set<String>] = [:]
    var aggregates: [String: Set<String>] = [:]
    /// How the providers group into trees; derived from the above, cached with them.
    var layout = TreeLayout()
    /// See `FlatHosts`; derived and cached the same way.
    var flatHosts: FlatHosts?

    /// Provider trees in creation order, and the providers that share through aggregates.
    /// Every candidate query walks these; with a thousand hosts, building them per query cost
    /// more than checking the hosts' capacity.
    struct TreeLayout: Sendable {
        var trees: [String: [String]] = [:]
        var rootOrder: [String] = []
        var sharing: [String] = []

        init() {}

        init(order: [String], providers: [String: ResourceProvider], traits: [String: Set<String>], sharingTrait: String) {
            for uuid in order {
                guard let p = providers[uuid] else { continue }
                if trees[p.rootUUID] == nil { rootOrder.append(p.rootUUID) }
                trees[p.rootUUID, default: []].append(uuid)
            }
            sharing = order.filter { traits[$0]?.contains(sharingTrait) ?? false }
        }
    }

    /// Every provider, in root order, when each is a tree of its own and none shares through
    /// an aggregate (the usual cloud of compute nodes), else nil. A query for one host is then
    /// a scan of this table with no trees to combine, and every boot scans every host: so
    /// classes and traits are numbered once here, and the scan tests array slots and bits
    /// instead of hashing names.
    struct FlatHosts: Sendable {
        struct Host: Sendable {
            let uuid: String
            /// By class number; nil where the host has no inventory of the class.
            let inventories: [Inventory?]
            /// Class → capacity as summaries show it, shared by every candidate of the host.
            let capacities: [String: Int64]
            /// Bit n set: the host has trait number n.
            let traitBits: [UInt64]
            let aggregates: Set<String>

            func has(trait number: Int) -> Bool {
                let word = number >> 6
                return word < traitBits.count && traitBits[word] & (1 << UInt64(number & 63)) != 0
            }
        }

        let hosts: [Host]
        let classNumbers: [String: Int]
        let traitNumbers: [String: Int]
        /// Provider uuid → position in `hosts`.
        let positions: [String: Int]

        init?(_ s: PlacementSnapshot) {
            guard s.layout.sharing.isEmpty, s.layout.rootOrder.count == s.order.count else { return nil }
            var classNumbers: [String: Int] = [:]
            var traitNumbers: [String: Int] = [:]
            for uuid in s.layout.rootOrder {
                for rc in (s.inventories[uuid] ?? [:]).keys.sorted() where classNumbers[rc] == nil { classNumbers[rc] = classNumbers.count }
                for trait in (s.traits[uuid] ?? []).sorted() where traitNumbers[trait] == nil { traitNumbers[trait] = traitNumbers.count }
            }
            hosts = s.layout.rootOrder.map { uuid in
                let inventories = s.inventories[uuid] ?? [:]
                var slots = [Inventory?](repeating: nil, count: classNumbers.count)
                for (rc, inventory) in inventories { slots[classNumbers[rc]!] = inventory }
                var bits = [UInt64](repeating: 0, count: (traitNumbers.count + 63) / 64)
                for trait in s.traits[uuid] ?? [] {
                    let n = traitNumbers[trait]!
                    bits[n >> 6] |= 1 << UInt64(n & 63)
                }
                return Host(uuid: uuid, inventories: slots, capacities: inventories.mapValues(\.displayCapacity), traitBits: bits, aggregates: s.aggregates[uuid] ?? [])
            }
            (self.classNumbers, self.traitNumbers) = (classNumbers, traitNumbers)
            positions = Dictionary(uniqueKeysWithValues: s.layout.rootOrder.enumerated().map { ($1, $0) })
        }
    }

    /// Children by parent uuid.
    var children: [String: [String]] {
        var out: [String: [String]] = [:]
        for p in providers.values { if let parent = p.parentUUID { out[parent, default: []].append(p.uuid) } }
        return out
    }
}

/// SQL for providers, inventories, traits, aggregates, consumers and allocations.
struct PlacementStore: Sendable {
    // MARK: Providers

    static func provider(_ r: Row) -> ResourceProvider {
        ResourceProvider(uuid: r.string("uuid"), name: r.string("name"), generation: r.int("generation"), parentUUID: r.optionalString("parent_uuid"),
                         rootUUID: r.string("root_uuid"), updatedAt: Date(timeIntervalSince1970: r.double("updated_at")))
    }

    func provider(uuid: String, _ x: any SQLExecutor) async throws -> ResourceProvider? {
        try await x.query("SELECT * FROM placement_provider WHERE uuid = ?", [.text(uuid)]).first.map(Self.provider)
    }

    func provider(name: String, _ x: any SQLExecutor) async throws -> ResourceProvider? {
        try await x.query("SELECT * FROM placement_provider WHERE name = ?", [.text(name)]).first.map(Self.provider)
    }

    func providers(_ x: any SQLExecutor) async throws -> [ResourceProvider] {
        try await x.query("SELECT * FROM placement_provider ORDER BY created_at, uuid", []).map(Self.provider)
    }

    func insert(_ p: ResourceProvider, _ x: any SQLExecutor) async throws {
        try await structureChanged(x)
        let now = Date().timeIntervalSince1970
        try await x.execute("""
            INSERT INTO placement_provider (uuid, name, generation, parent_uuid, root_uuid, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
            """, [.text(p.uuid), .text(p.name), .integer(p.generation), .optional(p.parentUUID), .text(p.rootUUID), .real(now), .real(now)])
    }

    func update(_ p: ResourceProvider, _ x: any SQLExecutor) async throws {
        try await structureChanged(x)
        try await x.execute("UPDATE placement_provider SET name = ?, parent_uuid = ?, root_uuid = ?, updated_at = ? WHERE uuid = ?",
                            [.text(p.name), .optional(p.parentUUID), .text(p.rootUUID), .real(Date().timeIntervalSince1970), .text(p.uuid)])
    }

    /// Moves every provider whose root is `oldRoot` and that lies under `subtree` to `newRoot`.
    func setRoot(_ uuids: [String], root: String, _ x: any SQLExecutor) async throws {
        try await structureChanged(x)
        for uuid in uuids {
            try await x.execute("UPDATE placement_provider SET root_uuid = ? WHERE uuid = ?", [.text(root), .text(uuid)])
        }
    }

    func providers(root: String, _ x: any SQLExecutor) async throws -> [ResourceProvider] {
        try await x.query("SELECT * FROM placement_provider WHERE root_uuid = ?", [.text(root)]).map(Self.provider)
    }

    func hasChildren(_ uuid: String, _ x: any SQLExecutor) async throws -> Bool {
        try await x.first("SELECT 1 AS one FROM placement_provider WHERE parent_uuid = ?", .text(uuid)) != nil
    }

    func delete(provider uuid: String, _ x: any SQLExecutor) async throws -> Bool {
        try await structureChanged(x)
        return try await x.execute("DELETE FROM placement_provider WHERE uuid = ?", [.text(uuid)]) > 0
    }

    /// Every write of providers (other than their generation), inventories, traits or
    /// aggregates calls this in its transaction.
    func structureChanged(_ x: any SQLExecutor) async throws {
        try await x.execute("UPDATE placement_structure SET version = version + 1 WHERE id = 1", [])
    }

    /// The compare-and-swap every generation-guarded write goes through: moves the generation
    /// from `expected` to `expected + 1`, or changes nothing and returns false when another
    /// writer got there first. On PostgreSQL the row lock it takes holds until commit, so the
    /// writes that follow in the transaction cannot interleave with another claim's.
    func bumpGeneration(_ uuid: String, expected: Int64, _ x: any SQLExecutor) async throws -> Bool {
        try await x.execute("UPDATE placement_provider SET generation = generation + 1, updated_at = ? WHERE uuid = ? AND generation = ?",
                            [.real(Date().timeIntervalSince1970), .text(uuid), .integer(expected)]) == 1
    }

    // MARK: Inventories

    static func inventory(_ r: Row) -> Inventory {
        Inventory(total: r.int("total"), reserved: r.int("reserved"), minUnit: r.int("min_unit"), maxUnit: r.int("max_unit"),
                  stepSize: r.int("step_size"), allocationRatio: r.double("allocation_ratio"))
    }

    func inventories(_ provider: String, _ x: any SQLExecutor) async throws -> [String: Inventory] {
        var out: [String: Inventory] = [:]
        for r in try await x.query("SELECT * FROM placement_inventory WHERE provider_uuid = ?", [.text(provider)]) {
            out[r.string("resource_class")] = Self.inventory(r)
        }
        return out
    }

    func insertInventory(_ provider: String, _ rc: String, _ i: Inventory, _ x: any SQLExecutor) async throws {
        try await structureChanged(x)
        try await x.execute("""
            INSERT INTO placement_inventory (provider_uuid, resource_class, total, reserved, min_unit, max_unit, step_size, allocation_ratio)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """, [.text(provider), .text(rc), .integer(i.total), .integer(i.reserved), .integer(i.minUnit), .integer(i.maxUnit),
                  .integer(i.stepSize), .real(i.allocationRatio)])
    }

    func updateInventory(_ provider: String, _ rc: String, _ i: Inventory, _ x: any SQLExecutor) async throws {
        try await structureChanged(x)
        try await x.execute("""
            UPDATE placement_inventory SET total = ?, reserved = ?, min_unit = ?, max_unit = ?, step_size = ?, allocation_ratio = ?
            WHERE provider_uuid = ? AND resource_class = ?
            """, [.integer(i.total), .integer(i.reserved), .integer(i.minUnit), .integer(i.maxUnit), .integer(i.stepSize),
                  .real(i.allocationRatio), .text(provider), .text(rc)])
    }

    func deleteInventory(_ provider: String, _ rc: String, _ x: any SQLExecutor) async throws {
        try await structureChanged(x)
        try await x.execute("DELETE FROM placement_inventory WHERE provider_uuid = ? AND resource_class = ?", [.text(provider), .text(rc)])
    }

    func classInUseByInventory(_ rc: String, _ x: any SQLExecutor) async throws -> Bool {
        try await x.first("SELECT 1 AS one FROM placement_inventory WHERE resource_class = ?", .text(rc)) != nil
    }

    // MARK: Usage

    /// Class → amount allocated on one provider.
    func usages(_ provider: String, _ x: any SQLExecutor) async throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for r in try await x.query("SELECT resource_class, CAST(SUM(used) AS BIGINT) AS used FROM placement_allocation WHERE provider_uuid = ? GROUP BY resource_class",
                                   [.text(provider)]) {
            out[r.string("resource_class")] = r.int("used")
        }
        return out
    }

    /// Per consumer type (nil = none), class → amount and the number of consumers, over the
    /// consumers of a project (and user).
    func projectUsages(project: String, user: String?, _ x: any SQLExecutor) async throws -> [String?: (usages: [String: Int64], consumers: Int64)] {
        var sql = """
            SELECT c.consumer_type AS consumer_type, a.resource_class AS resource_class, CAST(SUM(a.used) AS BIGINT) AS used
            FROM placement_allocation a JOIN placement_consumer c ON c.uuid = a.consumer_uuid WHERE c.project_id = ?
            """
        var binds: [SQLValue] = [.text(project)]
        if let user {
            sql += " AND c.user_id = ?"
            binds.append(.text(user))
        }
        var out: [String?: (usages: [String: Int64], consumers: Int64)] = [:]
        for r in try await x.query(sql + " GROUP BY c.consumer_type, a.resource_class", binds) {
            out[r.optionalString("consumer_type"), default: ([:], 0)].usages[r.string("resource_class")] = r.int("used")
        }
        var countSQL = "SELECT consumer_type, COUNT(*) AS n FROM placement_consumer WHERE project_id = ?"
        if user != nil { countSQL += " AND user_id = ?" }
        for r in try await x.query(countSQL + " GROUP BY consumer_type", binds) {
            out[r.optionalString("consumer_type"), default: ([:], 0)].consumers = r.int("n")
        }
        return out
    }

    // MARK: Traits and aggregates

    func traits(_ provider: String, _ x: any SQLExecutor) async throws -> [String] {
        try await x.query("SELECT trait FROM placement_provider_trait WHERE provider_uuid = ? ORDER BY trait", [.text(provider)]).map { $0.string("trait") }
    }

    func setTraits(_ provider: String, _ traits: Set<String>, _ x: any SQLExecutor) async throws {
        try await structureChanged(x)
        try await x.execute("DELETE FROM placement_provider_trait WHERE provider_uuid = ?", [.text(provider)])
        for trait in traits.sorted() {
            try await x.execute("INSERT INTO placement_provider_trait (provider_uuid, trait) VALUES (?, ?)", [.text(provider), .text(trait)])
        }
    }

    func aggregates(_ provider: String, _ x: any SQLExecutor) async throws -> [String] {
        try await x.query("SELECT aggregate FROM placement_provider_aggregate WHERE provider_uuid = ? ORDER BY aggregate", [.text(provider)])
            .map { $0.string("aggregate") }
    }

    func setAggregates(_ provider: String, _ aggregates: Set<String>, _ x: any SQLExecutor) async throws {
        try await structureChanged(x)
        try await x.execute("DELETE FROM placement_provider_aggregate WHERE provider_uuid = ?", [.text(provider)])
        for aggregate in aggregates.sorted() {
            try await x.execute("INSERT INTO placement_provider_aggregate (provider_uuid, aggregate) VALUES (?, ?)", [.text(provider), .text(aggregate)])
        }
    }

    func customTraits(_ x: any SQLExecutor) async throws -> [String] {
        try await x.query("SELECT name FROM placement_trait ORDER BY name", []).map { $0.string("name") }
    }

    func associatedTraits(_ x: any SQLExecutor) async throws -> Set<String> {
        Set(try await x.query("SELECT DISTINCT trait FROM placement_provider_trait", []).map { $0.string("trait") })
    }

    func customTraitExists(_ name: String, _ x: any SQLExecutor) async throws -> Bool {
        try await x.first("SELECT 1 AS one FROM placement_trait WHERE name = ?", .text(name)) != nil
    }

    func customClasses(_ x: any SQLExecutor) async throws -> [String] {
        try await x.query("SELECT name FROM placement_resource_class ORDER BY created_at, name", []).map { $0.string("name") }
    }

    func customClassExists(_ name: String, _ x: any SQLExecutor) async throws -> Bool {
        try await x.first("SELECT 1 AS one FROM placement_resource_class WHERE name = ?", .text(name)) != nil
    }

    // MARK: Consumers and allocations

    struct Consumer: Sendable {
        var uuid: String
        var project: String
        var user: String
        var consumerType: String?
        var generation: Int64
    }

    func consumer(_ uuid: String, _ x: any SQLExecutor) async throws -> Consumer? {
        try await x.query("SELECT * FROM placement_consumer WHERE uuid = ?", [.text(uuid)]).first.map {
            Consumer(uuid: $0.string("uuid"), project: $0.string("project_id"), user: $0.string("user_id"),
                     consumerType: $0.optionalString("consumer_type"), generation: $0.int("generation"))
        }
    }

    /// Provider → class → amount held by `consumer`.
    func allocations(consumer: String, _ x: any SQLExecutor) async throws -> [String: [String: Int64]] {
        var out: [String: [String: Int64]] = [:]
        for r in try await x.query("SELECT provider_uuid, resource_class, used FROM placement_allocation WHERE consumer_uuid = ?", [.text(consumer)]) {
            out[r.string("provider_uuid"), default: [:]][r.string("resource_class")] = r.int("used")
        }
        return out
    }

    /// Consumer → class → amount on `provider`.
    func allocations(provider: String, _ x: any SQLExecutor) async throws -> [String: [String: Int64]] {
        var out: [String: [String: Int64]] = [:]
        for r in try await x.query("SELECT consumer_uuid, resource_class, used FROM placement_allocation WHERE provider_uuid = ?", [.text(provider)]) {
            out[r.string("consumer_uuid"), default: [:]][r.string("resource_class")] = r.int("used")
        }
        return out
    }

    func consumerGenerations(_ uuids: [String], _ x: any SQLExecutor) async throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for uuid in uuids {
            if let c = try await consumer(uuid, x) { out[uuid] = c.generation }
        }
        return out
    }

    func hasAllocations(provider: String, _ x: any SQLExecutor) async throws -> Bool {
        try await x.first("SELECT 1 AS one FROM placement_allocation WHERE provider_uuid = ?", .text(provider)) != nil
    }

    // MARK: Snapshot

    /// Usage as it is now; providers (with their generations), inventories, traits and
    /// aggregates as of the structure version, from `cache` when it has not moved since the
    /// cache was filled. Readers that show generations pass no cache.
    func snapshot(_ x: any SQLExecutor, cache: StructureCache? = nil) async throws -> PlacementSnapshot {
        var s = PlacementSnapshot()
        // Read first: a structure change committed after this read moves the version again,
        // so what is cached under it can only be as new or newer, never older.
        let version = try await x.first("SELECT version FROM placement_structure WHERE id = 1")?.int("version")
        for r in try await x.query("SELECT provider_uuid, resource_class, CAST(SUM(used) AS BIGINT) AS used FROM placement_allocation GROUP BY provider_uuid, resource_class", []) {
            s.usages[r.string("provider_uuid"), default: [:]][r.string("resource_class")] = r.int("used")
        }
        if let version, let cached = cache?.entry(version) {
            (s.providers, s.order, s.inventories, s.traits, s.aggregates, s.layout, s.flatHosts) =
                (cached.providers, cached.order, cached.inventories, cached.traits, cached.aggregates, cached.layout, cached.flatHosts)
            return s
        }
        for p in try await providers(x) {
            s.providers[p.uuid] = p
            s.order.append(p.uuid)
        }
        for r in try await x.query("SELECT * FROM placement_inventory", []) {
            s.inventories[r.string("provider_uuid"), default: [:]][r.string("resource_class")] = Self.inventory(r)
        }
        for r in try await x.query("SELECT provider_uuid, trait FROM placement_provider_trait", []) {
            s.traits[r.string("provider_uuid"), default: []].insert(r.string("trait"))
        }
        for r in try await x.query("SELECT provider_uuid, aggregate FROM placement_provider_aggregate", []) {
            s.aggregates[r.string("provider_uuid"), default: []].insert(r.string("aggregate"))
        }
        s.layout = PlacementSnapshot.TreeLayout(order: s.order, providers: s.providers, traits: s.traits, sharingTrait: PlacementService.sharingTrait)
        // Only the scheduler's queries, which pass the cache, read it.
        if cache != nil { s.flatHosts = PlacementSnapshot.FlatHosts(s) }
        if let version {
            cache?.store(StructureCache.Entry(version: version, providers: s.providers, order: s.order, inventories: s.inventories,
                                              traits: s.traits, aggregates: s.aggregates, layout: s.layout, flatHosts: s.flatHosts))
        }
        return s
    }
}

/// Providers, inventories, traits and aggregates as of one structure version: every boot reads
/// them, and they change only when agents report new hosts or operators change them.
final class StructureCache: @unchecked Sendable {
    struct Entry {
        var version: Int64
        var providers: [String: ResourceProvider]
        var order: [String]
        var inventories: [String: [String: Inventory]]
        var traits: [String: Set<String>]
        var aggregates: [String: Set<String>]
        var layout: PlacementSnapshot.TreeLayout
        var flatHosts: PlacementSnapshot.FlatHosts?
    }

    private let lock = NSLock()
    private var current: Entry?

    func entry(_ version: Int64) -> Entry? { lock.withLock { current?.version == version ? current : nil } }
    func store(_ entry: Entry) { lock.withLock { current = entry } }
}
