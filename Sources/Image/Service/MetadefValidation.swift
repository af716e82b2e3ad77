import Foundation
import NimbusCore

/// Glance's checks on metadata-definition bodies. Every failure is a 400 with the offending
/// field named; keys the schemas mark read-only (`created_at`, `self`, …) are ignored, since
/// clients send back what they fetched.
enum MetadefValidation {
    static let readOnly: Set<String> = ["created_at", "updated_at", "schema", "self"]
    static let propertyTypes: Set<String> = ["array", "boolean", "integer", "number", "object", "string"]
    static let propertyKeys: Set<String> = ["name", "title", "description", "operators", "type", "enum", "default", "readonly",
                                            "minimum", "maximum", "maxLength", "minLength", "pattern", "items", "uniqueItems",
                                            "minItems", "maxItems", "additionalItems"]

    static func object(_ body: JSON, what: String) throws -> [String: JSON] {
        guard let fields = body.objectValue else { throw APIError.badRequest("The \(what) body must be a JSON object.") }
        return fields.filter { !readOnly.contains($0.key) }
    }

    /// A string of 1…`maxLength` characters, or nil when absent or null and not `required`.
    static func string(_ fields: [String: JSON], _ key: String, maxLength: Int, required: Bool = false) throws -> String? {
        guard let value = fields[key], !value.isNull else {
            if required { throw APIError.badRequest("'\(key)' is a required property.") }
            return nil
        }
        guard let s = value.stringValue else { throw APIError.badRequest("\(value.serialized()) is not of type 'string' for '\(key)'.") }
        if required && s.isEmpty { throw APIError.badRequest("'\(key)' may not be empty.") }
        guard s.count <= maxLength else { throw APIError.badRequest("'\(key)' is too long (maximum \(maxLength) characters).") }
        return s
    }

    static func bool(_ fields: [String: JSON], _ key: String) throws -> Bool? {
        guard let value = fields[key], !value.isNull else { return nil }
        guard let b = value.boolValue else { throw APIError.badRequest("\(value.serialized()) is not of type 'boolean' for '\(key)'.") }
        return b
    }

    static func stringArray(_ fields: [String: JSON], _ key: String) throws -> [String]? {
        guard let value = fields[key], !value.isNull else { return nil }
        let strings = value.arrayValue?.compactMap(\.stringValue)
        guard let strings, strings.count == value.arrayValue?.count else { throw APIError.badRequest("'\(key)' must be an array of strings.") }
        return strings
    }

    /// A property definition; `name` is taken from the body unless `name` is given (an
    /// object's property map names them by key). Returns the definition without `name`.
    static func property(_ body: JSON, name given: String? = nil) throws -> MetadefProperty {
        let fields = try object(body, what: "property")
        if let unknown = fields.keys.first(where: { !propertyKeys.contains($0) }) {
            throw APIError.badRequest("Additional properties are not allowed ('\(unknown)' was unexpected).")
        }
        let name = try given ?? string(fields, "name", maxLength: 255, required: true)!
        guard !name.isEmpty, name.count <= 255 else { throw APIError.badRequest("Property names must be 1 to 255 characters.") }
        guard let type = try string(fields, "type", maxLength: 20, required: true), propertyTypes.contains(type) else {
            throw APIError.badRequest("'type' must be one of \(propertyTypes.sorted()).")
        }
        _ = try string(fields, "title", maxLength: 255, required: true)
        _ = try string(fields, "description", maxLength: 2048)
        _ = try string(fields, "pattern", maxLength: 4096)
        _ = try stringArray(fields, "operators")
        for key in ["readonly", "uniqueItems", "additionalItems"] { _ = try bool(fields, key) }
        for key in ["minimum", "maximum"] {
            if let v = fields[key], !v.isNull, v.doubleValue == nil { throw APIError.badRequest("\(v.serialized()) is not of type 'number' for '\(key)'.") }
        }
        for key in ["maxLength", "minLength", "minItems", "maxItems"] {
            if let v = fields[key], !v.isNull, (v.intValue ?? -1) < 0 {
                throw APIError.badRequest("\(v.serialized()) is not a non-negative integer for '\(key)'.")
            }
        }
        if let values = fields["enum"], !values.isNull {
            guard let items = values.arrayValue else { throw APIError.badRequest("'enum' must be an array.") }
            guard Set(items.map { $0.serialized() }).count == items.count else { throw APIError.badRequest("'enum' has non-unique elements.") }
        }
        if let items = fields["items"], !items.isNull {
            guard let spec = items.objectValue, spec.keys.allSatisfy({ $0 == "type" || $0 == "enum" }) else {
                throw APIError.badRequest("'items' must be an object with only 'type' and 'enum'.")
            }
            if let t = spec["type"], !(t.stringValue.map(propertyTypes.contains) ?? false) {
                throw APIError.badRequest("'items.type' must be one of \(propertyTypes.sorted()).")
            }
            if let e = spec["enum"], e.arrayValue == nil { throw APIError.badRequest("'items.enum' must be an array.") }
        }
        var schema = fields.filter { !$0.value.isNull }
        schema["name"] = nil
        return MetadefProperty(name: name, schema: schema)
    }

    /// An object's property map: each value a property definition named by its key.
    static func propertyMap(_ value: JSON?) throws -> [String: JSON] {
        guard let value, !value.isNull else { return [:] }
        guard let map = value.objectValue else { throw APIError.badRequest("'properties' must be an object.") }
        var out: [String: JSON] = [:]
        for (name, definition) in map { out[name] = try property(definition, name: name).json }
        return out
    }

    /// An object's fields from a create or replace body.
    static func metadefObject(_ body: JSON, now: Date) throws -> MetadefObject {
        let fields = try object(body, what: "object")
        let allowed: Set<String> = ["name", "description", "required", "properties"]
        if let unknown = fields.keys.first(where: { !allowed.contains($0) }) {
            throw APIError.badRequest("Additional properties are not allowed ('\(unknown)' was unexpected).")
        }
        return MetadefObject(name: try string(fields, "name", maxLength: 80, required: true)!,
                             description: try string(fields, "description", maxLength: 2048),
                             required: try stringArray(fields, "required") ?? [], properties: try propertyMap(fields["properties"]),
                             createdAt: now, updatedAt: now)
    }

    static func tagName(_ name: String) throws -> String {
        guard !name.isEmpty, name.count <= 255 else { throw APIError.badRequest("Tag names must be 1 to 255 characters.") }
        return name
    }

    static func association(_ body: JSON, now: Date) throws -> MetadefAssociation {
        let fields = try object(body, what: "resource type association")
        let allowed: Set<String> = ["name", "prefix", "properties_target"]
        if let unknown = fields.keys.first(where: { !allowed.contains($0) }) {
            throw APIError.badRequest("Additional properties are not allowed ('\(unknown)' was unexpected).")
        }
        return MetadefAssociation(resourceType: try string(fields, "name", maxLength: 80, required: true)!,
                                  prefix: try string(fields, "prefix", maxLength: 80), propertiesTarget: try string(fields, "properties_target", maxLength: 80),
                                  createdAt: now, updatedAt: now)
    }
}
