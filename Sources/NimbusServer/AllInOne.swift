import Foundation
import Dataplane
import Hummingbird
import Logging
import NimbusCore
import ServiceLifecycle

/// `nimbus up`: one process serving every API, with its state in one data directory.
public struct AllInOne: Sendable {
    public var dataDir: String
    public var listen: String?
    public var adminPassword: String?
    public var database: String?
    public var fakeHosts: Int?
    /// The driver of the compute host this process runs itself (`qemu`, `fake`), or `none`;
    /// nil: `[compute] driver`, except that `--fake-hosts` alone means fake hosts only.
    public var driver: String?
    /// `[network] public_namespace`: the namespace of the default topology's `br-ex`.
    public var publicNamespace: String?

    public init(dataDir: String, listen: String?, adminPassword: String?, database: String?, fakeHosts: Int? = nil, driver: String? = nil,
                publicNamespace: String? = nil) {
        self.dataDir = dataDir
        self.listen = listen
        self.adminPassword = adminPassword
        self.database = database
        self.fakeHosts = fakeHosts
        self.driver = driver
        self.publicNamespace = publicNamespace
    }

    /// The local host's driver, or nil for none.
    func localDriver(_ config: NimbusConfig) throws -> String? {
        let name = driver ?? (fakeHosts != nil ? "none" : config.string("compute", "driver"))
        if name == "none" { return nil }
        guard HostDrivers.names.contains(name) else {
            throw StartupError("unknown compute driver '\(name)': expected one of \((HostDrivers.names + ["none"]).joined(separator: ", "))")
        }
        return name
    }

    public func run() async throws {
        let dir = URL(fileURLWithPath: dataDir).standardizedFileURL.path
        try DataDirectory.prepare(dir)
        var config: NimbusConfig
        do {
            config = try NimbusConfig.load(path: "\(dir)/nimbus.conf")
        } catch {
            throw StartupError("\(error)")
        }
        if !FileManager.default.fileExists(atPath: "\(dir)/nimbus.conf") {
            try? NimbusConfig.sampleText().write(toFile: "\(dir)/nimbus.conf", atomically: true, encoding: .utf8)
        }
        if let listen { config.set("DEFAULT", "listen", listen) }
        if let database { config.set("database", "connection", database) }
        if let fakeHosts {
            guard fakeHosts >= 0 else { throw StartupError("--fake-hosts must be 0 or more") }
            config.set("fake_hosts", "count", String(fakeHosts))
        }
        // Nova's and Neutron's option; unset, the secret is made once and kept in the data dir.
        var generatedSecret = false
        if config.string("neutron", "metadata_proxy_shared_secret").isEmpty {
            let (secret, generated) = try DataDirectory.metadataProxySecret(dir)
            config.set("neutron", "metadata_proxy_shared_secret", secret)
            generatedSecret = generated
        }
        if let publicNamespace { config.set("network", "public_namespace", publicNamespace) }
        let localDriver = try localDriver(config)
        var dataplaneNote: String?
        if let localDriver {
            let (dataplane, note) = HostDrivers.resolveDataplane(config.string("network", "dataplane"), driver: localDriver)
            config.set("network", "dataplane", dataplane)
            dataplaneNote = note
        }
        let notes = dataplaneNote.map { [$0] } ?? []
        let localDataplane = localDriver != nil && config.string("network", "dataplane") == "linux"
        if config.string("compute", "force_config_drive") == "auto" {
            config.set("compute", "force_config_drive", localDataplane ? "false" : "true")
        }
        let topology = localDataplane && config.bool("network", "default_topology") ? try FirstStart.Topology(config) : nil
        let (host, port) = try Self.parseListen(config.string("DEFAULT", "listen"))
        let publicURL = config.string("DEFAULT", "public_url").isEmpty ? "http://\(host):\(port)" : config.string("DEFAULT", "public_url")

        var logger = Logger(label: "nimbus")
        logger.logLevel = Logger.Level(rawValue: config.string("DEFAULT", "log_level")) ?? .info

        // Refuse an occupied port before touching the database, so the message is about the port.
        try PortProbe.checkFree(host: host, port: port)

        var publicBridge: PublicBridge?
        if let topology, try HostDrivers.interfaceMappings(config)[PublicBridge.physicalNetwork] == nil {
            // DevStack's br-ex, unless the operator gave the public network an interface of their own.
            let namespace = config.string("network", "public_namespace")
            publicBridge = PublicBridge(gatewayCIDR: topology.gatewayCIDR, namespace: namespace.isEmpty ? nil : namespace)
            let mappings = config.list("linux_bridge", "physical_interface_mappings") + ["\(PublicBridge.physicalNetwork):\(PublicBridge.physicalInterface)"]
            config.set("linux_bridge", "physical_interface_mappings", mappings.joined(separator: ","))
        }
        let plane = try await NimbusControlPlane(dataDir: dir, config: config, publicURL: publicURL, logger: logger)
        // The host is touched only once the database is open: a bad database URL must not leave
        // a bridge behind in the caller's namespace.
        if let publicBridge {
            do {
                try HostDrivers.ensureDataplaneTools()
                try await publicBridge.ensure()
            } catch {
                throw StartupError("could not make the public network's bridge \(PublicBridge.bridge): \(error)")
            }
        }
        let (password, generated) = try DataDirectory.adminPassword(dir, explicit: adminPassword)
        try await plane.bootstrap(adminPassword: password)
        if generated { FileHandle.standardOutput.write(Data("Generated admin password (stored in \(dir)/admin-password): \(password)\n".utf8)) }
        if generatedSecret {
            FileHandle.standardOutput.write(Data("Generated the metadata proxy shared secret (stored in \(dir)/metadata-proxy-shared-secret; give it to agents as [neutron] metadata_proxy_shared_secret)\n".utf8))
        }
        try CloudFiles.write(dataDir: dir, authURL: "\(publicURL)/identity/v3", password: password)

        var agents = try plane.fakeHostFleet().agents
        if let localDriver {
            agents.append(try await plane.localHost(driver: localDriver, instancesPath: HostDrivers.instancesPath(config: config, dataDir: dir)))
        }
        // With a real host, the flavors and the test image a first boot needs (DevStack's defaults).
        let firstStart = localDriver == "qemu"
            ? FirstStart(baseURL: URL(string: "http://\(host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host):\(port)/")!, adminPassword: password,
                         imageCache: Self.imageCache, topology: topology, logger: logger)
            : nil
        let app = Application(
            router: try plane.makeRouter(),
            server: .nimbusHTTP1(consoles: plane.consoleProxy),
            configuration: .init(address: .hostname(host, port: port), serverName: "nimbus"),
            onServerRunning: { _ in
                // The server answers only once this returns, and the first start talks to it:
                // that runs detached, and the ready line waits for it.
                Task {
                    var lines = notes
                    if let firstStart {
                        do { lines += try await firstStart.run() } catch { lines.append("Could not make the default flavors, test image and networks: \(error)") }
                    }
                    // One write, so a supervisor reading the pipe sees the whole message at once.
                    let ready = lines.map { $0 + "\n" }.joined() + "Nimbus is ready at \(publicURL) (identity: \(publicURL)/identity/v3)\n"
                        + "Use it with: export OS_CLIENT_CONFIG_FILE=\(dir)/clouds.yaml OS_CLOUD=nimbus   (or: source \(dir)/openrc)\n"
                    FileHandle.standardOutput.write(Data(ready.utf8))
                }
            },
            logger: logger)
        let hosts = InProcessHosts(agents: agents)
        // The fleet ends at once when it has no hosts; that is not a failure.
        let group = ServiceGroup(configuration: .init(services: [.init(service: app), .init(service: hosts, successTerminationBehavior: .ignore),
                                                                 .init(service: try plane.controllerNetworkAgents(localDataplane: localDataplane))],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            await plane.close()
            throw StartupError("server stopped: \(error)")
        }
        await plane.close()
    }

    /// Where the test image's packages and build are kept: shared by every cloud of this user.
    static var imageCache: String {
        let env = ProcessInfo.processInfo.environment
        if let xdg = env["XDG_CACHE_HOME"], !xdg.isEmpty { return "\(xdg)/nimbus/test-image" }
        return "\(env["HOME"] ?? "/var/tmp")/.cache/nimbus/test-image"
    }

    static func parseListen(_ value: String) throws -> (String, Int) {
        guard let colon = value.lastIndex(of: ":"), let port = Int(value[value.index(after: colon)...]), (1...65535).contains(port) else {
            throw StartupError("bad listen address '\(value)': expected HOST:PORT, e.g. 127.0.0.1:8800")
        }
        let host = String(value[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return (host.isEmpty ? "127.0.0.1" : host, port)
    }
}
