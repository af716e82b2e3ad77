import Compute
import HostAPI
import Virt
import Foundation
import Image
import NimbusCore

extension AuthContext {
    /// The compute service acting on its own behalf (nova's service user) in the image and
    /// network services.
    static let computeService = AuthContext(
        token: "", userID: "nova", userName: "nova", userDomainID: "default", userDomainName: "Default", scope: .system,
        roles: [AuthContext.Role(id: "admin", name: "admin"), AuthContext.Role(id: "service", name: "service")],
        methods: ["internal"], auditIDs: [], issuedAt: Date(), expiresAt: .distantFuture)
}

/// The compute service's view of the image service, in process: lookups run as the user who
/// asked; snapshot uploads and shelved-image cleanup run with the compute service's own
/// (admin) right, since the request that caused them was authorised when it was accepted.
struct ImageServiceClient: ImageClient {
    let images: ImageService

    static func info(_ image: Image) -> ImageInfo {
        ImageInfo(id: image.id, name: image.name, status: image.status.rawValue, minRAM: image.minRAM, minDisk: image.minDisk,
                  size: image.size, diskFormat: image.diskFormat, properties: image.properties, createdAt: image.createdAt, updatedAt: image.updatedAt)
    }

    func image(_ id: String, caller: AuthContext) async throws -> ImageInfo? {
        do {
            return Self.info(try await images.get(id, caller: caller))
        } catch let error as APIError where error.status == .notFound || error.status == .forbidden {
            return nil
        }
    }

    func images(caller: AuthContext) async throws -> [ImageInfo] {
        var out: [ImageInfo] = []
        var marker: String?
        repeat {
            var query = ["limit": "1000", "sort_key": "created_at", "sort_dir": "desc"]
            query["marker"] = marker
            let page = try await images.list(query, tags: [], caller: caller)
            out += page.images.map(Self.info)
            marker = page.nextMarker
        } while marker != nil
        return out
    }

    func deleteImage(_ id: String, caller: AuthContext) async throws {
        try await images.delete(id, caller: caller)
    }

    func changeProperties(_ id: String, set: [String: String], remove: [String], caller: AuthContext) async throws -> ImageInfo {
        let current = try await images.get(id, caller: caller).properties
        // JSON pointer: `~` and `/` in a key are escaped.
        func path(_ key: String) -> JSON { .string("/" + key.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")) }
        var patch: [JSON] = set.sorted { $0.key < $1.key }.map { key, value in
            ["op": .string(current[key] == nil ? "add" : "replace"), "path": path(key), "value": .string(value)]
        }
        patch += remove.filter { current[$0] != nil }.map { ["op": "remove", "path": path($0)] }
        guard !patch.isEmpty else { return Self.info(try await images.get(id, caller: caller)) }
        return Self.info(try await images.update(id, patch: .array(patch), mediaType: "application/openstack-images-v2.1-json-patch", caller: caller))
    }

    func createImage(name: String, properties: [String: String], caller: AuthContext) async throws -> String {
        var body: [String: JSON] = ["name": .string(name), "disk_format": "qcow2", "container_format": "bare", "visibility": "private"]
        for (key, value) in properties { body[key] = .string(value) }
        return try await images.create(.object(body), caller: caller).id
    }

    func deleteImage(_ id: String) async throws {
        try await images.delete(id, caller: .computeService)
    }

    func backups(instance: String, type: String) async throws -> [String] {
        let query = ["instance_uuid": instance, "image_type": "backup", "backup_type": type, "sort_key": "created_at", "sort_dir": "desc",
                     "limit": "1000"]
        return try await images.list(query, tags: [], caller: .computeService).images.map(\.id)
    }
}

/// The image service as a host in this process reaches it: downloads for guests' disks and
/// snapshot uploads, with the compute service's own right (the request that caused them was
/// authorised when it was accepted).
struct InProcessImageTransfer: ImageTransfer {
    let images: ImageService

    func download(imageID: String, to path: String) async throws {
        let download = try await images.download(imageID, caller: .computeService)
        guard let reader = download.reader else { throw VirtError.failed("Image \(imageID) has no data.") }
        defer { reader.close() }
        guard FileManager.default.createFile(atPath: path, contents: nil), let out = FileHandle(forWritingAtPath: path) else {
            throw VirtError.failed("cannot write \(path)")
        }
        do {
            defer { try? out.close() }
            while true {
                let bytes = try reader.read(upTo: 1 << 20)
                if bytes.isEmpty { break }
                try out.write(contentsOf: bytes)
            }
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
    }

    /// The image service is in this process, on this machine: it takes the file into its store
    /// when it can, instead of receiving a copy of its bytes.
    func upload(imageID: String, taking path: String, diskFormat: String) async throws {
        try await images.upload(imageID, takingFile: path, caller: .computeService)
    }
}
