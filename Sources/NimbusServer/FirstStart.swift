import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import NimbusCore
import Dataplane
import Virt

/// What DevStack leaves behind that a new user's first commands rely on, made through the
/// cloud's own API as the admin (as DevStack does with the CLI) once it is serving: the
/// default flavors, the test image as a public image and, with a host that wires ports,
/// DevStack's networks. Each step is skipped when its result already exists, so every start
/// runs it and only the first one does anything.
struct FirstStart: Sendable {
    /// DevStack's default networks (`[network] default_topology`): the external flat `public`
    /// network on the physical network `br-ex` is mapped to, and the admin project's `private`
    /// network with `router1` between them.
    struct Topology: Sendable {
        var floatingRange: IPNetwork
        var fixedRange: IPNetwork

        init(_ config: NimbusConfig) throws {
            func range(_ name: String) throws -> IPNetwork {
                let text = config.string("network", name)
                guard let network = IPNetwork(text, strict: true), network.version == 4, network.prefixLength <= 29 else {
                    throw StartupError("[network] \(name): '\(text)' is not an IPv4 network (a.b.c.d/n, n at most 29, host bits zero)")
                }
                return network
            }
            (floatingRange, fixedRange) = (try range("floating_range"), try range("fixed_range"))
        }

        /// The public subnet's gateway, which `br-ex` holds: its first address.
        var gateway: IPAddress { floatingRange.first.advanced(by: 1) }
        var gatewayCIDR: String { "\(gateway)/\(floatingRange.prefixLength)" }
    }

    /// DevStack's flavors (`m1.nano` and `m1.micro` as its Tempest setup makes them), by id.
    static let flavors: [(id: String, name: String, ramMB: Int, diskGB: Int, vcpus: Int)] = [
        ("42", "m1.nano", 128, 1, 1), ("84", "m1.micro", 192, 1, 1), ("1", "m1.tiny", 512, 1, 1), ("2", "m1.small", 2048, 20, 1),
        ("3", "m1.medium", 4096, 40, 2), ("4", "m1.large", 8192, 80, 4), ("5", "m1.xlarge", 16384, 160, 8),
    ]
    static let testImageName = "nimbus-test"

    /// The listener, reached on loopback.
    let baseURL: URL
    let adminPassword: String
    /// Where the test image's packages and build are kept between starts.
    let imageCache: String
    /// DevStack's networks, when the local host wires ports; nil: none are made.
    let topology: Topology?
    let logger: Logger

    /// Makes what is missing; returns lines for the operator.
    func run() async throws -> [String] {
        let (token, projectID) = try await adminToken()
        var lines: [String] = []
        let existing = try await call("GET", "compute/v2.1/flavors", token: token)["flavors"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        let created = Self.flavors.filter { !existing.contains($0.name) }
        for flavor in created {
            _ = try await call("POST", "compute/v2.1/flavors", token: token, body: [
                "flavor": ["id": .string(flavor.id), "name": .string(flavor.name), "ram": .int(Int64(flavor.ramMB)),
                           "disk": .int(Int64(flavor.diskGB)), "vcpus": .int(Int64(flavor.vcpus))],
            ])
        }
        if !created.isEmpty { lines.append("Created the flavors \(created.map(\.name).joined(separator: ", ")).") }

        let images = try await call("GET", "image/v2/images?name=\(Self.testImageName)", token: token)["images"]?.arrayValue ?? []
        if !images.contains(where: { $0["status"]?.stringValue == "active" }) {
            for stale in images { _ = try? await call("DELETE", "image/v2/images/\(stale["id"]?.stringValue ?? "")", token: token) }
            lines.append(try await uploadTestImage(token: token))
        }
        if let topology {
            lines += try await makeNetworks(topology, token: token, projectID: projectID)
        }
        lines.append("Try: openstack server create --flavor m1.nano --image \(Self.testImageName)\(topology == nil ? "" : " --network private") --wait demo")
        return lines
    }

    /// DevStack's `public`, `private` and `router1`, each made when missing (looked up by name;
    /// `private` and `router1` in the admin project).
    func makeNetworks(_ topology: Topology, token: String, projectID: String) async throws -> [String] {
        var made: [String] = []
        func find(_ collection: String, _ query: String) async throws -> String? {
            try await call("GET", "networking/v2.0/\(collection)?\(query)", token: token)[collection]?.arrayValue?.first?["id"]?.stringValue
        }
        /// The id of the first of `collection` matching `query`, else of `body` made now.
        func findOrCreate(_ collection: String, _ kind: String, _ query: String, _ body: JSON) async throws -> String {
            if let id = try await find(collection, query) { return id }
            let created = try await call("POST", "networking/v2.0/\(collection)", token: token, body: [kind: body])
            guard let id = created[kind]?["id"]?.stringValue else { throw StartupError("could not create a \(kind): \(created.serialized())") }
            made.append(body["name"]?.stringValue ?? kind)
            return id
        }
        let floating = topology.floatingRange, fixed = topology.fixedRange
        let publicID = try await findOrCreate("networks", "network", "name=public&router:external=true", [
            "name": "public", "router:external": true, "provider:network_type": "flat",
            "provider:physical_network": .string(PublicBridge.physicalNetwork),
        ])
        _ = try await findOrCreate("subnets", "subnet", "name=public-subnet&network_id=\(publicID)", [
            "name": "public-subnet", "network_id": .string(publicID), "ip_version": 4, "cidr": .string(floating.description),
            "gateway_ip": .string(topology.gateway.description), "enable_dhcp": false,
            "allocation_pools": [["start": .string(floating.first.advanced(by: 2).description),
                                  "end": .string(IPAddress(version: 4, value: floating.last.value - 1).description)]],
        ])
        let privateID = try await findOrCreate("networks", "network", "name=private&project_id=\(projectID)", ["name": "private"])
        let subnetID = try await findOrCreate("subnets", "subnet", "name=private-subnet&network_id=\(privateID)", [
            "name": "private-subnet", "network_id": .string(privateID), "ip_version": 4, "cidr": .string(fixed.description),
        ])
        let routerID = try await findOrCreate("routers", "router", "name=router1&project_id=\(projectID)", [
            "name": "router1", "external_gateway_info": ["network_id": .string(publicID)],
        ])
        // Checked apart from the router's creation, so a start that died between the two adds it.
        if try await find("ports", "device_id=\(routerID)&network_id=\(privateID)") == nil {
            _ = try await call("PUT", "networking/v2.0/routers/\(routerID)/add_router_interface", token: token, body: ["subnet_id": .string(subnetID)])
        }
        guard !made.isEmpty else { return [] }
        return ["Created DevStack's networks (\(made.joined(separator: ", "))): public \(floating) (external; its gateway \(topology.gateway) is on \(PublicBridge.bridge)), "
                + "private \(fixed), router1 between them."]
    }

    /// Builds the test image from Debian packages (cached) and uploads it as a public image.
    func uploadTestImage(token: String) async throws -> String {
        // A file of this start's own: two clouds may build into one cache at once.
        let output = "\(imageCache)/\(Self.testImageName)-\(Identifiers.hexID().prefix(12)).qcow2"
        let logger = self.logger
        FileHandle.standardOutput.write(Data("Building the test image \(Self.testImageName) from Debian packages (cached in \(imageCache))…\n".utf8))
        var options = TestImageBuilder.Options(output: output, cacheDirectory: imageCache)
        options.writeKernelAndInitrd = false
        let built = try TestImageBuilder(options: options) { logger.info("\($0)") }.build()
        defer { try? FileManager.default.removeItem(atPath: built.image) }
        var body: [String: JSON] = ["name": .string(Self.testImageName), "disk_format": "qcow2", "container_format": "bare", "visibility": "public"]
        for (key, value) in TestImageBuilder.imageProperties { body[key] = .string(value) }
        let image = try await call("POST", "image/v2/images", token: token, body: .object(body))
        guard let id = image["id"]?.stringValue else { throw StartupError("could not create the test image: \(image.serialized())") }
        var request = try request("PUT", "image/v2/images/\(id)/file", token: token)
        request.setValue("application/octet-stream", forHTTPHeaderField: "Content-Type")
        let (data, response) = try await URLSession.shared.upload(for: request, fromFile: URL(fileURLWithPath: built.image))
        guard (response as? HTTPURLResponse)?.statusCode == 204 else {
            throw StartupError("could not upload the test image: \(String(decoding: data, as: UTF8.self))")
        }
        return "Uploaded the test image \(Self.testImageName) (\(id))."
    }

    /// A token of the admin in the admin project, and that project's id.
    func adminToken() async throws -> (token: String, projectID: String) {
        let body: JSON = ["auth": ["identity": ["methods": ["password"], "password": ["user": [
            "name": "admin", "domain": ["id": "default"], "password": .string(adminPassword)]]],
                                   "scope": ["project": ["name": "admin", "domain": ["id": "default"]]]]]
        var request = try request("POST", "identity/v3/auth/tokens", token: nil)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(body.serializedBytes())
        let (data, response) = try await URLSession.shared.data(for: request)
        guard let http = response as? HTTPURLResponse, http.statusCode == 201, let token = http.value(forHTTPHeaderField: "X-Subject-Token"),
              let projectID = (try? JSON.parse(Array(data)))?["token"]?["project"]?["id"]?.stringValue else {
            throw StartupError("could not log in as admin to make the default flavors and image")
        }
        return (token, projectID)
    }

    func request(_ method: String, _ path: String, token: String?) throws -> URLRequest {
        guard let url = URL(string: path, relativeTo: baseURL) else { throw StartupError("bad path \(path)") }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.timeoutInterval = 600
        if let token { request.setValue(token, forHTTPHeaderField: "X-Auth-Token") }
        return request
    }

    func call(_ method: String, _ path: String, token: String, body: JSON? = nil) async throws -> JSON {
        var request = try request(method, path, token: token)
        request.setValue("compute 2.1", forHTTPHeaderField: "OpenStack-API-Version")
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = Data(body.serializedBytes())
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else {
            throw StartupError("\(method) /\(path): HTTP \(status) \(String(decoding: data, as: UTF8.self).prefix(300))")
        }
        return data.isEmpty ? .null : try JSON.parse(Array(data))
    }
}
