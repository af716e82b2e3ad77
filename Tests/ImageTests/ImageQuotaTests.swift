import Foundation
import NimbusCore
import NimbusTestSupport
import XCTest

/// Per-project image quotas hold under concurrent requests, and give usage back on delete
/// and on failed uploads.
final class ImageQuotaTests: XCTestCase {
    func testImageCountQuotaHoldsUnderConcurrentCreates() async throws {
        try await onEachEngine(settings: ["image_quota": ["image_count_total": "3"]]) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<8 {
                    group.addTask {
                        try await api.call(.post, "/image/v2/images", token: admin, body: ["name": .string("q\(i)"), "disk_format": "raw", "container_format": "bare"]).status
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            XCTAssertEqual(statuses.filter { $0 == 201 }.count, 3, "\(statuses)")
            XCTAssertEqual(statuses.filter { $0 == 413 }.count, 5, "\(statuses)")
            let listed = try await api.call(.get, "/image/v2/images", token: admin)
            let id = try XCTUnwrap(listed.json["images"]?.arrayValue?.first?["id"]?.stringValue)
            let deleted = try await api.call(.delete, "/image/v2/images/\(id)", token: admin)
            XCTAssertEqual(deleted.status, 204)
            let again = try await api.call(.post, "/image/v2/images", token: admin, body: ["name": "after", "disk_format": "raw", "container_format": "bare"])
            XCTAssertEqual(again.status, 201, "deleting gives the count back")
        }
    }

    /// Keystone's unified limits for the `image` service override the configured defaults, and a
    /// project's own limit overrides the registered default.
    func testKeystoneLimitsApplyPerProject() async throws {
        try await onEachEngine(settings: ["image_quota": ["image_count_total": "100"]]) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let services = try await api.call(.get, "/identity/v3/services?type=image", token: admin)
            let serviceID = try XCTUnwrap(services.json["services"]?.arrayValue?.first?["id"]?.stringValue)
            let registered = try await api.call(.post, "/identity/v3/registered_limits", token: admin, body: [
                "registered_limits": [["service_id": .string(serviceID), "resource_name": "image_count_total", "default_limit": 2]]])
            XCTAssertEqual(registered.status, 201, registered.text)
            let small = try await api.projectUser(admin: admin, name: "small")
            let big = try await api.projectUser(admin: admin, name: "big")
            let own = try await api.call(.post, "/identity/v3/limits", token: admin, body: [
                "limits": [["service_id": .string(serviceID), "project_id": .string(small.project), "resource_name": "image_count_total", "resource_limit": 1]]])
            XCTAssertEqual(own.status, 201, own.text)
            func create(_ token: String) async throws -> Int {
                try await api.call(.post, "/image/v2/images", token: token, body: ["disk_format": "raw", "container_format": "bare"]).status
            }
            let smallFirst = try await create(small.token)
            let smallSecond = try await create(small.token)
            XCTAssertEqual([smallFirst, smallSecond], [201, 413], "the project's own limit of 1")
            var bigStatuses: [Int] = []
            for _ in 0..<3 { bigStatuses.append(try await create(big.token)) }
            XCTAssertEqual(bigStatuses, [201, 201, 413], "the registered default of 2")
            let usage = try await api.call(.get, "/image/v2/info/usage", token: small.token).json["usage"]
            XCTAssertEqual(usage?["image_count_total"]?["limit"]?.intValue, 1)
        }
    }

    func testStoredBytesQuotaHoldsUnderConcurrentUploads() async throws {
        try await onEachEngine(settings: ["image_quota": ["image_size_total": "1"]]) { cloud, api in
            let admin = try await api.adminToken(cloud)
            var ids: [String] = []
            for i in 0..<4 {
                let created = try await api.call(.post, "/image/v2/images", token: admin, body: ["name": .string("b\(i)"), "disk_format": "raw", "container_format": "bare"])
                ids.append(try XCTUnwrap(created.json["id"]?.stringValue))
            }
            let chunk = [UInt8](repeating: 7, count: 400 * 1024)
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for id in ids {
                    group.addTask { try await api.call(.put, "/image/v2/images/\(id)/file", token: admin, bytes: chunk).status }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            XCTAssertEqual(statuses.filter { $0 == 204 }.count, 2, "two 400 KiB images fit in 1 MiB, three do not: \(statuses)")
            XCTAssertEqual(statuses.filter { $0 == 413 }.count, 2, "\(statuses)")
            let images = try await api.call(.get, "/image/v2/images", token: admin).json["images"]?.arrayValue ?? []
            XCTAssertEqual(images.filter { $0["status"]?.stringValue == "active" }.count, 2)
            XCTAssertEqual(images.filter { $0["status"]?.stringValue == "queued" }.count, 2, "rejected uploads leave the image queued")
            let active = try XCTUnwrap(images.first { $0["status"]?.stringValue == "active" }?["id"]?.stringValue)
            let queued = try XCTUnwrap(images.first { $0["status"]?.stringValue == "queued" }?["id"]?.stringValue)
            let value1 = try await api.call(.delete, "/image/v2/images/\(active)", token: admin).status
            XCTAssertEqual(value1, 204)
            let retried = try await api.call(.put, "/image/v2/images/\(queued)/file", token: admin, bytes: chunk)
            XCTAssertEqual(retried.status, 204, "a delete frees its bytes: \(retried.text)")
            let partials = try ImageAPITests.storedFiles(cloud).filter { $0.hasSuffix(".partial") }
            XCTAssertEqual(partials, [])
        }
    }
}
