import HostAgent
import HostAPI
import Virt
import Compute
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import NimbusCore
import ServiceLifecycle

/// `nimbus agent`: one compute host in its own process, reaching the controller over HTTP
/// with its own Keystone credentials and never touching the database.
public struct RemoteAgent: Sendable {
    public struct Options: Sendable {
        public var controller: String
        public var host: String
        public var username: String
        public var password: String
        public var project: String
        public var domain = "Default"
        public var vcpus: Int64 = 8
        public var memoryMB: Int64 = 16384
        public var diskGB: Int64 = 200
        public var heartbeatSeconds = 10
        /// `qemu` or `fake`.
        public var driver = "fake"
        public var instancesPath = "/var/lib/nimbus/instances"
        /// The address other hosts reach this one at (Nova's `my_ip`).
        public var hostIP = "127.0.0.1"
        /// The host's nimbus.conf: `[compute]` timings and `[DEFAULT] reserved_host_*` (nil: defaults).
        public var configFile: String?
        /// Where guests' VNC servers listen; nil: `[vnc] server_listen` of the config file.
        public var vncListen: String?
        /// The network dataplane (`linux`, `none`); nil: `[network] dataplane` of the config file.
        public var dataplane: String?
        /// The dataplane's DHCP servers' files: beside the instances directory.
        var dataplaneStatePath: String { URL(fileURLWithPath: instancesPath).deletingLastPathComponent().appendingPathComponent("dataplane").path }

        public init(controller: String, host: String, username: String, password: String, project: String) {
            (self.controller, self.host, self.username, self.password, self.project) = (controller, host, username, password, project)
        }
    }

    let options: Options

    public init(options: Options) { self.options = options }

    public func run() async throws {
        var logger = Logger(label: "nimbus-agent")
        logger.logLevel = .info
        guard let base = URL(string: options.controller), base.scheme != nil else {
            throw StartupError("bad controller URL '\(options.controller)': expected e.g. http://127.0.0.1:8800")
        }
        let link = HTTPAgentLink(base: base, options: options)
        var config = NimbusConfig()
        if let path = options.configFile {
            guard FileManager.default.fileExists(atPath: path) else { throw StartupError("no configuration file \(path)") }
            config = try NimbusConfig.load(path: path)
        }
        for (option, value) in [("vcpus", options.vcpus), ("memory_mb", options.memoryMB), ("disk_gb", options.diskGB)] {
            config.set("fake_hosts", option, String(value))
        }
        if let vncListen = options.vncListen { config.set("vnc", "server_listen", vncListen) }
        if let dataplane = options.dataplane { config.set("network", "dataplane", dataplane) }
        let (dataplane, note) = HostDrivers.resolveDataplane(config.string("network", "dataplane"), driver: options.driver)
        config.set("network", "dataplane", dataplane)
        if let note { FileHandle.standardOutput.write(Data((note + "\n").utf8)) }
        let driver = try await HostDrivers.make(options.driver, instancesPath: options.instancesPath, hostIP: options.hostIP, images: link,
                                                config: config, logger: logger)
        let network = try HostDrivers.networkAgent(config.string("network", "dataplane"), host: options.host, hostIP: options.hostIP, link: link,
                                                   stateDirectory: options.dataplaneStatePath,
                                                   metadataProxy: { [config, logger] lookup in Self.metadataProxy(controller: base, config: config, lookup: lookup, logger: logger) },
                                                   config: config, logger: logger)
        let agent = try HostDrivers.agent(host: options.host, hostIP: options.hostIP, driver: driver, link: link, images: link, network: network,
                                          heartbeat: .seconds(options.heartbeatSeconds), config: config, logger: logger)
        FileHandle.standardOutput.write(Data("Nimbus agent \(options.host) working for \(options.controller)\n".utf8))
        let group = ServiceGroup(configuration: .init(services: [AgentService(agent: agent)], gracefulShutdownSignals: [.sigterm, .sigint],
                                                      logger: logger))
        try await group.run()
    }
}

struct AgentService: Service {
    let agent: ComputeAgent
    func run() async throws { await cancelWhenGracefulShutdown { await agent.run() } }
}

/// The agent's five calls as HTTP requests to `/compute-agent/v1`, with a token from the
/// controller's identity service, renewed when it is refused.
actor HTTPAgentLink: AgentLink {
    let base: URL
    let options: RemoteAgent.Options
    let session: URLSession
    var token: String?

    init(base: URL, options: RemoteAgent.Options) {
        self.base = base
        self.options = options
        let configuration = URLSessionConfiguration.default
        configuration.timeoutIntervalForRequest = 60
        session = URLSession(configuration: configuration)
    }

    struct LinkError: Error, CustomStringConvertible {
        let description: String
    }

    func authenticate() async throws -> String {
        let body: JSON = ["auth": ["identity": ["methods": ["password"], "password": ["user": [
            "name": .string(options.username), "domain": ["name": .string(options.domain)], "password": .string(options.password)]]],
                                   "scope": ["project": ["name": .string(options.project), "domain": ["name": .string(options.domain)]]]]]
        var request = URLRequest(url: base.appendingPathComponent("identity/v3/auth/tokens"))
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(body.serializedBytes())
        let (_, response) = try await session.data(for: request)
        guard let http = response as? HTTPURLResponse, http.statusCode == 201, let token = http.value(forHTTPHeaderField: "X-Subject-Token") else {
            throw LinkError(description: "cannot authenticate to \(base) as \(options.username)")
        }
        self.token = token
        return token
    }

    func call(_ method: String, _ path: String, query: String = "", body: JSON? = nil) async throws -> JSON {
        let data = try await send(method, "compute-agent/v1/hosts/\(options.host)/\(path)", query: query, body: body.map { Data($0.serializedBytes()) })
        return data.isEmpty ? .null : try JSON.parse(Array(data))
    }

    /// One authenticated request to the controller (a new token once when the old one is
    /// refused); the response's body, or an error for a status other than 2xx.
    func send(_ method: String, _ path: String, query: String = "", body: Data? = nil) async throws -> Data {
        for attempt in 0..<2 {
            let token: String
            if let current = self.token { token = current } else { token = try await authenticate() }
            var components = URLComponents(url: base.appendingPathComponent(path), resolvingAgainstBaseURL: false)!
            if !query.isEmpty { components.percentEncodedQuery = query }
            var request = URLRequest(url: components.url!)
            request.httpMethod = method
            request.setValue(token, forHTTPHeaderField: "X-Auth-Token")
            if let body {
                request.setValue("application/json", forHTTPHeaderField: "Content-Type")
                request.httpBody = body
            }
            let (data, response) = try await session.data(for: request)
            let status = (response as? HTTPURLResponse)?.statusCode ?? 0
            if status == 401 && attempt == 0 {
                self.token = nil
                continue
            }
            guard (200..<300).contains(status) else {
                throw LinkError(description: "\(method) \(path): HTTP \(status) \(String(decoding: data, as: UTF8.self))")
            }
            return data
        }
        throw LinkError(description: "\(method) \(path): not authorised")
    }

    func register(_ registration: AgentRegistration) async throws { _ = try await call("POST", "register", body: registration.json) }
    func heartbeat(host: String) async throws { _ = try await call("POST", "heartbeat") }
    func fetch(host: String, excluding: Set<Int64>, wait: Duration) async throws -> [AgentMessage] {
        let held = excluding.sorted().map(String.init).joined(separator: ",")
        let reply = try await call("GET", "messages", query: "excluding=\(held)&wait=\(wait.components.seconds)")
        return reply["messages"]?.arrayValue?.compactMap(AgentMessage.init(json:)) ?? []
    }
    func report(_ report: AgentReport) async throws { _ = try await call("POST", "reports", body: report.json) }
    func syncPowerStates(_ report: PowerStateReport) async throws { _ = try await call("POST", "power-states", body: report.json) }
}

/// The image service as a separate agent reaches it: over HTTP, with the agent's own token,
/// so image data never passes through the controller's compute service.
extension HTTPAgentLink: ImageTransfer {
    func imageRequest(_ method: String, _ imageID: String) async throws -> URLRequest {
        let token: String
        if let current = self.token { token = current } else { token = try await authenticate() }
        var request = URLRequest(url: base.appendingPathComponent("image/v2/images/\(imageID)/file"))
        request.httpMethod = method
        request.setValue(token, forHTTPHeaderField: "X-Auth-Token")
        request.timeoutInterval = 3600
        return request
    }

    func download(imageID: String, to path: String) async throws {
        let (temporary, response) = try await session.download(for: try await imageRequest("GET", imageID))
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard status == 200 else {
            try? FileManager.default.removeItem(at: temporary)
            throw LinkError(description: "download of image \(imageID): HTTP \(status)")
        }
        try? FileManager.default.removeItem(atPath: path)
        do { try FileManager.default.moveItem(at: temporary, to: URL(fileURLWithPath: path)) } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }

    /// Over plain HTTP with `HTTPFileUpload`, which sends a large file for a fraction of
    /// URLSession's CPU; over HTTPS with URLSession.
    func upload(imageID: String, taking path: String, diskFormat: String) async throws {
        var request = try await imageRequest("PUT", imageID)
        request.setValue("application/octet-stream", forHTTPHeaderField: "Content-Type")
        let status: Int
        let body: [UInt8]
        let headers = (request.allHTTPHeaderFields ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        if let url = request.url,
           let response = try await HTTPFileUpload.send("PUT", to: url, headers: headers, file: path, timeout: .seconds(Int64(request.timeoutInterval))) {
            (status, body) = (response.status, response.body)
        } else {
            let (data, response) = try await session.upload(for: request, fromFile: URL(fileURLWithPath: path))
            (status, body) = ((response as? HTTPURLResponse)?.statusCode ?? 0, Array(data))
        }
        guard status == 204 else {
            throw LinkError(description: "upload of image \(imageID): HTTP \(status) \(String(decoding: body, as: UTF8.self))")
        }
    }
}

extension HTTPAgentLink: NetworkAgentLink {
    func networkState(host: String) async throws -> HostNetworkState {
        try JSONDecoder().decode(HostNetworkState.self, from: try await send("GET", "network-agent/v1/hosts/\(host)/state"))
    }

    func reportNetwork(_ report: NetworkAgentReport) async throws {
        _ = try await send("POST", "network-agent/v1/hosts/\(report.host)/report", body: try JSONEncoder().encode(report))
    }
}
