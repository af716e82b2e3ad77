import Dataplane
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import NimbusCore

/// What `nimbus manage trace` learns from a running cloud's APIs (Nova and Neutron, as an
/// admin): for a server or a port, each port's binding, network, DHCP server and router with
/// the port's floating IPs — the "should exist" side of `DataplaneTrace`.
public actor TraceExpectations {
    /// Keystone password credentials, as the `OS_*` variables of `openrc` give them.
    public struct Credentials: Sendable {
        public var authURL: String
        public var username: String
        public var password: String
        public var projectName: String
        public var userDomain: String
        public var projectDomain: String

        /// From `OS_AUTH_URL`, `OS_USERNAME`, `OS_PASSWORD`, `OS_PROJECT_NAME`,
        /// `OS_USER_DOMAIN_NAME` and `OS_PROJECT_DOMAIN_NAME` (domains default to `Default`).
        public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Credentials {
            func required(_ name: String) throws -> String {
                guard let value = environment[name], !value.isEmpty else {
                    throw StartupError("\(name) is not set: source the openrc `nimbus up` writes in its data directory (or set the OS_* variables)")
                }
                return value
            }
            return Credentials(authURL: try required("OS_AUTH_URL"), username: try required("OS_USERNAME"), password: try required("OS_PASSWORD"),
                               projectName: try required("OS_PROJECT_NAME"), userDomain: environment["OS_USER_DOMAIN_NAME"] ?? "Default",
                               projectDomain: environment["OS_PROJECT_DOMAIN_NAME"] ?? "Default")
        }

        public init(authURL: String, username: String, password: String, projectName: String, userDomain: String = "Default",
                    projectDomain: String = "Default") {
            (self.authURL, self.username, self.password, self.projectName, self.userDomain, self.projectDomain) =
                (authURL, username, password, projectName, userDomain, projectDomain)
        }
    }

    let credentials: Credentials
    /// The host the trace runs on: its own tunnel endpoint is not one of its peers.
    let host: String
    let session: URLSession
    var token: String?
    var endpoints: [String: String] = [:]

    public init(credentials: Credentials, host: String) {
        (self.credentials, self.host) = (credentials, host)
        let configuration = URLSessionConfiguration.default
        configuration.timeoutIntervalForRequest = 30
        session = URLSession(configuration: configuration)
    }

    /// The expectations of each port of the server named or identified by `server`.
    public func server(_ server: String) async throws -> [DataplaneTrace.Expectation] {
        let id: String
        if let found = try await get("compute", "/servers/\(server)", allowMissing: true)?["server"]?["id"]?.stringValue {
            id = found
        } else {
            let query = "name=" + (server.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? server) + "&all_tenants=1"
            let matches = (try await get("compute", "/servers", query: query)?["servers"]?.arrayValue ?? [])
                .filter { $0["name"]?.stringValue == server }.compactMap { $0["id"]?.stringValue }
            guard matches.count == 1 else {
                throw StartupError(matches.isEmpty ? "no server named or with id \(server)" : "\(matches.count) servers are named \(server): give its id")
            }
            id = matches[0]
        }
        let ports = try await get("network", "/v2.0/ports", query: "device_id=\(id)")?["ports"]?.arrayValue ?? []
        guard !ports.isEmpty else { throw StartupError("server \(id) has no port") }
        var expectations: [DataplaneTrace.Expectation] = []
        for port in ports { expectations.append(try await expectation(port)) }
        return expectations
    }

    /// The expectation of one port.
    public func port(_ id: String) async throws -> DataplaneTrace.Expectation {
        guard let port = try await get("network", "/v2.0/ports/\(id)", allowMissing: true)?["port"] else { throw StartupError("no port \(id)") }
        return try await expectation(port)
    }

    func expectation(_ port: JSON) async throws -> DataplaneTrace.Expectation {
        let id = port["id"]?.stringValue ?? "", networkID = port["network_id"]?.stringValue ?? ""
        let fixedIPs = (port["fixed_ips"]?.arrayValue ?? []).compactMap { ip -> (subnet: String, address: String)? in
            guard let subnet = ip["subnet_id"]?.stringValue, let address = ip["ip_address"]?.stringValue else { return nil }
            return (subnet, address)
        }
        let subnets = Dictionary((try await get("network", "/v2.0/subnets", query: "network_id=\(networkID)")?["subnets"]?.arrayValue ?? [])
            .compactMap { subnet in subnet["id"]?.stringValue.map { ($0, subnet) } }, uniquingKeysWith: { first, _ in first })
        let v4 = fixedIPs.filter { subnets[$0.subnet]?["ip_version"]?.intValue == 4 }
        let traced = DataplaneTrace.Port(
            id: id, status: port["status"]?.stringValue ?? "", bindingHost: port["binding:host_id"]?.stringValue ?? "",
            vifType: port["binding:vif_type"]?.stringValue ?? "", macAddress: port["mac_address"]?.stringValue ?? "",
            addresses: v4.map(\.address), portSecurityEnabled: port["port_security_enabled"]?.boolValue ?? true)

        let network = try await get("network", "/v2.0/networks/\(networkID)")?["network"]
        let neighbours = try await get("network", "/v2.0/ports", query: "network_id=\(networkID)")?["ports"]?.arrayValue ?? []
        var expected = DataplaneTrace.Expectation(
            port: traced,
            network: .init(id: networkID, networkType: network?["provider:network_type"]?.stringValue ?? "",
                           segmentationID: network?["provider:segmentation_id"]?.intValue.map(Int.init)))

        // Peers: the tunnel endpoints of every host with a port on the network but this one
        // (as the controller computes them); unknown when a host has not reported one.
        let hosts = Set(neighbours.compactMap { $0["binding:host_id"]?.stringValue }.filter { !$0.isEmpty && $0 != host })
        let agents = try await get("network", "/v2.0/agents")?["agents"]?.arrayValue ?? []
        var tunnels: [String: String] = [:]
        for agent in agents where agent["agent_type"]?.stringValue == "Linux bridge agent" {
            if let host = agent["host"]?.stringValue, let ip = agent["configurations"]?["tunneling_ip"]?.stringValue { tunnels[host] = ip }
        }
        expected.network.peers = hosts.allSatisfy { tunnels[$0] != nil } ? hosts.compactMap { tunnels[$0] } : nil

        let portSubnets = Set(v4.map(\.subnet))
        let withPrefix = { (ip: (subnet: String, address: String), subnets: [String: JSON]) -> String? in
            guard let cidr = subnets[ip.subnet]?["cidr"]?.stringValue, let network = IPNetwork(cidr) else { return nil }
            return "\(ip.address)/\(network.prefixLength)"
        }
        let fixed = { (port: JSON) in (port["fixed_ips"]?.arrayValue ?? []).compactMap { ip -> (subnet: String, address: String)? in
            guard let subnet = ip["subnet_id"]?.stringValue, let address = ip["ip_address"]?.stringValue else { return nil }
            return (subnet, address)
        } }
        let routerInterface = neighbours.first { neighbour in
            (neighbour["device_owner"]?.stringValue ?? "").hasPrefix("network:router_interface")
                && fixed(neighbour).contains { portSubnets.contains($0.subnet) }
        }
        if let dhcpPort = neighbours.first(where: { $0["device_owner"]?.stringValue == "network:dhcp" }),
           portSubnets.contains(where: { subnets[$0]?["enable_dhcp"]?.boolValue == true }) {
            expected.dhcp = .init(host: dhcpPort["binding:host_id"]?.stringValue ?? "", portID: dhcpPort["id"]?.stringValue ?? "",
                                  addresses: fixed(dhcpPort).compactMap { withPrefix($0, subnets) }, servesMetadata: routerInterface == nil)
        }

        if let routerInterface, let routerID = routerInterface["device_id"]?.stringValue {
            var router = DataplaneTrace.Router(id: routerID, host: routerInterface["binding:host_id"]?.stringValue ?? "",
                                               interfacePortID: routerInterface["id"]?.stringValue ?? "")
            let gatewayQuery = "device_id=\(routerID)&device_owner=network:router_gateway"
            if let gateway = try await get("network", "/v2.0/ports", query: gatewayQuery)?["ports"]?.arrayValue?.first {
                router.gatewayPortID = gateway["id"]?.stringValue
                for ip in fixed(gateway) {
                    let subnet = try await get("network", "/v2.0/subnets/\(ip.subnet)")?["subnet"]
                    if subnet?["ip_version"]?.intValue == 4, let cidr = subnet?["cidr"]?.stringValue, let network = IPNetwork(cidr) {
                        router.gatewayAddresses.append("\(ip.address)/\(network.prefixLength)")
                    }
                }
            }
            let floating = try await get("network", "/v2.0/floatingips", query: "port_id=\(id)")?["floatingips"]?.arrayValue ?? []
            router.floatingIPs = floating.compactMap { ip in
                guard ip["router_id"]?.stringValue == routerID, let address = ip["floating_ip_address"]?.stringValue,
                      let fixedAddress = ip["fixed_ip_address"]?.stringValue else { return nil }
                return .init(floatingAddress: address, fixedAddress: fixedAddress)
            }
            expected.router = router
        }
        return expected
    }

    // MARK: HTTP

    func authenticate() async throws -> String {
        let body: JSON = ["auth": ["identity": ["methods": ["password"], "password": ["user": [
            "name": .string(credentials.username), "domain": ["name": .string(credentials.userDomain)], "password": .string(credentials.password)]]],
                                   "scope": ["project": ["name": .string(credentials.projectName), "domain": ["name": .string(credentials.projectDomain)]]]]]
        let base = credentials.authURL.hasSuffix("/") ? String(credentials.authURL.dropLast()) : credentials.authURL
        guard let url = URL(string: base.hasSuffix("/v3") ? base + "/auth/tokens" : base + "/v3/auth/tokens") else {
            throw StartupError("OS_AUTH_URL \(credentials.authURL) is not a URL")
        }
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(body.serializedBytes())
        let (data, response) = try await session.data(for: request)
        guard let http = response as? HTTPURLResponse, http.statusCode == 201, let token = http.value(forHTTPHeaderField: "X-Subject-Token") else {
            throw StartupError("cannot authenticate to \(credentials.authURL) as \(credentials.username)")
        }
        for service in (try JSON.parse(Array(data)))["token"]?["catalog"]?.arrayValue ?? [] {
            guard let type = service["type"]?.stringValue,
                  let url = (service["endpoints"]?.arrayValue ?? []).first(where: { $0["interface"]?.stringValue == "public" })?["url"]?.stringValue else { continue }
            endpoints[type] = url
        }
        self.token = token
        return token
    }

    /// GET on a service of the catalog; nil for a 404 when `allowMissing`.
    func get(_ service: String, _ path: String, query: String = "", allowMissing: Bool = false) async throws -> JSON? {
        let token: String
        if let current = self.token { token = current } else { token = try await authenticate() }
        guard let base = endpoints[service] else { throw StartupError("the catalog has no \(service) endpoint") }
        guard let url = URL(string: base + path + (query.isEmpty ? "" : "?" + query)) else { throw StartupError("bad URL \(base)\(path)") }
        var request = URLRequest(url: url)
        request.setValue(token, forHTTPHeaderField: "X-Auth-Token")
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        let (data, response) = try await session.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        if status == 404 && allowMissing { return nil }
        guard (200..<300).contains(status) else {
            throw StartupError("GET \(path): HTTP \(status) \(String(decoding: data.prefix(300), as: UTF8.self))")
        }
        return try JSON.parse(Array(data))
    }
}
