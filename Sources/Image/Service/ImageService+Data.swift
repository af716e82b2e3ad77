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
        /// `X-Image-Meta-Store`: the store to upload to instead of the default one.
        public var storeID: String?
        public init(contentType: String?, expectedMD5: String?, storeID: String? = nil) {
            self.contentType = contentType
            self.expectedMD5 = expectedMD5
            self.storeID = storeID
        }
    }

    static let hashBatchSize = 1 << 20
    /// How much of `image_size_total` an upload reserves at a time when it can.
    static let reservationStep: Int64 = 64 << 20

    static func requireOctetStream(_ contentType: String?) throws {
        guard contentType?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() == "application/octet-stream" else {
            throw APIError(.unsupportedMediaType, "Invalid content type \(contentType ?? "(none)"): image data must be sent as application/octet-stream.")
        }
    }

    func store(named id: String?) throws -> any ImageDataStore {
        guard let id else { return stores.defaultStore }
        guard let store = stores.store(id) else { throw APIError.badRequest("Unknown store \(id).") }
        return store
    }

    /// `PUT /v2/images/{id}/file`: queued → saving → active, or back to queued on any failure.
    public func upload<Body: AsyncSequence>(_ id: String, options: UploadOptions, body: Body, caller: AuthContext) async throws
    where Body.Element == ByteBuffer {
        try await receive(id, options: options, caller: caller) { image, target in
            try await self.ingest(image, body: body, into: target, expectedMD5: options.expectedMD5)
        }
    }

    /// An upload of a file on this machine that the caller hands over (a snapshot's copy of a
    /// guest's disk, made by a compute host in this process), with the same checks, records
    /// and outcome as `PUT /v2/images/{id}/file`. The default store takes the file as it is
    /// when it can (`adopt`), so its bytes are read once, to hash and inspect them, and not
    /// written again; otherwise they are copied as an upload's are. The file is gone from
    /// `path` once the data is in the store; if the upload fails first, whatever is left there
    /// is the caller's to remove.
    public func upload(_ id: String, takingFile path: String, caller: AuthContext) async throws {
        // Opened first: the store may move the file while it is read.
        let reader = try FileImageStore.FileReader(path: path)
        defer { reader.close() }
        let options = UploadOptions(contentType: "application/octet-stream", expectedMD5: nil)
        try await receive(id, options: options, caller: caller) { image, target in
            try await self.ingest(image, body: StoredDataSequence(reader: reader, chunkSize: Self.hashBatchSize), into: target,
                                  expectedMD5: nil, adopting: path)
        }
    }

    /// An upload's course around `ingest`: queued → saving → active, or back to queued on any failure.
    private func receive(_ id: String, options: UploadOptions, caller: AuthContext,
                         ingest ingestData: (Image, any ImageDataStore) async throws -> Ingested) async throws {
        try Self.requireOctetStream(options.contentType)
        var image = try await visibleImage(id, caller)
        try authorize("upload_image", caller, image)
        let target = try store(named: options.storeID)
        guard image.diskFormat != nil, image.containerFormat != nil else {
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
        let ingested: Ingested
        do {
            try await checkUploadingCount(image)
            ingested = try await ingestData(image, target)
        } catch {
            try? await revertToQueued(image, from: .saving)
            throw error
        }
        try await activate(image, with: ingested, from: .saving)
    }

    /// What `ingest` stored, and what it learned on the way.
    struct Ingested {
        var storeID: String
        var location: String
        var size: Int64
        var checksum: String
        var hashValue: String
        var virtualSize: Int64?
        /// Bytes reserved against `image_size_total` for this copy.
        var reserved: Int64

        /// Records what the data is on the image.
        func describe(_ image: inout Image) {
            image.size = size
            image.checksum = checksum
            image.hashValue = hashValue
            image.virtualSize = virtualSize
        }
    }

    /// Streams `body` into `target`: hashing, inspecting and reserving quota batch by batch.
    /// Either the data is committed and checked, or nothing stays behind (no object, no usage).
    /// With `adopting`, `body` is that file's data, and the store takes the file itself if it
    /// can: the bytes are then only hashed and inspected, not written. The quota is reserved
    /// batch by batch all the same, and the object removed if it does not fit.
    func ingest<Body: AsyncSequence>(_ image: Image, body: Body, into target: any ImageDataStore, expectedMD5: String?,
                                     adopting file: String? = nil) async throws -> Ingested
    where Body.Element == ByteBuffer {
        let adopted = try file.flatMap { try target.adopt(imageID: image.id, file: $0) }
        let writer = try adopted ?? target.beginWrite(imageID: image.id)
        let pipeline = IngestPipeline(writer: adopted == nil ? writer : nil,
                                      computeSHA256: !(image.properties["owner_specified.openstack.sha256"] ?? "").isEmpty)
        let sizeLimit = try await limit(.imageSizeTotal, project: image.owner)
        var reserved: Int64 = 0
        var written: Int64 = 0
        do {
            var batch: [ByteBuffer] = []
            var batchBytes = 0
            func flush() async throws {
                guard batchBytes > 0 else { return }
                // Quota: bytes are reserved before they are written, so concurrent uploads of
                // one project cannot together pass image_size_total. Reserving a batch at a
                // time would cost a write transaction per MiB, so a larger step is tried first
                // and the exact batch only when the step does not fit; what the upload did not
                // use is given back when it ends.
                if let owner = image.owner, written + Int64(batchBytes) > reserved {
                    let needed = written + Int64(batchBytes) - reserved
                    var step = max(needed, Self.reservationStep)
                    if try await !store.reserve(project: owner, images: 0, bytes: step, imageLimit: -1, byteLimit: sizeLimit, db) {
                        step = needed
                        guard try await store.reserve(project: owner, images: 0, bytes: step, imageLimit: -1, byteLimit: sizeLimit, db) else {
                            throw Self.overLimit(owner, .imageSizeTotal, limit: sizeLimit)
                        }
                    }
                    reserved += step
                }
                written += Int64(batchBytes)
                try await pipeline.submit(batch)
                batch.removeAll(keepingCapacity: true)
                batchBytes = 0
            }
            for try await buffer in body {
                batch.append(buffer)
                batchBytes += buffer.readableBytes
                if batchBytes >= Self.hashBatchSize { try await flush() }
            }
            try await flush()
            let digest = try await pipeline.finish()
            let report = digest.inspector.finish()
            try checkUpload(digest, report: report, image: image, expectedMD5: expectedMD5)
            if let owner = image.owner, reserved > written {
                try await store.release(project: owner, images: 0, bytes: reserved - written, db)
                reserved = written
            }
            let location = try writer.commit()
            return Ingested(storeID: target.id, location: location, size: digest.size, checksum: Hex.encode(digest.md5.finalize()),
                            hashValue: Hex.encode(digest.sha512.finalize()), virtualSize: report.virtualSize, reserved: reserved)
        } catch {
            // The batches in flight must finish writing before the partial object is removed.
            await pipeline.drain()
            writer.abort()
            if let owner = image.owner, reserved > 0 { try? await store.release(project: owner, images: 0, bytes: reserved, db) }
            throw error
        }
    }

    /// Records ingested data on the image and makes it active, if it is still in `from`.
    func activate(_ image: Image, with data: Ingested, from: Image.Status) async throws {
        let written = try await transition(image.id, from: from) { image in
            image.status = .active
            data.describe(&image)
            image.locations = [data.storeID: data.location]
        }
        guard written != nil else {
            // Deleted while uploading: the data has no image to belong to.
            discard(data, owner: image.owner)
            throw APIError(.gone, "Image \(image.id) was deleted during the upload.")
        }
    }

    /// Removes ingested data that ended up with no image, and gives its usage back.
    func discard(_ data: Ingested, owner: String?) {
        try? stores.store(data.storeID)?.delete(location: data.location)
        if let owner, data.reserved > 0 {
            Task { [store, db] in try? await store.release(project: owner, images: 0, bytes: data.reserved, db) }
        }
    }

    /// Re-reads the image and saves `change` to it if it is still in status `from`, in one
    /// transaction, so fields changed meanwhile by a PATCH are kept. Nil when the image was
    /// deleted or moved on.
    @discardableResult
    func transition(_ id: String, from: Image.Status, releasingStaged staged: Int64 = 0,
                    _ change: @escaping @Sendable (inout Image) -> Void) async throws -> Image? {
        try await db.transaction { x in
            guard var image = try await self.store.image(id: id, x), image.status == from else { return nil }
            change(&image)
            image.updatedAt = Date()
            guard try await self.store.update(image, expecting: from, x) else { return nil }
            if let owner = image.owner, staged > 0 { try await self.store.release(project: owner, images: 0, bytes: 0, staged: staged, x) }
            return image
        }
    }

    /// Glance's `image_count_uploading`: checked after the image entered its upload state, so
    /// the count includes it.
    func checkUploadingCount(_ image: Image) async throws {
        guard let owner = image.owner else { return }
        let limit = try await limit(.imageCountUploading, project: owner)
        if limit >= 0, try await store.uploadingCount(project: owner, db) > limit {
            throw Self.overLimit(owner, .imageCountUploading, limit: limit)
        }
    }

    /// A failed upload, stage or import: the image is queued again, without size or data.
    func revertToQueued(_ failed: Image, from: Image.Status, releasingStaged staged: Int64 = 0,
                        properties: [String: String?] = [:]) async throws {
        try await transition(failed.id, from: from, releasingStaged: staged) { image in
            image.status = .queued
            image.size = nil
            image.virtualSize = nil
            for (key, value) in properties { image.properties[key] = value }
        }
    }

    /// The checks that reject an upload: what the data is against what was declared, unsafe
    /// qcow2/vmdk features, and checksums the client supplied.
    func checkUpload(_ digest: IngestPipeline.Result, report: FormatReport, image: Image, expectedMD5: String?) throws {
        // Glance inspects only bare containers; other containers wrap the disk.
        if image.containerFormat == "bare", let diskFormat = image.diskFormat {
            if let problem = report.problems.first {
                throw APIError(.unsupportedMediaType, "Image failed safety checks: \(problem).")
            }
            if let declared = DiskFormat(rawValue: diskFormat), !declaredFormatMatches(declared, report) {
                throw APIError(.unsupportedMediaType, "Image data does not match disk_format \(diskFormat): it looks like \(report.detected.rawValue).")
            }
        }
        let md5 = Hex.encode(digest.md5.finalize())
        if let expected = expectedMD5?.trimmingCharacters(in: .whitespaces), !expected.isEmpty {
            let asHex = Data(base64Encoded: expected).map { Hex.encode($0) } ?? expected.lowercased()
            if asHex != md5 && expected.lowercased() != md5 {
                throw APIError.badRequest("Content-MD5 \(expected) does not match the uploaded data (\(md5)).")
            }
        }
        if let wanted = image.properties["owner_specified.openstack.md5"], !wanted.isEmpty, wanted.lowercased() != md5 {
            throw APIError.badRequest("The data's MD5 \(md5) does not match owner_specified.openstack.md5 \(wanted).")
        }
        if let wanted = image.properties["owner_specified.openstack.sha256"], !wanted.isEmpty, let sha256 = digest.sha256,
           wanted.lowercased() != Hex.encode(sha256.finalize()) {
            throw APIError.badRequest("The data's SHA-256 does not match owner_specified.openstack.sha256.")
        }
    }

    /// Removes every copy of the image's data and any staged data; failures are logged, since
    /// the image record is already gone.
    func deleteData(_ image: Image) {
        for (storeID, location) in image.locations {
            do { try stores.store(storeID)?.delete(location: location) } catch {
                logger.warning("image \(image.id): could not delete data in store \(storeID): \(error)")
            }
        }
        try? stores.staging.delete(location: stores.staging.location(imageID: image.id))
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
        guard image.status == .active || image.status == .deactivated else { return Download(image: image, reader: nil) }
        return Download(image: image, reader: try openData(image))
    }

    /// A reader on the first copy that opens, default store first.
    func openData(_ image: Image) throws -> (any ImageDataReader)? {
        let ordered = image.locations.sorted { a, b in a.key == stores.defaultID || (b.key != stores.defaultID && a.key < b.key) }
        var lastError: (any Error)?
        for (storeID, location) in ordered {
            guard let store = stores.store(storeID) else { continue }
            do { return try store.open(location: location) } catch { lastError = error }
        }
        if let lastError { throw lastError }
        return nil
    }
}

/// Reads an `ImageDataReader` as the chunks an upload body arrives in, so staged or stored
/// data goes through the same ingest path as a client's upload. Each chunk is read straight
/// into its buffer.
struct StoredDataSequence: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let reader: any ImageDataReader
    let chunkSize: Int

    struct AsyncIterator: AsyncIteratorProtocol {
        let reader: any ImageDataReader
        let chunkSize: Int
        mutating func next() async throws -> ByteBuffer? {
            var buffer = ByteBufferAllocator().buffer(capacity: chunkSize)
            // Until the chunk is full or the data ends: a short read is not the end.
            while buffer.readableBytes < chunkSize {
                let wanted = chunkSize - buffer.readableBytes
                let n = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: wanted) { free in
                    try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: free.prefix(wanted)))
                }
                if n == 0 { break }
            }
            return buffer.readableBytes == 0 ? nil : buffer
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(reader: reader, chunkSize: chunkSize) }
}
