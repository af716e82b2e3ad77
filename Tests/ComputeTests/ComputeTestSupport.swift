import Compute
import Foundation
import HostAPI
import Virt
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

/// Shared steps of the compute tests: a flavor and an image to boot from, and waiting for a
/// server to settle.
enum Compute {
    static let latest = ["OpenStack-API-Version": "compute 2.100"]

    static func fakeHosts(_ count: Int, vcpus: Int = 8, cpuRatio: String = "4.0", extra: [String: [String: String]] = [:]) -> [String: [String: String]] {
        var settings: [String: [String: String]] = [
            "fake_hosts": ["count": String(count), "vcpus": String(vcpus), "memory_mb": "16384", "disk_gb": "200"],
            "DEFAULT": ["cpu_allocation_ratio": cpuRatio, "report_interval": "1"],
        ]
        for (section, options) in extra { settings[section, default: [:]].merge(options) { _, new in new } }
        return settings
    }

    static func call(_ api: API, _ method: HTTPRequest.Method, _ path: String, token: String, body: JSON? = nil,
                     version: String = "2.100") async throws -> API.Reply {
        try await api.call(method, "/compute/v2.1\(path)", token: token, body: body, headers: ["OpenStack-API-Version": "compute \(version)"])
    }

    /// A public qcow2 image and a flavor; returns (image id, flavor id).
    static func bootables(_ api: API, admin: String, vcpus: Int64 = 1, ram: Int64 = 512) async throws -> (String, String) {
        let image = try await api.call(.post, "/image/v2/images", token: admin,
                                       body: ["name": "cirros", "disk_format": "qcow2", "container_format": "bare", "visibility": "public"])
        let imageID = try XCTUnwrap(image.json["id"]?.stringValue, image.text)
        let uploaded = try await api.call(.put, "/image/v2/images/\(imageID)/file", token: admin, bytes: FakeDriver.qcow2Header(virtualSize: 1 << 30))
        XCTAssertEqual(uploaded.status, 204, uploaded.text)
        let flavor = try await call(api, .post, "/flavors", token: admin,
                                    body: ["flavor": ["name": .string("f\(vcpus)-\(ram)"), "ram": .int(ram), "vcpus": .int(vcpus), "disk": 1]])
        XCTAssertEqual(flavor.status, 200, flavor.text)
        return (imageID, try XCTUnwrap(flavor.json["flavor"]?["id"]?.stringValue))
    }

    static func boot(_ api: API, token: String, image: String, flavor: String, name: String = "vm", extra: [String: JSON] = [:],
                     hints: JSON? = nil) async throws -> API.Reply {
        var server: [String: JSON] = ["name": .string(name), "imageRef": .string(image), "flavorRef": .string(flavor), "networks": "none"]
        for (k, v) in extra { server[k] = v }
        var body: [String: JSON] = ["server": .object(server)]
        if let hints { body["os:scheduler_hints"] = hints }
        return try await call(api, .post, "/servers", token: token, body: .object(body))
    }

    /// A fresh image and flavor, and a server of them without networks that reached ACTIVE:
    /// its id and the host it landed on.
    static func activeServer(_ api: API, admin: String, file: StaticString = #filePath, line: UInt = #line) async throws -> (id: String, host: String?) {
        let (image, flavor) = try await bootables(api, admin: admin)
        let booted = try await boot(api, token: admin, image: image, flavor: flavor)
        let id = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text, file: file, line: line)
        let server = try await waitFor(api, id, token: admin, status: "ACTIVE", file: file, line: line)
        return (id, server["OS-EXT-SRV-ATTR:host"]?.stringValue)
    }

    /// Polls the server until it reaches `status` with no task, or fails the test.
    @discardableResult
    static func waitFor(_ api: API, _ id: String, token: String, status: String, file: StaticString = #filePath, line: UInt = #line) async throws -> JSON {
        var last: JSON = .null
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let reply = try await call(api, .get, "/servers/\(id)", token: token)
            last = reply.json["server"] ?? .null
            if last["status"]?.stringValue == status && last["OS-EXT-STS:task_state"] == .null { return last }
            if last["status"]?.stringValue == "ERROR" && status != "ERROR" { break }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        XCTFail("server \(id) did not reach \(status): \(last.serialized())", file: file, line: line)
        return last
    }

    static func action(_ api: API, _ id: String, token: String, _ body: JSON, version: String = "2.100") async throws -> API.Reply {
        try await call(api, .post, "/servers/\(id)/action", token: token, body: body, version: version)
    }
}
