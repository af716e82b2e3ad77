import Foundation
import Logging
import NimbusCore
import NimbusStore

/// Glance's metadata definitions catalog (`/v2/metadefs`): namespaces and the property, object
/// and tag definitions in them, and which resource types each namespace applies to. Nothing
/// enforces these definitions on resources; clients (Horizon's "Update Metadata", the CLI)
/// read them to offer valid keys and values.
///
/// Visibility is Glance's: admins see every namespace, others public ones and their own
/// project's private ones; a namespace the caller cannot see is 404, and so is everything in it.
public final class MetadefService: Sendable {
    let db: any Database
    let store = MetadefStore()
    let policy: PolicyEngine
    let logger: Logger

    public init(db: any Database, policy: PolicyEngine, logger: Logger) {
        self.db = db
        self.policy = policy
        self.logger = logger
    }

    /// Glance's default and largest page sizes (`limit_param_default`, `api_limit_max`).
    static let defaultLimit = 25
    static let maxLimit = 1000

    // MARK: Access

    func authorize(_ action: String, _ caller: AuthContext, owner: String? = nil) throws {
        let target = ["owner": owner ?? caller.projectID ?? "", "project_id": owner ?? caller.projectID ?? ""]
        guard policy.enforce(action, credentials: caller.policyInput, target: target) else {
            throw APIError.forbidden("You are not authorized to complete \(action) action.")
        }
    }

    func canSee(_ namespace: MetadefNamespace, _ caller: AuthContext) -> Bool {
        caller.isAdmin || namespace.visibility == "public" || (namespace.owner != nil && namespace.owner == caller.projectID)
    }

    /// The namespace if the caller may see it and `action` allows; 404 for one it cannot see.
    func visibleNamespace(_ name: String, _ caller: AuthContext, action: String, _ x: (any SQLExecutor)? = nil) async throws -> MetadefNamespace {
        guard let namespace = try await store.namespace(named: name, x ?? db), canSee(namespace, caller) else {
            throw Self.namespaceNotFound(name)
        }
        try authorize(action, caller, owner: namespace.owner)
        return namespace
    }

    static func namespaceNotFound(_ name: String) -> APIError {
        APIError.notFound("Metadata definition namespace=\(name) was not found.")
    }

    // MARK: Namespaces

    public struct NamespacePage: Sendable {
        public var namespaces: [JSON]
        public var nextMarker: String?
    }

    /// Namespaces the caller can see, filtered by `visibility` and `resource_types` (any of a
    /// comma-separated list), sorted by `sort_key`/`sort_dir` (default newest first) and paged
    /// by `marker` (a namespace name) and `limit`.
    public func listNamespaces(_ query: [String: String], caller: AuthContext) async throws -> NamespacePage {
        try authorize("get_metadef_namespaces", caller)
        if let visibility = query["visibility"], !MetadefNamespace.visibilities.contains(visibility) {
            throw APIError.badRequest("Invalid visibility value: \(visibility)")
        }
        let resourceTypes = query["resource_types"].map { Set($0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }
        let order = try Self.sortOrder(query, keys: ["namespace", "display_name", "description", "visibility", "protected", "owner",
                                                     "created_at", "updated_at"])
        let associations = try await store.associations(db)
        var namespaces = try await store.namespaces(db).filter { namespace in
            guard canSee(namespace, caller) else { return false }
            if let visibility = query["visibility"], namespace.visibility != visibility { return false }
            if let resourceTypes, !(associations[namespace.id] ?? []).contains(where: { resourceTypes.contains($0.resourceType) }) { return false }
            return true
        }
        namespaces.sort { a, b in Self.precedes(Self.sortValue(a, order.key), a.namespace, Self.sortValue(b, order.key), b.namespace, ascending: order.ascending) }
        let (page, next) = try Self.page(namespaces, query, name: \.namespace)
        return NamespacePage(namespaces: page.map { namespace in
            var json = namespace.json
            json["resource_type_associations"] = .array((associations[namespace.id] ?? []).map(\.json))
            return .object(json)
        }, nextMarker: next)
    }

    static func sortValue(_ n: MetadefNamespace, _ key: String) -> String {
        switch key {
        case "namespace": return n.namespace
        case "display_name": return n.displayName ?? ""
        case "description": return n.description ?? ""
        case "visibility": return n.visibility
        case "protected": return n.protected ? "1" : "0"
        case "owner": return n.owner ?? ""
        case "updated_at": return timeKey(n.updatedAt)
        default: return timeKey(n.createdAt)
        }
    }

    static func timeKey(_ date: Date) -> String { String(format: "%020.6f", date.timeIntervalSince1970) }

    /// Orders by `key`, ties broken by name so that markers are stable.
    static func precedes(_ a: String, _ aName: String, _ b: String, _ bName: String, ascending: Bool) -> Bool {
        if a != b { return ascending ? a < b : a > b }
        return ascending ? aName < bName : aName > bName
    }

    /// `sort_key` (one of `keys`, default `created_at`) and `sort_dir` (default `desc`).
    static func sortOrder(_ query: [String: String], keys: Set<String>) throws -> (key: String, ascending: Bool) {
        let key = query["sort_key"] ?? "created_at"
        guard keys.contains(key) else { throw APIError.badRequest("Invalid sort key: \(key). It must be one of the following: \(keys.sorted().joined(separator: ", ")).") }
        let direction = query["sort_dir"] ?? "desc"
        guard direction == "asc" || direction == "desc" else {
            throw APIError.badRequest("Invalid sort direction: \(direction). It must be one of the following: asc, desc.")
        }
        return (key, direction == "asc")
    }

    /// The items after `marker` (400 when no item has that name), at most `limit` of them, and
    /// the marker of the next page when more follow.
    static func page<T>(_ items: [T], _ query: [String: String], name: KeyPath<T, String>) throws -> ([T], String?) {
        var limit = defaultLimit
        if let text = query["limit"] {
            guard let value = Int(text) else { throw APIError.badRequest("limit param must be an integer") }
            guard value >= 0 else { throw APIError.badRequest("limit param must be positive") }
            limit = min(value, maxLimit)
        }
        var rest = items[...]
        if let marker = query["marker"] {
            guard let index = items.firstIndex(where: { $0[keyPath: name] == marker }) else {
                throw APIError.badRequest("Invalid marker. The item with name \(marker) could not be found.")
            }
            rest = items[(index + 1)...]
        }
        let page = Array(rest.prefix(limit))
        return (page, rest.count > limit ? page.last?[keyPath: name] : nil)
    }

    /// A namespace's objects or tags sorted by `sort_key` (`name`, `created_at` or
    /// `updated_at`, ties broken by name) and `sort_dir`, then paged by name as the marker.
    static func sortedPage<Item: MetadefNamedItem>(_ items: [Item], _ query: [String: String]) throws -> ([Item], String?) {
        let order = try sortOrder(query, keys: ["name", "created_at", "updated_at"])
        func sortValue(_ item: Item) -> String {
            switch order.key {
            case "name": return item.name
            case "updated_at": return timeKey(item.updatedAt)
            default: return timeKey(item.createdAt)
            }
        }
        let sorted = items.sorted { a, b in precedes(sortValue(a), a.name, sortValue(b), b.name, ascending: order.ascending) }
        return try page(sorted, query, name: \.name)
    }

    /// Creates a namespace, with any associations, properties, objects and tags in the body.
    public func createNamespace(_ body: JSON, caller: AuthContext) async throws -> JSON {
        let fields = try MetadefValidation.object(body, what: "namespace")
        let allowed: Set<String> = ["namespace", "display_name", "description", "visibility", "protected", "owner",
                                    "resource_type_associations", "properties", "objects", "tags"]
        if let unknown = fields.keys.first(where: { !allowed.contains($0) }) {
            throw APIError.badRequest("Additional properties are not allowed ('\(unknown)' was unexpected).")
        }
        let now = Date()
        var namespace = MetadefNamespace(id: Identifiers.uuid(), namespace: "", displayName: nil, description: nil, visibility: "private",
                                         protected: false, owner: caller.projectID, createdAt: now, updatedAt: now)
        try apply(fields, to: &namespace, caller: caller)
        try authorize("add_metadef_namespace", caller, owner: namespace.owner)
        if let value = fields["resource_type_associations"], !value.isNull, value.arrayValue == nil {
            throw APIError.badRequest("'resource_type_associations' must be an array.")
        }
        let associations = try (fields["resource_type_associations"]?.arrayValue ?? []).map { try MetadefValidation.association($0, now: now) }
        let properties = try MetadefValidation.propertyMap(fields["properties"]).map { name, definition in
            MetadefProperty(name: name, schema: definition.objectValue ?? [:])
        }
        for key in ["objects", "tags"] {
            if let value = fields[key], !value.isNull, value.arrayValue == nil { throw APIError.badRequest("'\(key)' must be an array.") }
        }
        let objects = try (fields["objects"]?.arrayValue ?? []).map { try MetadefValidation.metadefObject($0, now: now) }
        let tags = try (fields["tags"]?.arrayValue ?? []).map { item in
            guard let name = item["name"]?.stringValue else { throw APIError.badRequest("Each tag must be an object with a 'name'.") }
            return MetadefTag(name: try MetadefValidation.tagName(name), createdAt: now, updatedAt: now)
        }
        let created = namespace
        do {
            try await db.transaction { x in
                try await self.store.insert(created, x)
                for a in associations { try await self.store.insert(a, namespaceID: created.id, x) }
                for p in properties { try await self.store.insert(p, namespaceID: created.id, now: now, x) }
                for o in objects { try await self.store.insert(o, namespaceID: created.id, x) }
                for t in tags { try await self.store.insert(t, namespaceID: created.id, x) }
            }
        } catch DatabaseError.uniqueViolation {
            if try await store.namespace(named: namespace.namespace, db) != nil {
                throw APIError.conflict("The metadata definition namespace=\(namespace.namespace) already exists.")
            }
            throw APIError.conflict("The namespace \(namespace.namespace) repeats a resource type, property, object or tag name.")
        }
        var json = namespace.json
        if !associations.isEmpty { json["resource_type_associations"] = .array(associations.map(\.json)) }
        if !properties.isEmpty { json["properties"] = .object(Dictionary(uniqueKeysWithValues: properties.map { ($0.name, $0.json) })) }
        if !objects.isEmpty { json["objects"] = .array(objects.map { $0.json(namespace: namespace.namespace) }) }
        if !tags.isEmpty { json["tags"] = .array(tags.map { ["name": .string($0.name)] }) }
        return .object(json)
    }

    /// Sets the namespace's own fields from a create or update body; absent fields keep their value.
    func apply(_ fields: [String: JSON], to namespace: inout MetadefNamespace, caller: AuthContext) throws {
        if let name = try MetadefValidation.string(fields, "namespace", maxLength: 80, required: namespace.namespace.isEmpty) {
            guard !name.isEmpty else { throw APIError.badRequest("'namespace' may not be empty.") }
            guard !name.contains("/") else { throw APIError.badRequest("'namespace' may not contain '/'.") }
            namespace.namespace = name
        }
        if fields["display_name"] != nil { namespace.displayName = try MetadefValidation.string(fields, "display_name", maxLength: 80) }
        if fields["description"] != nil { namespace.description = try MetadefValidation.string(fields, "description", maxLength: 500) }
        if let visibility = try MetadefValidation.string(fields, "visibility", maxLength: 20) {
            guard MetadefNamespace.visibilities.contains(visibility) else {
                throw APIError.badRequest("'\(visibility)' is not one of ['private', 'public'] for 'visibility'.")
            }
            namespace.visibility = visibility
        }
        if let protected = try MetadefValidation.bool(fields, "protected") { namespace.protected = protected }
        if fields["owner"] != nil {
            let owner = try MetadefValidation.string(fields, "owner", maxLength: 255)
            if owner != namespace.owner && !caller.isAdmin { throw APIError.forbidden("Owner can't be updated by non admin.") }
            namespace.owner = owner
        }
    }

    /// The namespace with its associations, properties, objects and tags. With `resourceType`,
    /// property names carry that association's prefix, as the resource itself would.
    public func showNamespace(_ name: String, resourceType: String?, caller: AuthContext) async throws -> JSON {
        let namespace = try await visibleNamespace(name, caller, action: "get_metadef_namespace")
        let associations = try await store.associations(namespaceID: namespace.id, db)
        let prefix = resourceType.flatMap { type in associations.first { $0.resourceType == type }?.prefix } ?? ""
        var json = namespace.json
        json["resource_type_associations"] = .array(associations.map(\.json))
        let properties = try await store.properties(namespaceID: namespace.id, db)
        if !properties.isEmpty { json["properties"] = .object(Dictionary(uniqueKeysWithValues: properties.map { (prefix + $0.name, $0.json) })) }
        let objects = try await store.objects(namespaceID: namespace.id, db).sorted { $0.name < $1.name }
        if !objects.isEmpty {
            json["objects"] = .array(objects.map { object in
                var prefixed = object
                prefixed.properties = Dictionary(uniqueKeysWithValues: object.properties.map { (prefix + $0.key, $0.value) })
                prefixed.required = object.required.map { prefix + $0 }
                return prefixed.json(namespace: namespace.namespace)
            })
        }
        let tags = try await store.tags(namespaceID: namespace.id, db).sorted { $0.name < $1.name }
        if !tags.isEmpty { json["tags"] = .array(tags.map { ["name": .string($0.name)] }) }
        return .object(json)
    }

    public func updateNamespace(_ name: String, _ body: JSON, caller: AuthContext) async throws -> JSON {
        let fields = try MetadefValidation.object(body, what: "namespace")
        let allowed: Set<String> = ["namespace", "display_name", "description", "visibility", "protected", "owner",
                                    "resource_type_associations", "properties", "objects", "tags"]
        if let unknown = fields.keys.first(where: { !allowed.contains($0) }) {
            throw APIError.badRequest("Additional properties are not allowed ('\(unknown)' was unexpected).")
        }
        // Glance's update schema requires the name, even when it does not change.
        guard fields["namespace"] != nil else { throw APIError.badRequest("'namespace' is a required property.") }
        var namespace = try await visibleNamespace(name, caller, action: "modify_metadef_namespace")
        try apply(fields, to: &namespace, caller: caller)
        namespace.updatedAt = Date()
        do {
            try await store.update(namespace, db)
        } catch DatabaseError.uniqueViolation {
            throw APIError.conflict("The metadata definition namespace=\(namespace.namespace) already exists.")
        }
        return .object(namespace.json)
    }

    public func deleteNamespace(_ name: String, caller: AuthContext) async throws {
        let namespace = try await visibleNamespace(name, caller, action: "delete_metadef_namespace")
        guard !namespace.protected else {
            throw APIError.forbidden("Metadata definition namespace \(name) is protected and cannot be deleted.")
        }
        try await db.transaction { x in try await self.store.delete(namespaceID: namespace.id, x) }
    }

    /// Deletes every child of one kind (`table`) after Glance's checks: the namespace must be
    /// visible, `action` allowed, and the namespace unprotected.
    func deleteAll(_ table: String, namespace name: String, action: String, caller: AuthContext) async throws {
        let namespace = try await visibleNamespace(name, caller, action: action)
        guard !namespace.protected else {
            throw APIError.forbidden("Metadata definition namespace \(name) is protected and cannot be deleted.")
        }
        try await store.deleteChildren(table, namespaceID: namespace.id, db)
    }

    // MARK: Resource types

    public func resourceTypes(caller: AuthContext) async throws -> [JSON] {
        try authorize("list_metadef_resource_types", caller)
        return try await store.resourceTypes(db).map(\.json)
    }

    public func associations(namespace name: String, caller: AuthContext) async throws -> [JSON] {
        let namespace = try await visibleNamespace(name, caller, action: "get_metadef_resource_type")
        return try await store.associations(namespaceID: namespace.id, db).map(\.json)
    }

    public func associate(namespace name: String, _ body: JSON, caller: AuthContext) async throws -> JSON {
        let namespace = try await visibleNamespace(name, caller, action: "add_metadef_resource_type_association")
        let association = try MetadefValidation.association(body, now: Date())
        do {
            try await db.transaction { x in try await self.store.insert(association, namespaceID: namespace.id, x) }
        } catch DatabaseError.uniqueViolation {
            throw APIError.conflict("The metadata definition resource-type association of resource-type=\(association.resourceType) "
                                    + "to namespace=\(name) already exists.")
        }
        return association.json
    }

    public func dissociate(namespace name: String, resourceType: String, caller: AuthContext) async throws {
        let namespace = try await visibleNamespace(name, caller, action: "remove_metadef_resource_type_association")
        guard !namespace.protected else {
            throw APIError.forbidden("Metadata definition resource-type-association \(resourceType) is protected and cannot be deleted.")
        }
        guard try await store.deleteAssociation(namespaceID: namespace.id, resourceType: resourceType, db) else {
            throw APIError.notFound("The metadata definition resource-type association of resource-type=\(resourceType) "
                                    + "to namespace=\(name), was not found.")
        }
    }

    // MARK: Properties

    static func propertyNotFound(_ name: String, _ namespace: String) -> APIError {
        APIError.notFound("The metadata definition property with name=\(name) was not found in namespace=\(namespace).")
    }

    static func propertyExists(_ name: String, _ namespace: String) -> APIError {
        APIError.conflict("A metadata definition property with name=\(name) already exists in namespace=\(namespace).")
    }

    public func properties(namespace name: String, caller: AuthContext) async throws -> [MetadefProperty] {
        let namespace = try await visibleNamespace(name, caller, action: "get_metadef_properties")
        return try await store.properties(namespaceID: namespace.id, db)
    }

    public func createProperty(namespace name: String, _ body: JSON, caller: AuthContext) async throws -> MetadefProperty {
        let namespace = try await visibleNamespace(name, caller, action: "add_metadef_property")
        let property = try MetadefValidation.property(body)
        do {
            try await store.insert(property, namespaceID: namespace.id, now: Date(), db)
        } catch DatabaseError.uniqueViolation {
            throw Self.propertyExists(property.name, name)
        }
        return property
    }

    /// The property; with `resourceType`, `propertyName` carries that association's prefix,
    /// which is removed before the lookup (a name without it is 404).
    public func property(namespace name: String, _ propertyName: String, resourceType: String?, caller: AuthContext) async throws -> MetadefProperty {
        let namespace = try await visibleNamespace(name, caller, action: "get_metadef_property")
        var lookup = propertyName
        if let resourceType {
            guard let association = try await store.associations(namespaceID: namespace.id, db).first(where: { $0.resourceType == resourceType }) else {
                throw APIError.notFound("The metadata definition resource-type association of resource-type=\(resourceType) "
                                        + "to namespace=\(name), was not found.")
            }
            if let prefix = association.prefix, !prefix.isEmpty {
                guard propertyName.hasPrefix(prefix) else {
                    throw APIError.notFound("Property \(propertyName) does not start with the expected resource type association prefix of '\(prefix)'.")
                }
                lookup = String(propertyName.dropFirst(prefix.count))
            }
        }
        guard let property = try await store.property(namespaceID: namespace.id, name: lookup, db) else {
            throw Self.propertyNotFound(propertyName, name)
        }
        return property
    }

    public func updateProperty(namespace name: String, _ propertyName: String, _ body: JSON, caller: AuthContext) async throws -> MetadefProperty {
        let namespace = try await visibleNamespace(name, caller, action: "modify_metadef_property")
        var fields = try MetadefValidation.object(body, what: "property")
        if fields["name"] == nil { fields["name"] = .string(propertyName) }
        let property = try MetadefValidation.property(.object(fields))
        do {
            guard try await store.replace(property: propertyName, with: property, namespaceID: namespace.id, now: Date(), db) else {
                throw Self.propertyNotFound(propertyName, name)
            }
        } catch DatabaseError.uniqueViolation {
            throw Self.propertyExists(property.name, name)
        }
        return property
    }

    public func deleteProperty(namespace name: String, _ propertyName: String, caller: AuthContext) async throws {
        let namespace = try await visibleNamespace(name, caller, action: "remove_metadef_property")
        guard try await store.deleteChildren("image_metadef_property", namespaceID: namespace.id, name: propertyName, db) > 0 else {
            throw Self.propertyNotFound(propertyName, name)
        }
    }

    public func deleteProperties(namespace name: String, caller: AuthContext) async throws {
        try await deleteAll("image_metadef_property", namespace: name, action: "remove_metadef_property", caller: caller)
    }

    // MARK: Objects

    static func objectNotFound(_ name: String, _ namespace: String) -> APIError {
        APIError.notFound("The metadata definition object with name=\(name) was not found in namespace=\(namespace).")
    }

    static func objectExists(_ name: String, _ namespace: String) -> APIError {
        APIError.conflict("A metadata definition object with name=\(name) already exists in namespace=\(namespace).")
    }

    /// The namespace's objects, sorted and paged like namespaces (by name as the marker).
    public func objects(namespace name: String, _ query: [String: String], caller: AuthContext) async throws -> ([JSON], String?) {
        let namespace = try await visibleNamespace(name, caller, action: "get_metadef_objects")
        let (page, next) = try Self.sortedPage(try await store.objects(namespaceID: namespace.id, db), query)
        return (page.map { $0.json(namespace: name) }, next)
    }

    public func createObject(namespace name: String, _ body: JSON, caller: AuthContext) async throws -> JSON {
        let namespace = try await visibleNamespace(name, caller, action: "add_metadef_object")
        let object = try MetadefValidation.metadefObject(body, now: Date())
        do {
            try await store.insert(object, namespaceID: namespace.id, db)
        } catch DatabaseError.uniqueViolation {
            throw Self.objectExists(object.name, name)
        }
        return object.json(namespace: name)
    }

    public func object(namespace name: String, _ objectName: String, caller: AuthContext) async throws -> JSON {
        let namespace = try await visibleNamespace(name, caller, action: "get_metadef_object")
        guard let object = try await store.object(namespaceID: namespace.id, name: objectName, db) else {
            throw Self.objectNotFound(objectName, name)
        }
        return object.json(namespace: name)
    }

    public func updateObject(namespace name: String, _ objectName: String, _ body: JSON, caller: AuthContext) async throws -> JSON {
        let namespace = try await visibleNamespace(name, caller, action: "modify_metadef_object")
        guard let existing = try await store.object(namespaceID: namespace.id, name: objectName, db) else {
            throw Self.objectNotFound(objectName, name)
        }
        var fields = try MetadefValidation.object(body, what: "object")
        if fields["name"] == nil { fields["name"] = .string(objectName) }
        var object = try MetadefValidation.metadefObject(.object(fields), now: Date())
        object.createdAt = existing.createdAt
        do {
            guard try await store.replace(object: objectName, with: object, namespaceID: namespace.id, db) else {
                throw Self.objectNotFound(objectName, name)
            }
        } catch DatabaseError.uniqueViolation {
            throw Self.objectExists(object.name, name)
        }
        return object.json(namespace: name)
    }

    public func deleteObject(namespace name: String, _ objectName: String, caller: AuthContext) async throws {
        let namespace = try await visibleNamespace(name, caller, action: "delete_metadef_object")
        guard try await store.deleteChildren("image_metadef_object", namespaceID: namespace.id, name: objectName, db) > 0 else {
            throw Self.objectNotFound(objectName, name)
        }
    }

    public func deleteObjects(namespace name: String, caller: AuthContext) async throws {
        try await deleteAll("image_metadef_object", namespace: name, action: "delete_metadef_object", caller: caller)
    }

    // MARK: Tags

    static func tagNotFound(_ name: String, _ namespace: String) -> APIError {
        APIError.notFound("The metadata definition tag with name=\(name) was not found in namespace=\(namespace).")
    }

    static func tagExists(_ name: String, _ namespace: String) -> APIError {
        APIError.conflict("A metadata tag with name=\(name) already exists in namespace=\(namespace). "
                          + "(Please note that metadata tag names are case insensitive).")
    }

    /// The namespace's tags, sorted and paged like namespaces (by name as the marker).
    public func tags(namespace name: String, _ query: [String: String], caller: AuthContext) async throws -> ([JSON], String?) {
        let namespace = try await visibleNamespace(name, caller, action: "get_metadef_tags")
        let (page, next) = try Self.sortedPage(try await store.tags(namespaceID: namespace.id, db), query)
        return (page.map(\.json), next)
    }

    public func tag(namespace name: String, _ tagName: String, caller: AuthContext) async throws -> JSON {
        let namespace = try await visibleNamespace(name, caller, action: "get_metadef_tag")
        guard let tag = try await store.tags(namespaceID: namespace.id, db).first(where: { $0.name == tagName }) else {
            throw Self.tagNotFound(tagName, name)
        }
        return tag.json
    }

    public func createTag(namespace name: String, _ tagName: String, caller: AuthContext) async throws -> JSON {
        let namespace = try await visibleNamespace(name, caller, action: "add_metadef_tag")
        let now = Date()
        let tag = MetadefTag(name: try MetadefValidation.tagName(tagName), createdAt: now, updatedAt: now)
        do {
            try await store.insert(tag, namespaceID: namespace.id, db)
        } catch DatabaseError.uniqueViolation {
            throw Self.tagExists(tagName, name)
        }
        return tag.json
    }

    /// Creates the tags in `{"tags": [{"name": …}, …]}`: with `append`, beside the existing
    /// ones, otherwise replacing them all. A repeated name (in the body, or with an existing
    /// tag when appending) is 409 and changes nothing.
    public func createTags(namespace name: String, _ body: JSON, append: Bool, caller: AuthContext) async throws -> [JSON] {
        let namespace = try await visibleNamespace(name, caller, action: "add_metadef_tags")
        guard let items = body["tags"]?.arrayValue else { throw APIError.badRequest("'tags' is a required property and must be an array.") }
        let now = Date()
        var tags: [MetadefTag] = []
        for item in items {
            guard let tagName = item["name"]?.stringValue else { throw APIError.badRequest("Each tag must be an object with a 'name'.") }
            if tags.contains(where: { $0.name.lowercased() == tagName.lowercased() }) {
                throw APIError.conflict("Duplicate tag names in the request: \(tagName).")
            }
            tags.append(MetadefTag(name: try MetadefValidation.tagName(tagName), createdAt: now, updatedAt: now))
        }
        let created = tags
        do {
            try await db.transaction { x in
                if !append { try await self.store.deleteChildren("image_metadef_tag", namespaceID: namespace.id, x) }
                for tag in created { try await self.store.insert(tag, namespaceID: namespace.id, x) }
            }
        } catch DatabaseError.uniqueViolation {
            let existing = Set(try await store.tags(namespaceID: namespace.id, db).map { $0.name.lowercased() })
            throw Self.tagExists(created.first { existing.contains($0.name.lowercased()) }?.name ?? "", name)
        }
        return created.map { ["name": .string($0.name)] }
    }

    public func updateTag(namespace name: String, _ tagName: String, _ body: JSON, caller: AuthContext) async throws -> JSON {
        let namespace = try await visibleNamespace(name, caller, action: "modify_metadef_tag")
        let fields = try MetadefValidation.object(body, what: "tag")
        if let unknown = fields.keys.first(where: { $0 != "name" }) {
            throw APIError.badRequest("Additional properties are not allowed ('\(unknown)' was unexpected).")
        }
        let newName = try MetadefValidation.tagName(try MetadefValidation.string(fields, "name", maxLength: 255, required: true)!)
        let now = Date()
        do {
            guard try await store.rename(tag: tagName, to: newName, namespaceID: namespace.id, now: now, db) else {
                throw Self.tagNotFound(tagName, name)
            }
        } catch DatabaseError.uniqueViolation {
            throw Self.tagExists(newName, name)
        }
        guard let tag = try await store.tags(namespaceID: namespace.id, db).first(where: { $0.name == newName }) else {
            throw Self.tagNotFound(newName, name)
        }
        return tag.json
    }

    public func deleteTag(namespace name: String, _ tagName: String, caller: AuthContext) async throws {
        let namespace = try await visibleNamespace(name, caller, action: "delete_metadef_tag")
        guard try await store.deleteChildren("image_metadef_tag", namespaceID: namespace.id, name: tagName, db) > 0 else {
            throw Self.tagNotFound(tagName, name)
        }
    }

    public func deleteTags(namespace name: String, caller: AuthContext) async throws {
        try await deleteAll("image_metadef_tag", namespace: name, action: "delete_metadef_tags", caller: caller)
    }
}
