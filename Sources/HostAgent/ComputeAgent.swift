import Foundation
import HostAPI
import Logging
import NimbusCore
import Virt

/// The per-host agent (nova-compute's role): registers the host, heartbeats, runs the driver
/// for each message the control plane sends, reporting what happened, and keeps the
/// controller's view of its guests' power states true (`ComputeAgent+PowerSync.swift`). Messages are
/// handled one at a time in order, so a delete never overtakes the build it follows.
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
    let logger: Logger

    public init(host: String, hostIP: String = "127.0.0.1", driver: any VirtDriver, link: any AgentLink, images: any ImageTransfer,
                heartbeatInterval: Duration = .seconds(10), shutdownTimeout: Duration = .seconds(60),
                powerSyncInterval: Duration = .seconds(10), logger: Logger) {
        (self.host, self.hostIP, self.driver, self.link, self.images) = (host, hostIP, driver, link, images)
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
            await group.waitForAll()
        }
    }

    func heartbeats() async {
        while !Task.isCancelled {
            do { try await link.heartbeat(host: host) } catch { logger.warning("agent \(host): heartbeat failed: \(error)") }
            try? await Task.sleep(for: heartbeatInterval)
        }
    }

    func work() async {
        var after: Int64 = 0
        while !Task.isCancelled {
            let messages: [AgentMessage]
            do {
                messages = try await link.fetch(host: host, after: after, wait: .seconds(20))
            } catch {
                if Task.isCancelled { return }
                logger.warning("agent \(host): cannot fetch work: \(error)")
                try? await Task.sleep(for: .milliseconds(500))
                continue
            }
            for message in messages {
                // The guest is held until the report is applied, so a power-state sync cannot
                // report what this message is changing (ComputeAgent+PowerSync.swift).
                if let uuid = message.instanceUUID { await guestLocks.lock(uuid) }
                defer { if let uuid = message.instanceUUID { guestLocks.unlock(uuid) } }
                let report = await perform(message)
                // The report is the acknowledgement: retry until the control plane has it, so a
                // restart on either side loses nothing (the message is redelivered otherwise).
                while !Task.isCancelled {
                    do {
                        try await link.report(report)
                        break
                    } catch {
                        logger.warning("agent \(host): cannot report message \(message.id): \(error)")
                        try? await Task.sleep(for: .milliseconds(500))
                    }
                }
                after = message.id
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
            guard let guest else { throw VirtError.failed("The \(message.kind) message carries no guest.") }
            return guest
        }
        do {
            var output: JSON = .null
            switch message.kind {
            case "build", "evacuate", "unshelve":
                if try await !exists(uuid) { try await driver.spawn(try requireGuest()) }
                if powerOff { try await driver.powerOff(uuid, timeout: Self.neverStarted) }
            case "destroy", "shelve_offload", "confirm_resize", "cleanup":
                try await driver.destroy(uuid)
            case "stop": try await driver.powerOff(uuid, timeout: shutdownTimeout)
            case "start": try await driver.powerOn(uuid)
            case "reboot": try await driver.reboot(uuid, hard: message.payload["hard"]?.boolValue ?? false)
            case "pause": try await driver((any PausingDriver).self, "pause guests").pause(uuid)
            case "unpause": try await driver((any PausingDriver).self, "pause guests").unpause(uuid)
            case "suspend": try await driver((any SuspendingDriver).self, "suspend guests").suspend(uuid)
            case "resume": try await driver((any SuspendingDriver).self, "suspend guests").resume(uuid)
            case "rescue":
                let guest = try requireGuest()
                let rescueImage = message.payload["rescue_image"].flatMap(ImageRef.init(json:)) ?? guest.image
                try await driver((any RescuingDriver).self, "rescue guests").rescue(guest, rescueImage: rescueImage)
            case "unrescue": try await driver((any RescuingDriver).self, "rescue guests").unrescue(uuid)
            case "rebuild":
                let guest = try requireGuest()
                try await driver.destroy(uuid)
                try await driver.spawn(guest)
                if powerOff { try await driver.powerOff(uuid, timeout: Self.neverStarted) }
            case "migrate_out":
                // Same host: the guest only stops; another host copies the disks this offers.
                if try await exists(uuid) {
                    if message.payload["destination"]?.stringValue == host {
                        try await driver.powerOff(uuid, timeout: shutdownTimeout)
                    } else {
                        let export = try await driver((any ColdMigratingDriver).self, "migrate guests").exportDisks(uuid)
                        output = ["export": .string(export.location)]
                    }
                }
            case "resize_in", "revert_resize":
                let guest = try requireGuest()
                if try await exists(uuid) {
                    if let cold = driver as? any ColdMigratingDriver { try await cold.endExport(uuid) }
                    try await driver((any ResizingDriver).self, "resize guests").resize(guest)
                } else if let export = message.payload["export"]?.stringValue {
                    try await driver((any ColdMigratingDriver).self, "migrate guests").importGuest(guest, from: DiskExport(location: export))
                } else {
                    throw VirtError.guestNotFound(uuid)
                }
                // The source was quiesced for the move: the guest ends as it began.
                if !powerOff { try await driver.powerOn(uuid) }
            case "live_migration_prepare":
                let endpoint = try await driver((any LiveMigratingDriver).self, "live-migrate guests")
                    .prepareIncoming(try requireGuest(), blockMigration: message.payload["block_migration"]?.boolValue ?? false)
                output = ["endpoint": .string(endpoint.uri)]
            case "live_migrate":
                guard let endpoint = message.payload["endpoint"]?.stringValue else { throw VirtError.failed("The live_migrate message carries no endpoint.") }
                if try await exists(uuid) {
                    try await driver((any LiveMigratingDriver).self, "live-migrate guests")
                        .migrate(uuid, to: MigrationEndpoint(uri: endpoint), blockMigration: message.payload["block_migration"]?.boolValue ?? false)
                }
            case "adopt":
                try await driver((any LiveMigratingDriver).self, "live-migrate guests").finishIncoming(uuid)
            case "live_migration_abort":
                try await driver((any LiveMigratingDriver).self, "live-migrate guests").abortIncoming(uuid)
            case "snapshot":
                guard let imageID = message.payload["image_id"]?.stringValue else { throw VirtError.failed("The snapshot message names no image.") }
                try await driver((any SnapshottingDriver).self, "snapshot guests").snapshot(uuid, imageID: imageID, images: images)
            case "console":
                let lines = message.payload["length"]?.intValue.flatMap { Int(exactly: $0) }
                output = ["output": .string(try await driver.consoleOutput(uuid, lines: lines))]
            case "get_vnc_console": output = await vncConsole(uuid)
            case "diagnostics":
                output = try await driver((any DiagnosingDriver).self, "report diagnostics").diagnostics(uuid).json
            default:
                throw VirtError.failed("unknown message kind \(message.kind)")
            }
            // The power state rides on reports that carry nothing else (and on an export's).
            if !uuid.isEmpty, output == .null || message.kind == "migrate_out", let state = try? await driver.powerState(of: uuid) {
                var fields = output.objectValue ?? [:]
                fields["power_state"] = .int(state.rawValue)
                output = .object(fields)
            }
            return AgentReport(messageID: message.id, host: host, error: nil, output: output)
        } catch {
            logger.warning("agent \(host): \(message.kind) of \(uuid) failed: \(error)")
            return AgentReport(messageID: message.id, host: host, error: "\(error)")
        }
    }
}
