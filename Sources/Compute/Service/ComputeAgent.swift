import Foundation
import Logging
import NimbusCore

/// The per-host agent (nova-compute's role): registers the host, heartbeats, and runs the
/// driver for each message the control plane sends, reporting what happened. Messages are
/// handled one at a time in order, so a delete never overtakes the build it follows.
public final class ComputeAgent: Sendable {
    public let host: String
    let hostIP: String
    let driver: any VirtDriver
    let link: any AgentLink
    let heartbeatInterval: Duration
    let logger: Logger

    public init(host: String, hostIP: String = "127.0.0.1", driver: any VirtDriver, link: any AgentLink,
                heartbeatInterval: Duration = .seconds(10), logger: Logger) {
        (self.host, self.hostIP, self.driver, self.link, self.heartbeatInterval, self.logger) = (host, hostIP, driver, link, heartbeatInterval, logger)
    }

    /// Registers, then heartbeats and works until cancelled. Failures to reach the control
    /// plane are retried: a controller restart is routine.
    public func run() async {
        while !Task.isCancelled {
            do {
                try await link.register(AgentRegistration(host: host, hostIP: hostIP, resources: try await driver.hostResources(),
                                                          capabilities: driver.capabilities))
                break
            } catch {
                logger.warning("agent \(host): cannot register yet: \(error)")
                try? await Task.sleep(for: .seconds(1))
            }
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.heartbeats() }
            group.addTask { await self.work() }
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

    /// Runs one message against the driver. Redelivered messages must be harmless, so each
    /// step accepts a guest that is already where it should be.
    func perform(_ message: AgentMessage) async -> AgentReport {
        let uuid = message.instanceUUID ?? ""
        let guest = GuestSpec(json: message.payload["guest"] ?? .null)
        do {
            var output: JSON = .null
            switch message.kind {
            case "build", "evacuate", "unshelve":
                guard let guest else { throw VirtError("no guest in message") }
                if try await driver.listGuests()[uuid] == nil { try await driver.spawn(guest) }
                if message.payload["power_off"]?.boolValue == true { try await driver.powerOff(uuid) }
            case "destroy", "shelve_offload", "confirm_resize", "cleanup":
                try await driver.destroy(uuid)
            case "stop": try await driver.powerOff(uuid)
            case "start": try await driver.powerOn(uuid)
            case "reboot": try await driver.reboot(uuid, hard: message.payload["hard"]?.boolValue ?? false)
            case "pause": try await driver.pause(uuid)
            case "unpause": try await driver.unpause(uuid)
            case "suspend": try await driver.suspend(uuid)
            case "resume": try await driver.resume(uuid)
            case "rescue":
                guard let guest else { throw VirtError("no guest in message") }
                try await driver.rescue(guest, rescueImage: message.payload["rescue_image"]?.stringValue ?? guest.imageRef)
            case "unrescue": try await driver.unrescue(uuid)
            case "rebuild":
                guard let guest else { throw VirtError("no guest in message") }
                try await driver.destroy(uuid)
                try await driver.spawn(guest)
                if message.payload["power_off"]?.boolValue == true { try await driver.powerOff(uuid) }
            case "resize_in", "revert_resize":
                guard let guest else { throw VirtError("no guest in message") }
                if try await driver.listGuests()[uuid] == nil { try await driver.spawn(guest) } else { try await driver.resize(guest) }
                // The source was quiesced for the move: the guest ends as it began.
                if message.payload["power_off"]?.boolValue == true {
                    try await driver.powerOff(uuid)
                } else if try await driver.powerState(uuid) != .running {
                    try await driver.powerOn(uuid)
                }
            case "migrate_out":
                if try await driver.listGuests()[uuid] != nil { try await driver.powerOff(uuid) }
            case "live_migrate":
                guard let destination = message.payload["destination"]?.stringValue else { throw VirtError("no destination") }
                if try await driver.listGuests()[uuid] != nil {
                    try await driver.liveMigrate(uuid, to: destination, blockMigration: message.payload["block_migration"]?.boolValue ?? false)
                }
            case "adopt":
                guard let guest else { throw VirtError("no guest in message") }
                if try await driver.listGuests()[uuid] == nil { try await driver.adoptMigratedGuest(guest) }
            case "snapshot":
                let path = NSTemporaryDirectory() + "nimbus-snapshot-\(uuid)-\(message.id).qcow2"
                _ = try await driver.snapshot(uuid, to: path)
                output = ["path": .string(path)]
            case "console":
                let lines = message.payload["length"]?.intValue.map(Int.init)
                output = ["output": .string(try await driver.consoleOutput(uuid, lines: lines))]
            case "diagnostics":
                output = try await driver.diagnostics(uuid).json
            default:
                throw VirtError("unknown message kind \(message.kind)")
            }
            if !uuid.isEmpty, let state = try? await driver.powerState(uuid), output == .null {
                output = ["power_state": .int(state.rawValue)]
            }
            return AgentReport(messageID: message.id, host: host, error: nil, output: output)
        } catch {
            logger.warning("agent \(host): \(message.kind) of \(uuid) failed: \(error)")
            return AgentReport(messageID: message.id, host: host, error: "\(error)")
        }
    }
}
