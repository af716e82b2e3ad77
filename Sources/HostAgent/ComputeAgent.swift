import Foundation
import HostAPI
import Logging
import NimbusCore
import Synchronization
import Virt

/// The per-host agent (nova-compute's role): registers the host, heartbeats, runs the driver
/// for each message the control plane sends, reporting what happened, and keeps the
/// controller's view of its guests' power states true (`ComputeAgent+PowerSync.swift`). Each
/// instance's messages are handled one at a time in order, so a delete never overtakes the
/// build it follows; different instances' messages run concurrently (`work()`).
public final class ComputeAgent: Sendable {
    public let host: String
    let hostIP: String
    let driver: any VirtDriver
    let link: any AgentLink
    /// The image service as this host reaches it, for snapshots (and image downloads).
    let images: any ImageTransfer
    let heartbeatInterval: Duration
    /// The ACPI grace of a guest built to stay stopped (a stopped server evacuated, rebuilt or
    /// unshelved; Nova's spawn with `power_on` false never starts it): none. Its guest has only
    /// just begun to boot, has nothing to lose, and would not see the power button before its
    /// kernel sets up ACPI, so waiting would only cost the whole `shutdown_timeout`.
    static let neverStarted: Duration = .zero

    /// How long a guest gets to shut down by ACPI before it is stopped hard (`[compute] shutdown_timeout`).
    let shutdownTimeout: Duration
    /// Between complete power-state syncs (`[compute] sync_power_state_interval`); zero or
    /// less: only the one at start, which reconciles (`ComputeAgent+PowerSync.swift`).
    let powerSyncInterval: Duration
    /// The guests messages are working on, so power-state syncs leave them alone.
    let guestLocks = GuestLocks()
    /// The host's network dataplane, which wires guests' ports before they start or arrive;
    /// nil when the host has none (guests' taps are then QEMU's own, wired to nothing).
    let network: (any HostNetworking)?
    let logger: Logger

    public init(host: String, hostIP: String = "127.0.0.1", driver: any VirtDriver, link: any AgentLink, images: any ImageTransfer,
                network: (any HostNetworking)? = nil, heartbeatInterval: Duration = .seconds(10), shutdownTimeout: Duration = .seconds(60),
                powerSyncInterval: Duration = .seconds(10), logger: Logger) {
        (self.host, self.hostIP, self.driver, self.link, self.images, self.network) = (host, hostIP, driver, link, images, network)
        (self.heartbeatInterval, self.shutdownTimeout, self.powerSyncInterval, self.logger) = (heartbeatInterval, shutdownTimeout, powerSyncInterval, logger)
    }

    /// Registers, then heartbeats and works until cancelled. Failures to reach the control
    /// plane are retried: a controller restart is routine.
    public func run() async {
        while !Task.isCancelled {
            do {
                try await link.register(AgentRegistration(host: host, hostIP: hostIP, resources: try await driver.hostResources(),
                                                          capabilities: DriverCapabilities(of: driver)))
                break
            } catch {
                logger.warning("agent \(host): cannot register yet: \(error)")
                try? await Task.sleep(for: .seconds(1))
            }
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.heartbeats() }
            group.addTask { await self.work() }
            group.addTask { await self.syncPowerStates() }
            if let network = self.network { group.addTask { await network.run() } }
            await group.waitForAll()
        }
    }

    func heartbeats() async {
        while !Task.isCancelled {
            do { try await link.heartbeat(host: host) } catch { logger.warning("agent \(host): heartbeat failed: \(error)") }
            try? await Task.sleep(for: heartbeatInterval)
        }
    }

    /// Fetches every unacknowledged message it does not hold yet and runs each in its lane
    /// (`AgentMessage.orderingKey`): one lane's messages run one after another in id order,
    /// different lanes concurrently, so a long live migration holds up no other guest.
    func work() async {
        let lanes = MessageLanes()
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                let held = lanes.held()
                // A bound on what the agent takes on (and on the ids it asks the controller to leave out).
                if held.count >= MessageLanes.maxHeld {
                    try? await Task.sleep(for: .milliseconds(100))
                    continue
                }
                let messages: [AgentMessage]
                do {
                    messages = try await link.fetch(host: host, excluding: held, wait: .seconds(20))
                } catch {
                    if Task.isCancelled { return }
                    logger.warning("agent \(host): cannot fetch work: \(error)")
                    try? await Task.sleep(for: .milliseconds(500))
                    continue
                }
                for message in messages where lanes.enqueue(message) {
                    group.addTask {
                        var next: AgentMessage? = message
                        while let current = next {
                            await self.handle(current)
                            next = lanes.finish(current)
                        }
                    }
                }
            }
        }
    }

    static let steersAMigration: Set<AgentMessage.Kind> = [.liveMigrationForceComplete, .liveMigrationCancel]

    /// Performs one message and reports it, retrying the report until the control plane has
    /// it: the report is the acknowledgement, so a restart on either side loses nothing (the
    /// message is delivered again otherwise).
    func handle(_ message: AgentMessage) async {
        // The guest is held until the report is applied, so a power-state sync cannot
        // report what this message is changing (ComputeAgent+PowerSync.swift).
        // A request steering a live migration runs beside the `live_migrate` that holds the
        // guest (and whose report settles its state), so it takes no hold of its own.
        let held = message.kind.map(Self.steersAMigration.contains) == true ? nil : message.instanceUUID
        if let uuid = held { await guestLocks.lock(uuid) }
        defer { if let uuid = held { guestLocks.unlock(uuid) } }
        let report = await perform(message)
        while !Task.isCancelled {
            do {
                try await link.report(report)
                return
            } catch {
                logger.warning("agent \(host): cannot report message \(message.id): \(error)")
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    /// The driver as one of its capability protocols, or an error naming what it cannot do
    /// (the API refuses such actions first; this guards a message sent before a host changed).
    func driver<Capability>(_ capability: Capability.Type, _ what: String) throws -> Capability {
        guard let capable = driver as? Capability else { throw VirtError.failed("The \(driver.name) driver cannot \(what).") }
        return capable
    }

    /// Whether the driver has the guest: asks about that one guest only (listing every guest
    /// would query each one's hypervisor process on every message).
    func exists(_ uuid: String) async throws -> Bool {
        do {
            _ = try await driver.powerState(of: uuid)
            return true
        } catch VirtError.guestNotFound {
            return false
        }
    }

    /// Runs one message against the driver. Redelivered messages must be harmless, so each
    /// step accepts a guest that is already where it should be.
    func perform(_ message: AgentMessage) async -> AgentReport {
        let uuid = message.instanceUUID ?? ""
        let guest = message.payload["guest"].flatMap(GuestSpec.init(json:))
        let powerOff = message.payload["power_off"]?.boolValue == true
        func requireGuest() throws -> GuestSpec {
            guard let guest else { throw VirtError.failed("The \(message.kindName) message carries no guest.") }
            return guest
        }
        do {
            var output: JSON = .null
            // A kind this agent does not know (a newer controller's) is answered with an error.
            guard let kind = message.kind else { throw VirtError.failed("unknown message kind \(message.kindName)") }
            switch kind {
            case .build, .evacuate, .unshelve:
                if try await !exists(uuid) {
                    let guest = try requireGuest()
                    try await plug(guest)
                    try await driver.spawn(guest)
                }
                if powerOff { try await driver.powerOff(uuid, timeout: Self.neverStarted) }
            case .destroy, .shelveOffload, .confirmResize, .cleanup:
                try await driver.destroy(uuid)
                if let guest { await network?.unplug(guest.nics) }
            case .stop: try await driver.powerOff(uuid, timeout: shutdownTimeout)
            case .start: try await driver.powerOn(uuid)
            case .reboot: try await driver.reboot(uuid, hard: message.payload["hard"]?.boolValue ?? false)
            case .pause: try await driver((any PausingDriver).self, "pause guests").pause(uuid)
            case .unpause: try await driver((any PausingDriver).self, "pause guests").unpause(uuid)
            case .suspend: try await driver((any SuspendingDriver).self, "suspend guests").suspend(uuid)
            case .resume: try await driver((any SuspendingDriver).self, "suspend guests").resume(uuid)
            case .rescue:
                let guest = try requireGuest()
                let rescueImage = message.payload["rescue_image"].flatMap(ImageRef.init(json:)) ?? guest.image
                try await driver((any RescuingDriver).self, "rescue guests").rescue(guest, rescueImage: rescueImage)
            case .unrescue: try await driver((any RescuingDriver).self, "rescue guests").unrescue(uuid)
            case .rebuild:
                let guest = try requireGuest()
                try await driver.destroy(uuid)
                try await plug(guest)
                try await driver.spawn(guest)
                if powerOff { try await driver.powerOff(uuid, timeout: Self.neverStarted) }
            case .migrateOut:
                // Same host: the guest only stops; another host copies the disks this offers.
                if try await exists(uuid) {
                    if message.payload["destination"]?.stringValue == host {
                        try await driver.powerOff(uuid, timeout: shutdownTimeout)
                    } else {
                        let export = try await driver((any ColdMigratingDriver).self, "migrate guests").exportDisks(uuid)
                        output = ["export": .string(export.location)]
                    }
                }
            case .resizeIn, .revertResize:
                let guest = try requireGuest()
                if try await exists(uuid) {
                    if let cold = driver as? any ColdMigratingDriver { try await cold.endExport(uuid) }
                    try await driver((any ResizingDriver).self, "resize guests").resize(guest)
                } else if let export = message.payload["export"]?.stringValue {
                    try await plug(guest)
                    try await driver((any ColdMigratingDriver).self, "migrate guests").importGuest(guest, from: DiskExport(location: export))
                } else {
                    throw VirtError.guestNotFound(uuid)
                }
                // The source was quiesced for the move: the guest ends as it began.
                if !powerOff { try await driver.powerOn(uuid) }
            case .liveMigrationPrepare:
                // The ports are wired here before the guest arrives, so its traffic follows it
                // the moment it runs here (QEMU announces its MAC from the new tap).
                let guest = try requireGuest()
                try await plug(guest)
                let endpoint = try await driver((any LiveMigratingDriver).self, "live-migrate guests")
                    .prepareIncoming(guest, blockMigration: message.payload["block_migration"]?.boolValue ?? false)
                output = ["endpoint": .string(endpoint.uri)]
            case .liveMigrate:
                guard let endpoint = message.payload["endpoint"]?.stringValue else { throw VirtError.failed("The live_migrate message carries no endpoint.") }
                if try await exists(uuid) {
                    try await driver((any LiveMigratingDriver).self, "live-migrate guests")
                        .migrate(uuid, to: MigrationEndpoint(uri: endpoint), blockMigration: message.payload["block_migration"]?.boolValue ?? false)
                }
            case .adopt:
                try await driver((any LiveMigratingDriver).self, "live-migrate guests").finishIncoming(uuid)
                // Paused at the source only to force the migration to complete: it runs again here.
                if message.payload["resume"]?.boolValue == true, try await driver.powerState(of: uuid) == .paused {
                    try await driver((any PausingDriver).self, "pause guests").unpause(uuid)
                }
            case .liveMigrationForceComplete:
                let steering = try driver((any LiveMigrationSteeringDriver).self, "force live migrations to complete")
                try await whenMigrating { try await steering.forceCompleteMigration(uuid) }
            case .liveMigrationCancel:
                let steering = try driver((any LiveMigrationSteeringDriver).self, "cancel live migrations")
                try await whenMigrating { try await steering.cancelMigration(uuid) }
            case .triggerCrashDump:
                try await driver((any CrashDumpingDriver).self, "trigger crash dumps").injectNMI(uuid)
            case .cacheImages:
                output = await cacheImages(message.payload["images"]?.arrayValue?.compactMap(ImageRef.init(json:)) ?? [])
            case .liveMigrationAbort:
                try await driver((any LiveMigratingDriver).self, "live-migrate guests").abortIncoming(uuid)
            case .snapshot:
                guard let imageID = message.payload["image_id"]?.stringValue else { throw VirtError.failed("The snapshot message names no image.") }
                try await driver((any SnapshottingDriver).self, "snapshot guests").snapshot(uuid, imageID: imageID, images: images)
            case .console:
                let lines = message.payload["length"]?.intValue.flatMap { Int(exactly: $0) }
                output = ["output": .string(try await driver.consoleOutput(uuid, lines: lines))]
            case .getVNCConsole: output = await vncConsole(uuid)
            case .diagnostics:
                output = try await driver((any DiagnosingDriver).self, "report diagnostics").diagnostics(uuid).json
            case .attachInterface:
                guard let vif = message.payload["vif"].flatMap(VIF.init(json:)) else { throw VirtError.failed("The attach_interface message carries no port.") }
                try await attachInterface(uuid, vif)
            case .detachInterface:
                guard let vif = message.payload["vif"].flatMap(VIF.init(json:)) else { throw VirtError.failed("The detach_interface message carries no port.") }
                try await driver((any InterfaceAttachingDriver).self, "attach interfaces").detachInterface(uuid, portID: vif.portID)
                await network?.unplug([vif])
            case .setAdminPassword:
                guard let password = message.payload["password"]?.stringValue else { throw VirtError.failed("The set_admin_password message carries no password.") }
                try await driver((any AdminPasswordDriver).self, "set administrator passwords").setAdminPassword(uuid, password: password)
            }
            // The power state rides on reports that carry nothing else (and on an export's).
            if !uuid.isEmpty, output == .null || kind == .migrateOut, let state = try? await driver.powerState(of: uuid) {
                var fields = output.objectValue ?? [:]
                fields["power_state"] = .int(state.rawValue)
                output = .object(fields)
            }
            return AgentReport(messageID: message.id, host: host, error: nil, output: output)
        } catch {
            logger.warning("agent \(host): \(message.kindName) of \(uuid) failed: \(error)")
            return AgentReport(messageID: message.id, host: host, error: "\(error)")
        }
    }
}

extension ComputeAgent {
    /// Wires the port on this host, then plugs it into the guest; a failed plug-in lets go of
    /// the wiring again, so the guest and the host are as before.
    func attachInterface(_ uuid: String, _ vif: VIF) async throws {
        let attaching = try driver((any InterfaceAttachingDriver).self, "attach interfaces")
        try await network?.plug([vif])
        do {
            try await attaching.attachInterface(uuid, vif)
        } catch {
            await network?.unplug([vif])
            throw error
        }
    }

    /// Runs a request about a live migration this host sends. It runs beside the
    /// `live_migrate` sent just before it, which may not have started its migration yet: a
    /// driver that finds none under way (`invalidState`) is asked again for a few seconds.
    func whenMigrating(_ request: () async throws -> Void) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            do {
                return try await request()
            } catch VirtError.invalidState(let reason) {
                guard ContinuousClock.now < deadline else { throw VirtError.invalidState(reason) }
                guard (try? await Task.sleep(for: .milliseconds(100))) != nil else { throw VirtError.invalidState(reason) }
            }
        }
    }

    /// Nova's precache answer: each image `cached` (downloaded now), `existing`, `error`, or
    /// `unsupported` when the driver keeps no image cache.
    func cacheImages(_ refs: [ImageRef]) async -> JSON {
        var statuses: [String: JSON] = [:]
        for image in refs {
            guard let caching = driver as? any ImageCachingDriver else {
                statuses[image.id] = "unsupported"
                continue
            }
            do {
                statuses[image.id] = try await caching.cacheImage(image, images: images) ? "cached" : "existing"
            } catch {
                logger.warning("agent \(host): caching image \(image.id) failed: \(error)")
                statuses[image.id] = "error"
            }
        }
        return ["images": .object(statuses)]
    }

    /// Wires the guest's ports on this host before its QEMU opens their taps.
    func plug(_ guest: GuestSpec) async throws {
        guard let network, !guest.nics.isEmpty else { return }
        try await network.plug(guest.nics)
    }
}

/// The messages an agent holds (fetched, report not yet delivered), queued by ordering key.
/// A lane exists while it has messages; whoever creates it runs it until it is empty.
final class MessageLanes: Sendable {
    /// The most messages held at once; the agent fetches no more until some are done.
    static let maxHeld = 500

    private struct State {
        var lanes: [String: [AgentMessage]] = [:]
        var held: Set<Int64> = []
    }

    private let state = Mutex(State())

    /// The ids of the messages held: fetched and not yet reported.
    func held() -> Set<Int64> { state.withLock { $0.held } }

    /// Queues the message in its lane; true when the lane was idle, so the caller must run it
    /// starting with this message. False for a message held already.
    func enqueue(_ message: AgentMessage) -> Bool {
        state.withLock { state in
            guard state.held.insert(message.id).inserted else { return false }
            let key = message.orderingKey
            if var lane = state.lanes[key] {
                // Behind the running first, in id order: a message whose transaction committed
                // late (PostgreSQL) still goes before later ones that have not started.
                let at = lane.dropFirst().firstIndex { $0.id > message.id } ?? lane.endIndex
                lane.insert(message, at: at)
                state.lanes[key] = lane
                return false
            }
            state.lanes[key] = [message]
            return true
        }
    }

    /// The lane's `message` (its first) is done: returns the lane's next message to run, or
    /// nil when the lane is empty (it is removed, and the next enqueue starts it again).
    func finish(_ message: AgentMessage) -> AgentMessage? {
        state.withLock { state in
            state.held.remove(message.id)
            let key = message.orderingKey
            guard var lane = state.lanes[key], !lane.isEmpty else { return nil }
            lane.removeFirst()
            if lane.isEmpty {
                state.lanes[key] = nil
                return nil
            }
            state.lanes[key] = lane
            return lane.first
        }
    }
}
