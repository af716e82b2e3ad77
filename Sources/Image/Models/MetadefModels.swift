import Foundation
import NimbusCore

/// A metadata definition namespace: a named, documented group of the properties, objects and
/// tags that other services' resources (images, flavors, aggregates, volumes) may carry.
/// `namespace` is the name the API addresses it by; `id` is internal, so a rename keeps its
/// children.
public struct MetadefNamespace: Sendable, Equatable {
    public var id: String
    public var namespace: String
    public var displayName: String?
    public var description: String?
    public var visibility: String
    public var protected: Bool
    public var owner: String?
    public var createdAt: Date
    public var updatedAt: Date

    static let visibilities: Set<String> = ["public", "private"]

    /// The fields every view shows, without children.
    var json: [String: JSON] {
        var out: [String: JSON] = [
            "namespace": .string(namespace), "visibility": .string(visibility), "protected": .bool(protected),
            "created_at": .string(Timestamps.iso8601(createdAt)), "updated_at": .string(Timestamps.iso8601(updatedAt)),
            "schema": "/v2/schemas/metadefs/namespace", "self": .string("/v2/metadefs/namespaces/\(namespace)"),
        ]
        if let displayName { out["display_name"] = .string(displayName) }
        if let description { out["description"] = .string(description) }
        if let owner { out["owner"] = .string(owner) }
        return out
    }
}

/// A namespace's link to a resource type: `prefix` is what the resource's own property keys
/// start with (`hw_` on images, `hw:` in flavor extra specs), and `propertiesTarget` which
/// of the resource's property sets they belong to (a volume's `image` metadata, say).
public struct MetadefAssociation: Sendable, Equatable {
    public var resourceType: String
    public var prefix: String?
    public var propertiesTarget: String?
    public var createdAt: Date
    public var updatedAt: Date

    var json: JSON {
        var out: [String: JSON] = ["name": .string(resourceType), "created_at": .string(Timestamps.iso8601(createdAt)),
                                   "updated_at": .string(Timestamps.iso8601(updatedAt))]
        if let prefix { out["prefix"] = .string(prefix) }
        if let propertiesTarget { out["properties_target"] = .string(propertiesTarget) }
        return .object(out)
    }
}

public struct MetadefResourceType: Sendable, Equatable {
    public var name: String
    public var protected: Bool
    public var createdAt: Date
    public var updatedAt: Date

    var json: JSON {
        ["name": .string(name), "created_at": .string(Timestamps.iso8601(createdAt)), "updated_at": .string(Timestamps.iso8601(updatedAt))]
    }
}

/// A property definition: its name and a JSON-schema fragment (`type`, `title`, `enum`, …)
/// already checked by `MetadefValidation.property`.
public struct MetadefProperty: Sendable, Equatable {
    public var name: String
    public var schema: [String: JSON]

    /// The definition as a property map's value (without `name`).
    var json: JSON { .object(schema) }
}

/// A named group of property definitions, some of them required.
public struct MetadefObject: Sendable, Equatable {
    public var name: String
    public var description: String?
    public var required: [String]
    public var properties: [String: JSON]
    public var createdAt: Date
    public var updatedAt: Date

    func json(namespace: String) -> JSON {
        var out: [String: JSON] = [
            "name": .string(name), "required": .array(required.map { .string($0) }), "properties": .object(properties),
            "created_at": .string(Timestamps.iso8601(createdAt)), "updated_at": .string(Timestamps.iso8601(updatedAt)),
            "schema": "/v2/schemas/metadefs/object", "self": .string("/v2/metadefs/namespaces/\(namespace)/objects/\(name)"),
        ]
        if let description { out["description"] = .string(description) }
        return .object(out)
    }
}

public struct MetadefTag: Sendable, Equatable {
    public var name: String
    public var createdAt: Date
    public var updatedAt: Date

    var json: JSON {
        ["name": .string(name), "created_at": .string(Timestamps.iso8601(createdAt)), "updated_at": .string(Timestamps.iso8601(updatedAt))]
    }
}

/// What a namespace's objects and tags share, for listing them alike: a name, unique in the
/// namespace, and creation and update times.
protocol MetadefNamedItem {
    var name: String { get }
    var createdAt: Date { get }
    var updatedAt: Date { get }
}

extension MetadefObject: MetadefNamedItem {}
extension MetadefTag: MetadefNamedItem {}
