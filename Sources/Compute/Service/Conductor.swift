import Foundation
import HostAPI
import Logging
import NimbusCore
import NimbusStore

/// nova-conductor and nova-scheduler's role: schedules accepted builds and moves, sends the
/// agents their work through the durable outbox, and applies what the agents report. Every
/// state change and the message it causes are written in one transaction, and a report is
/// applied together with the deletion (acknowledgement) of its message, so a crash of either
/// side loses nothing and applies nothing twice.
public final class Conductor: Sendable {
    let db: any Database
    let store = ComputeStore()
    let placement: any PlacementClient
    let images: any ImageClient
    /// Nil in a cloud without a network service: servers then boot without NICs.
    let network: (any NetworkClient)?
    let schedulerSettings: SchedulerSettings
    let settings: ComputeService.Settings
    let logger: Logger
    let hub = AgentHub()
    let hosts = HostCache()
    let groupLocks = KeyedLock()
    /// Builds and moves under way, so shutdown can wait for them.
    let background = BackgroundWork()
    let allocationRatios: AllocationRatios
    /// Fault injection for tests.
    public let hooks = ComputeTestHooks()

    /// `[DEFAULT] cpu/ram/disk_allocation_ratio`, reported to placement for every host.
    public struct AllocationRatios: Sendable {
        public var cpu = 4.0, ram = 1.0, disk = 1.0
        public init() {}
    }

    init(db: any Database, placement: any PlacementClient, images: any ImageClient, network: (any NetworkClient)?, scheduler: SchedulerSettings,
         settings: ComputeService.Settings, logger: Logger) {
        self.db = db
        self.placement = placement
        self.images = images
        self.network = network
        schedulerSettings = scheduler
        self.settings = settings
        self.logger = logger
        allocationRatios = settings.allocationRatios
    }

    /// Runs work that follows an accepted request, detached from the request.
    func spawn(_ work: @escaping @Sendable () async -> Void) async { await background.run(work) }

    /// Waits for builds and moves in flight (a clean shutdown).
    public func drain() async { await background.waitForAll() }

    func scheduler() throws -> FilterScheduler { try FilterScheduler(settings: schedulerSettings, placement: placement, logger: logger) }

    // MARK: Hosts

    /// A host's agent announced itself: its service and node records and its placement
    /// provider are created or refreshed.
    func register(_ registration: AgentRegistration) async throws {
        let now = Date()
        let existing = try await store.node(host: registration.host, db)
        var capabilities = registration.capabilities.json
        capabilities["cpu_info"] = .object(registration.resources.cpuInfo.mapValues { .string($0) })
        let caps = registration.capabilities
        let node = ComputeNode(uuid: existing?.uuid ?? Identifiers.uuid(), host: registration.host, hypervisorHostname: registration.host,
                               hypervisorType: registration.resources.hypervisorType, hypervisorVersion: registration.resources.hypervisorVersion,
                               hostIP: registration.hostIP, vcpus: registration.resources.vcpus, memoryMB: registration.resources.memoryMB,
                               localGB: registration.resources.diskGB, reservedVCPUs: registration.resources.reservedVCPUs,
                               reservedMemoryMB: registration.resources.reservedMemoryMB, reservedDiskGB: registration.resources.reservedDiskGB,
                               capabilities: capabilities, updatedAt: now)
        let service = ServiceRecord(id: Identifiers.uuid(), host: registration.host, binary: "nova-compute", disabled: false, disabledReason: nil,
                                    forcedDown: false, lastSeenUp: now, createdAt: now, updatedAt: now)
        let evacuated = try await db.transaction { x -> Bool in
            try await self.store.upsertService(service, x)
            try await self.store.upsertNode(node, x)
            return try await self.cleanUpEvacuated(host: registration.host, x)
        }
        if evacuated { await wake(registration.host) }
        let record = try await store.service(host: registration.host, binary: "nova-compute", db)
        try await syncProvider(node, capabilities: caps, disabled: record?.disabled ?? false)
        await hosts.invalidate()
        await network?.hostAlive(registration.host)
    }

    /// A host that comes back after its servers were evacuated still has their guests: each
    /// gets a `cleanup` (the guest is destroyed, the server is left alone) and its migration is
    /// `completed`, as Nova's compute does when it starts. True when there was any.
    func cleanUpEvacuated(host: String, _ x: any SQLExecutor) async throws -> Bool {
        let rows = try await x.query("""
            SELECT id, instance_uuid FROM compute_migration
            WHERE migration_type = 'evacuation' AND source_compute = ? AND status IN ('accepted', 'pre-migrating', 'done')
            """, [.text(host)])
        for row in rows {
            try await send(.cleanup, to: host, instance: row.string("instance_uuid"), payload: ["evacuated": true], x)
            try await x.execute("UPDATE compute_migration SET status = 'completed', updated_at = ? WHERE id = ?",
                                [.real(Date().timeIntervalSince1970), .integer(row.int("id"))])
        }
        return !rows.isEmpty
    }

    /// The node's provider in placement: its totals, what the host reserves for itself (as
    /// Nova's compute reports it, so capacity is (total − reserved) × ratio; a reservation past
    /// the total reserves all of it), the allocation ratios and its traits.
    func syncProvider(_ node: ComputeNode, capabilities: DriverCapabilities, disabled: Bool) async throws {
        let ratios = allocationRatios
        var inventory: [String: ProviderInventory] = [
            "VCPU": ProviderInventory(total: node.vcpus, reserved: min(node.reservedVCPUs, node.vcpus), allocationRatio: ratios.cpu),
            "MEMORY_MB": ProviderInventory(total: node.memoryMB, reserved: min(node.reservedMemoryMB, node.memoryMB), allocationRatio: ratios.ram),
        ]
        if node.localGB > 0 {
            inventory["DISK_GB"] = ProviderInventory(total: node.localGB, reserved: min(node.reservedDiskGB, node.localGB), allocationRatio: ratios.disk)
        }
        var traits = capabilities.traits
        if disabled { traits.insert("COMPUTE_STATUS_DISABLED") }
        try await placement.syncProvider(uuid: node.uuid, name: node.hypervisorHostname, inventory: inventory, traits: traits)
    }

    func heartbeat(host: String) async throws {
        guard try await store.heartbeat(host: host, binary: "nova-compute", at: Date(), db) else {
            throw APIError.notFound("Compute host \(host) could not be found.")
        }
        await network?.hostAlive(host)
    }

    // MARK: Outbox

    /// Queues work for a host inside the caller's transaction; the agent is woken after commit.
    /// `orderingKey` is what the host's agent keeps the message in order with (see
    /// `AgentMessage.orderingKey`): by default the instance's, or the host's for none.
    func send(_ kind: AgentMessage.Kind, to host: String, instance: String?, orderingKey: String? = nil, payload: JSON,
              _ x: any SQLExecutor) async throws {
        try await store.send(host: host, kind: kind.rawValue, instanceUUID: instance,
                             orderingKey: orderingKey ?? AgentMessage.orderingKey(instance: instance), payload: payload, x)
    }

    func wake(_ host: String) async { await hub.wake(host) }

    /// The most message ids an agent may ask `fetch` to leave out (it holds no more at once).
    public static let maxExcluded = 1000

    /// Every unacknowledged message of the host but those the agent holds already. No cursor:
    /// ids are handed out at insert and, on PostgreSQL, commit in any order, so a message
    /// may appear after one with a higher id was fetched and must still be delivered.
    func fetch(host: String, excluding: Set<Int64>, wait: Duration) async throws -> [AgentMessage] {
        let deadline = ContinuousClock.now + wait
        while true {
            let generation = await hub.generation(host)
            let messages = try await store.messages(host: host, excluding: excluding, limit: 100, db).map {
                AgentMessage(id: $0.id, kindName: $0.kind, instanceUUID: $0.instanceUUID, orderingKey: $0.orderingKey, payload: $0.payload)
            }
            if !messages.isEmpty || ContinuousClock.now >= deadline || Task.isCancelled { return messages }
            await hub.wait(host, since: generation, until: deadline)
        }
    }

    /// A synchronous request to a host's agent (console output): sent through the outbox like
    /// any message, answered by its report.
    func call(_ kind: AgentMessage.Kind, host: String, instance: String, payload: JSON, timeout: Duration = .seconds(30)) async throws -> AgentReport {
        let id = try await db.transaction { x -> Int64 in
            try await self.store.send(host: host, kind: kind.rawValue, instanceUUID: instance,
                                      orderingKey: AgentMessage.orderingKey(instance: instance), payload: payload, x)
        }
        await wake(host)
        guard let report = await hub.awaitReply(id, timeout: timeout) else {
            throw APIError(.serviceUnavailable, "The compute host \(host) did not answer in time.")
        }
        return report
    }
}

/// Wakes long-polling agents when work arrives, and hands replies to synchronous callers.
actor AgentHub {
    private var generations: [String: Int] = [:]
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]
    private var replies: [Int64: CheckedContinuation<AgentReport?, Never>] = [:]
    private var earlyReplies: [Int64: AgentReport] = [:]

    func generation(_ host: String) -> Int { generations[host, default: 0] }

    func wake(_ host: String) {
        generations[host, default: 0] += 1
        for waiter in waiters.removeValue(forKey: host) ?? [] { waiter.resume() }
    }

    /// Returns when `host` is woken after `since`, or at `deadline`.
    func wait(_ host: String, since: Int, until deadline: ContinuousClock.Instant) async {
        if generations[host, default: 0] != since || Task.isCancelled { return }
        // Cancelled once the wait is over: it must not wake the host then, or every wake
        // would cause another (the agent's next wait would be cut short by this one's timer,
        // and so on: a host that ever had a message polled without pause).
        let timer = Task { [weak self] in
            guard (try? await Task.sleep(until: deadline, clock: .continuous)) != nil else { return }
            await self?.wake(host)
        }
        // A cancelled agent (shutdown) stops waiting at once.
        await withTaskCancellationHandler {
            await withCheckedContinuation { waiters[host, default: []].append($0) }
        } onCancel: {
            Task { await self.wake(host) }
        }
        timer.cancel()
    }

    func awaitReply(_ id: Int64, timeout: Duration) async -> AgentReport? {
        if let early = earlyReplies.removeValue(forKey: id) { return early }
        let timer = Task { [weak self] in
            guard (try? await Task.sleep(for: timeout)) != nil else { return }
            await self?.deliver(id, nil)
        }
        let report = await withCheckedContinuation { replies[id] = $0 }
        timer.cancel()
        return report
    }

    func deliver(_ id: Int64, _ report: AgentReport?) {
        if let waiter = replies.removeValue(forKey: id) {
            waiter.resume(returning: report)
        } else if let report {
            earlyReplies[id] = report
        }
    }
}

/// Serialises work per key (a server group), so two concurrent boots in one anti-affinity
/// group cannot both pick the same host.
actor KeyedLock {
    private var held: Set<String> = []
    private var queues: [String: [CheckedContinuation<Void, Never>]] = [:]

    func lock(_ key: String) async {
        if !held.contains(key) {
            held.insert(key)
            return
        }
        await withCheckedContinuation { queues[key, default: []].append($0) }
    }

    func unlock(_ key: String) {
        if var queue = queues[key], !queue.isEmpty {
            let next = queue.removeFirst()
            queues[key] = queue
            next.resume()
        } else {
            held.remove(key)
            queues[key] = nil
        }
    }
}

/// Compute nodes, services and aggregates, cached: the scheduler reads them for every boot,
/// and with a thousand hosts reading them each time would dominate. Nodes and aggregates
/// change only through this process (agent registrations, the aggregate API), which
/// invalidates them; services are re-read at most every `maxAge` seconds for their heartbeats.
actor HostCache {
    struct Snapshot: Sendable {
        var nodes: [String: ComputeNode]
        var services: [String: ServiceRecord]
        var aggregates: [Aggregate]
        /// Node uuid (its placement provider) → the host as the scheduler sees it; rebuilt
        /// with the services, so a boot only looks its candidates up.
        var records: [String: HostRecord]
        var loadedAt: Date
    }

    private var snapshot: Snapshot?
    private var structureValid = false

    func invalidate() { structureValid = false }

    func get(_ db: any Database, maxAge: TimeInterval = 1) async throws -> Snapshot {
        if let snapshot, structureValid, Date().timeIntervalSince(snapshot.loadedAt) < maxAge { return snapshot }
        let store = ComputeStore()
        var fresh: Snapshot
        if let snapshot, structureValid {
            fresh = snapshot
        } else {
            // Marked valid before reading, so an invalidation during the read is not lost.
            structureValid = true
            do {
                let nodes = try await store.nodes(db)
                fresh = Snapshot(nodes: Dictionary(nodes.map { ($0.host, $0) }, uniquingKeysWith: { a, _ in a }),
                                 services: [:], aggregates: try await store.aggregates(db), records: [:], loadedAt: Date())
            } catch {
                structureValid = false
                throw error
            }
        }
        let services = try await store.services(db).filter { $0.binary == "nova-compute" }
        fresh.services = Dictionary(services.map { ($0.host, $0) }, uniquingKeysWith: { a, _ in a })
        var records: [String: HostRecord] = [:]
        for node in fresh.nodes.values {
            records[node.uuid] = HostRecord(node: node, service: fresh.services[node.host],
                                            aggregates: fresh.aggregates.filter { $0.hosts.contains(node.host) })
        }
        fresh.records = records
        fresh.loadedAt = Date()
        snapshot = fresh
        return fresh
    }
}
