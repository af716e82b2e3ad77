import Foundation

/// A resource provider: a compute node, or anything else that has inventory (a shared storage
/// pool, a NIC's bandwidth). Providers form trees through `parentUUID`; `generation` moves on
/// every change to what the provider can hold, and writers that care pass the value they read.
public struct ResourceProvider: Sendable, Equatable {
    public var uuid: String
    public var name: String
    public var generation: Int64
    public var parentUUID: String?
    public var rootUUID: String
    public var updatedAt: Date

    public init(uuid: String, name: String, generation: Int64 = 0, parentUUID: String? = nil, rootUUID: String? = nil, updatedAt: Date = Date()) {
        self.uuid = uuid
        self.name = name
        self.generation = generation
        self.parentUUID = parentUUID
        self.rootUUID = rootUUID ?? uuid
        self.updatedAt = updatedAt
    }
}

/// One resource class's inventory on one provider.
public struct Inventory: Sendable, Equatable {
    public static let maxInteger: Int64 = 2_147_483_647

    public var total: Int64
    public var reserved: Int64
    public var minUnit: Int64
    public var maxUnit: Int64
    public var stepSize: Int64
    public var allocationRatio: Double

    public init(total: Int64, reserved: Int64 = 0, minUnit: Int64 = 1, maxUnit: Int64 = Inventory.maxInteger, stepSize: Int64 = 1,
                allocationRatio: Double = 1.0) {
        self.total = total
        self.reserved = reserved
        self.minUnit = minUnit
        self.maxUnit = maxUnit
        self.stepSize = stepSize
        self.allocationRatio = allocationRatio
    }

    /// `(total − reserved) × allocation_ratio`, not truncated: allocations are checked against this.
    public var capacity: Double { Double(total - reserved) * allocationRatio }

    /// The capacity as summaries and usage displays show it.
    public var displayCapacity: Int64 {
        let c = capacity
        return c >= Double(Int64.max) ? Int64.max : Int64(c.rounded(.towardZero))
    }

    /// Whether one allocation of `amount` respects min_unit, max_unit and step_size.
    public func accepts(_ amount: Int64) -> Bool {
        amount >= minUnit && amount <= maxUnit && amount % stepSize == 0
    }

    /// Whether `amount` more fits on top of `used`.
    public func fits(_ amount: Int64, used: Int64) -> Bool {
        Double(used + amount) <= capacity
    }
}

extension Int64 {
    /// `self + other`, held at Int64's bounds instead of trapping. Placement's schema bounds
    /// an allocation amount below only, so sums of request amounts saturate; any amount that
    /// large is above every `max_unit` and is refused as violating the inventory's constraints.
    func addingSaturating(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }
}

/// A provider's capacity and usage of one resource class, as allocation-candidate summaries
/// report it.
public struct ResourceUsage: Sendable, Equatable {
    public var capacity: Int64
    public var used: Int64

    public init(capacity: Int64, used: Int64) {
        self.capacity = capacity
        self.used = used
    }
}

/// What the scheduler asks placement for: resources from one provider tree (possibly spread
/// over several providers of that tree, and over sharing providers), with trait and aggregate
/// constraints. This is placement's unsuffixed request group plus the request-wide options.
public struct ResourceRequest: Sendable, Equatable {
    /// Resource class → amount; every amount must be at least 1.
    public var resources: [String: Int64]
    /// Traits every candidate must have (on the providers that contribute resources).
    public var requiredTraits: Set<String>
    /// Traits no contributing provider may have.
    public var forbiddenTraits: Set<String>
    /// Aggregate constraints: each inner list is any-of, the lists are all-of.
    public var memberOf: [[String]]
    /// Restricts candidates to the tree of this provider.
    public var inTree: String?
    /// Traits the root provider of each candidate tree must have (`root_required`).
    public var rootRequiredTraits: Set<String>
    /// Traits the root provider of each candidate tree must not have (`root_required=!T`):
    /// the scheduler passes `COMPUTE_STATUS_DISABLED` here.
    public var rootForbiddenTraits: Set<String>
    /// At most this many candidates.
    public var limit: Int?

    public init(resources: [String: Int64], requiredTraits: Set<String> = [], forbiddenTraits: Set<String> = [], memberOf: [[String]] = [],
                inTree: String? = nil, rootRequiredTraits: Set<String> = [], rootForbiddenTraits: Set<String> = [], limit: Int? = nil) {
        self.resources = resources
        self.requiredTraits = requiredTraits
        self.forbiddenTraits = forbiddenTraits
        self.memberOf = memberOf
        self.inTree = inTree
        self.rootRequiredTraits = rootRequiredTraits
        self.rootForbiddenTraits = rootForbiddenTraits
        self.limit = limit
    }
}

/// One way to satisfy a request: what to claim from which provider, in the shape `claim` takes.
public struct AllocationCandidate: Sendable, Equatable, Hashable {
    /// Provider uuid → resource class → amount.
    public var allocations: [String: [String: Int64]]
    /// Request group suffix ("" for the unsuffixed group) → the providers that satisfied it.
    public var mappings: [String: [String]]

    public init(allocations: [String: [String: Int64]], mappings: [String: [String]] = [:]) {
        self.allocations = allocations
        self.mappings = mappings
    }
}

/// What the scheduler needs to know about a provider that appears in candidates.
public struct ProviderSummary: Sendable, Equatable {
    public var uuid: String
    public var name: String
    public var parentUUID: String?
    public var rootUUID: String
    /// Every class the provider has inventory of.
    public var resources: [String: ResourceUsage]
    public var traits: Set<String>
    public var aggregates: Set<String>

    public init(uuid: String, name: String, parentUUID: String?, rootUUID: String, resources: [String: ResourceUsage], traits: Set<String>,
                aggregates: Set<String>) {
        self.uuid = uuid
        self.name = name
        self.parentUUID = parentUUID
        self.rootUUID = rootUUID
        self.resources = resources
        self.traits = traits
        self.aggregates = aggregates
    }
}

// MARK: Internal request shapes shared by the HTTP layer and the Swift API

/// One request group of an allocation-candidates query.
struct RequestGroup: Sendable, Equatable {
    var resources: [String: Int64] = [:]
    /// All-of a list of any-of sets (`required=A,B&required=in:C,D` is [{A}, {B}, {C, D}]).
    var requiredTraits: [Set<String>] = []
    var forbiddenTraits: Set<String> = []
    /// All-of a list of any-of aggregate lists.
    var memberOf: [Set<String>] = []
    var forbiddenAggregates: Set<String> = []
    var inTree: String?
}

/// A whole allocation-candidates query: request groups keyed by suffix ("" is unsuffixed)
/// and the request-wide parameters.
struct CandidateQuery: Sendable {
    var groups: [String: RequestGroup] = [:]
    var isolate = false
    var rootRequired: [Set<String>] = []
    var rootForbidden: Set<String> = []
    var sameSubtree: [[String]] = []
    var limit: Int?
    /// Below 1.29 candidates come from flat providers only.
    var nestedAware = true
}

/// How a write treats the consumer generation.
enum ConsumerGenerationCheck: Sendable, Equatable {
    /// Below 1.28, and for the in-process API: no check.
    case none
    /// The client's view: nil means "the consumer must not exist yet".
    case expect(Int64?)
}

/// One consumer's allocations in a write (`PUT /allocations/{c}`, one key of `POST /allocations`).
struct ConsumerAllocations: Sendable {
    var consumer: String
    var project: String
    var user: String
    var generation: ConsumerGenerationCheck
    var consumerType: String?
    /// Provider uuid → class → amount; empty removes every allocation of the consumer.
    var allocations: [String: [String: Int64]]
}

/// A consumer's allocations as `GET /allocations/{c}` shows them.
struct ConsumerView: Sendable {
    var allocations: [String: (generation: Int64, resources: [String: Int64])]
    var project: String?
    var user: String?
    var generation: Int64?
    var consumerType: String?
}

/// Filters of `GET /resource_providers`, all ANDed.
struct ProviderFilter: Sendable {
    var name: String?
    var uuid: String?
    var memberOf: [Set<String>] = []
    var forbiddenAggregates: Set<String> = []
    var resources: [String: Int64] = [:]
    var inTree: String?
    var requiredTraits: [Set<String>] = []
    var forbiddenTraits: Set<String> = []
}
