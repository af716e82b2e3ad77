import Foundation
import NimbusCore

extension ComputeService {
    /// `injectNetworkInfo` (admin): Nova checks the policy and the lock and casts the request
    /// to the server's host, whose driver rewrites the guest's network configuration. Only
    /// Nova's long-gone XenAPI driver did anything there; libvirt's, like Nimbus's QEMU and
    /// fake drivers, leaves the guest alone (its addresses come from DHCP and the metadata
    /// service), so once the checks pass there is nothing left to do.
    func injectNetworkInfo(_ uuid: String, caller: AuthContext) async throws {
        let instance = try await visibleInstance(uuid, caller: caller)
        try check(instance, ActionRule(label: "injectNetworkInfo", policy: "os_compute_api:os-admin-actions:inject_network_info",
                                       vmStates: Set(VMState.allCases), taskStates: Self.anyTask, needsLaunch: false), caller: caller)
    }
}
