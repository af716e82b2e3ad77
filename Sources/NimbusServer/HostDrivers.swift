import Crypto
import Foundation
import Logging
import NimbusCore
import Virt

/// The drivers a host can run, by the name `[compute] driver`, `nimbus up --driver` and
/// `nimbus agent --driver` use.
enum HostDrivers {
    static let names = ["qemu", "fake"]

    /// The driver `name`, ready to work: for QEMU, the host's packages are installed when
    /// missing (saying so) and acceleration is probed. `hostIP` is the address other hosts
    /// reach this one at (moves' disk and memory streams listen on it).
    static func make(_ name: String, instancesPath: String, hostIP: String, images: any ImageTransfer, config: NimbusConfig,
                     logger: Logger) async throws -> any VirtDriver {
        switch name {
        case "fake":
            return FakeDriver(vcpus: Int64(try config.int("fake_hosts", "vcpus")), memoryMB: Int64(try config.int("fake_hosts", "memory_mb")),
                              diskGB: Int64(try config.int("fake_hosts", "disk_gb")))
        case "qemu":
            try HostTools.ensure(QEMUDriver.hostTools + ConfigDriveBuilder.hostTools, install: true) { line in
                FileHandle.standardOutput.write(Data((line + "\n").utf8))
            }
            try FileManager.default.createDirectory(atPath: instancesPath, withIntermediateDirectories: true)
            var configuration = QEMUDriverConfiguration(instancesPath: instancesPath)
            configuration.hostAddress = hostIP
            configuration.shutdownTimeout = .seconds(try config.int("compute", "shutdown_timeout"))
            configuration.reservedMemoryMB = Int64(try config.int("DEFAULT", "reserved_host_memory_mb"))
            return try await QEMUDriver(configuration: configuration, images: images, configDrive: ConfigDriveWriter(), logger: logger)
        default:
            throw StartupError("unknown compute driver '\(name)': expected one of \(names.joined(separator: ", "))")
        }
    }

    /// `[compute] instances_path`, or `<data dir>/instances`. QEMU's monitor sockets live below
    /// it and a socket path holds at most 107 bytes, so a data directory deep in the file system
    /// gets a short directory of its own under /var/tmp instead (named from the data directory,
    /// so each cloud on a machine has its own and finds it again after a restart).
    static func instancesPath(config: NimbusConfig, dataDir: String) -> String {
        let configured = config.string("compute", "instances_path")
        if !configured.isEmpty { return configured }
        let inside = "\(dataDir)/instances"
        guard inside.utf8.count > GuestPaths.longestInstancesRoot else { return inside }
        return "/var/tmp/nimbus-instances-" + Hex.encode(SHA256.hash(data: Data(dataDir.utf8))).prefix(12)
    }
}
