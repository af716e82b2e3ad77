import Foundation
import Identity
import Image
import Logging
import NimbusCore

/// `nimbus manage …`: operator commands that work on the data directory without a running server.
public enum Manage {
    static func loadConfig(_ dataDir: String, database: String?) throws -> NimbusConfig {
        var config = try NimbusConfig.load(path: "\(dataDir)/nimbus.conf")
        if let database { config.set("database", "connection", database) }
        return config
    }

    static func keyRepository(_ dataDir: String, _ config: NimbusConfig) throws -> KeyRepository {
        let repo = config.string("fernet_tokens", "key_repository")
        return KeyRepository(path: repo.hasPrefix("/") ? repo : "\(dataDir)/\(repo)", maxActiveKeys: try config.int("fernet_tokens", "max_active_keys"))
    }

    /// Rotates the token keys. Running servers pick the new keys up at their next start; the
    /// staged key means tokens issued before and after stay valid through a rolling restart.
    public static func rotateTokenKeys(dataDir: String) throws -> Int {
        let config = try loadConfig(dataDir, database: nil)
        let repo = try keyRepository(dataDir, config)
        try repo.setUpIfNeeded()
        return try repo.rotate()
    }

    public static func migrate(dataDir: String, database: String?) async throws -> [String] {
        let config = try loadConfig(dataDir, database: database)
        let plane = try await NimbusControlPlane(dataDir: dataDir, config: config, publicURL: "http://127.0.0.1", logger: Logger(label: "nimbus-manage"))
        await plane.close()
        return NimbusControlPlane.migrations.map { "\($0.service) \($0.version): \($0.name)" }
    }

    /// Objects and bytes in each image store, as `nimbus manage image-store usage` prints them.
    public static func imageStoreUsage(dataDir: String) throws -> [(store: String, objects: Int, bytes: Int64)] {
        let stores = try NimbusControlPlane.imageStores(config: try loadConfig(dataDir, database: nil), dataDir: dataDir)
        return try (stores.stores + [stores.staging]).map { store in
            let (objects, bytes) = try store.usage()
            return (store.id, objects, bytes)
        }
    }
}
