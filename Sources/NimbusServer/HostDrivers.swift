import Crypto
import Dataplane
import Foundation
import HostAgent
import HostAPI
import Logging
import Networking
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
            return try fake(config)
        case "qemu":
            // noVNC's pages too: the console proxy on this machine's listener serves them.
            try HostTools.ensure(QEMUDriver.hostTools + ConfigDriveBuilder.hostTools + ConsoleProxy.hostTools, install: true) { line in
                FileHandle.standardOutput.write(Data((line + "\n").utf8))
            }
            try FileManager.default.createDirectory(atPath: instancesPath, withIntermediateDirectories: true)
            var configuration = QEMUDriverConfiguration(instancesPath: instancesPath)
            configuration.hostAddress = hostIP
            configuration.shutdownTimeout = .seconds(try config.int("compute", "shutdown_timeout"))
            let reserved = try Reservations(config)
            (configuration.reservedVCPUs, configuration.reservedMemoryMB, configuration.reservedDiskMB) = (reserved.vcpus, reserved.memoryMB, reserved.diskMB)
            configuration.vncListen = config.string("vnc", "server_listen")
            return try await QEMUDriver(configuration: configuration, images: images, configDrive: ConfigDriveWriter(), logger: logger)
        default:
            throw StartupError("unknown compute driver '\(name)': expected one of \(names.joined(separator: ", "))")
        }
    }

    static let dataplanes = ["auto", "linux", "none"]

    /// The dataplane a host of driver `driver` runs for the configured `dataplane`: `auto` is
    /// `linux` for real guests (`qemu`) when this process is root, which wiring needs, and
    /// `none` otherwise, with a line for the operator saying why. Other values are returned as
    /// they are (`networkAgent` rejects unknown ones).
    static func resolveDataplane(_ dataplane: String, driver: String) -> (dataplane: String, note: String?) {
        guard dataplane == "auto" else { return (dataplane, nil) }
        guard driver == "qemu" else { return ("none", nil) }
        guard geteuid() == 0 else {
            return ("none", "Guests' ports are not wired (the network dataplane needs root; run as root, or set [network] dataplane = none to silence this).")
        }
        return ("linux", nil)
    }

    /// The host's network agent for `dataplane` (`[network] dataplane`, `--dataplane`, after
    /// `resolveDataplane`), nil for none. Its tunnel endpoint is `[vxlan] local_ip`, else `hostIP`; its DHCP servers' files
    /// live in `stateDirectory`. dnsmasq, nftables and iproute2 are installed when missing, saying so.
    /// `metadataProxy` makes the proxy that serves the host's isolated networks' guests.
    static func networkAgent(_ dataplane: String, host: String, hostIP: String, link: any NetworkAgentLink, stateDirectory: String,
                             metadataProxy: @escaping @Sendable (any InstanceLookup) -> MetadataProxy,
                             config: NimbusConfig, logger: Logger) throws -> NetworkAgent? {
        switch dataplane {
        case "none": return nil
        case "linux": break
        default: throw StartupError("unknown network dataplane '\(dataplane)': expected one of \(dataplanes.joined(separator: ", "))")
        }
        try ensureDataplaneTools()
        let mappings = try interfaceMappings(config)
        let localIP = config.string("vxlan", "local_ip")
        let tunnelingIP = localIP.isEmpty ? hostIP : localIP
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        let dataplane = LinuxBridgeDataplane(settings: DataplaneSettings(host: host, tunnelingIP: tunnelingIP, stateDirectory: stateDirectory,
                                                                         physicalInterfaceMappings: mappings), logger: logger)
        return NetworkAgent(host: host, tunnelingIP: tunnelingIP, link: link, dataplane: dataplane,
                            metadata: MetadataProxies(makeProxy: metadataProxy, logger: logger),
                            resyncInterval: .seconds(try config.int("network", "resync_interval")), logger: logger)
    }

    /// Installs what the linux dataplane runs (dnsmasq, nftables, iproute2, procps) when it is
    /// missing, saying so.
    static func ensureDataplaneTools() throws {
        try HostTools.ensure([HostTool("dnsmasq", package: "dnsmasq-base"), HostTool("ip", package: "iproute2"), HostTool("bridge", package: "iproute2"),
                              HostTool("nft", package: "nftables"), HostTool("sysctl", package: "procps")],
                             install: true) { line in FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
    }

    /// `[linux_bridge] physical_interface_mappings`: each physical network's interface.
    static func interfaceMappings(_ config: NimbusConfig) throws -> [String: String] {
        var mappings: [String: String] = [:]
        for pair in config.list("linux_bridge", "physical_interface_mappings") {
            let parts = pair.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw StartupError("[linux_bridge] physical_interface_mappings: '\(pair)' is not physnet:interface")
            }
            mappings[parts[0]] = parts[1]
        }
        return mappings
    }

    /// A fake host's driver: `[fake_hosts]` sizes, `[DEFAULT] reserved_host_*` reservations.
    static func fake(_ config: NimbusConfig) throws -> FakeDriver {
        let reserved = try Reservations(config)
        let driver = FakeDriver(vcpus: Int64(try config.int("fake_hosts", "vcpus")), memoryMB: Int64(try config.int("fake_hosts", "memory_mb")),
                                diskGB: Int64(try config.int("fake_hosts", "disk_gb")), reservedVCPUs: reserved.vcpus,
                                reservedMemoryMB: reserved.memoryMB, reservedDiskMB: reserved.diskMB)
        let migration = try config.int("fake_hosts", "live_migration_seconds")
        guard migration >= 0 else { throw StartupError("[fake_hosts] live_migration_seconds must be 0 or more") }
        if migration > 0 { driver.slowDown("migrate", by: .seconds(migration)) }
        let snapshot = try config.int("fake_hosts", "snapshot_seconds")
        guard snapshot >= 0 else { throw StartupError("[fake_hosts] snapshot_seconds must be 0 or more") }
        if snapshot > 0 { driver.slowDown("snapshot", by: .seconds(snapshot)) }
        return driver
    }

    /// What a compute host keeps for itself (Nova's `reserved_host_*`, in `[DEFAULT]` as in Nova).
    struct Reservations {
        var vcpus, memoryMB, diskMB: Int64

        init(_ config: NimbusConfig) throws {
            vcpus = Int64(try config.int("DEFAULT", "reserved_host_cpus"))
            memoryMB = Int64(try config.int("DEFAULT", "reserved_host_memory_mb"))
            diskMB = Int64(try config.int("DEFAULT", "reserved_host_disk_mb"))
            guard vcpus >= 0, memoryMB >= 0, diskMB >= 0 else {
                throw StartupError("[DEFAULT] reserved_host_cpus, reserved_host_memory_mb and reserved_host_disk_mb must not be negative")
            }
        }
    }

    /// The agent of one compute host, with the timings every host reads from nimbus.conf.
    static func agent(host: String, hostIP: String = "127.0.0.1", driver: any VirtDriver, link: any AgentLink, images: any ImageTransfer,
                      network: NetworkAgent? = nil, heartbeat: Duration, config: NimbusConfig, logger: Logger) throws -> ComputeAgent {
        ComputeAgent(host: host, hostIP: hostIP, driver: driver, link: link, images: images, network: network, heartbeatInterval: heartbeat,
                     shutdownTimeout: .seconds(try config.int("compute", "shutdown_timeout")),
                     powerSyncInterval: .seconds(try config.int("compute", "sync_power_state_interval")), logger: logger)
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

/// The network agent link of `nimbus up`'s own host: direct calls into the networking service.
struct InProcessNetworkAgentLink: NetworkAgentLink {
    let network: NetworkService

    func networkState(host: String) async throws -> HostNetworkState { try await network.hostNetworkState(host: host) }
    func reportNetwork(_ report: NetworkAgentReport) async throws { try await network.applyNetworkReport(report) }
}
