import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

extension API {
    /// A placement request at `version` ("latest" by default; nil sends no header, i.e. 1.0).
    @discardableResult
    func placement(_ method: HTTPRequest.Method, _ path: String, token: String?, version: String? = "latest", body: JSON? = nil,
                   raw: String? = nil, headers: [String: String] = [:]) async throws -> Reply {
        var extra = headers
        if let version { extra["OpenStack-API-Version"] = "placement \(version)" }
        return try await call(method, "/placement" + path, token: token, body: body, raw: raw, headers: extra)
    }

    /// Creates a provider at the latest version and returns its uuid.
    func createProvider(_ name: String, token: String, parent: String? = nil, file: StaticString = #filePath, line: UInt = #line) async throws -> String {
        var body: [String: JSON] = ["name": .string(name)]
        if let parent { body["parent_provider_uuid"] = .string(parent) }
        let reply = try await placement(.post, "/resource_providers", token: token, body: .object(body))
        XCTAssertEqual(reply.status, 200, reply.text, file: file, line: line)
        return try XCTUnwrap(reply.json["uuid"]?.stringValue, reply.text, file: file, line: line)
    }

    /// Sets the provider's inventory (reading its generation first) and returns the new generation.
    @discardableResult
    func setInventory(_ provider: String, _ inventories: [String: JSON], token: String, file: StaticString = #filePath, line: UInt = #line) async throws -> Int64 {
        let generation = try await placement(.get, "/resource_providers/\(provider)", token: token).json["generation"] ?? 0
        let reply = try await placement(.put, "/resource_providers/\(provider)/inventories", token: token,
                                        body: ["resource_provider_generation": generation, "inventories": .object(inventories)])
        XCTAssertEqual(reply.status, 200, reply.text, file: file, line: line)
        return reply.json["resource_provider_generation"]?.intValue ?? -1
    }

    /// Replaces the provider's traits (reading its generation first).
    func setTraits(_ provider: String, _ traits: [String], token: String, file: StaticString = #filePath, line: UInt = #line) async throws {
        let generation = try await placement(.get, "/resource_providers/\(provider)", token: token).json["generation"] ?? 0
        let reply = try await placement(.put, "/resource_providers/\(provider)/traits", token: token,
                                        body: ["resource_provider_generation": generation, "traits": .array(traits.map { .string($0) })])
        XCTAssertEqual(reply.status, 200, reply.text, file: file, line: line)
    }

    /// Claims for a new consumer at 1.28+; returns the status.
    func allocate(_ consumer: String, _ allocations: [String: [String: Int64]], token: String, project: String = "p1", user: String = "u1",
                  generation: JSON = nil, version: String = "1.36") async throws -> Reply {
        let body: JSON = ["allocations": .object(allocations.mapValues { ["resources": .object($0.mapValues { .int($0) })] }),
                          "project_id": .string(project), "user_id": .string(user), "consumer_generation": generation]
        return try await placement(.put, "/allocations/\(consumer)", token: token, version: version, body: body)
    }
}

/// Asserts placement's error body: status, title, request id, and optionally the code and a
/// substring of the specific message (the last line of `detail`, as osc-placement shows it).
func assertPlacementError(_ reply: API.Reply, _ status: Int, code: String? = nil, message: String? = nil,
                          file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(reply.status, status, reply.text, file: file, line: line)
    guard let error = reply.json["errors"]?.arrayValue?.first else {
        XCTFail("no errors[] in \(reply.text)", file: file, line: line)
        return
    }
    XCTAssertEqual(error["status"]?.intValue, Int64(status), reply.text, file: file, line: line)
    XCTAssertNotNil(error["title"]?.stringValue, reply.text, file: file, line: line)
    XCTAssertEqual(error["request_id"]?.stringValue, reply.headers[HTTPField.Name("x-openstack-request-id")!], reply.text, file: file, line: line)
    if let code { XCTAssertEqual(error["code"]?.stringValue, code, reply.text, file: file, line: line) }
    if let message {
        let last = error["detail"]?.stringValue?.split(separator: "\n").last?.trimmingCharacters(in: .whitespaces) ?? ""
        XCTAssertTrue(last.contains(message), "'\(last)' does not contain '\(message)'", file: file, line: line)
    }
}

func newUUID() -> String { UUID().uuidString.lowercased() }

extension JSON {
    /// The element at `index` of an array, for reading replies.
    subscript(index: Int) -> JSON? {
        guard let array = arrayValue, array.indices.contains(index) else { return nil }
        return array[index]
    }
}
