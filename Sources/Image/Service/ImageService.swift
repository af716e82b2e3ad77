import Crypto
import Foundation
import Logging
import NimbusCore
import NimbusStore

/// Glance v2's logic: image records, visibility, the status machine, members and tags.
/// Data moves through `ImageService+Data.swift`. No HTTP here.
public final class ImageService: Sendable {
    let db: any Database
    let store = ImageStore()
    public let stores: ImageStoreSet
    let policy: PolicyEngine
    let logger: Logger
    let quotas: Quotas
    /// Background imports in flight, so tests and shutdown can wait for them.
    let imports = BackgroundWork()
    /// The metadata definitions catalog (`/v2/metadefs`), in the same database.
    public let metadefs: MetadefService

    /// Glance's per-project limits, under its unified-limit resource names: Keystone's limits
    /// for the `image` service (a project's own, else the registered default) when there are
    /// any, else the cloud-wide defaults from `[image_quota]`. Negative means unlimited; sizes
    /// are in MiB, as Glance counts them.
    public struct Quotas: Sendable {
        public var defaults: [QuotaResource: Int64]
        public var keystone: (any ProjectLimitLookup)?
        public init(defaults: [QuotaResource: Int64] = [:], keystone: (any ProjectLimitLookup)? = nil) {
            self.defaults = defaults
            self.keystone = keystone
        }
    }

    public enum QuotaResource: String, Sendable, CaseIterable {
        case imageCountTotal = "image_count_total"
        case imageSizeTotal = "image_size_total"
        case imageStageTotal = "image_stage_total"
        case imageCountUploading = "image_count_uploading"

        var isSize: Bool { self == .imageSizeTotal || self == .imageStageTotal }
    }

    public init(db: any Database, stores: ImageStoreSet, policy: PolicyEngine, quotas: Quotas = Quotas(), logger: Logger) {
        self.db = db
        self.stores = stores
        self.policy = policy
        self.quotas = quotas
        self.logger = logger
        metadefs = MetadefService(db: db, policy: policy, logger: logger)
    }

    /// The project's limit on `resource`, in images or bytes; negative means unlimited.
    func limit(_ resource: QuotaResource, project: String?) async throws -> Int64 {
        guard let project else { return -1 }
        let registered = try await quotas.keystone?.limit(serviceType: "image", resource: resource.rawValue, projectID: project)
        let value = registered ?? quotas.defaults[resource] ?? -1
        return value >= 0 && resource.isSize ? value << 20 : value
    }

    static func overLimit(_ project: String, _ resource: QuotaResource, limit: Int64) -> APIError {
        let shown = resource.isSize ? limit >> 20 : limit
        return APIError(.contentTooLarge, "Project \(project) is over a limit for [Resource \(resource.rawValue) is over limit of \(shown)]")
    }

    // MARK: Access

    func authorize(_ action: String, _ caller: AuthContext, _ image: Image? = nil, extra: [String: String] = [:]) throws {
        var target = extra
        target["owner"] = image?.owner ?? caller.projectID ?? ""
        guard policy.enforce(action, credentials: caller.policyInput, target: target) else {
            throw APIError.forbidden("You are not authorized to complete \(action) action.")
        }
    }

    /// Glance's visibility rule: admins see everything; others see their project's images,
    /// public and community images, and shared images they are a member of.
    func canSee(_ image: Image, _ caller: AuthContext, membership: ImageMember?) -> Bool {
        if caller.isAdmin { return true }
        if image.owner != nil && image.owner == caller.projectID { return true }
        switch image.visibility {
        case "public", "community": return true
        case "shared": return membership != nil
        default: return false
        }
    }

    /// The image if the caller may see it; 404 otherwise, so its existence does not leak.
    func visibleImage(_ id: String, _ caller: AuthContext) async throws -> Image {
        guard let image = try await store.image(id: id, db),
              canSee(image, caller, membership: try await membership(image.id, caller))
        else { throw APIError.notFound("No image found with ID \(id)") }
        return image
    }

    func membership(_ imageID: String, _ caller: AuthContext) async throws -> ImageMember? {
        guard let project = caller.projectID else { return nil }
        return try await store.members(imageID: imageID, db).first { $0.memberID == project }
    }

    // MARK: Create

    public func create(_ body: JSON, caller: AuthContext) async throws -> Image {
        guard let fields = body.objectValue else { throw APIError.badRequest("Request body must be a JSON object.") }
        let now = Date()
        var image = Image(id: Identifiers.uuid(), name: nil, status: .queued, visibility: "shared", protected: false, hidden: false,
                          checksum: nil, hashValue: nil, owner: caller.projectID, size: nil, virtualSize: nil, minRAM: 0, minDisk: 0,
                          diskFormat: nil, containerFormat: nil, createdAt: now, updatedAt: now, properties: [:], tags: [], locations: [:])
        if let id = fields["id"] {
            guard let text = id.stringValue, UUID(uuidString: text) != nil else {
                throw APIError.badRequest("Invalid input for field/attribute id. Value: \(id.serialized()). It is not a valid UUID.")
            }
            image.id = text.lowercased()
        }
        for (key, value) in fields where key != "id" {
            try apply(key, value, to: &image, caller: caller, creating: true)
        }
        if image.owner != caller.projectID { try authorize("set_image_owner", caller, image) }
        try authorize("add_image", caller, image)
        try checkVisibilityPolicy(image.visibility, caller, image)
        let created = image
        let countLimit = try await limit(.imageCountTotal, project: image.owner)
        do {
            try await db.transaction { x in
                if let owner = created.owner,
                   try await !self.store.reserve(project: owner, images: 1, bytes: 0, imageLimit: countLimit, byteLimit: -1, x) {
                    throw Self.overLimit(owner, .imageCountTotal, limit: countLimit)
                }
                try await self.store.insert(created, x)
            }
        } catch DatabaseError.uniqueViolation {
            throw APIError.conflict("An image with identifier \(image.id) already exists")
        }
        return image
    }

    func checkVisibilityPolicy(_ visibility: String, _ caller: AuthContext, _ image: Image) throws {
        if visibility == "public" { try authorize("publicize_image", caller, image) }
        if visibility == "community" { try authorize("communitize_image", caller, image) }
    }

    /// Sets one field from a create body or a PATCH value, with Glance's checks.
    func apply(_ key: String, _ value: JSON, to image: inout Image, caller: AuthContext, creating: Bool) throws {
        if Image.readOnly.contains(key) { throw APIError.forbidden("Attribute '\(key)' is read-only.") }
        if Image.reserved.contains(key) || key.hasPrefix("os_glance") { throw APIError.forbidden("Attribute '\(key)' is reserved.") }
        func string(maxLength: Int = 255) throws -> String? {
            if value.isNull { return nil }
            guard let s = value.stringValue else { throw APIError.badRequest("\(value.serialized()) is not of type 'string' for '\(key)'.") }
            guard s.count <= maxLength else { throw APIError.badRequest("'\(key)' is too long (maximum \(maxLength)).") }
            return s
        }
        func bool() throws -> Bool {
            guard let b = value.boolValue else { throw APIError.badRequest("\(value.serialized()) is not of type 'boolean' for '\(key)'.") }
            return b
        }
        func count() throws -> Int64 {
            guard let i = value.intValue, i >= 0 else { throw APIError.badRequest("'\(key)' must be a non-negative integer.") }
            return i
        }
        func oneOf(_ allowed: Set<String>) throws -> String? {
            guard let s = try string() else { return nil }
            guard allowed.contains(s) else { throw APIError.badRequest("'\(s)' is not one of \(allowed.sorted()) for '\(key)'.") }
            return s
        }
        switch key {
        case "name": image.name = try string()
        case "visibility":
            guard let v = try oneOf(Image.visibilities) else { throw APIError.badRequest("'visibility' may not be null.") }
            image.visibility = v
        case "protected": image.protected = try bool()
        case "os_hidden": image.hidden = try bool()
        case "owner":
            let owner = try string()
            if !caller.isAdmin && owner != caller.projectID { throw APIError.forbidden("Owner can't be updated by non admin.") }
            image.owner = owner
        case "min_ram": image.minRAM = try count()
        case "min_disk": image.minDisk = try count()
        case "disk_format", "container_format":
            if !creating && image.status != .queued && image.status != .importing {
                throw APIError.forbidden("Attribute \(key) can be only replaced for a queued image.")
            }
            if key == "disk_format" { image.diskFormat = try oneOf(Image.diskFormats) } else { image.containerFormat = try oneOf(Image.containerFormats) }
        case "tags":
            guard let items = value.arrayValue else { throw APIError.badRequest("'tags' must be an array of strings.") }
            var tags: [String] = []
            for item in items {
                guard let tag = item.stringValue, !tag.isEmpty, tag.count <= 255 else { throw APIError.badRequest("Each tag must be a string of 1 to 255 characters.") }
                if !tags.contains(tag) { tags.append(tag) }
            }
            try checkTagQuota(tags.count)
            image.tags = tags
        default:
            guard key.count <= 255, !key.isEmpty else { throw APIError.badRequest("Property names must be 1 to 255 characters.") }
            guard let s = value.stringValue else {
                throw APIError.badRequest("\(value.serialized()) is not of type 'string' for property '\(key)'.")
            }
            image.properties[key] = s
            if image.properties.count > Self.maxProperties {
                throw APIError(.contentTooLarge, "Maximum number of image properties (\(Self.maxProperties)) exceeded.")
            }
        }
    }

    static let maxProperties = 128
    static let maxTags = 128

    func checkTagQuota(_ count: Int) throws {
        if count > Self.maxTags { throw APIError(.contentTooLarge, "Maximum number of tags (\(Self.maxTags)) exceeded.") }
    }

    // MARK: Read

    public func get(_ id: String, caller: AuthContext) async throws -> Image {
        let image = try await visibleImage(id, caller)
        try authorize("get_image", caller, image)
        return image
    }

    public struct Page: Sendable {
        public var images: [Image]
        /// Marker for the next page when this one is full.
        public var nextMarker: String?
    }

    /// The parts of a `GET /v2/images` query that need no database: the page size, the filters
    /// with fixed vocabularies, and the sort order. All of it is checked before the store is
    /// read, so a bad query is a 400 whatever the images are; it is its own type so that the
    /// fuzz targets (Sources/NimbusFuzzTargets) can parse queries without a database.
    struct ListQuery {
        var limit: Int
        var visibility: String?
        var memberStatus: String
        var showHidden: Bool
        var sizeMin: Int64?
        var sizeMax: Int64?
        var propertyFilters: [String: String]
        /// `name`, `id`, `status`, `container_format`, `disk_format`: `eq:` or `in:` (ImageListFilter).
        var attributeFilters: [(key: String, values: Set<String>)]
        /// `created_at`, `updated_at` compared with a time.
        var timeFilters: [(key: String, comparison: ImageListFilter.Comparison, threshold: Date)]
        var sortKeys: [(key: String, ascending: Bool)]

        static let core: Set<String> = ["limit", "marker", "sort", "sort_key", "sort_dir", "visibility", "member_status", "os_hidden", "tag",
                                        "size_min", "size_max", "name", "status", "owner", "disk_format", "container_format", "protected",
                                        "created_at", "updated_at", "id"]

        init(_ query: [String: String]) throws {
            limit = try query["limit"].map { raw -> Int in
                guard let n = Int(raw), n >= 0 else { throw APIError.badRequest("limit param must be an integer") }
                return min(n, 1000)
            } ?? 25
            visibility = query["visibility"]
            if let v = visibility, v != "all", !Image.visibilities.contains(v) {
                throw APIError.badRequest("Invalid visibility value: \(v)")
            }
            memberStatus = query["member_status"] ?? "accepted"
            guard memberStatus == "all" || ImageMember.statuses.contains(memberStatus) else {
                throw APIError.badRequest("Invalid status value: \(memberStatus)")
            }
            showHidden = query["os_hidden"]?.lowercased() == "true"
            sizeMin = try query["size_min"].map { try ImageService.integer($0, "size_min") }
            sizeMax = try query["size_max"].map { try ImageService.integer($0, "size_max") }
            propertyFilters = query.filter { !Self.core.contains($0.key) }
            attributeFilters = try ImageListFilter.attributeFilters(query)
            timeFilters = try ImageListFilter.timeFilters(query)
            sortKeys = try ImageService.sortOrder(query)
        }
    }

    /// `GET /v2/images`: visibility rules, filters, sort and marker pagination.
    public func list(_ query: [String: String], tags: [String], caller: AuthContext) async throws -> Page {
        try authorize("get_images", caller)
        let parsed = try ListQuery(query)
        let limit = parsed.limit
        let memberships = caller.projectID == nil ? [:] : try await store.memberships(project: caller.projectID!, db)
        let visibilityFilter = parsed.visibility
        let memberStatus = parsed.memberStatus
        let showHidden = parsed.showHidden
        let sizeMin = parsed.sizeMin
        let sizeMax = parsed.sizeMax
        let propertyFilters = parsed.propertyFilters

        var images = try await store.images(db).filter { image in
            let member = memberships[image.id]
            guard canSee(image, caller, membership: member) else { return false }
            if image.hidden && !showHidden { return false }
            let owned = image.owner != nil && image.owner == caller.projectID
            switch visibilityFilter {
            case nil:
                // Glance's default listing: own, public, and shared images the project accepted;
                // community images only when asked for.
                if image.visibility == "community" && !owned && !caller.isAdmin { return false }
                if image.visibility == "shared" && !owned && !caller.isAdmin {
                    guard let member, memberStatus == "all" || member.status == memberStatus else { return false }
                }
            case "all": break
            case "shared":
                guard image.visibility == "shared" else { return false }
                if !owned, let member, memberStatus != "all", member.status != memberStatus { return false }
            case let v?:
                guard image.visibility == v else { return false }
            }
            guard ImageListFilter.matches(image, attributes: parsed.attributeFilters, times: parsed.timeFilters) else { return false }
            if let o = query["owner"], o != image.owner { return false }
            if let p = query["protected"], (p.lowercased() == "true") != image.protected { return false }
            if let sizeMin, (image.size ?? -1) < sizeMin { return false }
            if let sizeMax, (image.size ?? Int64.max) > sizeMax { return false }
            if !tags.allSatisfy(image.tags.contains) { return false }
            for (k, v) in propertyFilters where image.properties[k] != v { return false }
            return true
        }
        Self.sort(&images, by: parsed.sortKeys)
        if let marker = query["marker"] {
            guard let index = images.firstIndex(where: { $0.id == marker }) else {
                throw APIError.badRequest("marker \(marker) could not be found.")
            }
            images.removeFirst(index + 1)
        }
        let page = Array(images.prefix(limit))
        return Page(images: page, nextMarker: page.count == limit && images.count > limit ? page.last?.id : nil)
    }

    static func integer(_ raw: String, _ name: String) throws -> Int64 {
        guard let v = Int64(raw) else { throw APIError.badRequest("\(name) must be an integer") }
        return v
    }

    static let sortKeys: Set<String> = ["name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at",
                                        "visibility", "owner", "min_ram", "min_disk"]

    /// `sort=key:dir,key2` or `sort_key=…&sort_dir=…`, as (key, ascending) pairs.
    static func sortOrder(_ query: [String: String]) throws -> [(key: String, ascending: Bool)] {
        var keys: [(key: String, ascending: Bool)] = []
        if let sort = query["sort"] {
            for part in sort.split(separator: ",") {
                let pieces = part.split(separator: ":").map(String.init)
                let dir = pieces.count > 1 ? pieces[1] : "desc"
                guard dir == "asc" || dir == "desc" else { throw APIError.badRequest("Invalid sort direction: \(dir)") }
                // `sort=:` splits into no pieces: an empty key, refused below like any unknown one.
                keys.append((pieces.first ?? "", dir == "asc"))
            }
        } else {
            let dir = query["sort_dir"] ?? "desc"
            guard dir == "asc" || dir == "desc" else { throw APIError.badRequest("Invalid sort direction: \(dir)") }
            keys.append((query["sort_key"] ?? "created_at", dir == "asc"))
        }
        for (key, _) in keys where !Self.sortKeys.contains(key) { throw APIError.badRequest("Invalid sort key: \(key).") }
        return keys
    }

    /// Sorts by `keys` (from `sortOrder`); id breaks ties so pages are stable.
    static func sort(_ images: inout [Image], by keys: [(key: String, ascending: Bool)]) {
        func value(_ i: Image, _ key: String) -> String {
            switch key {
            case "name": return i.name ?? ""
            case "status": return i.status.rawValue
            case "container_format": return i.containerFormat ?? ""
            case "disk_format": return i.diskFormat ?? ""
            case "size": return String(format: "%020lld", i.size ?? -1)
            case "id": return i.id
            case "updated_at": return String(format: "%020.6f", i.updatedAt.timeIntervalSince1970)
            case "visibility": return i.visibility
            case "owner": return i.owner ?? ""
            case "min_ram": return String(format: "%020lld", i.minRAM)
            case "min_disk": return String(format: "%020lld", i.minDisk)
            default: return String(format: "%020.6f", i.createdAt.timeIntervalSince1970)
            }
        }
        images.sort { a, b in
            for (key, ascending) in keys {
                let x = value(a, key), y = value(b, key)
                if x != y { return ascending ? x < y : x > y }
            }
            return keys.first?.1 ?? false ? a.id < b.id : a.id > b.id
        }
    }

    // MARK: Update

    /// JSON-patch in either of Glance's media types. All operations apply to a copy and are
    /// saved together, so one bad operation changes nothing.
    public func update(_ id: String, patch: JSON, mediaType: String, caller: AuthContext) async throws -> Image {
        let legacy: Bool
        switch mediaType.split(separator: ";").first.map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) {
        case "application/openstack-images-v2.1-json-patch": legacy = false
        case "application/openstack-images-v2.0-json-patch": legacy = true
        default:
            throw APIError(.unsupportedMediaType, "Image PATCH expects Content-Type one of: application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch",
                           headers: [HTTPField.Name("Accept-Patch")!: "application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch"])
        }
        guard let operations = patch.arrayValue else { throw APIError.badRequest("Request body must be a JSON array of operation objects.") }
        let original = try await visibleImage(id, caller)
        try authorize("modify_image", caller, original)
        var image = original
        for raw in operations {
            guard let op = raw.objectValue else { throw APIError.badRequest("Operations must be JSON objects.") }
            let (kind, path) = try Self.operation(op, legacy: legacy)
            let key = try Self.pointer(path)
            switch kind {
            case "add", "replace":
                guard let value = op["value"] else { throw APIError.badRequest("Operation \"\(kind)\" requires a member named \"value\".") }
                let isCustom = !Image.baseFields.contains(key) && !Image.readOnly.contains(key)
                if kind == "replace" && isCustom && image.properties[key] == nil && !Image.reserved.contains(key) && !key.hasPrefix("os_glance") {
                    throw APIError.conflict("Property \(key) does not exist.")
                }
                if kind == "add" && legacy && isCustom && image.properties[key] != nil {
                    throw APIError.conflict("Property \(key) already present.")
                }
                try apply(key, value, to: &image, caller: caller, creating: false)
            default:  // remove
                if Image.readOnly.contains(key) { throw APIError.forbidden("Attribute '\(key)' is read-only.") }
                if Image.reserved.contains(key) || key.hasPrefix("os_glance") { throw APIError.forbidden("Attribute '\(key)' is reserved.") }
                if Image.baseFields.contains(key) { throw APIError.forbidden("Property \(key) may not be removed.") }
                guard image.properties.removeValue(forKey: key) != nil else { throw APIError.conflict("Property \(key) does not exist.") }
            }
        }
        if image.visibility != original.visibility { try checkVisibilityPolicy(image.visibility, caller, image) }
        image.updatedAt = Date()
        let changed = image
        try await db.transaction { x in
            try await self.store.update(changed, x)
            // A new owner (admins only) takes the image's usage with it.
            if changed.owner != original.owner {
                let bytes = original.storedBytes
                if let old = original.owner { try await self.store.release(project: old, images: 1, bytes: bytes, staged: original.stagedBytes, x) }
                if let new = changed.owner {
                    _ = try await self.store.reserve(project: new, images: 1, bytes: bytes, staged: original.stagedBytes, imageLimit: -1, byteLimit: -1, x)
                }
            }
        }
        return image
    }

    static func operation(_ op: [String: JSON], legacy: Bool) throws -> (String, String) {
        if legacy {
            for kind in ["add", "remove", "replace"] {
                if let path = op[kind]?.stringValue { return (kind, path) }
            }
            throw APIError.badRequest("Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\".")
        }
        guard let kind = op["op"]?.stringValue else {
            throw APIError.badRequest("Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace.")
        }
        guard ["add", "remove", "replace"].contains(kind) else {
            throw APIError.badRequest("Invalid operation: `\(kind)`. It must be one of the following: add, remove, replace.")
        }
        guard let path = op["path"]?.stringValue else { throw APIError.badRequest("Unable to find `path` in JSON Schema change.") }
        return (kind, path)
    }

    /// A one-level JSON pointer (`/name`), with `~1` and `~0` decoded.
    static func pointer(_ path: String) throws -> String {
        let invalid = APIError.badRequest("Invalid JSON pointer for this resource: '\(path)'")
        guard path.hasPrefix("/"), path.count > 1, !path.dropFirst().contains("/") else { throw invalid }
        var key = String(path.dropFirst())
        if key.contains("~") {
            guard key.replacingOccurrences(of: "~0", with: "").replacingOccurrences(of: "~1", with: "").contains("~") == false else { throw invalid }
            key = key.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        }
        return key
    }

    // MARK: Delete, actions, tags

    public func delete(_ id: String, caller: AuthContext) async throws {
        let image = try await visibleImage(id, caller)
        try authorize("delete_image", caller, image)
        if image.protected { throw APIError.forbidden("Image \(id) is protected and cannot be deleted.") }
        try await db.transaction { x in
            try await self.store.delete(id: id, x)
            if let owner = image.owner {
                try await self.store.release(project: owner, images: 1, bytes: image.storedBytes, staged: image.stagedBytes, x)
            }
        }
        deleteData(image)
    }

    /// `deactivate` hides an active image's data from non-admins; `reactivate` undoes it.
    public func setActive(_ id: String, active: Bool, caller: AuthContext) async throws {
        var image = try await visibleImage(id, caller)
        try authorize(active ? "reactivate" : "deactivate", caller, image)
        let from: Image.Status = active ? .deactivated : .active
        if image.status == (active ? .active : .deactivated) { return }
        guard image.status == from else {
            throw APIError.forbidden("Not allowed to \(active ? "reactivate" : "deactivate") an image in status '\(image.status.rawValue)'")
        }
        image.status = active ? .active : .deactivated
        image.updatedAt = Date()
        guard try await store.update(image, expecting: from, db) else { throw APIError.conflict("Image \(id) changed status concurrently.") }
    }

    public func tag(_ id: String, _ tag: String, add: Bool, caller: AuthContext) async throws {
        var image = try await visibleImage(id, caller)
        try authorize("modify_image", caller, image)
        if add {
            guard !tag.isEmpty, tag.count <= 255 else { throw APIError.badRequest("Tags must be 1 to 255 characters.") }
            if image.tags.contains(tag) { return }
            image.tags.append(tag)
            try checkTagQuota(image.tags.count)
        } else {
            guard image.tags.contains(tag) else { throw APIError.notFound("Tag \(tag) not found.") }
            image.tags.removeAll { $0 == tag }
        }
        image.updatedAt = Date()
        try await store.update(image, db)
    }

    // MARK: Members

    public func addMember(_ id: String, _ body: JSON, caller: AuthContext) async throws -> ImageMember {
        let image = try await visibleImage(id, caller)
        try authorize("add_member", caller, image)
        guard let memberID = body["member"]?.stringValue, !memberID.isEmpty, memberID.count <= 255 else {
            throw APIError.badRequest("Body must be {\"member\": \"<project id>\"}.")
        }
        guard image.visibility == "shared" else {
            throw APIError.forbidden("Only shared images have members.")
        }
        let now = Date()
        let member = ImageMember(imageID: image.id, memberID: memberID, status: "pending", createdAt: now, updatedAt: now)
        do {
            try await store.insert(member, db)
        } catch DatabaseError.uniqueViolation {
            throw APIError.conflict("Member \(memberID) already associated with image \(id).")
        }
        return member
    }

    public func members(_ id: String, caller: AuthContext) async throws -> [ImageMember] {
        let image = try await visibleImage(id, caller)
        try authorize("get_members", caller, image)
        let all = try await store.members(imageID: id, db)
        // A member sees only its own membership; the owner and admins see them all.
        if caller.isAdmin || image.owner == caller.projectID { return all }
        return all.filter { $0.memberID == caller.projectID }
    }

    public func member(_ id: String, _ memberID: String, caller: AuthContext) async throws -> ImageMember {
        guard let member = try await members(id, caller: caller).first(where: { $0.memberID == memberID }) else {
            throw APIError.notFound("Member \(memberID) not found for image \(id).")
        }
        return member
    }

    /// Only the member project accepts or rejects; the owner cannot decide for it.
    public func updateMember(_ id: String, _ memberID: String, _ body: JSON, caller: AuthContext) async throws -> ImageMember {
        var member = try await member(id, memberID, caller: caller)
        try authorize("modify_member", caller, nil, extra: ["member_id": memberID])
        guard let status = body["status"]?.stringValue, ImageMember.statuses.contains(status) else {
            throw APIError.badRequest("Status must be one of pending, accepted, rejected.")
        }
        member.status = status
        member.updatedAt = Date()
        try await store.update(member, db)
        return member
    }

    public func deleteMember(_ id: String, _ memberID: String, caller: AuthContext) async throws {
        let image = try await visibleImage(id, caller)
        try authorize("delete_member", caller, image)
        guard try await store.deleteMember(imageID: id, memberID: memberID, db) else {
            throw APIError.notFound("Member \(memberID) not found for image \(id).")
        }
    }
}

import HTTPTypes
