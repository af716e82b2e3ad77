import ArgumentParser
import Dataplane
import Foundation
import NimbusCore
import NimbusServer

extension Manage {
    /// `nimbus manage trace server|port`: the troubleshooting walk of a server's or a port's
    /// traffic, run on a host; the checks are `DataplaneTrace`'s, the expectations come from
    /// the cloud's API (`TraceExpectations`).
    struct Trace: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check, on this host, each link of the chain a server's or a port's traffic takes.",
            discussion: """
                Asks the cloud (as the OS_* variables of the openrc `nimbus up` writes say) what should exist, \
                and this host's kernel what does: one line per link, OK or what is wrong; links on another host \
                are named, not checked. Exits 1 when a link is broken. Run as root.
                """,
            subcommands: [Server.self, Port.self])

        struct Options: ParsableArguments {
            @Option(help: "This host's name, as ports' binding:host_id names it (default: this machine's hostname, as `nimbus up` and `nimbus agent` name it when [compute] host is unset).")
            var host: String?
            @Option(help: "The network agent's state directory: <data dir>/dataplane for `nimbus up`, beside --instances-path (/var/lib/nimbus/dataplane) for `nimbus agent`.")
            var stateDir = "./.nimbus/dataplane"
            @Option(help: "The named network namespace this host's bridges and taps live in (default: this process's).")
            var hostNamespace: String?

            func run(_ expectations: @escaping @Sendable (TraceExpectations) async throws -> [DataplaneTrace.Expectation]) async throws {
                let host = self.host ?? ProcessInfo.processInfo.hostName
                var broken = false
                do {
                    let api = TraceExpectations(credentials: try .fromEnvironment(), host: host)
                    let trace = DataplaneTrace(host: host, stateDirectory: stateDir, hostNamespace: hostNamespace)
                    for expected in try await expectations(api) {
                        print("port \(expected.port.id) (network \(expected.network.id), \(expected.network.networkType)) on host \(host):")
                        for link in await trace.trace(expected) {
                            print("  " + Self.line(link))
                            if link.isBroken { broken = true }
                        }
                    }
                } catch {
                    FileHandle.standardError.write(Data("nimbus: \(error)\n".utf8))
                    throw ExitCode(2)
                }
                if broken { throw ExitCode(1) }
            }

            static func line(_ link: DataplaneTrace.Link) -> String {
                let name = "\(link.kind.rawValue) \(link.subject)"
                switch link.status {
                case .ok: return "OK      \(name)" + (link.detail.isEmpty ? "" : ": \(link.detail)")
                case .broken(let reason): return "BROKEN  \(name): \(reason)"
                case .elsewhere(let other): return "-       \(name): on host \(other), not checked here"
                }
            }
        }

        struct Server: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Trace each port of a server.")
            @Argument(help: "The server's name or id.") var server: String
            @OptionGroup var options: Options
            func run() async throws {
                let server = self.server
                try await options.run { try await $0.server(server) }
            }
        }

        struct Port: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Trace one port.")
            @Argument(help: "The port's id.") var port: String
            @OptionGroup var options: Options
            func run() async throws {
                let port = self.port
                try await options.run { [try await $0.port(port)] }
            }
        }
    }
}
