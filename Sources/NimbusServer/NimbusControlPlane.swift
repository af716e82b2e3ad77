import HostAgent
import Virt
import Compute
import Foundation
import Hummingbird
import Identity
import Image
import Logging
import Networking
import NimbusCore
import NimbusStore
import Placement

/// Everything behind the single listener: the database, the services, and the router that
/// mounts each service under its path prefix. Built the same way by `nimbus up`, by
/// `nimbus manage` and by the in-process API tests.
public final class NimbusControlPlane: Sendable {
    public let dataDir: String
    public let config: NimbusConfig
    public let db: any Database
    public let identity: IdentityService
    public let image: ImageService
    public let placement: PlacementService
    public let compute: ComputeService
    public let network: NetworkService
    public let policy: PolicyEngine
    public let logger: Logger
    /// Base URL advertised in the catalog, e.g. `http://127.0.0.1:8800`.
    public let publicURL: String

    /// Opens the database, applies migrations and loads policy and token keys. Throws a
    /// `StartupError` with a one-line reason on anything an operator must fix.
    public init(dataDir: String, config: NimbusConfig, publicURL: String, logger: Logger) async throws {
        self.dataDir = dataDir
        self.config = config
        self.logger = logger
        self.publicURL = publicURL
        let policyFile = config.string("oslo_policy", "policy_file")
        let policyPath = policyFile.hasPrefix("/") ? policyFile : "\(dataDir)/\(policyFile)"
        do {
            // One rule set for every service: Keystone's names are prefixed (`identity:`),
            // Glance's are not, exactly as operators write them in policy.yaml.
            let defaults = IdentityPolicy.defaults.merging(ImagePolicy.defaults) { identity, _ in identity }
                .merging(PlacementPolicy.defaults) { first, _ in first }.merging(ComputePolicy.defaults) { first, _ in first }
                .merging(NetworkPolicy.defaults) { first, _ in first }
            policy = try PolicyEngine(defaults: defaults, overrides: try PolicyEngine.loadOverrides(path: policyPath))
        } catch {
            throw StartupError("bad policy file \(policyPath): \(error)")
        }
        let url = config.string("database", "connection").isEmpty ? "sqlite://\(dataDir)/nimbus.db" : config.string("database", "connection")
        do {
            db = try await DatabaseFactory.open(url: url, logger: logger)
        } catch {
            throw StartupError("cannot open database \(Self.redacted(url)): \(error)")
        }
        do {
            _ = try await Migrator.migrate(db, Self.migrations)
            identity = try IdentityService(db: db, config: config, dataDir: dataDir, policy: policy, logger: logger)
            try await identity.start()
            var quotas = ImageService.Quotas(keystone: identity)
            for resource in ImageService.QuotaResource.allCases {
                quotas.defaults[resource] = Int64(try config.int("image_quota", resource.rawValue))
            }
            image = ImageService(db: db, stores: try Self.imageStores(config: config, dataDir: dataDir), policy: policy, quotas: quotas, logger: logger)
            placement = PlacementService(db: db, policy: policy, logger: logger,
                                         conflictRetries: try config.int("placement", "allocation_conflict_retry_count"))
            network = NetworkService(db: db, policy: policy, settings: try Self.networkSettings(config), logger: logger)
            compute = ComputeService(db: db, policy: policy, placement: PlacementServiceClient(placement: placement),
                                     images: ImageServiceClient(images: image), network: NetworkServiceClient(network: network, logger: logger),
                                     scheduler: try Self.schedulerSettings(config), settings: try Self.computeSettings(config, publicURL: publicURL), logger: logger)
            let conductor = compute.conductor
            network.notifier.onNetworkChanged { device, _ in await conductor.networkChanged(instance: device) }
        } catch {
            await db.close()
            throw StartupError("cannot initialise the services: \(error)")
        }
    }

    public static func imageStores(config: NimbusConfig, dataDir: String) throws -> ImageStoreSet {
        let dir = config.string("glance_store", "filesystem_store_datadir")
        return try ImageStoreSet.filesystem(backends: config.string("glance_store", "enabled_backends"),
                                            defaultBackend: config.string("glance_store", "default_backend"),
                                            directory: dir.hasPrefix("/") ? dir : "\(dataDir)/\(dir)")
    }

    public static var migrations: [Migration] { IdentityMigrations.all + ImageMigrations.all + PlacementMigrations.all + ComputeMigrations.all + NetworkMigrations.all }

    static func networkSettings(_ config: NimbusConfig) throws -> NetworkService.Settings {
        var settings = NetworkService.Settings()
        settings.baseMAC = config.string("DEFAULT", "base_mac")
        settings.ml2 = try ML2Settings(typeDrivers: config.list("ml2", "type_drivers"), tenantNetworkTypes: config.list("ml2", "tenant_network_types"),
                                       networkVLANRanges: config.list("ml2_type_vlan", "network_vlan_ranges"), vniRanges: config.list("ml2_type_vxlan", "vni_ranges"),
                                       tunnelIDRanges: config.list("ml2_type_gre", "tunnel_id_ranges"), flatNetworks: config.list("ml2_type_flat", "flat_networks"),
                                       pathMTU: try config.int("ml2", "path_mtu"))
        for resource in NetworkQuotas.defaults.keys where NimbusConfig.options.contains(where: { $0.section == "quotas" && $0.name == "quota_\(resource)" }) {
            settings.quotaDefaults[resource] = Int64(try config.int("quotas", "quota_\(resource)"))
        }
        settings.agentDownTime = TimeInterval(try config.int("DEFAULT", "agent_down_time"))
        return settings
    }

    static func schedulerSettings(_ config: NimbusConfig) throws -> SchedulerSettings {
        var settings = SchedulerSettings()
        settings.enabledFilters = config.list("filter_scheduler", "enabled_filters")
        settings.ramWeightMultiplier = try config.double("filter_scheduler", "ram_weight_multiplier")
        settings.cpuWeightMultiplier = try config.double("filter_scheduler", "cpu_weight_multiplier")
        settings.diskWeightMultiplier = try config.double("filter_scheduler", "disk_weight_multiplier")
        settings.hostSubsetSize = max(try config.int("filter_scheduler", "host_subset_size"), 1)
        settings.maxAttempts = max(try config.int("scheduler", "max_attempts"), 1)
        settings.maxPlacementResults = try config.int("scheduler", "max_placement_results")
        return settings
    }

    static func computeSettings(_ config: NimbusConfig, publicURL: String) throws -> ComputeService.Settings {
        var settings = ComputeService.Settings()
        settings.consoleTokenTTL = TimeInterval(try config.int("consoleauth", "token_ttl"))
        let novnc = config.string("vnc", "novncproxy_base_url")
        settings.novncBaseURL = novnc.isEmpty ? "\(publicURL)\(ConsoleProxy.pagePath)" : novnc
        settings.serviceDownTime = TimeInterval(try config.int("DEFAULT", "service_down_time"))
        settings.defaultAvailabilityZone = config.string("DEFAULT", "default_availability_zone")
        for resource in ComputeQuotas.defaults.keys where NimbusConfig.options.contains(where: { $0.section == "quota" && $0.name == resource }) {
            settings.quotaDefaults[resource] = Int64(try config.int("quota", resource))
        }
        settings.allocationRatios.cpu = try config.double("DEFAULT", "cpu_allocation_ratio")
        settings.allocationRatios.ram = try config.double("DEFAULT", "ram_allocation_ratio")
        settings.allocationRatios.disk = try config.double("DEFAULT", "disk_allocation_ratio")
        // `auto` is settled by `nimbus up` (AllInOne), which knows its host's dataplane; anywhere else it is on.
        settings.forceConfigDrive = config.string("compute", "force_config_drive") == "auto" || config.bool("compute", "force_config_drive")
        settings.allowResizeToSameHost = config.bool("DEFAULT", "allow_resize_to_same_host")
        settings.metadataProxySharedSecret = config.string("neutron", "metadata_proxy_shared_secret")
        return settings
    }

    /// The fake compute hosts `[fake_hosts] count` asks for, run as one lifecycle service.
    public func fakeHostFleet() throws -> InProcessHosts {
        var agents: [ComputeAgent] = []
        let link = LocalAgentLink(conductor: compute.conductor)
        for index in 0..<(try config.int("fake_hosts", "count")) {
            agents.append(try HostDrivers.agent(host: "fake-\(index + 1)", driver: try HostDrivers.fake(config), link: link,
                                                images: InProcessImageTransfer(images: image),
                                                heartbeat: .seconds(try config.int("DEFAULT", "report_interval")), config: config, logger: logger))
        }
        return InProcessHosts(agents: agents)
    }

    /// The compute host this process runs itself (`nimbus up`), named after the machine.
    public func localHost(driver name: String, instancesPath: String) async throws -> ComputeAgent {
        let images = InProcessImageTransfer(images: image)
        let hostName = config.string("compute", "host").isEmpty ? ProcessInfo.processInfo.hostName : config.string("compute", "host")
        let hostIP = config.string("DEFAULT", "my_ip")
        let driver = try await HostDrivers.make(name, instancesPath: instancesPath, hostIP: hostIP, images: images, config: config, logger: logger)
        let dataplane = HostDrivers.resolveDataplane(config.string("network", "dataplane"), driver: name).dataplane
        let networkAgent = try HostDrivers.networkAgent(dataplane, host: hostName, hostIP: hostIP,
                                                        link: InProcessNetworkAgentLink(network: network), stateDirectory: dataDir + "/dataplane",
                                                        metadataProxy: { [self] lookup in metadataProxy(lookup: lookup) }, config: config, logger: logger)
        return try HostDrivers.agent(host: hostName, hostIP: hostIP, driver: driver, link: LocalAgentLink(conductor: compute.conductor), images: images,
                                     network: networkAgent, heartbeat: .seconds(try config.int("DEFAULT", "report_interval")), config: config, logger: logger)
    }

    /// The controller's DHCP, L3 and metadata agents' reports, run as one lifecycle service.
    /// With a local host running the dataplane, that host reports its DHCP and L3 agents itself.
    public func controllerNetworkAgents(localDataplane: Bool = false) throws -> ControllerNetworkAgents {
        ControllerNetworkAgents(network: network, host: ProcessInfo.processInfo.hostName,
                                types: localDataplane ? [.metadata] : [.dhcp, .l3, .metadata],
                                interval: .seconds(try config.int("DEFAULT", "report_interval")), logger: logger)
    }

    /// The services in the catalog, each at its path prefix under the one listener.
    public var catalog: [IdentityService.CatalogEntry] {
        [IdentityService.CatalogEntry(type: "identity", name: "keystone", url: "\(publicURL)/identity"),
         IdentityService.CatalogEntry(type: "image", name: "glance", url: "\(publicURL)/image"),
         IdentityService.CatalogEntry(type: "placement", name: "placement", url: "\(publicURL)/placement"),
         IdentityService.CatalogEntry(type: "compute", name: "nova", url: "\(publicURL)/compute/v2.1"),
         IdentityService.CatalogEntry(type: "network", name: "neutron", url: "\(publicURL)/networking")]
    }

    /// Prepares a cloud to serve: the admin and catalog exist, and work a crash interrupted is
    /// cleaned up. Only the serving process calls this (`nimbus manage` must not, since it
    /// may run beside a live server).
    public func bootstrap(adminPassword: String) async throws {
        try await identity.bootstrap(adminPassword: adminPassword, catalog: catalog)
        try await image.recoverInterrupted()
        try await image.metadefs.loadCatalog()
        try await compute.registerControlServices(host: ProcessInfo.processInfo.hostName)
        try await compute.conductor.resumeInterrupted()
    }

    public func makeRouter() throws -> Router<NimbusRequestContext> {
        let router = Router(context: NimbusRequestContext.self)
        router.add(middleware: RequestIDMiddleware())
        let maxBody = try config.int("DEFAULT", "max_request_body_size")
        IdentityRoutes(service: identity, maxBodySize: maxBody).register(on: router)
        ImageRoutes(service: image, validator: identity, maxBodySize: maxBody).register(on: router)
        PlacementRoutes(service: placement, validator: identity, maxBodySize: maxBody, publicURL: publicURL).register(on: router)
        ComputeRoutes(service: compute, validator: identity, maxBodySize: maxBody).register(on: router)
        NetworkRoutes(service: network, validator: identity, maxBodySize: maxBody).register(on: router)
        NetworkAgentRoutes(service: network, validator: identity, maxBodySize: maxBody).register(on: router)
        AgentRoutes(conductor: compute.conductor, policy: policy, validator: identity, maxBodySize: maxBody).register(on: router)
        MetadataRoutes(service: compute.metadata).register(on: router)
        consoleProxy.registerStaticFiles(on: router)
        return router
    }

    /// noVNC's pages and websocket; the websocket is served by `HTTPServerBuilder.nimbusHTTP1(consoles:)`.
    public var consoleProxy: ConsoleProxy { ConsoleProxy(compute: compute, logger: logger) }

    /// Waits for work started by accepted requests (imports, builds), then closes the database.
    public func close() async {
        await image.waitForImports()
        await compute.conductor.drain()
        await db.close()
    }

    /// A database URL with its password hidden, for messages.
    static func redacted(_ url: String) -> String {
        guard var c = URLComponents(string: url), c.password != nil else { return url }
        c.password = "***"
        return c.string ?? url
    }
}

