import Foundation
import NimbusCore

/// iproute2 (`ip`, `bridge`) as the dataplane uses it. Every call runs in the network namespace
/// of the calling process, or in the named namespace `netns` (`ip -n`).
public enum IPRoute {
    /// One interface as `ip -d -json link show` describes it.
    public struct Link: Sendable, Decodable {
        public var ifname: String
        public var master: String?
        public var mtu: Int?
        public var flags: [String]?
        public var address: String?
        public var ifalias: String?
        public var linkinfo: LinkInfo?

        public struct LinkInfo: Sendable, Decodable {
            public var info_kind: String?
            /// Kind-specific details; only the VXLAN's VNI (or the VLAN's id) is read.
            public var info_data: InfoData? = nil
        }

        public struct InfoData: Sendable, Decodable {
            public var id: Int?
        }

        /// `bridge`, `tun`, `veth`, `vxlan`, … (nil for a physical device).
        public var kind: String? { linkinfo?.info_kind }
        public var isUp: Bool { flags?.contains("UP") ?? false }
    }

    /// One forwarding-database entry as `bridge -json fdb show` describes it.
    public struct FDBEntry: Sendable, Decodable {
        public var mac: String
        public var dst: String?
        public var ifname: String?
    }

    /// Runs `ip` with `arguments` (in `netns` when given) and returns its stdout; throws
    /// `HostProcessError` when it fails.
    @discardableResult
    public static func ip(_ arguments: [String], netns: String? = nil) async throws -> String {
        try await HostProcess.check("ip", (netns.map { ["-n", $0] } ?? []) + arguments)
    }

    /// Runs `ip -force -batch -` with one command a line (`commands`, each without the leading
    /// `ip`): one process however many commands. With `-force` every command is tried; throws
    /// `HostProcessError` when any of them failed (the others took effect).
    public static func batch(_ commands: [String], netns: String? = nil) async throws {
        guard !commands.isEmpty else { return }
        try await HostProcess.check("ip", (netns.map { ["-n", $0] } ?? []) + ["-force", "-batch", "-"],
                                    input: commands.joined(separator: "\n") + "\n")
    }

    /// Every interface of the namespace.
    public static func links(netns: String? = nil) async throws -> [Link] {
        let text = try await ip(["-d", "-json", "link", "show"], netns: netns)
        return try JSONDecoder().decode([Link].self, from: Data(text.utf8))
    }

    /// The named namespaces (`ip netns list`), wherever they were made.
    public static func namespaces() async throws -> Set<String> {
        let text = try await HostProcess.check("ip", ["netns", "list"])
        return Set(text.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) })
    }

    /// The forwarding-database entries of one device.
    public static func fdb(device: String, netns: String? = nil) async throws -> [FDBEntry] {
        let text = try await HostProcess.check("bridge", (netns.map { ["-n", $0] } ?? []) + ["-json", "fdb", "show", "dev", device])
        return text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? [] : try JSONDecoder().decode([FDBEntry].self, from: Data(text.utf8))
    }

    /// Runs `bridge` with `arguments`.
    public static func bridge(_ arguments: [String], netns: String? = nil) async throws {
        try await HostProcess.check("bridge", (netns.map { ["-n", $0] } ?? []) + arguments)
    }

    /// The IPv4 addresses (`a.b.c.d/len`) of an interface.
    public static func addresses(_ device: String, netns: String? = nil) async throws -> Set<String> {
        struct Entry: Decodable {
            struct Address: Decodable { var family: String; var local: String; var prefixlen: Int }
            var addr_info: [Address]
        }
        let text = try await ip(["-json", "-4", "addr", "show", "dev", device], netns: netns)
        let entries = try JSONDecoder().decode([Entry].self, from: Data(text.utf8))
        return Set(entries.flatMap(\.addr_info).filter { $0.family == "inet" }.map { "\($0.local)/\($0.prefixlen)" })
    }
}
