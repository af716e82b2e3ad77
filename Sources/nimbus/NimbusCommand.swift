import ArgumentParser
import Foundation
import Logging
import NimbusCore
import NimbusServer

@main
struct Nimbus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nimbus",
        abstract: "An IaaS cloud that speaks the OpenStack APIs, in one program.",
        subcommands: [Up.self, Controller.self, Agent.self, Manage.self])

    static func main() async {
        LoggingSystem.bootstrap(NimbusLogHandler.init)
        do {
            var command = try parseAsRoot()
            if var command = command as? AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// Prints a one-line reason and exits non-zero, instead of a stack of error text.
func runOrExit(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as StartupError {
        FileHandle.standardError.write(Data("nimbus: \(error.description)\n".utf8))
        throw ExitCode(1)
    }
}

/// What `nimbus up` and `nimbus controller` share: where state lives and where to listen.
struct ServerOptions: ParsableArguments {
    @Option(help: "Data directory (database, token keys, nimbus.conf, clouds.yaml, openrc).")
    var dataDir = "./.nimbus"

    @Option(help: "HOST:PORT to listen on (default from nimbus.conf, else 127.0.0.1:8800).")
    var listen: String?

    @Option(help: "Admin password; generated on first start and stored in the data dir when omitted.")
    var adminPassword: String?

    @Option(help: "Database URL: sqlite:///path or postgres://user:password@host:port/db (default: SQLite in the data dir).")
    var database: String?

    func allInOne(fakeHosts: Int?, driver: String?) -> AllInOne {
        AllInOne(dataDir: dataDir, listen: listen, adminPassword: adminPassword, database: database, fakeHosts: fakeHosts, driver: driver)
    }
}

struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start an all-in-one cloud: every API on one listener, state in one data directory.")

    @OptionGroup var server: ServerOptions

    @Option(help: "Run N compute hosts with the fake driver in this process (fake-1 … fake-N), for trying the API and scale tests.")
    var fakeHosts: Int?

    @Option(help: "Driver of the compute host this process runs itself: qemu (real guests; the default), fake, or none. With --fake-hosts alone: none.")
    var driver: String?

    @Option(help: "Network namespace (made when missing) for the public network's bridge br-ex and its gateway address, instead of this host's own namespace ([network] public_namespace).")
    var publicNamespace: String?

    func run() async throws {
        try await runOrExit {
            var allInOne = server.allInOne(fakeHosts: fakeHosts, driver: driver)
            allInOne.publicNamespace = publicNamespace
            try await allInOne.run()
        }
    }
}

struct Controller: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start the control plane only (every API, scheduler and conductor); compute hosts join with `nimbus agent`.")

    @OptionGroup var server: ServerOptions

    func run() async throws {
        try await runOrExit { try await server.allInOne(fakeHosts: 0, driver: "none").run() }
    }
}

struct Agent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one compute host that works for a controller over HTTP, with its own credentials.")

    @Option(help: "Base URL of the controller, e.g. http://127.0.0.1:8800.") var controller: String
    @Option(help: "This host's name (its compute service and hypervisor).") var host: String
    @Option(help: "User the agent authenticates as; it needs the service or admin role.") var username = "admin"
    @Option(help: "File holding that user's password (e.g. the controller's data-dir/admin-password).") var passwordFile: String
    @Option(help: "Project to scope the agent's token to.") var project = "admin"
    @Option(help: "vCPUs this host reports.") var vcpus: Int64 = 8
    @Option(help: "MiB of RAM this host reports.") var memoryMb: Int64 = 16384
    @Option(help: "GiB of disk this host reports.") var diskGb: Int64 = 200
    @Option(help: "Seconds between heartbeats.") var heartbeat = 10
    @Option(help: "Hypervisor driver: qemu (real guests) or fake.") var driver = "fake"
    @Option(help: "Directory of this host's guests (qemu driver); default /var/lib/nimbus/instances.") var instancesPath = "/var/lib/nimbus/instances"
    @Option(help: "The address other hosts reach this host at (Nova's my_ip): moves' disk and memory streams listen on it.") var hostIp = "127.0.0.1"
    @Option(help: "This host's nimbus.conf: [compute] shutdown_timeout and sync_power_state_interval, [DEFAULT] reserved_host_* (default: their defaults).")
    var configFile: String?
    @Option(help: "Address this host's guests' VNC servers listen on (qemu driver), one the controller's console proxy reaches (default: [vnc] server_listen of --config-file, else 127.0.0.1).")
    var vncListen: String?
    @Option(help: "Network dataplane: linux (bridges, taps, VXLAN, dnsmasq), none, or auto: linux for the qemu driver when run as root, else none (default: [network] dataplane of --config-file, else auto).")
    var dataplane: String?

    func run() async throws {
        try await runOrExit {
            guard let password = try? String(contentsOfFile: passwordFile, encoding: .utf8) else {
                throw StartupError("cannot read the password file \(passwordFile)")
            }
            var options = RemoteAgent.Options(controller: controller, host: host, username: username,
                                              password: password.trimmingCharacters(in: .whitespacesAndNewlines), project: project)
            (options.vcpus, options.memoryMB, options.diskGB, options.heartbeatSeconds) = (vcpus, memoryMb, diskGb, heartbeat)
            (options.driver, options.instancesPath, options.hostIP) = (driver, instancesPath, hostIp)
            (options.configFile, options.vncListen, options.dataplane) = (configFile, vncListen, dataplane)
            try await RemoteAgent(options: options).run()
        }
    }
}

struct Manage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Operator commands (keystone-manage, nova-manage).",
        subcommands: [Token.self, Credential.self, DB.self, ImageStore.self, Image.self, Trace.self])

    struct ImageStore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "image-store", abstract: "The image data store.", subcommands: [Usage.self])

        struct Usage: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Print the objects and bytes the image store holds.")
            @Option(help: "Data directory.") var dataDir = "./.nimbus"
            func run() async throws {
                try await runOrExit {
                    for (store, objects, bytes) in try NimbusServer.Manage.imageStoreUsage(dataDir: dataDir) {
                        print("store \(store): \(objects) images, \(bytes) bytes")
                    }
                }
            }
        }
    }

    struct Image: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Images Nimbus makes itself.", subcommands: [BuildTest.self])

        struct BuildTest: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "build-test",
                abstract: "Build the test image (Debian kernel, busybox, dropbear; the part CirrOS plays) from Debian packages.",
                discussion: "Downloads the packages with the host's apt-get into the cache directory and installs missing host tools (qemu-utils, mtools, dosfstools, syslinux) when run as root.")
            @Option(help: "Where to write the qcow2 (the kernel and initrd go beside it).") var output = "./nimbus-test.qcow2"
            @Option(help: "Directory for downloaded .debs and unpacked files, reused by later builds.") var cache = Manage.Image.BuildTest.defaultCache
            static var defaultCache: String {
                let env = ProcessInfo.processInfo.environment
                if let xdg = env["XDG_CACHE_HOME"], !xdg.isEmpty { return "\(xdg)/nimbus/test-image" }
                return "\(env["HOME"] ?? ".")/.cache/nimbus/test-image"
            }
            func run() async throws {
                do {
                    for line in try NimbusServer.Manage.buildTestImage(output: output, cacheDirectory: cache) { print(line) }
                } catch {
                    FileHandle.standardError.write(Data("nimbus: \(error)\n".utf8))
                    throw ExitCode(1)
                }
            }
        }
    }

    struct Token: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Token key repository.", subcommands: [Rotate.self])

        struct Rotate: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Promote the staged key to primary and stage a new one.")
            @Option(help: "Data directory.") var dataDir = "./.nimbus"
            func run() async throws {
                try await runOrExit {
                    let primary = try NimbusServer.Manage.rotateTokenKeys(dataDir: dataDir)
                    print("Rotated token keys; primary key is now \(primary). Restart running servers to use it.")
                }
            }
        }
    }

    struct Credential: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Credential key repository.", subcommands: [Rotate.self])

        struct Rotate: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Promote the staged credential key to primary, stage a new one, and re-encrypt every stored credential under the new primary.")
            @Option(help: "Data directory.") var dataDir = "./.nimbus"
            @Option(help: "Database URL (default: from nimbus.conf, else SQLite in the data dir).") var database: String?
            func run() async throws {
                try await runOrExit {
                    let (primary, count) = try await NimbusServer.Manage.rotateCredentialKeys(dataDir: dataDir, database: database)
                    print("Rotated credential keys; primary key is now \(primary); re-encrypted \(count) credential(s). Restart running servers to stage the next key.")
                }
            }
        }
    }

    struct DB: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "db", abstract: "Database schema.", subcommands: [Migrate.self])

        struct Migrate: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Apply pending schema migrations.")
            @Option(help: "Data directory.") var dataDir = "./.nimbus"
            @Option(help: "Database URL (default: from nimbus.conf, else SQLite in the data dir).") var database: String?
            func run() async throws {
                try await runOrExit {
                    for line in try await NimbusServer.Manage.migrate(dataDir: dataDir, database: database) { print("applied or present: \(line)") }
                }
            }
        }
    }
}
