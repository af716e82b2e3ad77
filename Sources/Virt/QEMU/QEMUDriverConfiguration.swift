import Foundation

/// How a `QEMUDriver` is set up on one host.
public struct QEMUDriverConfiguration: Sendable {
    /// The instances root: one directory per guest plus `_base/`, the image cache. Unix socket
    /// paths live below it and are limited to 107 bytes, so it may be at most
    /// `GuestPaths.longestInstancesRoot` (57) bytes long.
    public var instancesPath: String
    public var qemuBinary: String = "qemu-system-x86_64"
    public var qemuImgBinary: String = "qemu-img"
    /// Serves a cold migration's disks over NBD (`exportDisks`).
    public var storageDaemonBinary: String = "qemu-storage-daemon"
    /// The address other hosts reach this one at (the agent's host IP, Nova's `my_ip`): a cold
    /// migration's NBD export and a live migration's incoming stream and NBD server listen on
    /// it, on ports the kernel picks when they start.
    public var hostAddress: String = "127.0.0.1"
    /// Forces an accelerator; nil probes once at start (see `AccelerationProbe`).
    public var acceleration: Acceleration?
    /// How long the KVM probe guest has to reach long mode.
    public var probeTimeout: Duration = .seconds(5)
    /// TCG translation cache per guest, MiB.
    public var tcgTranslationCacheMB: Int = 32
    /// Capacity kept for the host itself (Nova's `reserved_host_cpus`, `reserved_host_memory_mb`,
    /// `reserved_host_disk_mb`): `hostResources()` reports it as reserved beside the totals.
    public var reservedVCPUs: Int64 = 0
    public var reservedMemoryMB: Int64 = 512
    public var reservedDiskMB: Int64 = 0
    /// How long a soft reboot waits for the guest to shut down before stopping it hard.
    public var shutdownTimeout: Duration = .seconds(60)
    /// How long QMP commands and QEMU start-up may take.
    public var monitorTimeout: Duration = .seconds(30)
    /// How long a running guest gets to release a NIC being unplugged (it must acknowledge
    /// the hot-unplug) before the detach fails.
    public var unplugTimeout: Duration = .seconds(30)
    /// How long saving or loading a suspended guest's state may take.
    public var stateTransferTimeout: Duration = .seconds(300)
    /// The host address guests' VNC servers listen on (Nova's `[vnc] server_listen`): one the
    /// controller's console proxy can reach, since the proxy connects to it. Loopback when the
    /// controller runs on this host.
    public var vncListen: String = "127.0.0.1"
    /// How long a snapshot's disk copy may take.
    public var snapshotTimeout: Duration = .seconds(1800)
    /// A live migration's stream bandwidth, MiB/s. QEMU's default (128 MiB/s) is meant for
    /// links shared with guests; HOST-FACTS measured 0.17–0.40 s for a 128 MiB guest at 1 GiB/s
    /// against about 0.6 s at the default.
    public var migrationMaxBandwidthMiBps: Int64 = 1024
    /// The longest pause a live migration may cause when it stops the guest to send what is
    /// left (QEMU's `downtime-limit`), ms.
    public var migrationDowntimeLimitMS: Int64 = 300
    /// How long a live migration may take, disk copy included, before it is cancelled (and the
    /// guest carries on at the source).
    public var migrationTimeout: Duration = .seconds(1800)

    public init(instancesPath: String, acceleration: Acceleration? = nil) {
        (self.instancesPath, self.acceleration) = (instancesPath, acceleration)
    }
}
