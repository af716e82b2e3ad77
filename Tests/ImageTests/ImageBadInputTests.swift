import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

/// Request input that once reached a trapping operation in the image service (issue #12).
final class ImageBadInputTests: XCTestCase {
    /// A VMDK sparse header whose descriptor offset sits just under Int64.max / 512 sectors,
    /// followed by more data: the format inspector's capture of the descriptor ended past
    /// Int64.max, and the sum trapped as the bytes after the header streamed in. Any member
    /// who may upload an image could send it.
    func testUploadOfAVMDKHeaderPointingNearInt64Max() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            var header = [UInt8](repeating: 0, count: 1024)
            header[0..<4] = [0x4B, 0x44, 0x4D, 0x56]  // "KDMV"
            func putLE(_ value: UInt64, at offset: Int) {
                for i in 0..<8 { header[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
            }
            putLE(1, at: 4)                                // version
            putLE(2048, at: 12)                            // capacity (sectors)
            putLE(UInt64(Int64.max / 512 - 1), at: 28)     // descriptor offset (sectors)
            putLE(0, at: 36)                               // descriptor size: none given
            let created = try await api.call(.post, "/image/v2/images", token: admin,
                                             body: ["name": "crafted", "disk_format": "vmdk", "container_format": "bare"])
            let id = try XCTUnwrap(created.json["id"]?.stringValue, created.text)
            let upload = try await api.call(.put, "/image/v2/images/\(id)/file", token: admin, bytes: header)
            XCTAssertNotEqual(upload.status, 500, upload.text)
            let listed = try await api.call(.get, "/image/v2/images", token: admin)
            XCTAssertEqual(listed.status, 200, listed.text)
        }
    }
}
