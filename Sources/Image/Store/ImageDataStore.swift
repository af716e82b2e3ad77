import Foundation

/// Where image bytes live. The API layer streams through a writer and a reader, so a store
/// for RBD or S3 plugs in without touching routes or service logic; only the local
/// filesystem store exists today.
public protocol ImageDataStore: Sendable {
    /// Short name reported by `/v2/info/stores` and `nimbus manage`.
    var name: String { get }
    /// Starts a new object for the image. Nothing is visible until `commit`.
    func beginWrite(imageID: String) throws -> any ImageDataWriter
    func open(location: String) throws -> any ImageDataReader
    /// Removing a missing object is not an error: deletes must be idempotent.
    func delete(location: String) throws
    /// Objects stored and their total bytes.
    func usage() throws -> (objects: Int, bytes: Int64)
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
    func close()
}

public struct ImageStoreError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Images as files under one directory: `<dir>/<image id>`, written as `<id>.partial` and
/// renamed into place after fsync, so a crash never leaves a half-written object under a
/// final name.
public struct FileImageStore: ImageDataStore {
    public let directory: String
    public var name: String { "file" }

    public init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Leftovers of uploads interrupted by a crash.
        for file in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where file.hasSuffix(".partial") {
            try? FileManager.default.removeItem(atPath: "\(directory)/\(file)")
        }
    }

    public func beginWrite(imageID: String) throws -> any ImageDataWriter {
        try FileWriter(final: "\(directory)/\(imageID)")
    }

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
        let final: String
        let partial: String
        var fd: Int32

        init(final: String) throws {
            self.final = final
            partial = final + ".partial"
            fd = Glibc.open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw ImageStoreError("cannot create \(partial): \(String(cString: strerror(errno)))") }
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
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, count) }
            guard n >= 0 else { throw ImageStoreError("read failed: \(String(cString: strerror(errno)))") }
            buffer.removeLast(count - n)
            return buffer
        }

        func close() {
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
        }

        deinit { close() }
    }
}
