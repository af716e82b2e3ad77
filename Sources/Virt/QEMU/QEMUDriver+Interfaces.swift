import Foundation
import NimbusCore

/// Interface hot-plug as Nova's libvirt driver does it, over QMP: attach adds the port's tap
/// backend (`netdev_add`, the tap the host's network agent made and wired, or QEMU's own
/// where the host has no dataplane) and the NIC with the port's MAC in the guest's first free
/// NIC slot (`device_add`, see `NICSlots`); detach asks the guest to let go of the NIC
/// (`device_del`), waits for QEMU's `DEVICE_DELETED` (`unplugTimeout`), then removes the
/// backend. The guest's record (`guest.json`) lists the NIC from the moment it is in, so any
/// later start — a power on, a hard reboot, a restarted agent — has it too. A guest that does
/// not run (shut down) only has its record changed.
extension QEMUDriver: InterfaceAttachingDriver {
    public func attachInterface(_ uuid: String, _ vif: VIF) async throws {
        let (paths, spec) = try existing(uuid)
        guard !spec.nics.contains(where: { $0.portID == vif.portID }) else { return }
        guard !FileManager.default.fileExists(atPath: paths.savedState) else {
            throw VirtError.invalidState("Instance \(uuid) is suspended: its saved state has no room for another NIC.")
        }
        guard spec.nics.count < NICSlots.count else { throw VirtError.invalidState("Instance \(uuid) has \(NICSlots.count) NICs already.") }
        let properties = spec.image.properties
        let model = properties["hw_vif_model"] ?? "virtio"
        let q35 = (properties["hw_machine_type"] ?? "q35").contains("q35")
        var changed = spec
        changed.nics.append(vif)
        try await Reverter.run { reverter in
            if GuestProcess.running(paths) != nil {
                let client = try await monitor(paths)
                // A NIC plugged in by an attach cut short before its record was written is kept.
                if try await !hasDevice(client, vif) {
                    let slot = try await freeNICSlot(client, q35: q35, nics: spec.nics)
                    try await client.execute("netdev_add", arguments: Self.qmpArguments(NICSlots.netdev(vif)))
                    reverter.add { _ = try? await client.execute("netdev_del", arguments: ["id": .string(NICSlots.netdevID(vif))]) }
                    try await client.execute("device_add", arguments: Self.qmpArguments(NICSlots.device(vif, model: model, slot: slot, q35: q35)))
                    reverter.add { [self] in try? await unplug(client, vif: vif, legacyIndex: nil) }
                }
            }
            try GuestRecord.write(changed, to: paths.spec)
        }
    }

    public func detachInterface(_ uuid: String, portID: String) async throws {
        let (paths, spec) = try existing(uuid)
        guard let index = spec.nics.firstIndex(where: { $0.portID == portID }) else { return }
        if GuestProcess.running(paths) != nil {
            try await unplug(try await monitor(paths), vif: spec.nics[index], legacyIndex: index)
        }
        var changed = spec
        changed.nics.remove(at: index)
        try GuestRecord.write(changed, to: paths.spec)
    }

    /// Takes the NIC out of the running guest and then its backend. `legacyIndex`: the NIC's
    /// position, for a guest started before NICs were named after their ports (`nicN`).
    func unplug(_ client: QMPClient, vif: VIF, legacyIndex: Int?) async throws {
        var device = NICSlots.deviceID(vif), netdev = NICSlots.netdevID(vif)
        let before = client.lastEventSequence
        do {
            try await client.execute("device_del", arguments: ["id": .string(device)])
        } catch QMPError.commandFailed(_, "DeviceNotFound", _) {
            guard let legacyIndex else { return }
            (device, netdev) = ("nic\(legacyIndex)", "net\(legacyIndex)")
            do {
                try await client.execute("device_del", arguments: ["id": .string(device)])
            } catch QMPError.commandFailed(_, "DeviceNotFound", _) {
                return
            }
        }
        // The guest acknowledges the unplug (ACPI or PCIe native hot-plug); only then is the
        // device gone and its backend free.
        let timeout = configuration.unplugTimeout
        let deadline = ContinuousClock.now + timeout
        var after = before
        do {
            while true {
                let event = try await client.waitForEvent(["DEVICE_DELETED"], after: after, timeout: max(deadline - ContinuousClock.now, .zero))
                if event.data?["device"]?.stringValue == device { break }
                after = event.sequence
            }
        } catch QMPError.timedOut {
            throw VirtError.failed("The guest did not release NIC \(device) within \(timeout): the guest acknowledges a hot-unplug "
                                   + "(through ACPI), which one without hot-plug support, or a paused one, does not.")
        }
        do {
            try await client.execute("netdev_del", arguments: ["id": .string(netdev)])
        } catch QMPError.commandFailed(_, "DeviceNotFound", _) {
        } catch QMPError.commandFailed(_, "GenericError", let description) where description.contains("not found") {
        }
    }

    /// Whether QEMU has the port's NIC device.
    func hasDevice(_ client: QMPClient, _ vif: VIF) async throws -> Bool {
        do {
            try await client.execute("qom-get", arguments: ["path": .string("/machine/peripheral/\(NICSlots.deviceID(vif))"), "property": "mac"])
            return true
        } catch QMPError.commandFailed(_, "DeviceNotFound", _) {
            return false
        } catch QMPError.commandFailed(_, "GenericError", let description) where description.contains("not found") {
            return false
        }
    }

    /// The first NIC slot none of the guest's NICs is in. Asked of each NIC device (its parent
    /// bus on q35, its address on pc) rather than read off `query-pci`, which shows what is
    /// behind a root port only once the guest's firmware has numbered its bus.
    func freeNICSlot(_ client: QMPClient, q35: Bool, nics: [VIF]) async throws -> Int {
        var used = Set<Int>()
        for nic in nics {
            let path = JSON.string("/machine/peripheral/\(NICSlots.deviceID(nic))")
            // A NIC of a guest started before NICs were named after their ports is on no slot.
            if q35 {
                guard let bus = try? await client.execute("qom-get", arguments: ["path": path, "property": "parent_bus"]).stringValue else { continue }
                if let slot = (0..<NICSlots.count).first(where: { bus.hasSuffix("/" + NICSlots.rootPort($0)) }) { used.insert(slot) }
            } else {
                guard let devfn = try? await client.execute("qom-get", arguments: ["path": path, "property": "addr"]).intValue else { continue }
                used.insert(Int(devfn >> 3) - 0x10)
            }
        }
        guard let free = (0..<NICSlots.count).first(where: { !used.contains($0) }) else {
            throw VirtError.invalidState("No free NIC slot is left in the guest.")
        }
        return free
    }

    /// QMP arguments from device or backend options: numbers as numbers (QEMU checks the
    /// types of JSON arguments), the rest as strings.
    static func qmpArguments(_ options: [(String, String)]) -> JSON {
        var object: [String: JSON] = [:]
        for (key, value) in options { object[key] = key == "host_mtu" ? Int64(value).map(JSON.int) ?? .string(value) : .string(value) }
        return .object(object)
    }
}
