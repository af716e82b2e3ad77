import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import NimbusCore
import Virt

/// What DevStack leaves behind that a new user's first commands rely on, made through the
/// cloud's own API as the admin (as DevStack does with the CLI) once it is serving: the
/// default flavors, and the test image as a public image. Each step is skipped when its
/// result already exists, so every start runs it and only the first one does anything.
struct FirstStart: Sendable {
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
    let logger: Logger

    /// Makes what is missing; returns lines for the operator.
    func run() async throws -> [String] {
        let token = try await adminToken()
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
        return lines
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
        return "Uploaded the test image \(Self.testImageName) (\(id)); try: openstack server create --flavor m1.nano --image \(Self.testImageName) --wait demo"
    }

    func adminToken() async throws -> String {
        let body: JSON = ["auth": ["identity": ["methods": ["password"], "password": ["user": [
            "name": "admin", "domain": ["id": "default"], "password": .string(adminPassword)]]],
                                   "scope": ["project": ["name": "admin", "domain": ["id": "default"]]]]]
        var request = try request("POST", "identity/v3/auth/tokens", token: nil)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(body.serializedBytes())
        let (_, response) = try await URLSession.shared.data(for: request)
        guard let http = response as? HTTPURLResponse, http.statusCode == 201, let token = http.value(forHTTPHeaderField: "X-Subject-Token") else {
            throw StartupError("could not log in as admin to make the default flavors and image")
        }
        return token
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
