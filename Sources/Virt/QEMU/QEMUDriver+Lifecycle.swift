import Foundation

/// Lifecycle events: the driver keeps a monitor connection open to every guest whose QEMU it
/// started or asked about (every running guest, once the agent's first power-state sync has
/// listed them), and QEMU closes that connection as it exits. A guest that powers itself off
/// (QEMU exits after the guest's ACPI shutdown) or whose QEMU is killed from outside is
/// therefore noticed at once, not only at the next periodic sync.
extension QEMUDriver: LifecycleEventDriver {
    public func guestEvents() -> AsyncStream<String> { monitors.exits.stream() }
}
