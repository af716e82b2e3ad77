import NimbusCore

/// The JSON-schema documents under `/v2/schemas/metadefs`, describing the bodies the
/// metadefs API accepts and returns (the fields `MetadefValidation` checks).
enum MetadefSchemas {
    static let listLinks: JSON = [["rel": "first", "href": "{first}"], ["rel": "next", "href": "{next}"], ["rel": "describedby", "href": "{schema}"]]
    static let types: JSON = ["array", "boolean", "integer", "number", "object", "string", nil]

    /// One property definition, a JSON-schema fragment itself.
    static var propertyDefinition: [String: JSON] {
        [
            "name": ["type": "string", "maxLength": 255],
            "title": ["type": "string"],
            "description": ["type": "string"],
            "operators": ["type": "array", "items": ["type": "string"]],
            "type": ["type": "string", "enum": types],
            "required": ["type": "array", "items": ["type": "string"], "minItems": 1, "uniqueItems": true],
            "minimum": ["type": "number"], "maximum": ["type": "number"],
            "maxLength": ["type": "integer", "minimum": 0], "minLength": ["type": "integer", "minimum": 0],
            "pattern": ["type": "string", "format": "regex"],
            "enum": ["type": "array"],
            "readonly": ["type": "boolean"],
            "default": [:],
            "items": ["type": "object", "properties": ["type": ["type": "string", "enum": types], "enum": ["type": "array"]]],
            "uniqueItems": ["type": "boolean", "default": false],
            "minItems": ["type": "integer", "minimum": 0], "maxItems": ["type": "integer", "minimum": 0],
            "additionalItems": ["type": "boolean"],
        ]
    }

    static var property: JSON {
        ["name": "property", "properties": .object(propertyDefinition), "required": ["name", "title", "type"], "additionalProperties": false]
    }

    static var properties: JSON {
        var definition = propertyDefinition
        definition["name"] = nil
        return ["name": "properties", "properties": [
            "properties": ["type": "object", "additionalProperties": ["type": "object", "properties": .object(definition), "required": ["title", "type"]]],
            "first": ["type": "string"], "next": ["type": "string"], "schema": ["type": "string"]], "links": listLinks]
    }

    static var timestamps: [String: JSON] {
        ["created_at": ["type": "string", "readOnly": true, "format": "date-time"],
         "updated_at": ["type": "string", "readOnly": true, "format": "date-time"]]
    }

    static var association: JSON {
        var fields: [String: JSON] = ["name": ["type": "string", "maxLength": 80], "prefix": ["type": "string", "maxLength": 80],
                                      "properties_target": ["type": "string", "maxLength": 80]]
        fields.merge(timestamps) { a, _ in a }
        return ["name": "resource_type_association", "properties": .object(fields), "required": ["name"], "additionalProperties": false]
    }

    static var associations: JSON {
        ["name": "resource_type_associations", "properties": ["resource_type_associations": ["type": "array", "items": association],
                                                              "first": ["type": "string"], "next": ["type": "string"], "schema": ["type": "string"]],
         "links": listLinks]
    }

    static var object: JSON {
        var fields: [String: JSON] = ["name": ["type": "string", "maxLength": 80], "description": ["type": "string"],
                                      "required": ["type": "array", "items": ["type": "string"]],
                                      "properties": ["type": "object", "additionalProperties": ["type": "object", "properties": .object(propertyDefinition)]],
                                      "schema": ["type": "string", "readOnly": true], "self": ["type": "string", "readOnly": true]]
        fields.merge(timestamps) { a, _ in a }
        return ["name": "object", "properties": .object(fields), "required": ["name"], "additionalProperties": false]
    }

    static var objects: JSON {
        ["name": "objects", "properties": ["objects": ["type": "array", "items": object], "first": ["type": "string"],
                                           "next": ["type": "string"], "schema": ["type": "string"]], "links": listLinks]
    }

    static var tag: JSON {
        var fields: [String: JSON] = ["name": ["type": "string", "maxLength": 255]]
        fields.merge(timestamps) { a, _ in a }
        return ["name": "tag", "properties": .object(fields), "required": ["name"], "additionalProperties": false]
    }

    static var tags: JSON {
        ["name": "tags", "properties": ["tags": ["type": "array", "items": tag], "first": ["type": "string"],
                                        "next": ["type": "string"], "schema": ["type": "string"]], "links": listLinks]
    }

    static var namespace: JSON {
        var fields: [String: JSON] = [
            "namespace": ["type": "string", "maxLength": 80],
            "display_name": ["type": "string", "maxLength": 80],
            "description": ["type": "string", "maxLength": 500],
            "visibility": ["type": "string", "enum": ["public", "private"]],
            "protected": ["type": "boolean"],
            "owner": ["type": "string", "maxLength": 255],
            "schema": ["type": "string", "readOnly": true], "self": ["type": "string", "readOnly": true],
            "resource_type_associations": ["type": "array", "items": ["type": "object", "properties": [
                "name": ["type": "string"], "prefix": ["type": "string"], "properties_target": ["type": "string"]]]],
            "properties": ["type": "object", "additionalProperties": ["type": "object", "properties": .object(propertyDefinition)]],
            "objects": ["type": "array", "items": ["type": "object", "properties": [
                "name": ["type": "string"], "description": ["type": "string"], "required": ["type": "array", "items": ["type": "string"]],
                "properties": ["type": "object"]]]],
            "tags": ["type": "array", "items": ["type": "object", "properties": ["name": ["type": "string"]]]],
        ]
        fields.merge(timestamps) { a, _ in a }
        return ["name": "namespace", "properties": .object(fields), "required": ["namespace"], "additionalProperties": false,
                "links": [["rel": "self", "href": "{self}"], ["rel": "describedby", "href": "{schema}"]]]
    }

    static var namespaces: JSON {
        ["name": "namespaces", "properties": ["namespaces": ["type": "array", "items": namespace], "first": ["type": "string"],
                                              "next": ["type": "string"], "schema": ["type": "string"]], "links": listLinks]
    }

    /// Path under `/v2/schemas/metadefs/` → document.
    static var all: [(String, JSON)] {
        [("namespace", namespace), ("namespaces", namespaces), ("resource_type", association), ("resource_types", associations),
         ("object", object), ("objects", objects), ("property", property), ("properties", properties), ("tag", tag), ("tags", tags)]
    }
}
