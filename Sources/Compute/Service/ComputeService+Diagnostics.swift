import Foundation
import HostAPI
import NimbusCore

/// `GET /servers/{id}/diagnostics`: the host's driver measures the guest (admin-only).
extension ComputeService {
    public func diagnostics(_ uuid: String, version: Microversion, caller: AuthContext) async throws -> JSON {
        let instance = try await visibleInstance(uuid, caller: caller)
        try authorize("os_compute_api:os-server-diagnostics", caller, project: instance.projectID)
        guard instance.vmState != .building, let host = instance.host else {
            throw APIError.conflict("Cannot 'get_diagnostics' instance \(uuid) while it is in vm_state \(instance.vmState.rawValue)")
        }
        if let node = try await store.node(host: host, db), !DriverCapabilities(json: node.capabilities).diagnostics {
            throw APIError(.notImplemented, "Unable to get diagnostics, functionality not implemented")
        }
        let report = try await conductor.call(.diagnostics, host: host, instance: uuid, payload: [:])
        if let error = report.error { throw APIError(.notImplemented, "Unable to get diagnostics: \(error)") }
        var standard = report.output.objectValue ?? [:]
        standard["config_drive"] = .bool(Conductor.truthy(instance.extra["config_drive"]))
        return version >= Microversion(2, 48) ? .object(standard) : Self.legacyDiagnostics(standard)
    }

    /// Before 2.48 each driver answered in its own words; these are libvirt's.
    static func legacyDiagnostics(_ d: [String: JSON]) -> JSON {
        var out: [String: JSON] = [:]
        for (index, cpu) in (d["cpu_details"]?.arrayValue ?? []).enumerated() { out["cpu\(index)_time"] = cpu["time"] ?? .null }
        // The host's agent reports the figure; one beyond what KiB can count in Int64 is shown as unknown, not trapped on.
        if let memory = d["memory_details"]?["maximum"]?.intValue {
            let (kib, overflow) = memory.multipliedReportingOverflow(by: 1024)
            out["memory"] = overflow ? .null : .int(kib)
        }
        for (index, disk) in (d["disk_details"]?.arrayValue ?? []).enumerated() {
            let name = "vd" + String(UnicodeScalar(UInt8(97 + min(index, 25))))
            out["\(name)_read"] = disk["read_bytes"] ?? .null
            out["\(name)_read_req"] = disk["read_requests"] ?? .null
            out["\(name)_write"] = disk["write_bytes"] ?? .null
            out["\(name)_write_req"] = disk["write_requests"] ?? .null
            out["\(name)_errors"] = disk["errors_count"] ?? .null
        }
        for (index, nic) in (d["nic_details"]?.arrayValue ?? []).enumerated() {
            for (key, field) in [("rx", "rx_octets"), ("rx_packets", "rx_packets"), ("rx_drop", "rx_drop"), ("rx_errors", "rx_errors"),
                                 ("tx", "tx_octets"), ("tx_packets", "tx_packets"), ("tx_drop", "tx_drop"), ("tx_errors", "tx_errors")] {
                out["vnet\(index)_\(key)"] = nic[field] ?? .null
            }
        }
        return .object(out)
    }
}
