import Crypto
import Foundation
import NIOCore
import NimbusCore

/// Upload and download: bytes stream between the socket and the store in chunks, never held
/// whole in memory, while being hashed and inspected on the way in.
extension ImageService {
    public struct UploadOptions: Sendable {
        public var contentType: String?
        /// A Content-MD5 the client sent (hex or base64), checked against the data.
        public var expectedMD5: String?
        public init(contentType: String?, expectedMD5: String?) {
            self.contentType = contentType
            self.expectedMD5 = expectedMD5
        }
    }

    /// Digests and inspection of one upload, fed chunk by chunk.
    struct UploadDigest {
        var md5 = Insecure.MD5()
        var sha512 = SHA512()
        var sha256: SHA256?
        var inspector = DiskFormatInspector()
        var size: Int64 = 0

        mutating func feedExceptSHA512(_ bytes: UnsafeRawBufferPointer) {
            md5.update(bufferPointer: bytes)
            sha256?.update(bufferPointer: bytes)
            inspector.feed(bytes)
            size += Int64(bytes.count)
        }
    }

    static let hashBatchSize = 1 << 20

    /// The running SHA-512, handed to the child task and back. swift-crypto does not mark it
    /// Sendable; it is safe here because the uploading task never touches it while the child
    /// holds it (it awaits the child before the next use).
    struct HashInFlight: @unchecked Sendable {
        var hash: SHA512
    }

    static func hashed(_ start: HashInFlight, _ chunks: [ByteBuffer]) async -> HashInFlight {
        var running = start
        for chunk in chunks { chunk.withUnsafeReadableBytes { running.hash.update(bufferPointer: $0) } }
        return running
    }

    static func hex<D: Digest>(_ digest: D) -> String { digest.map { String(format: "%02x", $0) }.joined() }

    public func upload<Body: AsyncSequence>(_ id: String, options: UploadOptions, body: Body, caller: AuthContext) async throws
    where Body.Element == ByteBuffer {
        guard options.contentType?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() == "application/octet-stream" else {
            throw APIError(.unsupportedMediaType, "Invalid content type \(options.contentType ?? "(none)"): image data must be sent as application/octet-stream.")
        }
        var image = try await visibleImage(id, caller)
        try authorize("upload_image", caller, image)
        guard let diskFormat = image.diskFormat, image.containerFormat != nil else {
            throw APIError.badRequest("Properties disk_format, container_format must be set prior to saving data.")
        }
        guard image.status == .queued else {
            throw APIError.conflict("Image status transition from \(image.status.rawValue) to saving is not allowed")
        }
        image.status = .saving
        image.updatedAt = Date()
        guard try await store.update(image, expecting: .queued, db) else {
            throw APIError.conflict("Image \(id) is already receiving data.")
        }

        let writer: any ImageDataWriter
        do { writer = try dataStore.beginWrite(imageID: id) } catch {
            try await revertToQueued(image)
            throw error
        }
        var digest = UploadDigest()
        if let wanted = image.properties["owner_specified.openstack.sha256"], !wanted.isEmpty { digest.sha256 = SHA256() }
        let location: String
        let report: FormatReport
        var reserved: Int64 = 0
        do {
            // SHA-512 is the most expensive step of an upload (more than the disk write), so
            // each batch of about 1 MiB is hashed by a child task on another core while this
            // task writes the batch, computes MD5 and inspects it. At most one batch is in
            // flight, which keeps memory flat whatever the image size.
            var batch: [ByteBuffer] = []
            var batchBytes = 0
            func flush() async throws {
                // Quota: each batch is reserved before it is written, so concurrent uploads of
                // one project cannot together pass image_size_total.
                if let owner = image.owner, batchBytes > 0 {
                    guard try await store.reserve(project: owner, images: 0, bytes: Int64(batchBytes), imageLimit: -1,
                                                  byteLimit: quotas.imageSizeTotal, db) else {
                        throw Self.overLimit(owner, "image_size_total", limit: quotas.imageSizeTotal / (1 << 20))
                    }
                    reserved += Int64(batchBytes)
                }
                let chunks = batch
                let running = HashInFlight(hash: digest.sha512)
                async let sha512 = Self.hashed(running, chunks)
                for buffer in chunks {
                    try buffer.withUnsafeReadableBytes { bytes in
                        try writer.write(bytes)
                        digest.feedExceptSHA512(bytes)
                    }
                }
                digest.sha512 = await sha512.hash
                batch.removeAll(keepingCapacity: true)
                batchBytes = 0
            }
            for try await buffer in body {
                batch.append(buffer)
                batchBytes += buffer.readableBytes
                if batchBytes >= Self.hashBatchSize { try await flush() }
            }
            try await flush()
            report = digest.inspector.finish()
            try checkUpload(digest, report: report, image: image, diskFormat: diskFormat, expectedMD5: options.expectedMD5)
            location = try writer.commit()
        } catch {
            writer.abort()
            if let owner = image.owner, reserved > 0 { try? await store.release(project: owner, images: 0, bytes: reserved, db) }
            try? await revertToQueued(image)
            throw error
        }

        image.status = .active
        image.size = digest.size
        image.checksum = Self.hex(digest.md5.finalize())
        image.hashValue = Self.hex(digest.sha512.finalize())
        image.virtualSize = report.virtualSize
        image.location = location
        image.updatedAt = Date()
        guard try await store.update(image, expecting: .saving, db) else {
            // Deleted while uploading: the data has no image to belong to.
            try? dataStore.delete(location: location)
            if let owner = image.owner { try? await store.release(project: owner, images: 0, bytes: reserved, db) }
            throw APIError.conflict("Image \(id) was deleted during the upload.")
        }
    }

    func revertToQueued(_ saving: Image) async throws {
        var image = saving
        image.status = .queued
        image.updatedAt = Date()
        try await store.update(image, expecting: .saving, db)
    }

    /// The checks that reject an upload: what the data is against what was declared, unsafe
    /// qcow2/vmdk features, and checksums the client supplied.
    func checkUpload(_ digest: UploadDigest, report: FormatReport, image: Image, diskFormat: String, expectedMD5: String?) throws {
        // Glance inspects only bare containers; other containers wrap the disk.
        if image.containerFormat == "bare" {
            if let problem = report.problems.first {
                throw APIError(.unsupportedMediaType, "Image failed safety checks: \(problem).")
            }
            if let declared = DiskFormat(rawValue: diskFormat), !declaredFormatMatches(declared, report) {
                throw APIError(.unsupportedMediaType, "Image data does not match disk_format \(diskFormat): it looks like \(report.detected.rawValue).")
            }
        }
        let md5 = Self.hex(digest.md5)
        if let expected = expectedMD5?.trimmingCharacters(in: .whitespaces), !expected.isEmpty {
            let asHex = Data(base64Encoded: expected).map { $0.map { String(format: "%02x", $0) }.joined() } ?? expected.lowercased()
            if asHex != md5 && expected.lowercased() != md5 {
                throw APIError.badRequest("Content-MD5 \(expected) does not match the uploaded data (\(md5)).")
            }
        }
        if let wanted = image.properties["owner_specified.openstack.md5"], !wanted.isEmpty, wanted.lowercased() != md5 {
            throw APIError.badRequest("The data's MD5 \(md5) does not match owner_specified.openstack.md5 \(wanted).")
        }
        if let wanted = image.properties["owner_specified.openstack.sha256"], !wanted.isEmpty, let sha256 = digest.sha256,
           wanted.lowercased() != Self.hex(sha256) {
            throw APIError.badRequest("The data's SHA-256 does not match owner_specified.openstack.sha256.")
        }
    }

    /// What a download sends: nil reader for an image without data (Glance answers 204).
    public struct Download: Sendable {
        public let image: Image
        public let reader: (any ImageDataReader)?
    }

    public func download(_ id: String, caller: AuthContext) async throws -> Download {
        let image = try await visibleImage(id, caller)
        try authorize("download_image", caller, image)
        if image.status == .deactivated && !caller.isAdmin {
            throw APIError.forbidden("The requested image has been deactivated. Image data download is forbidden.")
        }
        guard image.status == .active || image.status == .deactivated, let location = image.location else {
            return Download(image: image, reader: nil)
        }
        return Download(image: image, reader: try dataStore.open(location: location))
    }
}

extension ImageService {
    static func hex(_ md5: Insecure.MD5) -> String { hex(md5.finalize()) }
    static func hex(_ sha: SHA256) -> String { hex(sha.finalize()) }
}
