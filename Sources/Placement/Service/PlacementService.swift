import Foundation
import Logging
import NimbusCore
import NimbusStore

/// Placement's logic: resource providers and their inventories, traits and aggregates,
/// resource classes and traits, consumers' allocations, and allocation candidates. No HTTP
/// here: the routes translate each microversion's JSON into these calls, and the scheduler and
/// compute agent call the public methods in `PlacementService+Scheduler.swift` in-process.
///
/// Concurrency: every write that changes what a provider can hold or holds (inventory,
/// traits, aggregates, allocations) moves the provider's generation with a compare-and-swap
/// inside the write's transaction, so two such writes on one provider serialise: on SQLite
/// because there is one writer, on PostgreSQL because the conditional UPDATE takes the row lock
/// until commit and the loser sees the moved generation.
public final class PlacementService: Sendable {
    let db: any Database
    let store = PlacementStore()
    let policy: PolicyEngine
    let logger: Logger
    /// How often an allocation write that lost a provider-generation race is retried before
    /// answering 409 (`[placement] allocation_conflict_retry_count`).
    let conflictRetries: Int
    /// What allocation candidates reuse between requests (see `StructureCache`).
    let structure = StructureCache()
    /// Project and user stored for allocations written below 1.8, which carry neither.
    public static let incompleteConsumerProject = "00000000-0000-0000-0000-000000000000"
    public static let incompleteConsumerUser = "00000000-0000-0000-0000-000000000000"

    public init(db: any Database, policy: PolicyEngine, logger: Logger, conflictRetries: Int = 10) {
        self.db = db
        self.policy = policy
        self.logger = logger
        self.conflictRetries = max(conflictRetries, 1)
    }

    // MARK: Errors

    enum Code {
        static let concurrentUpdate = "placement.concurrent_update"
        static let duplicateName = "placement.duplicate_name"
        static let inventoryInUse = "placement.inventory.inuse"
        static let providerInUse = "placement.resource_provider.inuse"
        static let cannotDeleteParent = "placement.resource_provider.cannot_delete_parent"
        static let providerNotFound = "placement.resource_provider.not_found"
        static let duplicateKey = "placement.query.duplicate_key"
        static let badValue = "placement.query.bad_value"
        static let missingValue = "placement.query.missing_value"
    }

    static func conflict(_ message: String, code: String? = nil) -> APIError { APIError(.conflict, message, code: code) }

    static func generationConflict() -> APIError {
        conflict("resource provider generation conflict", code: Code.concurrentUpdate)
    }

    static func providerNotFound(_ uuid: String) -> APIError {
        APIError.notFound("No resource provider with uuid \(uuid) found")
    }

    /// A provider-generation compare-and-swap lost to another writer inside a transaction
    /// that retries on its own.
    struct LostRace: Error {}

    /// Runs `body` in a transaction, again on a lost race (up to `conflictRetries` times), then
    /// gives up with 409 concurrent_update.
    func retrying<T: Sendable>(_ what: String, _ body: @escaping @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        for _ in 0..<conflictRetries {
            do {
                return try await db.transaction(body)
            } catch is LostRace {
                continue
            } catch DatabaseError.uniqueViolation {
                // Two writers created the same consumer row at once; the retry sees it.
                continue
            } catch let DatabaseError.other(message) where message.contains("[40P01]") || message.contains("[40001]") {
                continue  // PostgreSQL deadlock or serialization failure: nothing was written.
            }
        }
        throw Self.conflict("\(what) changed while attempting to allocate: Another thread concurrently updated the data. Please retry your update",
                            code: Code.concurrentUpdate)
    }

    // MARK: Policy

    /// Placement's 403 names the rule.
    public func authorize(_ action: String, _ caller: AuthContext, target: [String: String] = [:]) throws {
        guard policy.enforce(action, credentials: caller.policyInput, target: target) else {
            throw APIError.forbidden("Policy does not allow \(action) to be performed.")
        }
    }

    // MARK: Names

    static func isCustom(_ name: String) -> Bool {
        name.hasPrefix("CUSTOM_") && name.count > 7 && name.count <= 255 && name.utf8.allSatisfy { isNameByte($0) }
    }

    /// `[A-Z0-9_]`, the alphabet of resource class and trait names.
    static func isNameByte(_ b: UInt8) -> Bool {
        (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == 0x5F
    }

    func classExists(_ name: String, _ x: any SQLExecutor) async throws -> Bool {
        if StandardNames.resourceClassSet.contains(name) { return true }
        return Self.isCustom(name) ? try await store.customClassExists(name, x) : false
    }

    func traitExists(_ name: String, _ x: any SQLExecutor) async throws -> Bool {
        if StandardNames.traitSet.contains(name) { return true }
        return Self.isCustom(name) ? try await store.customTraitExists(name, x) : false
    }

    /// 400 naming the traits that do not exist.
    func requireTraits(_ names: Set<String>, _ x: any SQLExecutor, message: (String) -> String = { "No such trait(s): \($0)." }) async throws {
        var missing: [String] = []
        for name in names.sorted() where try await !traitExists(name, x) { missing.append(name) }
        if !missing.isEmpty { throw APIError.badRequest(message(missing.joined(separator: ", "))) }
    }

    // MARK: Providers

    func requireProvider(_ uuid: String, _ x: any SQLExecutor) async throws -> ResourceProvider {
        guard let p = try await store.provider(uuid: uuid, x) else { throw Self.providerNotFound(uuid) }
        return p
    }

    func provider(_ uuid: String) async throws -> ResourceProvider {
        guard let p = try await store.provider(uuid: uuid, db) else { throw Self.providerNotFound(uuid) }
        return p
    }

    func createProvider(uuid: String?, name: String, parent: String?) async throws -> ResourceProvider {
        let uuid = uuid ?? Identifiers.uuid()
        do {
            return try await db.transaction { x in
                if try await self.store.provider(uuid: uuid, x) != nil {
                    throw Self.conflict("Conflicting resource provider uuid: \(uuid) already exists.", code: Code.duplicateName)
                }
                if try await self.store.provider(name: name, x) != nil {
                    throw Self.conflict("Conflicting resource provider name: \(name) already exists.", code: Code.duplicateName)
                }
                var root = uuid
                if let parent {
                    if parent == uuid { throw APIError.badRequest("Unable to create resource provider \"\(name)\", \(uuid): parent provider UUID cannot be same as UUID. Please choose a different parent provider UUID.") }
                    guard let p = try await self.store.provider(uuid: parent, x) else {
                        throw APIError.badRequest("Unable to create resource provider \"\(name)\", \(uuid): parent provider UUID does not exist.")
                    }
                    root = p.rootUUID
                }
                let provider = ResourceProvider(uuid: uuid, name: name, parentUUID: parent, rootUUID: root)
                try await self.store.insert(provider, x)
                return provider
            }
        } catch DatabaseError.uniqueViolation {
            // A concurrent create won; say which key collided as the checks above would have.
            if try await store.provider(uuid: uuid, db) != nil {
                throw Self.conflict("Conflicting resource provider uuid: \(uuid) already exists.", code: Code.duplicateName)
            }
            throw Self.conflict("Conflicting resource provider name: \(name) already exists.", code: Code.duplicateName)
        }
    }

    /// Renames and (re)parents a provider. `parent` nil leaves the parent alone; `.some(nil)`
    /// makes the provider a root. Below 1.37 only a root may gain a parent.
    func updateProvider(_ uuid: String, name: String, parent: String??, allowReparent: Bool) async throws -> ResourceProvider {
        do {
            return try await db.transaction { x in
                var provider = try await self.requireProvider(uuid, x)
                if let other = try await self.store.provider(name: name, x), other.uuid != uuid {
                    throw Self.conflict("Conflicting resource provider name: \(name) already exists.", code: Code.duplicateName)
                }
                provider.name = name
                if let newParent = parent, newParent != provider.parentUUID {
                    if provider.parentUUID != nil && !allowReparent {
                        throw APIError.badRequest(newParent == nil ? "Un-parenting a provider is not currently allowed."
                                                  : "Re-parenting a provider is not currently allowed.")
                    }
                    var newRoot = uuid
                    if let newParent {
                        guard let p = try await self.store.provider(uuid: newParent, x) else {
                            throw APIError.badRequest("parent provider UUID does not exist.")
                        }
                        let subtree = try await self.subtree(of: provider, x)
                        if subtree.contains(newParent) {
                            throw APIError.badRequest("creating loop in the provider tree is not allowed.")
                        }
                        newRoot = p.rootUUID
                    }
                    if newRoot != provider.rootUUID {
                        try await self.store.setRoot(Array(try await self.subtree(of: provider, x)), root: newRoot, x)
                    }
                    provider.parentUUID = newParent
                    provider.rootUUID = newRoot
                }
                try await self.store.update(provider, x)
                return provider
            }
        } catch DatabaseError.uniqueViolation {
            throw Self.conflict("Conflicting resource provider name: \(name) already exists.", code: Code.duplicateName)
        }
    }

    /// The provider and every provider below it.
    func subtree(of provider: ResourceProvider, _ x: any SQLExecutor) async throws -> Set<String> {
        let tree = try await store.providers(root: provider.rootUUID, x)
        var children: [String: [String]] = [:]
        for p in tree { if let parent = p.parentUUID { children[parent, default: []].append(p.uuid) } }
        var out: Set<String> = [provider.uuid]
        var queue = [provider.uuid]
        while let next = queue.popLast() {
            for child in children[next] ?? [] where out.insert(child).inserted { queue.append(child) }
        }
        return out
    }

    func deleteProvider(_ uuid: String) async throws {
        try await retrying("Resource provider") { x in
            guard let provider = try await self.store.provider(uuid: uuid, x) else {
                throw APIError.notFound("No resource provider with uuid \(uuid) found for delete")
            }
            // Take the provider's lock first so no claim can land between the check and the delete.
            guard try await self.store.bumpGeneration(uuid, expected: provider.generation, x) else { throw LostRace() }
            if try await self.store.hasChildren(uuid, x) {
                throw Self.conflict("Unable to delete parent resource provider \(uuid): It has child resource providers.",
                                    code: Code.cannotDeleteParent)
            }
            if try await self.store.hasAllocations(provider: uuid, x) {
                throw Self.conflict("Unable to delete resource provider \(uuid): Resource provider has allocations.", code: Code.providerInUse)
            }
            _ = try await self.store.delete(provider: uuid, x)
        }
    }

    func listProviders(_ filter: ProviderFilter) async throws -> [ResourceProvider] {
        let snapshot = try await db.transaction { x in try await self.store.snapshot(x) }
        let ordered = snapshot.order.compactMap { snapshot.providers[$0] }
        var inTreeRoot: String?
        if let inTree = filter.inTree {
            guard let p = snapshot.providers[inTree] else { return [] }
            inTreeRoot = p.rootUUID
        }
        return ordered.filter { p in
            if let name = filter.name, p.name != name { return false }
            if let uuid = filter.uuid, p.uuid != uuid { return false }
            if let root = inTreeRoot, p.rootUUID != root { return false }
            let aggregates = snapshot.aggregates[p.uuid] ?? []
            if !filter.memberOf.allSatisfy({ !$0.isDisjoint(with: aggregates) }) { return false }
            if !filter.forbiddenAggregates.isDisjoint(with: aggregates) { return false }
            let traits = snapshot.traits[p.uuid] ?? []
            if !filter.requiredTraits.allSatisfy({ !$0.isDisjoint(with: traits) }) { return false }
            if !filter.forbiddenTraits.isDisjoint(with: traits) { return false }
            let inventories = snapshot.inventories[p.uuid] ?? [:]
            let usages = snapshot.usages[p.uuid] ?? [:]
            for (rc, amount) in filter.resources {
                guard let inv = inventories[rc], inv.accepts(amount), inv.fits(amount, used: usages[rc] ?? 0) else { return false }
            }
            return true
        }
    }

    // MARK: Inventories

    func inventories(_ uuid: String) async throws -> (generation: Int64, inventories: [String: Inventory]) {
        try await db.transaction { x in
            let p = try await self.requireProvider(uuid, x)
            return (p.generation, try await self.store.inventories(uuid, x))
        }
    }

    /// Checks a class name and one inventory's values; `strictReserved` is the pre-1.26 rule
    /// that reserved must stay below total.
    func validate(_ rc: String, _ inv: Inventory, provider: String, strictReserved: Bool, _ x: any SQLExecutor) async throws {
        guard try await classExists(rc, x) else {
            throw APIError.badRequest("Unknown resource class in inventory for resource provider \(provider): \(rc)")
        }
        if strictReserved ? inv.reserved >= inv.total : inv.reserved > inv.total {
            throw APIError.badRequest("Unable to update inventory for resource provider \(provider): Invalid inventory for '\(rc)' on resource provider '\(provider)'. The reserved value is greater than \(strictReserved ? "or equal to " : "")total.")
        }
    }

    /// Takes the provider's generation from `expected` (the caller's view) to the next, or
    /// answers 409 concurrent_update; 404 for an unknown provider.
    func claimGeneration(_ uuid: String, expected: Int64?, _ x: any SQLExecutor) async throws -> ResourceProvider {
        var provider = try await requireProvider(uuid, x)
        let expected = expected ?? provider.generation
        guard provider.generation == expected, try await store.bumpGeneration(uuid, expected: expected, x) else {
            throw Self.generationConflict()
        }
        provider.generation = expected + 1
        return provider
    }

    /// Classes among `removed` that still have allocations on the provider: 409 inventory in use.
    func checkNotInUse(_ removed: Set<String>, provider: String, code: String, _ x: any SQLExecutor) async throws {
        guard !removed.isEmpty else { return }
        let used = try await store.usages(provider, x).filter { removed.contains($0.key) && $0.value > 0 }
        if !used.isEmpty {
            throw Self.conflict("Inventory for '\(used.keys.sorted().joined(separator: ", "))' on resource provider '\(provider)' in use.", code: code)
        }
    }

    /// Replaces every inventory of the provider (`PUT …/inventories`).
    func setInventories(_ uuid: String, generation: Int64?, _ inventories: [String: Inventory], strictReserved: Bool) async throws
        -> (generation: Int64, inventories: [String: Inventory])
    {
        try await db.transaction { x in
            let provider = try await self.claimGeneration(uuid, expected: generation, x)
            try await self.replaceInventories(uuid, inventories, strictReserved: strictReserved, x)
            return (provider.generation, inventories)
        }
    }

    func replaceInventories(_ uuid: String, _ inventories: [String: Inventory], strictReserved: Bool, checkInUse: Bool = true,
                            _ x: any SQLExecutor) async throws {
        for (rc, inv) in inventories.sorted(by: { $0.key < $1.key }) {
            try await validate(rc, inv, provider: uuid, strictReserved: strictReserved, x)
        }
        let existing = try await store.inventories(uuid, x)
        let removed = Set(existing.keys).subtracting(inventories.keys)
        if checkInUse { try await checkNotInUse(removed, provider: uuid, code: Code.inventoryInUse, x) }
        for rc in removed.sorted() { try await store.deleteInventory(uuid, rc, x) }
        for (rc, inv) in inventories.sorted(by: { $0.key < $1.key }) {
            if existing[rc] == nil {
                try await store.insertInventory(uuid, rc, inv, x)
            } else if existing[rc] != inv {
                try await store.updateInventory(uuid, rc, inv, x)
            }
        }
    }

    /// `PUT …/inventories/{rc}`: updates an existing class only.
    func updateInventory(_ uuid: String, _ rc: String, generation: Int64, _ inventory: Inventory, strictReserved: Bool) async throws
        -> (generation: Int64, inventory: Inventory)
    {
        try await db.transaction { x in
            let provider = try await self.claimGeneration(uuid, expected: generation, x)
            try await self.validate(rc, inventory, provider: uuid, strictReserved: strictReserved, x)
            guard try await self.store.inventories(uuid, x)[rc] != nil else {
                throw APIError.badRequest("No inventory record with resource class for resource provider \(uuid): \(rc)")
            }
            try await self.store.updateInventory(uuid, rc, inventory, x)
            return (provider.generation, inventory)
        }
    }

    /// `POST …/inventories`: adds one class.
    func addInventory(_ uuid: String, _ rc: String, _ inventory: Inventory, strictReserved: Bool) async throws -> (generation: Int64, inventory: Inventory) {
        try await db.transaction { x in
            let provider = try await self.claimGeneration(uuid, expected: nil, x)
            try await self.validate(rc, inventory, provider: uuid, strictReserved: strictReserved, x)
            if try await self.store.inventories(uuid, x)[rc] != nil {
                throw Self.conflict("Update conflict: Inventory for resource class \(rc) already exists on resource provider \(uuid)",
                                    code: Code.concurrentUpdate)
            }
            try await self.store.insertInventory(uuid, rc, inventory, x)
            return (provider.generation, inventory)
        }
    }

    func inventory(_ uuid: String, _ rc: String) async throws -> (generation: Int64, inventory: Inventory) {
        let (generation, inventories) = try await inventories(uuid)
        guard let inv = inventories[rc] else {
            throw APIError.notFound("No inventory of class \(rc) for \(uuid)")
        }
        return (generation, inv)
    }

    func deleteInventory(_ uuid: String, _ rc: String) async throws {
        try await db.transaction { x in
            _ = try await self.claimGeneration(uuid, expected: nil, x)
            guard try await self.store.inventories(uuid, x)[rc] != nil else {
                throw APIError.notFound("No inventory of class \(rc) found for delete")
            }
            try await self.checkNotInUse([rc], provider: uuid, code: Code.concurrentUpdate, x)
            try await self.store.deleteInventory(uuid, rc, x)
        }
    }

    // MARK: Usages

    /// Class → used, with a 0 for every class the provider has inventory of.
    func providerUsages(_ uuid: String) async throws -> (generation: Int64, usages: [String: Int64]) {
        try await db.transaction { x in
            let p = try await self.requireProvider(uuid, x)
            var usages = try await self.store.usages(uuid, x)
            for rc in try await self.store.inventories(uuid, x).keys where usages[rc] == nil { usages[rc] = 0 }
            return (p.generation, usages)
        }
    }

    /// Usage of a project (and user) per consumer type (nil = none): class → amount, and the
    /// number of consumers.
    func projectUsages(project: String, user: String?) async throws -> [String?: (usages: [String: Int64], consumers: Int64)] {
        try await store.projectUsages(project: project, user: user, db)
    }

    // MARK: Resource classes

    func resourceClasses() async throws -> [String] {
        StandardNames.resourceClasses + (try await store.customClasses(db))
    }

    func resourceClassExists(_ name: String) async throws -> Bool {
        try await classExists(name, db)
    }

    static func requireCustomClass(_ name: String) throws {
        guard isCustom(name) else {
            throw APIError.badRequest("JSON does not validate: '\(name)' does not match '^CUSTOM\\\\_[A-Z0-9_]+$'")
        }
    }

    /// Creates a custom class; false if it already existed.
    func ensureResourceClass(_ name: String) async throws -> Bool {
        try Self.requireCustomClass(name)
        do {
            return try await db.transaction { x in
                if try await self.store.customClassExists(name, x) { return false }
                try await x.execute("INSERT INTO placement_resource_class (name, created_at) VALUES (?, ?)", [.text(name), .real(Date().timeIntervalSince1970)])
                return true
            }
        } catch DatabaseError.uniqueViolation {
            return false
        }
    }

    func createResourceClass(_ name: String) async throws {
        if try await !ensureResourceClass(name) {
            throw Self.conflict("Conflicting resource class already exists: \(name)")
        }
    }

    /// Renames a custom class (1.2–1.6).
    func renameResourceClass(_ name: String, to newName: String) async throws {
        if StandardNames.resourceClassSet.contains(name) {
            throw APIError.badRequest("Cannot update standard resource class \(name)")
        }
        try Self.requireCustomClass(newName)
        try await db.transaction { x in
            guard try await self.store.customClassExists(name, x) else { throw APIError.notFound("No such resource class \(name).") }
            if try await self.classExists(newName, x) { throw Self.conflict("Resource class already exists: \(newName)") }
            try await x.execute("UPDATE placement_resource_class SET name = ? WHERE name = ?", [.text(newName), .text(name)])
            try await x.execute("UPDATE placement_inventory SET resource_class = ? WHERE resource_class = ?", [.text(newName), .text(name)])
            try await self.store.structureChanged(x)
            try await x.execute("UPDATE placement_allocation SET resource_class = ? WHERE resource_class = ?", [.text(newName), .text(name)])
        }
    }

    func deleteResourceClass(_ name: String) async throws {
        if StandardNames.resourceClassSet.contains(name) {
            throw APIError.badRequest("Cannot delete standard resource class \(name): Resource class is a standard class.")
        }
        try await db.transaction { x in
            guard try await self.store.customClassExists(name, x) else { throw APIError.notFound("No such resource class \(name).") }
            if try await self.store.classInUseByInventory(name, x) {
                throw Self.conflict("Unable to delete resource class \(name). Class is in use in inventory.")
            }
            try await x.execute("DELETE FROM placement_resource_class WHERE name = ?", [.text(name)])
        }
    }

    // MARK: Traits

    enum TraitNameFilter: Sendable {
        case anyOf(Set<String>)
        case prefix(String)
    }

    func traits(name: TraitNameFilter?, associated: Bool?) async throws -> [String] {
        var all = StandardNames.traits + (try await store.customTraits(db))
        switch name {
        case .anyOf(let names)?: all = all.filter { names.contains($0) }
        case .prefix(let prefix)?: all = all.filter { $0.hasPrefix(prefix) }
        case nil: break
        }
        if let associated {
            let used = try await store.associatedTraits(db)
            all = all.filter { used.contains($0) == associated }
        }
        return all.sorted()
    }

    func traitExists(_ name: String) async throws -> Bool {
        try await traitExists(name, db)
    }

    static func requireCustomTrait(_ name: String) throws {
        guard isCustom(name) else {
            throw APIError.badRequest("The trait is invalid. A valid trait must be no longer than 255 characters, start with the prefix \"CUSTOM_\" and use following characters: \"A\"-\"Z\", \"0\"-\"9\" and \"_\"")
        }
    }

    /// Creates a custom trait; false if it already existed (or is standard).
    func ensureTrait(_ name: String) async throws -> Bool {
        if StandardNames.traitSet.contains(name) { return false }
        try Self.requireCustomTrait(name)
        do {
            return try await db.transaction { x in
                if try await self.store.customTraitExists(name, x) { return false }
                try await x.execute("INSERT INTO placement_trait (name, created_at) VALUES (?, ?)", [.text(name), .real(Date().timeIntervalSince1970)])
                return true
            }
        } catch DatabaseError.uniqueViolation {
            return false
        }
    }

    func deleteTrait(_ name: String) async throws {
        if StandardNames.traitSet.contains(name) { throw APIError.badRequest("Cannot delete standard trait \(name).") }
        try await db.transaction { x in
            guard try await self.store.customTraitExists(name, x) else { throw APIError.notFound("No such trait(s): \(name).") }
            if try await x.first("SELECT 1 AS one FROM placement_provider_trait WHERE trait = ?", .text(name)) != nil {
                throw Self.conflict("The trait \(name) is in use by a resource provider.")
            }
            try await x.execute("DELETE FROM placement_trait WHERE name = ?", [.text(name)])
        }
    }

    func providerTraits(_ uuid: String) async throws -> (generation: Int64, traits: [String]) {
        try await db.transaction { x in
            let p = try await self.requireProvider(uuid, x)
            return (p.generation, try await self.store.traits(uuid, x))
        }
    }

    static func staleGeneration() -> APIError {
        conflict("Resource provider's generation already changed. Please update the generation and try again.", code: Code.concurrentUpdate)
    }

    func setProviderTraits(_ uuid: String, generation: Int64, _ traits: Set<String>) async throws -> (generation: Int64, traits: [String]) {
        try await db.transaction { x in
            let p = try await self.requireProvider(uuid, x)
            try await self.requireTraits(traits, x)
            guard p.generation == generation, try await self.store.bumpGeneration(uuid, expected: generation, x) else {
                throw Self.staleGeneration()
            }
            try await self.store.setTraits(uuid, traits, x)
            return (generation + 1, traits.sorted())
        }
    }

    func deleteProviderTraits(_ uuid: String) async throws {
        try await db.transaction { x in
            let p = try await self.requireProvider(uuid, x)
            guard try await self.store.bumpGeneration(uuid, expected: p.generation, x) else { throw Self.staleGeneration() }
            try await self.store.setTraits(uuid, [], x)
        }
    }

    // MARK: Aggregates

    func providerAggregates(_ uuid: String) async throws -> (generation: Int64, aggregates: [String]) {
        try await db.transaction { x in
            let p = try await self.requireProvider(uuid, x)
            return (p.generation, try await self.store.aggregates(uuid, x))
        }
    }

    /// With a generation (1.19+) the write is checked and moves the generation; without, neither.
    func setProviderAggregates(_ uuid: String, generation: Int64?, _ aggregates: Set<String>) async throws -> (generation: Int64, aggregates: [String]) {
        try await db.transaction { x in
            let p = try await self.requireProvider(uuid, x)
            var newGeneration = p.generation
            if let generation {
                guard p.generation == generation, try await self.store.bumpGeneration(uuid, expected: generation, x) else {
                    throw Self.staleGeneration()
                }
                newGeneration = generation + 1
            }
            try await self.store.setAggregates(uuid, aggregates, x)
            return (newGeneration, aggregates.sorted())
        }
    }
}
