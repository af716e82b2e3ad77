import Foundation
import NimbusCore

/// The host's cache of base images, `<instances>/_base/<image id>`, shared read-only by every
/// guest booted from the image (each guest writes only its own qcow2 overlay).
///
/// Base images keep their format when it is `raw` or `qcow2` — QEMU reads either as a backing
/// file directly, so converting would cost a full copy at first boot for nothing — and are
/// converted to qcow2 otherwise (vmdk, vdi, vhd…), so overlays only ever sit on raw or qcow2.
/// A file's modification time is its last use: set on every fetch and when a guest using it
/// is destroyed; `sweep` removes what has been unused for long enough.
actor BaseImageCache {
    let directory: String
    private let qemuImg: QEMUImg
    private var inFlight: [String: Task<Void, any Error>] = [:]

    init(directory: String, qemuImg: QEMUImg) {
        (self.directory, self.qemuImg) = (directory, qemuImg)
    }

    nonisolated func path(of imageID: String) -> String { (directory as NSString).appendingPathComponent(imageID) }

    /// The format the cached copy of an image in `diskFormat` has.
    nonisolated static func cachedFormat(of diskFormat: String) -> String { diskFormat == "raw" ? "raw" : "qcow2" }

    /// Returns the path of the cached copy of `imageID`, first downloading it through
    /// `images` if it is not cached — once, however many callers ask at the same time.
    /// `diskFormat` nil means a kernel or ramdisk (kept as downloaded, not inspected).
    /// Postcondition: the file is complete and matched the given checksums; on throw nothing
    /// is left in the cache for it.
    func fetch(_ imageID: String, diskFormat: String?, md5: String?, sha512: String?, images: any ImageTransfer) async throws -> String {
        guard !imageID.isEmpty, !imageID.contains("/"), !imageID.hasPrefix(".") else { throw VirtError.failed("invalid image id \(imageID)") }
        let target = path(of: imageID)
        if inFlight[imageID] == nil, !FileManager.default.fileExists(atPath: target) {
            let task = Task { try await Self.download(imageID, to: target, diskFormat: diskFormat, md5: md5, sha512: sha512, images: images, qemuImg: qemuImg) }
            inFlight[imageID] = task
        }
        if let task = inFlight[imageID] {
            defer { inFlight[imageID] = nil }
            try await task.value
        }
        try? FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: target)
        return target
    }

    /// Marks the image as used now (a guest using it goes away; the sweep's clock starts then).
    func touch(_ imageID: String) {
        try? FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: path(of: imageID))
    }

    /// Removes cached images not in `inUse` and unused for at least `unusedFor`; returns the
    /// ids removed. Downloads under way are never touched.
    func sweep(unusedFor: Duration, inUse: Set<String>) -> [String] {
        let cutoff = Date().addingTimeInterval(-Double(unusedFor.components.seconds))
        var removed: [String] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            guard !name.hasSuffix(".part"), !inUse.contains(name), inFlight[name] == nil else { continue }
            let file = path(of: name)
            guard let modified = (try? FileManager.default.attributesOfItem(atPath: file))?[.modificationDate] as? Date, modified < cutoff else { continue }
            if (try? FileManager.default.removeItem(atPath: file)) != nil { removed.append(name) }
        }
        return removed
    }

    private static func download(_ imageID: String, to target: String, diskFormat: String?, md5: String?, sha512: String?,
                                 images: any ImageTransfer, qemuImg: QEMUImg) async throws {
        try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let partial = target + ".part"
        let converted = target + ".qcow2.part"
        defer {
            try? FileManager.default.removeItem(atPath: partial)
            try? FileManager.default.removeItem(atPath: converted)
        }
        try await images.download(imageID: imageID, to: partial)
        if let md5 {
            let actual = try await offload { try FileDigest.hex(.md5, of: partial) }
            guard actual == md5.lowercased() else { throw VirtError.failed("image \(imageID): MD5 \(actual) does not match checksum \(md5)") }
        }
        if let sha512 {
            let actual = try await offload { try FileDigest.hex(.sha512, of: partial) }
            guard actual == sha512.lowercased() else { throw VirtError.failed("image \(imageID): SHA-512 does not match os_hash_value") }
        }
        var ready = partial
        if let diskFormat {
            // Read with the declared format, never probed: a "raw" image that is really a
            // qcow2 naming a host file as its backing file must not get that file opened.
            let info = try await qemuImg.info(partial, format: diskFormat)
            if info["backing-filename"] != nil || info["full-backing-filename"] != nil {
                throw VirtError.failed("image \(imageID) has a backing file; refusing it")
            }
            if cachedFormat(of: diskFormat) != diskFormat {
                try await qemuImg.convertToQCOW2(partial, format: diskFormat, to: converted)
                ready = converted
            }
        }
        guard rename(ready, target) == 0 else { throw VirtError.failed("cannot move image \(imageID) into the cache: \(String(cString: strerror(errno)))") }
    }
}
