import Foundation
import Hummingbird
import Identity
import Image
import Logging
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
                .merging(PlacementPolicy.defaults) { existing, _ in existing }
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

    public static var migrations: [Migration] { IdentityMigrations.all + ImageMigrations.all + PlacementMigrations.all }

    /// The services in the catalog, each at its path prefix under the one listener.
    public var catalog: [IdentityService.CatalogEntry] {
        [IdentityService.CatalogEntry(type: "identity", name: "keystone", url: "\(publicURL)/identity"),
         IdentityService.CatalogEntry(type: "image", name: "glance", url: "\(publicURL)/image"),
         IdentityService.CatalogEntry(type: "placement", name: "placement", url: "\(publicURL)/placement")]
    }

    /// Prepares a cloud to serve: the admin and catalog exist, and work a crash interrupted is
    /// cleaned up. Only the serving process calls this (`nimbus manage` must not, since it
    /// may run beside a live server).
    public func bootstrap(adminPassword: String) async throws {
        try await identity.bootstrap(adminPassword: adminPassword, catalog: catalog)
        try await image.recoverInterrupted()
    }

    public func makeRouter() throws -> Router<NimbusRequestContext> {
        let router = Router(context: NimbusRequestContext.self)
        router.add(middleware: RequestIDMiddleware())
        let maxBody = try config.int("DEFAULT", "max_request_body_size")
        IdentityRoutes(service: identity, maxBodySize: maxBody).register(on: router)
        ImageRoutes(service: image, validator: identity, maxBodySize: maxBody).register(on: router)
        PlacementRoutes(service: placement, validator: identity, maxBodySize: maxBody, publicURL: publicURL).register(on: router)
        return router
    }

    public func close() async { await db.close() }

    /// A database URL with its password hidden, for messages.
    static func redacted(_ url: String) -> String {
        guard var c = URLComponents(string: url), c.password != nil else { return url }
        c.password = "***"
        return c.string ?? url
    }
}

/// A reason the program cannot start, printed as one line.
public struct StartupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
