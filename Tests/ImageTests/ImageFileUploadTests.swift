import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import NimbusCore
@testable import NimbusServer
import NimbusTestSupport
import XCTest

/// Snapshot uploads: a compute host in the controller's process hands its copy of the disk to
/// the image service, which moves the file into its store; `nimbus agent` sends it over HTTP
/// with `HTTPFileUpload`. Either way the image records what a `PUT /file` records.
final class ImageFileUploadTests: XCTestCase {
    /// A qcow2 header (1 GiB virtual) followed by 3 MiB that are not all alike.
    static let snapshot: [UInt8] = ImageAPITests.qcow2(virtualSize: 1 << 30)
        + (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ $0 >> 11) }

    static func createImage(_ api: API, _ token: String, diskFormat: String = "qcow2") async throws -> String {
        try await ImageAPITests.createImage(api, token: token, ["disk_format": .string(diskFormat), "name": "snap"])
    }

    /// What Glance records of the data, as the API shows it.
    static func assertRecords(_ api: API, _ token: String, _ id: String, file: StaticString = #filePath, line: UInt = #line) async throws {
        let image = try await api.call(.get, "/image/v2/images/\(id)", token: token).json
        XCTAssertEqual(image["status"]?.stringValue, "active", file: file, line: line)
        XCTAssertEqual(image["size"]?.intValue, Int64(snapshot.count), file: file, line: line)
        XCTAssertEqual(image["virtual_size"]?.intValue, 1 << 30, file: file, line: line)
        XCTAssertEqual(image["checksum"]?.stringValue, ImageAPITests.hex(Insecure.MD5.hash(data: snapshot)), file: file, line: line)
        XCTAssertEqual(image["os_hash_algo"]?.stringValue, "sha512", file: file, line: line)
        XCTAssertEqual(image["os_hash_value"]?.stringValue, ImageAPITests.hex(SHA512.hash(data: snapshot)), file: file, line: line)
        let download = try await api.call(.get, "/image/v2/images/\(id)/file", token: token)
        XCTAssertEqual(download.bytes, snapshot, file: file, line: line)
    }

    func testSnapshotFileIsMovedIntoTheStoreWithGlancesRecords() async throws {
        try await onEachEngine { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let id = try await Self.createImage(api, admin)
            let scratch = "\(cloud.dataDir)/snapshot.qcow2"
            XCTAssertTrue(FileManager.default.createFile(atPath: scratch, contents: Data(Self.snapshot), attributes: [.posixPermissions: 0o644]))
            try await InProcessImageTransfer(images: plane.image).upload(imageID: id, taking: scratch, diskFormat: "qcow2")

            try await Self.assertRecords(api, admin, id)
            XCTAssertFalse(FileManager.default.fileExists(atPath: scratch), "the file was moved, not copied")
            XCTAssertEqual(try ImageAPITests.storedFiles(cloud), ["local/\(id)"])
            let mode = try FileManager.default.attributesOfItem(atPath: "\(cloud.dataDir)/images/local/\(id)")[.posixPermissions] as? Int
            XCTAssertEqual(mode, 0o600, "as every object the store writes")
        }
    }

    func testSnapshotFileOnAnotherFileSystemIsCopied() async throws {
        let elsewhere = "/dev/shm"
        var shm = stat(), temporary = stat()
        guard stat(elsewhere, &shm) == 0, stat(NSTemporaryDirectory(), &temporary) == 0, shm.st_dev != temporary.st_dev else {
            throw XCTSkip("no second file system at \(elsewhere)")
        }
        try await onEachEngine { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let id = try await Self.createImage(api, admin)
            let scratch = "\(elsewhere)/nimbus-test-snapshot-\(Identifiers.hexID())"
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            XCTAssertTrue(FileManager.default.createFile(atPath: scratch, contents: Data(Self.snapshot)))
            try await InProcessImageTransfer(images: plane.image).upload(imageID: id, taking: scratch, diskFormat: "qcow2")

            try await Self.assertRecords(api, admin, id)
            XCTAssertEqual(FileManager.default.contents(atPath: scratch).map(Array.init), Self.snapshot, "copied: the caller removes its file")
            XCTAssertEqual(try ImageAPITests.storedFiles(cloud), ["local/\(id)"])
        }
    }

    func testRefusedSnapshotFileLeavesNoDataAndTheImageQueued() async throws {
        try await onEachEngine { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            // qcow2 data for an image declared raw: the inspection refuses it after the move.
            let id = try await Self.createImage(api, admin, diskFormat: "raw")
            let scratch = "\(cloud.dataDir)/snapshot.qcow2"
            XCTAssertTrue(FileManager.default.createFile(atPath: scratch, contents: Data(Self.snapshot)))
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            do {
                try await InProcessImageTransfer(images: plane.image).upload(imageID: id, taking: scratch, diskFormat: "qcow2")
                XCTFail("qcow2 data was accepted for a raw image")
            } catch let error as APIError {
                XCTAssertEqual(error.status.code, 415, "\(error)")
            }
            let image = try await api.call(.get, "/image/v2/images/\(id)", token: admin).json
            XCTAssertEqual(image["status"]?.stringValue, "queued")
            XCTAssertEqual(image["size"], .null)
            XCTAssertEqual(try ImageAPITests.storedFiles(cloud), [], "neither the object nor its .partial stays")
        }
    }

    func testSnapshotFileOverTheStoredBytesQuotaLeavesNothing() async throws {
        try await onEachEngine(settings: ["image_quota": ["image_size_total": "1"]]) { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let id = try await Self.createImage(api, admin)
            let scratch = "\(cloud.dataDir)/snapshot.qcow2"
            XCTAssertTrue(FileManager.default.createFile(atPath: scratch, contents: Data(Self.snapshot)))
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            do {
                try await InProcessImageTransfer(images: plane.image).upload(imageID: id, taking: scratch, diskFormat: "qcow2")
                XCTFail("3 MiB fitted a 1 MiB image_size_total")
            } catch let error as APIError {
                XCTAssertEqual(error.status.code, 413, "\(error)")
            }
            let image = try await api.call(.get, "/image/v2/images/\(id)", token: admin).json
            XCTAssertEqual(image["status"]?.stringValue, "queued")
            XCTAssertEqual(try ImageAPITests.storedFiles(cloud), [])
            // What was reserved on the way was given back: a 512-byte image fits.
            let small = try await Self.createImage(api, admin)
            let fits = try await api.call(.put, "/image/v2/images/\(small)/file", token: admin, bytes: ImageAPITests.qcow2(virtualSize: 1 << 20))
            XCTAssertEqual(fits.status, 204, fits.text)
        }
    }

    /// The agent's upload over a real socket to a real listener.
    func testHTTPFileUploadSendsTheFileAndReturnsTheAnswer() async throws {
        for engine in TestCloud.engines {
            let cloud = try await TestCloud.make(engine)
            let plane = try await cloud.start()
            let app = Application(router: try plane.makeRouter(), server: .nimbusHTTP1)
            let scratch = NSTemporaryDirectory() + "nimbus-test-upload-\(Identifiers.hexID())"
            XCTAssertTrue(FileManager.default.createFile(atPath: scratch, contents: Data(Self.snapshot)))
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            do {
                try await app.test(.live) { client in
                    let api = API(client: client)
                    let port = try XCTUnwrap(client.port)
                    let admin = try await api.adminToken(cloud)
                    let id = try await Self.createImage(api, admin)
                    let url = try XCTUnwrap(URL(string: "http://127.0.0.1:\(port)/image/v2/images/\(id)/file"))
                    let headers = [("X-Auth-Token", admin), ("Content-Type", "application/octet-stream")]

                    let sent = try await HTTPFileUpload.send("PUT", to: url, headers: headers, file: scratch, timeout: .seconds(60))
                    XCTAssertEqual(sent?.status, 204, sent.map { String(decoding: $0.body, as: UTF8.self) } ?? "")
                    try await Self.assertRecords(api, admin, id)

                    // A refusal comes back with the service's error body.
                    let again = try await HTTPFileUpload.send("PUT", to: url, headers: headers, file: scratch, timeout: .seconds(60))
                    XCTAssertEqual(again?.status, 409)
                    XCTAssertTrue(String(decoding: again?.body ?? [], as: UTF8.self).contains("transition from active to saving is not allowed"),
                                  String(decoding: again?.body ?? [], as: UTF8.self))

                    let secure = try XCTUnwrap(URL(string: "https://127.0.0.1:\(port)/image/v2/images/\(id)/file"))
                    let refused = try await HTTPFileUpload.send("PUT", to: secure, headers: headers, file: scratch, timeout: .seconds(60))
                    XCTAssertNil(refused, "TLS is left to URLSession")
                }
            } catch {
                await plane.close()
                throw error
            }
            await plane.close()
        }
    }
}
