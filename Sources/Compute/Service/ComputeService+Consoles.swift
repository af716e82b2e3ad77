import Crypto
import Foundation
import HostAPI
import NimbusCore
import NimbusStore

/// Graphical consoles, as Nova gives them: `POST /servers/{id}/remote-consoles` (and, before
/// 2.6, the `os-getVNCConsole` action) asks the server's host where the guest's VNC server
/// listens, stores a console auth token for it and answers a noVNC URL carrying the token;
/// `GET /os-console-auth-tokens/{token}` shows what a valid token opens (admin); the console
/// proxy consumes a token when its websocket connects (`consumeConsoleToken`). A token is
/// random, stored only as its SHA-256, valid for `[consoleauth] token_ttl` seconds and used
/// once.
extension ComputeService {
    /// What a consumed token connects to.
    public struct ConsoleConnection: Sendable, Equatable {
        public let instanceUUID: String
        public let projectID: String
        /// The compute host the guest runs on.
        public let computeHost: String
        /// The guest's VNC server.
        public let endpoint: VNCEndpoint
    }

    /// Why the proxy refuses a token. The client is told only that it was refused; the reason
    /// is for the log.
    public enum ConsoleTokenRefusal: Error, Equatable, CustomStringConvertible {
        /// Never issued, already used, or removed with its server.
        case unknown
        case expired
        /// The server was deleted, or moved to another host, since the token was made.
        case serverGone(String)
        /// The guest's VNC server is no longer where the token points (the guest was restarted
        /// or moved): the token was for a console that is gone.
        case consoleMoved(String)

        public var description: String {
            switch self {
            case .unknown: return "unknown or already used console token"
            case .expired: return "expired console token"
            case .serverGone(let uuid): return "console token for server \(uuid), which is gone from the host the token was made on"
            case .consoleMoved(let why): return "console token no longer matches the server's console: \(why)"
            }
        }
    }

    static let consolePolicy = "os_compute_api:os-remote-consoles"

    /// Nova's schema for `remote_console`: the protocols and types accepted at a microversion
    /// (`mks`/`webmks` from 2.8, `spice-direct` from 2.99). Accepted is not supported: only
    /// `vnc` with `novnc` gives a console.
    static func consoleSchema(_ version: Microversion) -> (protocols: Set<String>, types: Set<String>) {
        var protocols: Set<String> = ["vnc", "spice", "serial", "rdp"]
        var types: Set<String> = ["novnc", "xvpvnc", "spice-html5", "serial", "rdp-html5"]
        if version >= Microversion(2, 8) {
            protocols.insert("mks")
            types.insert("webmks")
        }
        if version >= Microversion(2, 99) { types.insert("spice-direct") }
        return (protocols, types)
    }

    /// `POST /servers/{id}/remote-consoles` (2.6 and later).
    public func createRemoteConsole(_ uuid: String, _ body: JSON, version: Microversion, caller: AuthContext) async throws -> JSON {
        guard version >= Microversion(2, 6) else { throw APIError.notFound("The resource could not be found.") }
        guard let object = body.objectValue, let console = object["remote_console"]?.objectValue else {
            throw APIError.badRequest("Invalid input for field/attribute remote_console. 'remote_console' is a required property")
        }
        if let extra = object.keys.first(where: { $0 != "remote_console" }) {
            throw APIError.badRequest("Invalid input for field/attribute body. Additional properties are not allowed ('\(extra)' was unexpected)")
        }
        if let extra = console.keys.first(where: { $0 != "protocol" && $0 != "type" }) {
            throw APIError.badRequest("Invalid input for field/attribute remote_console. Additional properties are not allowed ('\(extra)' was unexpected)")
        }
        let schema = Self.consoleSchema(version)
        let proto = try Self.enumField(console["protocol"], name: "protocol", allowed: schema.protocols)
        let type = try Self.enumField(console["type"], name: "type", allowed: schema.types)
        let instance = try await visibleInstance(uuid, caller: caller)
        try authorize(Self.consolePolicy, caller, project: instance.projectID)
        let url: String
        switch proto {
        case "vnc":
            url = try await vncConsoleURL(instance, type: type, caller: caller)
        case "mks":
            // No Nimbus driver has VMware's MKS consoles (Nova's NotImplementedError).
            throw APIError(.notImplemented, "The requested functionality is not supported.")
        default:
            // RDP went with Hyper-V; SPICE and serial consoles are not enabled on any host.
            throw APIError.badRequest("Unavailable console type \(proto == "rdp" ? proto : type).")
        }
        return ["remote_console": ["protocol": .string(proto), "type": .string(type), "url": .string(url)]]
    }

    /// The `os-getVNCConsole`, `os-getSPICEConsole` and `os-getSerialConsole` actions (2.1 to
    /// 2.5; later microversions have only `remote-consoles`).
    func legacyConsole(_ uuid: String, action: String, _ value: JSON, version: Microversion, caller: AuthContext) async throws -> ActionResult {
        guard version < Microversion(2, 6) else { throw APIError.notFound("The resource could not be found.") }
        let allowed: Set<String> = switch action {
        case "os-getVNCConsole": ["novnc", "xvpvnc"]
        case "os-getSPICEConsole": ["spice-html5"]
        default: ["serial"]
        }
        guard let fields = value.objectValue else {
            throw APIError.badRequest("Invalid input for field/attribute \(action). Value: \(value.serialized()). \(value.serialized()) is not of type 'object'")
        }
        if let extra = fields.keys.first(where: { $0 != "type" }) {
            throw APIError.badRequest("Invalid input for field/attribute \(action). Additional properties are not allowed ('\(extra)' was unexpected)")
        }
        let type = try Self.enumField(fields["type"], name: "type", allowed: allowed)
        let instance = try await visibleInstance(uuid, caller: caller)
        try authorize(Self.consolePolicy, caller, project: instance.projectID)
        guard action == "os-getVNCConsole" else { throw APIError.badRequest("Unavailable console type \(type).") }
        let url = try await vncConsoleURL(instance, type: type, caller: caller)
        return ActionResult(status: 200, body: ["console": ["type": .string(type), "url": .string(url)]])
    }

    static func enumField(_ value: JSON?, name: String, allowed: Set<String>) throws -> String {
        guard let value, !value.isNull else { throw APIError.badRequest("Invalid input for field/attribute \(name). '\(name)' is a required property") }
        guard let text = value.stringValue, allowed.contains(text) else {
            throw APIError.badRequest("Invalid input for field/attribute \(name). Value: \(value.serialized()). \(value.serialized()) is not one of \(allowed.sorted())")
        }
        return text
    }

    /// Nova's `get_vnc_console` (compute API and manager): the server must be on a host and not
    /// being deleted or migrated, the type must be `novnc`, and the host's driver must say
    /// where the guest's VNC server listens; then a token is stored and the URL made.
    func vncConsoleURL(_ instance: Instance, type: String, caller: AuthContext) async throws -> String {
        guard let host = instance.host else { throw APIError.conflict("Instance \(instance.uuid) is not ready") }
        if let task = instance.taskState, task == .deleting || task == .migrating {
            throw APIError.conflict("Cannot 'get_vnc_console' instance \(instance.uuid) while it is in task_state \(task.rawValue)")
        }
        guard type == "novnc" else { throw APIError.badRequest("Invalid console type \(type)") }
        let endpoint = try await vncEndpoint(instance.uuid, host: host, building: instance.vmState == .building)
        let token = UUID().uuidString.lowercased()
        let base = settings.novncBaseURL
        let now = Date().timeIntervalSince1970
        try await db.transaction { x in
            // Expired tokens go whenever a new one is made (Nova's periodic clean-up, done where
            // tokens accumulate).
            _ = try await x.execute("DELETE FROM compute_console_auth_token WHERE expires_at <= ?", [.real(now)])
            _ = try await x.execute("""
                INSERT INTO compute_console_auth_token (token_hash, console_type, instance_uuid, project_id, compute_host, host, port,
                    internal_access_path, access_url_base, created_at, expires_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)
                """, [.text(Self.consoleTokenHash(token)), .text(type), .text(instance.uuid), .text(instance.projectID), .text(host),
                      .text(endpoint.host), .integer(Int64(endpoint.port)), .text(base), .real(now), .real(now + settings.consoleTokenTTL)])
        }
        return Self.consoleAccessURL(base: base, token: token)
    }

    /// Asks the server's host where its guest's VNC server listens now, mapping each answer to
    /// Nova's status: a driver without consoles 501, a guest that does not run 409.
    func vncEndpoint(_ uuid: String, host: String, building: Bool) async throws -> VNCEndpoint {
        let report = try await conductor.call(.getVNCConsole, host: host, instance: uuid, payload: [:])
        let answer = report.output
        if report.error != nil || answer["unsupported"] != nil {
            // An agent that does not know the message (an older one) has no consoles either.
            throw APIError(.notImplemented, "The requested functionality is not supported.")
        }
        if answer["not_ready"] != nil { throw APIError.conflict("Instance \(uuid) is not ready") }
        guard let endpoint = answer["console"].flatMap(VNCEndpoint.init(json:)) else {
            let reason = answer["error"]?.stringValue ?? "no answer"
            // A guest still being built may have no hypervisor process yet (Nova: InstanceNotReady).
            if building { throw APIError.conflict("Instance \(uuid) is not ready") }
            throw APIError(.internalServerError, "Unable to get the VNC console of instance \(uuid): \(reason)")
        }
        return endpoint
    }

    /// Nova's access URL: the base URL with `?token=<token>` appended to its `path` query
    /// parameter (noVNC's websocket path), every other parameter kept.
    static func consoleAccessURL(base: String, token: String) -> String {
        guard var components = URLComponents(string: base) else { return base }
        var items = components.queryItems ?? []
        let path = (items.first(where: { $0.name == "path" })?.value ?? "") + "?token=\(token)"
        items.removeAll { $0.name == "path" }
        items.append(URLQueryItem(name: "path", value: path))
        // As Python's urlencode: everything but unreserved characters escaped, so the `?` and
        // `=` of the path stay inside its value.
        let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        components.percentEncodedQuery = items.map { item in
            let name = item.name.addingPercentEncoding(withAllowedCharacters: unreserved) ?? item.name
            let value = (item.value ?? "").addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
            return "\(name)=\(value)"
        }.joined(separator: "&")
        return components.string ?? base
    }

    static func consoleTokenHash(_ token: String) -> String { Hex.encode(SHA256.hash(data: Data(token.utf8))) }

    /// `GET /os-console-auth-tokens/{token}`: what a valid token connects to (admin). Before
    /// 2.31 it served RDP tokens only, which went with Hyper-V: 400.
    public func consoleAuthToken(_ token: String, version: Microversion, caller: AuthContext) async throws -> JSON {
        guard version >= Microversion(2, 31) else {
            throw APIError.badRequest("The server could not comply with the request since it is either malformed or otherwise incorrect.")
        }
        try authorize("os_compute_api:os-console-auth-tokens", caller)
        guard !token.isEmpty, let row = try await db.first("SELECT * FROM compute_console_auth_token WHERE token_hash = ? AND expires_at > ?",
                                                           .text(Self.consoleTokenHash(token)), .real(Date().timeIntervalSince1970)) else {
            throw APIError.notFound("Token not found")
        }
        return ["console": ["instance_uuid": .string(row.string("instance_uuid")), "host": .string(row.string("host")),
                            "port": .int(row.int("port")), "internal_access_path": .optional(row.optionalString("internal_access_path"))]]
    }

    /// The console proxy's check, when a websocket connects with `token`: the token is removed
    /// whatever the outcome (it opens one connection at most, and a refused one is spent too),
    /// then it must not have expired, its server must still exist on the host the token was
    /// made on, and that host must still place the guest's VNC server where the token points —
    /// so a token cannot reach another guest that took the port over. Throws
    /// `ConsoleTokenRefusal` otherwise.
    public func consumeConsoleToken(_ token: String) async throws -> ConsoleConnection {
        let hash = Self.consoleTokenHash(token)
        let row = try await db.transaction { x -> Row? in
            guard let row = try await x.first("SELECT * FROM compute_console_auth_token WHERE token_hash = ?", .text(hash)) else { return nil }
            // Of two connections racing with one token, only the one whose delete removed the row wins.
            guard try await x.execute("DELETE FROM compute_console_auth_token WHERE token_hash = ?", [.text(hash)]) == 1 else { return nil }
            return row
        }
        guard let row else { throw ConsoleTokenRefusal.unknown }
        guard row.double("expires_at") > Date().timeIntervalSince1970 else { throw ConsoleTokenRefusal.expired }
        let uuid = row.string("instance_uuid"), computeHost = row.string("compute_host")
        guard let instance = try await store.instance(uuid: uuid, db), instance.deletedAt == nil, instance.host == computeHost else {
            throw ConsoleTokenRefusal.serverGone(uuid)
        }
        let recorded = VNCEndpoint(host: row.string("host"), port: Int(row.int("port")))
        let report = try await conductor.call(.getVNCConsole, host: computeHost, instance: uuid, payload: [:], timeout: .seconds(10))
        guard let current = report.output["console"].flatMap(VNCEndpoint.init(json:)) else {
            throw ConsoleTokenRefusal.consoleMoved(report.error ?? report.output.serialized())
        }
        guard current == recorded else {
            throw ConsoleTokenRefusal.consoleMoved("it listens at \(current.host):\(current.port), the token says \(recorded.host):\(recorded.port)")
        }
        return ConsoleConnection(instanceUUID: uuid, projectID: instance.projectID, computeHost: computeHost, endpoint: recorded)
    }

    /// Removes a server's console tokens (with its deletion, as Nova's compute does).
    func deleteConsoleTokens(instance uuid: String, _ x: any SQLExecutor) async throws {
        _ = try await x.execute("DELETE FROM compute_console_auth_token WHERE instance_uuid = ?", [.text(uuid)])
    }
}
