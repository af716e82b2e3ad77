import CFileIO
import Foundation
import NimbusCore

/// Where image bytes live. The API layer streams through a writer and a reader, so a store
/// for RBD or S3 plugs in without touching routes or service logic; only the local
/// filesystem store exists today.
public protocol ImageDataStore: Sendable {
    /// The store's id (Glance's backend name), shown in `/v2/info/stores`, in an image's
    /// `stores` field and by `nimbus manage`.
    var id: String { get }
    var description: String { get }
    /// Glance's name for the kind of store (`file`, `rbd`, `s3`, …).
    var type: String { get }
    /// The kind's settings under Glance's names, for `/v2/info/stores/detail`.
    var properties: [String: JSON] { get }
    /// Starts a new object for the image. Nothing is visible until `commit`.
    func beginWrite(imageID: String) throws -> any ImageDataWriter
    /// Starts a new object for the image whose data is the file at `file`, moved into the store
    /// as it is (the file is gone from `file` afterwards); nil, with the file left where it was,
    /// when this store cannot take it without copying (another file system, another kind of
    /// store): then the data is written through `beginWrite`. The writer's `write` is not
    /// called; `commit` and `abort` end it as for any other.
    func adopt(imageID: String, file: String) throws -> (any ImageDataWriter)?
    /// Where `commit` puts the image's object; lets the staging area be found by image id.
    func location(imageID: String) -> String
    func open(location: String) throws -> any ImageDataReader
    /// Removing a missing object is not an error: deletes must be idempotent.
    func delete(location: String) throws
    /// Objects stored and their total bytes.
    func usage() throws -> (objects: Int, bytes: Int64)
    /// Removes what writes interrupted by a crash left behind. Only the serving process calls
    /// it, at startup, since it cannot tell an abandoned write from a live one.
    func removeInterruptedWrites()
}

/// Receives an upload chunk by chunk. Exactly one of `commit` or `abort` ends it; `abort`
/// leaves no data behind.
/// Used by one task at a time (the upload or download that opened it), hence Sendable.
public protocol ImageDataWriter: AnyObject, Sendable {
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Makes the data durable and returns its location.
    func commit() throws -> String
    func abort()
}

public protocol ImageDataReader: AnyObject, Sendable {
    var size: Int64 { get }
    func seek(to offset: Int64) throws
    /// Up to `count` bytes; an empty array at the end.
    func read(upTo count: Int) throws -> [UInt8]
    /// Reads up to `buffer.count` bytes into `buffer`: how many, 0 at the end.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    func close()
}

public struct ImageStoreError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The enabled stores (Glance's multi-store `enabled_backends`), the default one, and the
/// staging area the import API's `glance-direct` method writes to before an import.
public struct ImageStoreSet: Sendable {
    /// In the operator's order; the first is the default unless one is named.
    public let stores: [any ImageDataStore]
    public let defaultID: String
    public let staging: any ImageDataStore

    public init(stores: [any ImageDataStore], defaultID: String? = nil, staging: any ImageDataStore) throws {
        guard let first = stores.first else { throw ImageStoreError("no image store is enabled") }
        let ids = stores.map(\.id)
        guard Set(ids).count == ids.count else { throw ImageStoreError("image store ids must be unique: \(ids.joined(separator: ", "))") }
        if let defaultID, !ids.contains(defaultID) { throw ImageStoreError("default image store \(defaultID) is not enabled") }
        self.stores = stores
        self.defaultID = defaultID ?? first.id
        self.staging = staging
    }

    /// Filesystem stores from `[glance_store] enabled_backends` (`id:file, id2:file`), each in
    /// `<directory>/<id>`, with staging in `<directory>/staging` (so no store may be called that).
    public static func filesystem(backends: String, defaultBackend: String, directory: String) throws -> ImageStoreSet {
        var stores: [any ImageDataStore] = []
        for entry in backends.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
            let parts = entry.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            let type = parts.count > 1 ? parts[1] : "file"
            guard type == "file" else { throw ImageStoreError("image store \(parts[0]): type \(type) is not supported (only file)") }
            guard parts[0].range(of: "^[A-Za-z0-9_-]+$", options: .regularExpression) != nil, parts[0] != "staging" else {
                throw ImageStoreError("invalid image store id \"\(parts[0])\"")
            }
            stores.append(try FileImageStore(id: parts[0], directory: "\(directory)/\(parts[0])"))
        }
        return try ImageStoreSet(stores: stores, defaultID: defaultBackend.isEmpty ? nil : defaultBackend,
                                 staging: try FileImageStore(id: "staging", directory: "\(directory)/staging"))
    }

    public var defaultStore: any ImageDataStore { stores.first { $0.id == defaultID }! }

    public func store(_ id: String) -> (any ImageDataStore)? { stores.first { $0.id == id } }
}

/// Images as files under one directory: `<dir>/<image id>`, written as `<id>.partial` and
/// renamed into place after fsync, so a crash never leaves a half-written object under a
/// final name.
public struct FileImageStore: ImageDataStore {
    public let id: String
    public let directory: String
    public var description: String { "Filesystem store in \(directory)" }
    public var type: String { "file" }
    /// Files are read in the chunks downloads use and written fully allocated.
    public var properties: [String: JSON] {
        ["data_dir": .string(directory), "chunk_size": .int(Int64(ImageRoutes.chunkSize)), "thin_provisioning": false]
    }

    public init(id: String, directory: String) throws {
        self.id = id
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    public func removeInterruptedWrites() {
        for file in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where file.hasSuffix(".partial") {
            try? FileManager.default.removeItem(atPath: "\(directory)/\(file)")
        }
    }

    public func beginWrite(imageID: String) throws -> any ImageDataWriter {
        try FileWriter(final: "\(directory)/\(imageID)")
    }

    /// Renames the file into the store (as the object's `.partial`, so a crash leaves it to
    /// `removeInterruptedWrites`), which needs the same file system; across file systems
    /// `rename` fails with EXDEV and the caller copies instead.
    public func adopt(imageID: String, file: String) throws -> (any ImageDataWriter)? {
        let final = "\(directory)/\(imageID)"
        guard rename(file, final + ".partial") == 0 else {
            if errno == EXDEV { return nil }
            throw ImageStoreError("cannot move \(file) into the store: \(String(cString: strerror(errno)))")
        }
        return try FileWriter(adopting: final)
    }

    public func location(imageID: String) -> String { "file://\(directory)/\(imageID)" }

    func path(_ location: String) throws -> String {
        guard location.hasPrefix("file://") else { throw ImageStoreError("not a file store location: \(location)") }
        let path = String(location.dropFirst("file://".count))
        guard path.hasPrefix(directory + "/") else { throw ImageStoreError("location outside the store: \(location)") }
        return path
    }

    public func open(location: String) throws -> any ImageDataReader { try FileReader(path: try path(location)) }

    public func delete(location: String) throws {
        let path = try path(location)
        if unlink(path) != 0 && errno != ENOENT { throw ImageStoreError("cannot delete \(path): \(String(cString: strerror(errno)))") }
    }

    public func usage() throws -> (objects: Int, bytes: Int64) {
        var objects = 0, bytes: Int64 = 0
        for file in try FileManager.default.contentsOfDirectory(atPath: directory) where !file.hasSuffix(".partial") {
            var info = stat()
            if stat("\(directory)/\(file)", &info) == 0 {
                objects += 1
                bytes += Int64(info.st_size)
            }
        }
        return (objects, bytes)
    }

    final class FileWriter: ImageDataWriter, @unchecked Sendable {
        /// How many written bytes may wait in the page cache before their writeback is started.
        /// With the kernel's defaults nothing of a 1 GiB upload reaches the disk before `commit`
        /// (background writeback starts at 10% of RAM or after 30 s), so the fsync then wrote
        /// all of it while the upload's CPU work was done and the client waited (~0.5 s per GiB
        /// here). Starting writeback as the data arrives lets the disk work alongside the
        /// hashing; the fsync stays, and only waits for what is still in flight.
        static let writebackStep: Int64 = 8 << 20

        let final: String
        let partial: String
        var fd: Int32
        private var written: Int64 = 0
        private var writebackStarted: Int64 = 0

        init(final: String) throws {
            self.final = final
            partial = final + ".partial"
            fd = Glibc.open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw ImageStoreError("cannot create \(partial): \(String(cString: strerror(errno)))") }
        }

        /// The object whose data is already in `final`'s `.partial` (`adopt`). Its writeback
        /// starts at once, so the disk writes it while the data is hashed, and `commit`'s fsync
        /// waits only for the rest; it gets the mode of the store's other objects.
        init(adopting final: String) throws {
            self.final = final
            partial = final + ".partial"
            fd = Glibc.open(partial, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else {
                let reason = String(cString: strerror(errno))
                unlink(partial)
                throw ImageStoreError("cannot open \(partial): \(reason)")
            }
            fchmod(fd, 0o600)
            var info = stat()
            fstat(fd, &info)
            written = Int64(info.st_size)
            writebackStarted = written
            // Only a hint, as in `write`.
            _ = nimbus_start_writeback(fd, 0, written)
        }

        func write(_ bytes: UnsafeRawBufferPointer) throws {
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ImageStoreError("write failed: \(String(cString: strerror(errno)))")
                }
                offset += n
            }
            written += Int64(bytes.count)
            if written - writebackStarted >= Self.writebackStep {
                // Only a hint: if it fails, the fsync in `commit` still writes everything.
                _ = nimbus_start_writeback(fd, writebackStarted, written - writebackStarted)
                writebackStarted = written
            }
        }

        func commit() throws -> String {
            guard fsync(fd) == 0 else { throw ImageStoreError("fsync failed: \(String(cString: strerror(errno)))") }
            Glibc.close(fd)
            fd = -1
            guard rename(partial, final) == 0 else { throw ImageStoreError("rename failed: \(String(cString: strerror(errno)))") }
            return "file://\(final)"
        }

        func abort() {
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
            unlink(partial)
        }

        deinit { if fd >= 0 { abort() } }
    }

    final class FileReader: ImageDataReader, @unchecked Sendable {
        var fd: Int32
        let size: Int64

        init(path: String) throws {
            fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw ImageStoreError("cannot open image data: \(String(cString: strerror(errno)))") }
            var info = stat()
            fstat(fd, &info)
            size = Int64(info.st_size)
        }

        func seek(to offset: Int64) throws {
            guard lseek(fd, off_t(offset), SEEK_SET) >= 0 else { throw ImageStoreError("seek failed") }
        }

        func read(upTo count: Int) throws -> [UInt8] {
            var buffer = [UInt8](repeating: 0, count: count)
            let n = try buffer.withUnsafeMutableBytes { try read(into: $0) }
            buffer.removeLast(count - n)
            return buffer
        }

        func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
            while true {
                let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
                if n >= 0 { return n }
                if errno != EINTR { throw ImageStoreError("read failed: \(String(cString: strerror(errno)))") }
            }
        }

        func close() {
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
        }

        deinit { close() }
    }
}
