import Foundation
import NIOCore
import NimbusCore

/// Glance's interoperable import API: `glance-direct` (stage the data, then import it into
/// one or more stores) and `copy-image` (copy an active image into more stores). Imports run
/// in the background, recorded as tasks; the image carries Glance's `os_glance_*` properties
/// while one runs, so clients poll the image as they do against Glance.
extension ImageService {
    public static let importMethods = ["glance-direct", "copy-image"]

    static let lockKey = "os_glance_import_task"
    static let importingKey = "os_glance_importing_to_stores"
    static let failedKey = "os_glance_failed_import"

    /// `PUT /v2/images/{id}/stage`: queued → uploading, the data kept in the staging area
    /// (counted against `image_stage_total`) until it is imported.
    public func stage<Body: AsyncSequence>(_ id: String, contentType: String?, body: Body, caller: AuthContext) async throws
    where Body.Element == ByteBuffer {
        try Self.requireOctetStream(contentType)
        var image = try await visibleImage(id, caller)
        try authorize("modify_image", caller, image)
        guard image.status == .queued else {
            if image.status == .uploading { throw APIError.conflict("The image \(id) has data on staging") }
            throw APIError.conflict("Image status transition from \(image.status.rawValue) to uploading is not allowed")
        }
        image.status = .uploading
        image.updatedAt = Date()
        guard try await store.update(image, expecting: .queued, db) else { throw APIError.conflict("Image \(id) is already receiving data.") }
        let stageLimit = try await limit(.imageStageTotal, project: image.owner)
        var staged: Int64 = 0
        let writer: any ImageDataWriter
        do {
            try await checkUploadingCount(image)
            writer = try stores.staging.beginWrite(imageID: id)
        } catch {
            try? await revertToQueued(image, from: .uploading)
            throw error
        }
        func write(_ buffer: ByteBuffer) async throws {
            if let owner = image.owner {
                guard try await store.reserve(project: owner, images: 0, bytes: 0, staged: Int64(buffer.readableBytes),
                                              imageLimit: -1, byteLimit: -1, stagedLimit: stageLimit, db) else {
                    throw Self.overLimit(owner, .imageStageTotal, limit: stageLimit)
                }
            }
            staged += Int64(buffer.readableBytes)
            try buffer.withUnsafeReadableBytes { try writer.write($0) }
        }
        do {
            for try await buffer in body { try await write(buffer) }
            _ = try writer.commit()
        } catch {
            writer.abort()
            try? await revertToQueued(image, from: .uploading, releasingStaged: staged)
            throw error
        }
        let size = staged
        guard try await transition(id, from: .uploading, { $0.size = size }) != nil else {
            try? stores.staging.delete(location: stores.staging.location(imageID: id))
            if let owner = image.owner { try? await store.release(project: owner, images: 0, bytes: 0, staged: staged, db) }
            throw APIError(.gone, "Image \(id) was deleted during the upload.")
        }
    }

    /// A validated `POST /v2/images/{id}/import` body.
    struct ImportRequest: Sendable {
        var method: String
        var stores: [String]?
        var allStores: Bool
        var allStoresMustSucceed: Bool
    }

    static func importRequest(_ body: JSON) throws -> ImportRequest {
        guard let fields = body.objectValue else { throw APIError.badRequest("Request body must be a JSON object.") }
        guard let method = fields["method"] else { throw APIError.badRequest("Import request requires a 'method' field.") }
        guard let name = method["name"] else { throw APIError.badRequest("Import request requires a 'name' field.") }
        guard let nameText = name.stringValue, importMethods.contains(nameText) else {
            throw APIError.badRequest("Unknown import method name '\(name.stringValue ?? name.serialized())'.")
        }
        func flag(_ key: String, default value: Bool) throws -> Bool {
            guard let raw = fields[key], !raw.isNull else { return value }
            guard let b = raw.boolValue else { throw APIError.badRequest("'\(key)' must be a boolean.") }
            return b
        }
        var stores: [String]?
        if let raw = fields["stores"], !raw.isNull {
            guard let list = raw.arrayValue?.compactMap(\.stringValue), list.count == raw.arrayValue?.count, !list.isEmpty else {
                throw APIError.badRequest("'stores' must be a non-empty list of store ids.")
            }
            stores = list
        }
        return ImportRequest(method: nameText, stores: stores, allStores: try flag("all_stores", default: false),
                             allStoresMustSucceed: try flag("all_stores_must_succeed", default: true))
    }

    /// Checks the request against the image and starts the import; answers before the data
    /// moves (Glance's 202).
    public func importImage(_ id: String, body: JSON, requestID: String, caller: AuthContext) async throws {
        let request = try Self.importRequest(body)
        for id in request.stores ?? [] where stores.store(id) == nil { throw APIError.badRequest("Unknown store \(id).") }
        let image = try await visibleImage(id, caller)
        try authorize(request.method == "copy-image" ? "copy_image" : "modify_image", caller, image)
        if image.properties[Self.lockKey] != nil {
            throw APIError.conflict("New operation on image '\(id)' is not permitted as prior operation is still in progress")
        }
        if image.containerFormat == nil { throw APIError.conflict("'container_format' needs to be set before import") }
        if image.diskFormat == nil { throw APIError.conflict("'disk_format' needs to be set before import") }
        let from: Image.Status
        if request.method == "copy-image" {
            guard image.status == .active else { throw APIError.conflict("Only images with status active can be targeted for copying") }
            from = .active
        } else {
            if image.status == .active { throw APIError.conflict("Image with status active cannot be target for import") }
            if image.status == .queued { throw APIError.conflict("Image needs to be staged before 'glance-direct' method can be used") }
            guard image.status == .uploading, image.size != nil else {
                throw APIError.conflict("Image needs to be in 'uploading' state to use 'glance-direct' method")
            }
            from = .uploading
        }
        let targets = try importTargets(request, image: image)

        let now = Date()
        let task = ImageTask(id: Identifiers.uuid(), imageID: id, status: .pending, owner: image.owner, userID: caller.userID,
                             requestID: requestID, input: ["image_id": .string(id), "import_req": body, "backend": .array(targets.map { .string($0) })],
                             message: "", createdAt: now, updatedAt: now, expiresAt: nil)
        let started = try await db.transaction { x -> Bool in
            guard var current = try await self.store.image(id: id, x), current.status == from, current.properties[Self.lockKey] == nil else { return false }
            if from == .uploading { current.status = .importing }
            current.properties[Self.lockKey] = task.id
            current.properties[Self.importingKey] = targets.joined(separator: ",")
            current.properties[Self.failedKey] = nil
            current.updatedAt = now
            guard try await self.store.update(current, expecting: from, x) else { return false }
            try await self.store.insert(task, x)
            return true
        }
        guard started else { throw APIError.conflict("New operation on image '\(id)' is not permitted as prior operation is still in progress") }
        await imports.run { await self.runImport(task, method: request.method, targets: targets, allMustSucceed: request.allStoresMustSucceed) }
    }

    /// The stores an import writes to: those named, all of them, or the default one; for
    /// copy-image never one that already holds the image.
    func importTargets(_ request: ImportRequest, image: Image) throws -> [String] {
        var targets: [String]
        if request.allStores {
            targets = stores.stores.map(\.id).filter { image.locations[$0] == nil }
        } else if let named = request.stores {
            for id in named where image.locations[id] != nil { throw APIError.conflict("Image is already present at store '\(id)'") }
            targets = named
        } else if request.method == "copy-image" {
            throw APIError.badRequest("copy-image needs 'stores' or 'all_stores'.")
        } else {
            targets = [stores.defaultID]
        }
        // With all_stores, stores that already hold the image are skipped, so the list may
        // be empty: the import then succeeds without copying (Glance does the same).
        return targets.reduce(into: []) { if !$0.contains($1) { $0.append($1) } }
    }

    func runImport(_ started: ImageTask, method: String, targets: [String], allMustSucceed: Bool) async {
        var task = started
        task.status = .processing
        task.updatedAt = Date()
        try? await store.update(task, db)
        let outcome: (failed: [String], message: String)
        if method == "glance-direct" {
            outcome = await importStaged(task.imageID, targets: targets, allMustSucceed: allMustSucceed)
        } else {
            outcome = await copyImage(task.imageID, targets: targets, allMustSucceed: allMustSucceed)
        }
        task.status = outcome.message.isEmpty ? .success : .failure
        task.message = outcome.message
        task.updatedAt = Date()
        task.expiresAt = task.updatedAt.addingTimeInterval(48 * 3600)
        do { try await store.update(task, db) } catch { logger.error("import task \(task.id): cannot record its end: \(error)") }
    }

    /// glance-direct: the staged data goes through the upload checks into the first store, then
    /// is copied to the others; staged data is removed either way.
    func importStaged(_ id: String, targets: [String], allMustSucceed: Bool) async -> (failed: [String], message: String) {
        let stagedLocation = stores.staging.location(imageID: id)
        defer { try? stores.staging.delete(location: stagedLocation) }
        guard let image = try? await store.image(id: id, db), image.status == .importing else {
            return (targets, "Image \(id) was deleted before the import ran.")
        }
        let staged = image.stagedBytes
        var copies: [Ingested] = []
        var failed: [String] = []
        var message = ""
        for target in targets {
            do {
                let reader = try stores.staging.open(location: stagedLocation)
                defer { reader.close() }
                // Copies after the first are checked against the first copy's checksum.
                copies.append(try await ingest(image, body: StoredDataSequence(reader: reader, chunkSize: 1 << 20),
                                               into: try store(named: target), expectedMD5: copies.first?.checksum))
            } catch {
                failed.append(target)
                message = "Import into store \(target) failed: \(Self.reason(error))"
                if copies.isEmpty || allMustSucceed { break }
            }
        }
        if copies.isEmpty || (allMustSucceed && !failed.isEmpty) {
            for copy in copies { discard(copy, owner: image.owner) }
            try? await revertToQueued(image, from: .importing, releasingStaged: staged,
                                      properties: [Self.lockKey: nil, Self.importingKey: "", Self.failedKey: failed.joined(separator: ",")])
            return (failed, message)
        }
        let (first, locations, failedList) = (copies[0], Dictionary(uniqueKeysWithValues: copies.map { ($0.storeID, $0.location) }),
                                               failed.joined(separator: ","))
        let done = try? await transition(id, from: .importing, releasingStaged: staged) { image in
            image.status = .active
            first.describe(&image)
            image.locations = locations
            Self.endImport(&image, failedStores: failedList)
        }
        if done == nil {
            for copy in copies { discard(copy, owner: image.owner) }
            return (targets, "Image \(id) was deleted during the import.")
        }
        return (failed, message)
    }

    /// copy-image: each target gets the data read back from an existing copy, re-hashed and
    /// checked against the image's checksum on the way.
    func copyImage(_ id: String, targets: [String], allMustSucceed: Bool) async -> (failed: [String], message: String) {
        guard let image = try? await store.image(id: id, db), image.status == .active else {
            return (targets, "Image \(id) is no longer active.")
        }
        var copies: [Ingested] = []
        var failed: [String] = []
        var message = ""
        for target in targets {
            do {
                guard let reader = try openData(image) else { throw ImageStoreError("the image has no readable data") }
                defer { reader.close() }
                copies.append(try await ingest(image, body: StoredDataSequence(reader: reader, chunkSize: 1 << 20),
                                               into: try store(named: target), expectedMD5: image.checksum))
            } catch {
                failed.append(target)
                message = "Copy into store \(target) failed: \(Self.reason(error))"
                if allMustSucceed { break }
            }
        }
        if allMustSucceed && !failed.isEmpty {
            for copy in copies { discard(copy, owner: image.owner) }
            copies = []
        }
        let kept = copies
        let failedList = failed.joined(separator: ",")
        let done = try? await transition(id, from: .active) { image in
            for copy in kept { image.locations[copy.storeID] = copy.location }
            Self.endImport(&image, failedStores: failedList)
        }
        if done == nil {
            for copy in kept { discard(copy, owner: image.owner) }
            return (targets, "Image \(id) changed status during the copy.")
        }
        return (failed, message)
    }

    /// Lifts the import lock and records which stores failed ("" when none did). Like Glance,
    /// `os_glance_importing_to_stores` stays, empty: clients wait for exactly that.
    static func endImport(_ image: inout Image, failedStores: String) {
        image.properties[lockKey] = nil
        image.properties[importingKey] = ""
        image.properties[failedKey] = failedStores
    }

    static func reason(_ error: any Error) -> String {
        (error as? APIError)?.message ?? "\(error)"
    }

    // MARK: Stores

    /// `DELETE /v2/stores/{store}/{image}`: removes one copy of an image held in several stores.
    public func deleteFromStore(_ storeID: String, imageID: String, caller: AuthContext) async throws {
        let image = try await visibleImage(imageID, caller)
        try authorize("delete_image_location", caller, image)
        guard stores.store(storeID) != nil else { throw APIError.notFound("Unknown store \(storeID).") }
        guard image.status == .active else { throw APIError.conflict("It's not allowed to remove image data from store if image status is not 'active'") }
        guard let location = image.locations[storeID] else { throw APIError.notFound("Image \(imageID) is not present in store \(storeID).") }
        guard image.locations.count > 1 else { throw APIError.forbidden("Cannot delete the only copy of image \(imageID).") }
        guard try await transition(imageID, from: .active, { $0.locations[storeID] = nil }) != nil else {
            throw APIError.conflict("Image \(imageID) changed status concurrently.")
        }
        if let owner = image.owner, let size = image.size { try await store.release(project: owner, images: 0, bytes: size, db) }
        try? stores.store(storeID)?.delete(location: location)
    }

    // MARK: Tasks

    public func tasks(imageID: String, caller: AuthContext) async throws -> [ImageTask] {
        let image = try await visibleImage(imageID, caller)
        try authorize("get_image", caller, image)
        return try await store.tasks(imageID: imageID, db)
    }

    /// `GET /v2/tasks/{id}`. The tasks API is admin-only by default (`tasks_api_access`); a
    /// caller the policy lets in still sees only its project's tasks (403 for another's, as
    /// Glance). An expired task is gone.
    public func task(_ id: String, caller: AuthContext) async throws -> ImageTask {
        try authorize("tasks_api_access", caller)
        guard let task = try await store.task(id: id, db), !task.expired(at: Date()) else {
            throw APIError.notFound("Task with the given id \(id) not found")
        }
        guard caller.isAdmin || task.owner == nil || task.owner == caller.projectID else {
            throw APIError.forbidden("Forbidding request, task \(id) is not visible")
        }
        return task
    }

    public struct TaskPage: Sendable {
        public var tasks: [ImageTask]
        /// Marker for the next page when this one is full.
        public var nextMarker: String?
    }

    /// The task attributes `GET /v2/tasks` filters on by equality (Glance compares any column so;
    /// other parameters are ignored).
    static let taskFilterKeys = ["id", "status", "type", "owner", "image_id", "user_id", "request_id"]

    /// `GET /v2/tasks`: admins see every project's unexpired tasks, anyone else the policy lets
    /// in its own project's; equality filters, `sort_key` then `created_at` and `id` in
    /// `sort_dir`, and marker pages.
    public func listTasks(_ query: [String: String], caller: AuthContext) async throws -> TaskPage {
        try authorize("tasks_api_access", caller)
        let ascending: Bool
        switch query["sort_dir"] ?? "desc" {
        case "asc": ascending = true
        case "desc": ascending = false
        case let other: throw APIError.badRequest("Invalid sort direction: \(other)")
        }
        if let status = query["status"], !status.isEmpty, ImageTask.Status(rawValue: status) == nil {
            throw APIError.badRequest("Invalid status value: \(status)")
        }
        // Glance's deserializer knows only the old `import` type, so `api_image_import` — the
        // type of every task it makes today — is refused as a filter value there too.
        if let type = query["type"], !type.isEmpty, type != "import" { throw APIError.badRequest("Invalid type value: \(type)") }
        let marker = query["marker"]
        if let marker, !marker.isEmpty, UUID(uuidString: marker) == nil { throw APIError.badRequest("Invalid marker format") }
        var limit = 25
        if let raw = query["limit"] {
            guard let n = Int(raw) else { throw APIError.badRequest("limit param must be an integer") }
            guard n >= 0 else { throw APIError.badRequest("limit param must be positive") }
            limit = min(n, 1000)
        }
        let sortKey = query["sort_key"] ?? "created_at"
        guard ImageTask.sortKeys.contains(sortKey) else { throw APIError.badRequest("Sort key supplied was not valid.") }

        let now = Date()
        var tasks = try await store.tasks(owner: caller.isAdmin ? nil : caller.projectID, db).filter { task in
            guard !task.expired(at: now) else { return false }
            for key in Self.taskFilterKeys { if let wanted = query[key], task.attribute(key) != wanted { return false } }
            return true
        }
        tasks.sort { a, b in
            for key in [sortKey, "created_at", "id"] {
                let x = a.sortValue(key), y = b.sortValue(key)
                if x != y { return ascending ? x < y : x > y }
            }
            return false
        }
        if let marker, !marker.isEmpty {
            guard let index = tasks.firstIndex(where: { $0.id == marker }) else {
                throw APIError.badRequest("Task with the given id \(marker) not found")
            }
            tasks.removeFirst(index + 1)
        }
        let page = Array(tasks.prefix(limit))
        return TaskPage(tasks: page, nextMarker: !page.isEmpty && page.count == limit ? page.last?.id : nil)
    }

    /// Waits for imports started so far (tests, and a clean shutdown).
    public func waitForImports() async { await imports.waitForAll() }

    // MARK: Usage

    /// `GET /v2/info/usage`: the caller's project against each of Glance's limits (MiB for sizes).
    public func usage(caller: AuthContext) async throws -> JSON {
        guard let project = caller.projectID else { throw APIError.badRequest("Usage needs a project-scoped token.") }
        let used = try await store.usage(project: project, db)
        let uploading = try await store.uploadingCount(project: project, db)
        var out: [String: JSON] = [:]
        for resource in QuotaResource.allCases {
            let limit = try await limit(resource, project: project)
            let value: Int64
            switch resource {
            case .imageCountTotal: value = used.images
            case .imageSizeTotal: value = used.bytes >> 20
            case .imageStageTotal: value = used.staged >> 20
            case .imageCountUploading: value = uploading
            }
            out[resource.rawValue] = ["limit": .int(limit < 0 ? -1 : resource.isSize ? limit >> 20 : limit), "usage": .int(value)]
        }
        return ["usage": .object(out)]
    }

    // MARK: Recovery

    /// Runs at startup, before requests: uploads, stages and imports that a crash interrupted
    /// are failed cleanly (images back to queued, or active without the lost copies), and
    /// per-project usage is recounted from the images, which drops reservations of transfers
    /// that never finished. Assumes this process is the only one serving the image API.
    public func recoverInterrupted() async throws {
        for store in stores.stores + [stores.staging] { store.removeInterruptedWrites() }
        for task in try await store.unfinishedTasks(db) {
            var ended = task
            ended.status = .failure
            ended.message = "The import was interrupted by a restart of the service."
            ended.updatedAt = Date()
            ended.expiresAt = ended.updatedAt.addingTimeInterval(48 * 3600)
            try await store.update(ended, db)
        }
        for image in try await store.images(db) {
            let failedStores = image.properties[Self.importingKey] ?? ""
            switch image.status {
            case .saving:
                try await revertToQueued(image, from: .saving)
            case .importing:
                try? stores.staging.delete(location: stores.staging.location(imageID: image.id))
                try await revertToQueued(image, from: .importing, properties: [Self.lockKey: nil, Self.importingKey: "", Self.failedKey: failedStores])
            case .uploading where image.size == nil:
                try? stores.staging.delete(location: stores.staging.location(imageID: image.id))
                try await revertToQueued(image, from: .uploading)
            case .active where image.properties[Self.lockKey] != nil:
                try await transition(image.id, from: .active) { image in Self.endImport(&image, failedStores: failedStores) }
            default:
                break
            }
        }
        try await db.transaction { x in try await self.store.recountUsage(x) }
    }
}
