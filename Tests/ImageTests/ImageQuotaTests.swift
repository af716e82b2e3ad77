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
