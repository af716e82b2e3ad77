import Foundation
import NimbusCore

/// The `qemu-img` operations the driver uses.
struct QEMUImg: Sendable {
    let executable: String

    /// `qemu-img info` as JSON. `format` pins the format (no probing); `forceShare` reads an
    /// image a running QEMU holds locked.
    func info(_ path: String, format: String? = nil, forceShare: Bool = false) async throws -> JSON {
        var args = ["info", "--output=json"]
        if let format { args += ["-f", format] }
        if forceShare { args.append("-U") }
        return try JSON.parse(try await ProcessCommand.check(executable, args + [path]))
    }

    /// The image's virtual size in bytes.
    func virtualSize(_ path: String, format: String, forceShare: Bool = false) async throws -> Int64 {
        guard let size = try await info(path, format: format, forceShare: forceShare)["virtual-size"]?.intValue else {
            throw VirtError.failed("qemu-img info reported no virtual size for \(path)")
        }
        return size
    }

    /// A qcow2 overlay at `path` backed by `backing` (of `backingFormat`), `sizeBytes` large
    /// (the backing file's size when nil).
    func createOverlay(_ path: String, backing: String, backingFormat: String, sizeBytes: Int64?) async throws {
        var args = ["create", "-q", "-f", "qcow2", "-F", backingFormat, "-b", backing, path]
        if let sizeBytes { args.append(String(sizeBytes)) }
        try await ProcessCommand.check(executable, args)
    }

    /// An empty qcow2 image of `sizeBytes`.
    func createBlank(_ path: String, sizeBytes: Int64) async throws {
        try await ProcessCommand.check(executable, ["create", "-q", "-f", "qcow2", path, String(sizeBytes)])
    }

    /// A standalone qcow2 copy of `source` (its whole backing chain flattened).
    func convertToQCOW2(_ source: String, format: String, to destination: String, forceShare: Bool = false) async throws {
        var args = ["convert", "-f", format, "-O", "qcow2"]
        if forceShare { args.append("-U") }
        try await ProcessCommand.check(executable, args + [source, destination])
    }

    /// Grows the qcow2 image at `path` to `sizeBytes` (qemu-img refuses to shrink without
    /// `--shrink`, which is never passed).
    func grow(_ path: String, to sizeBytes: Int64) async throws {
        try await ProcessCommand.check(executable, ["resize", "-q", "-f", "qcow2", path, String(sizeBytes)])
    }

    /// Copies the qcow2 image whose file's bytes `source` serves over NBD into a new qcow2 at
    /// `destination`. With `backing`, the copy is an overlay on that local image and only the
    /// clusters the source holds itself are written (`-B`): the rest keep reading through to
    /// `backing`, which must hold what the source's own backing file held (the same base
    /// image). The source's backing is always named here, never taken from its header, so an
    /// image cannot make this host open a file of its choosing.
    func copyQCOW2(from source: NBDExportURI, to destination: String, backing: (path: String, format: String)?) async throws {
        let backingNode: JSON = backing.map { ["driver": .string($0.format), "file": ["driver": "file", "filename": .string($0.path)]] } ?? .null
        let image: JSON = ["driver": "qcow2", "file": ["driver": "nbd", "server": source.server, "export": .string(source.name)], "backing": backingNode]
        var args = ["convert", "-O", "qcow2"]
        if let backing { args += ["-B", backing.path, "-F", backing.format] }
        try await ProcessCommand.check(executable, args + ["json:" + image.serialized(), destination])
    }
}
