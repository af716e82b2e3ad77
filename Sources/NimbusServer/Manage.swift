import Foundation
import Identity
import Image
import Logging
import NimbusCore
import NimbusStore
import Virt

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

    /// Rotates the credential keys and re-encrypts every stored credential under the new
    /// primary. Running servers already hold the new primary (it was the staged key) and pick
    /// up the newly staged one at their next start.
    public static func rotateCredentialKeys(dataDir: String, database: String?) async throws -> (primary: Int, reencrypted: Int) {
        let config = try loadConfig(dataDir, database: database)
        let url = config.string("database", "connection").isEmpty ? "sqlite://\(dataDir)/nimbus.db" : config.string("database", "connection")
        let db = try await DatabaseFactory.open(url: url, logger: Logger(label: "nimbus-manage"))
        do {
            let result = try await CredentialCipher.rotate(CredentialCipher.repository(dataDir: dataDir), db: db)
            await db.close()
            return result
        } catch {
            await db.close()
            throw error
        }
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

    /// Builds the test image (`nimbus manage image build-test`) and returns what to print: where
    /// it is and how to upload it.
    public static func buildTestImage(output: String, cacheDirectory: String) throws -> [String] {
        let absolute = { (path: String) in
            path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        }
        let options = TestImageBuilder.Options(output: absolute(output), cacheDirectory: absolute(cacheDirectory))
        let result = try TestImageBuilder(options: options).build()
        let properties = TestImageBuilder.imageProperties.map { "--property \($0.key)=\($0.value)" }.joined(separator: " ")
        var lines = [
            "Image:   \(result.image) (qcow2, \(String(format: "%.1f", Double(result.imageBytes) / 1_048_576)) MiB, kernel \(result.kernelRelease))",
        ]
        if let kernel = result.kernel, let initrd = result.initrd {
            lines.append("Kernel:  \(kernel)")
            lines.append("Ramdisk: \(initrd)  (for an image booted with kernel_id/ramdisk_id; command line: \(TestImageBuilder.kernelCommandLine))")
        }
        lines += [
            "Upload it with:",
            "  openstack image create nimbus-test --disk-format qcow2 --container-format bare --public \\",
            "    \(properties) \\",
            "    --file \(result.image)",
            "Log in with the server's key pair as \(TestImageBuilder.loginUser) (uid 1000) or root: ssh \(TestImageBuilder.loginUser)@<address>.",
            "The serial console shows: NIMBUS-GUEST uuid=<uuid> hostname=<hostname> ip=<addresses or none>",
        ]
        return lines
    }
}
