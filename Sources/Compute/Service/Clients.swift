import Foundation
import NimbusCore

/// What the compute service needs from placement. Nimbus wires the in-process placement
/// service behind it; compute never reads placement's tables.
public protocol PlacementClient: Sendable {
    /// Providers that can hold the request, each with the allocation that would hold it and its
    /// capacity and use (Nova's `GET /allocation_candidates`).
    func candidates(_ request: PlacementRequest) async throws -> [ProviderCandidate]
    /// Replaces the consumer's allocations in one step; false, with nothing written, when a
    /// provider lacks the capacity.
    func claim(consumer: String, project: String, user: String, allocations: [String: [String: Int64]]) async throws -> Bool
    func allocations(consumer: String) async throws -> [String: [String: Int64]]
    func deleteAllocations(consumer: String) async throws
    /// Moves everything `from` holds to `to` (a server's allocation to its migration record
    /// while it moves, as Nova does), in one step.
    func moveAllocations(from: String, to: String, project: String, user: String) async throws
    /// Creates or updates a compute node's provider with its inventory and traits.
    func syncProvider(uuid: String, name: String, inventory: [String: ProviderInventory], traits: Set<String>) async throws
    /// The placement aggregates a provider belongs to (the host aggregates it is in).
    func setAggregates(provider: String, aggregates: Set<String>) async throws
    func deleteProvider(uuid: String) async throws
}

public struct PlacementRequest: Sendable {
    public var resources: [String: Int64]
    public var requiredTraits: Set<String> = []
    public var forbiddenTraits: Set<String> = []
    /// Each inner list is an any-of set of aggregate uuids; all lists must match.
    public var memberOf: [[String]] = []
    /// Only this provider (a forced host).
    public var inTree: String?
    public var limit: Int?

    public init(resources: [String: Int64]) { self.resources = resources }
}

public struct ProviderCandidate: Sendable {
    public var uuid: String
    public var allocation: [String: Int64]
    public var capacity: [String: Int64]
    public var used: [String: Int64]
    public var traits: Set<String>

    public init(uuid: String, allocation: [String: Int64], capacity: [String: Int64], used: [String: Int64], traits: Set<String>) {
        (self.uuid, self.allocation, self.capacity, self.used, self.traits) = (uuid, allocation, capacity, used, traits)
    }

    public func free(_ resourceClass: String) -> Int64 { (capacity[resourceClass] ?? 0) - (used[resourceClass] ?? 0) }
}

public struct ProviderInventory: Sendable, Equatable {
    public var total: Int64
    public var reserved: Int64
    public var allocationRatio: Double
    public var maxUnit: Int64

    public init(total: Int64, reserved: Int64 = 0, allocationRatio: Double = 1.0, maxUnit: Int64? = nil) {
        (self.total, self.reserved, self.allocationRatio, self.maxUnit) = (total, reserved, allocationRatio, maxUnit ?? total)
    }
}

/// Called when a compute host's agent registers or heartbeats, so a service with per-host
/// agents of its own (networking's L2 agent) sees the host alive without compute knowing it.
public typealias HostHeartbeatHook = @Sendable (_ host: String) async -> Void

/// What the compute service needs from the image service.
public protocol ImageClient: Sendable {
    /// The image if the caller may see it; nil otherwise.
    func image(_ id: String, caller: AuthContext) async throws -> ImageInfo?
    /// Creates a queued image for a snapshot of a server, owned by the caller's project.
    func createImage(name: String, properties: [String: String], caller: AuthContext) async throws -> String
    /// Uploads the file at `path` as the image's data (the compute service's own right: the
    /// snapshot was authorised when its image was created).
    func upload(imageID: String, path: String) async throws
    /// Deletes an image the compute service created (a shelved server's snapshot).
    func deleteImage(_ id: String) async throws
}

public struct ImageInfo: Sendable {
    public var id: String
    public var name: String?
    public var status: String
    public var minRAM: Int64
    public var minDisk: Int64
    public var size: Int64?
    public var diskFormat: String?
    public var properties: [String: String]

    public init(id: String, name: String?, status: String, minRAM: Int64, minDisk: Int64, size: Int64?, diskFormat: String?,
                properties: [String: String]) {
        (self.id, self.name, self.status, self.minRAM, self.minDisk, self.size, self.diskFormat, self.properties) =
            (id, name, status, minRAM, minDisk, size, diskFormat, properties)
    }
}
