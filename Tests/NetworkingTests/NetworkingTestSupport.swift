import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

extension API {
    /// A Neutron request: `path` is under `/networking/v2.0`.
    @discardableResult
    func neutron(_ method: HTTPRequest.Method, _ path: String, token: String?, body: JSON? = nil) async throws -> Reply {
        try await call(method, "/networking/v2.0" + path, token: token, body: body)
    }
}

/// Asserts Neutron's error body: `{"NeutronError": {"type", "message", "detail"}}` with the
/// status, and optionally the type.
func assertNeutronError(_ reply: API.Reply, _ status: Int, type: String? = nil, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(reply.status, status, reply.text, file: file, line: line)
    let error = reply.json["NeutronError"]
    XCTAssertNotNil(error?["message"]?.stringValue, reply.text, file: file, line: line)
    XCTAssertNotNil(error?["detail"], reply.text, file: file, line: line)
    if let type { XCTAssertEqual(error?["type"]?.stringValue, type, reply.text, file: file, line: line) }
}

/// Asserts a reply's status, showing its body when it differs.
func assertStatus(_ reply: API.Reply, _ status: Int, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(reply.status, status, reply.text, file: file, line: line)
}
