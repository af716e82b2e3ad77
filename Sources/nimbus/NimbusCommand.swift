import ArgumentParser
import Foundation
import NimbusCore
import NimbusServer

@main
struct Nimbus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nimbus",
        abstract: "An IaaS cloud that speaks the OpenStack APIs, in one program.",
        subcommands: [Up.self, Manage.self])
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

struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start an all-in-one cloud: every API on one listener, state in one data directory.")

    @Option(help: "Data directory (database, token keys, nimbus.conf, clouds.yaml, openrc).")
    var dataDir = "./.nimbus"

    @Option(help: "HOST:PORT to listen on (default from nimbus.conf, else 127.0.0.1:8800).")
    var listen: String?

    @Option(help: "Admin password; generated on first start and stored in the data dir when omitted.")
    var adminPassword: String?

    @Option(help: "Database URL: sqlite:///path or postgres://user:password@host:port/db (default: SQLite in the data dir).")
    var database: String?

    @Option(help: "Run N compute hosts with the fake driver in this process (fake-1 … fake-N), for trying the API and scale tests.")
    var fakeHosts: Int?

    func run() async throws {
        try await runOrExit {
            try await AllInOne(dataDir: dataDir, listen: listen, adminPassword: adminPassword, database: database, fakeHosts: fakeHosts).run()
        }
    }
}

struct Manage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Operator commands (keystone-manage, nova-manage).",
        subcommands: [Token.self, DB.self, ImageStore.self])

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
