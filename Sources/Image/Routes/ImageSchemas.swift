import NimbusCore

/// The JSON-schema documents under `/v2/schemas`. glanceclient fetches them, validates
/// responses against them and drops any field they do not list, so they describe every
/// field Nimbus returns.
enum ImageSchemas {
    static func nullable(_ type: String) -> JSON { ["type": [.string(type), "null"]] }

    static var image: JSON {
        let properties: [String: JSON] = [
            "id": ["type": "string", "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"],
            "name": ["type": ["null", "string"], "maxLength": 255],
            "status": ["type": "string", "readOnly": true, "enum": ["queued", "saving", "active", "killed", "deleted", "uploading", "importing", "pending_delete", "deactivated"]],
            "visibility": ["type": "string", "enum": ["community", "public", "private", "shared"]],
            "protected": ["type": "boolean"],
            "os_hidden": ["type": "boolean"],
            "checksum": ["type": ["null", "string"], "readOnly": true, "maxLength": 32],
            "os_hash_algo": ["type": ["null", "string"], "readOnly": true, "maxLength": 64],
            "os_hash_value": ["type": ["null", "string"], "readOnly": true, "maxLength": 128],
            "owner": ["type": ["null", "string"], "maxLength": 255],
            "size": ["type": ["null", "integer"], "readOnly": true],
            "virtual_size": ["type": ["null", "integer"], "readOnly": true],
            "container_format": ["type": ["null", "string"], "enum": [nil, "ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]],
            "disk_format": ["type": ["null", "string"], "enum": [nil, "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"]],
            "created_at": ["type": "string", "readOnly": true],
            "updated_at": ["type": "string", "readOnly": true],
            "tags": ["type": "array", "items": ["type": "string", "maxLength": 255]],
            "direct_url": ["type": "string", "readOnly": true],
            "min_ram": ["type": "integer"],
            "min_disk": ["type": "integer"],
            "self": ["type": "string", "readOnly": true],
            "file": ["type": "string", "readOnly": true],
            "schema": ["type": "string", "readOnly": true],
            "locations": ["type": "array", "items": ["type": "object"]],
            // Common custom properties glanceclient knows by name; `is_base: false` tells it
            // they are removable extras, not base fields.
            "kernel_id": ["type": ["null", "string"], "is_base": false],
            "ramdisk_id": ["type": ["null", "string"], "is_base": false],
            "instance_uuid": ["type": "string", "is_base": false],
            "architecture": ["type": "string", "is_base": false],
            "os_distro": ["type": "string", "is_base": false],
            "os_version": ["type": "string", "is_base": false],
            "description": ["type": "string", "is_base": false],
        ]
        return ["name": "image", "properties": .object(properties), "additionalProperties": ["type": "string"],
                "links": [["rel": "self", "href": "{self}"], ["rel": "enclosure", "href": "{file}"], ["rel": "describedby", "href": "{schema}"]]]
    }

    static var images: JSON {
        ["name": "images", "properties": ["images": ["type": "array", "items": image], "schema": ["type": "string"],
                                          "first": ["type": "string"], "next": ["type": "string"]],
         "links": [["rel": "first", "href": "{first}"], ["rel": "next", "href": "{next}"], ["rel": "describedby", "href": "{schema}"]]]
    }

    static var member: JSON {
        ["name": "member", "properties": [
            "image_id": ["type": "string"], "member_id": ["type": "string"], "status": ["type": "string", "enum": ["pending", "accepted", "rejected"]],
            "created_at": ["type": "string"], "updated_at": ["type": "string"], "schema": ["type": "string", "readOnly": true]]]
    }

    static var members: JSON {
        ["name": "members", "properties": ["members": ["type": "array", "items": member], "schema": ["type": "string"]],
         "links": [["rel": "self", "href": "{self}"], ["rel": "schema", "href": "{schema}"]]]
    }

    /// A task; `full` adds what only a show returns (input, result, message and the ids of
    /// its image, user and request).
    static func task(full: Bool) -> JSON {
        var properties: [String: JSON] = [
            "id": ["type": "string", "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"],
            "type": ["type": "string", "enum": ["import", "api_image_import"]],
            "status": ["type": "string", "enum": ["pending", "processing", "success", "failure"]],
            "owner": ["type": "string"], "expires_at": ["type": ["null", "string"]],
            "created_at": ["type": "string"], "updated_at": ["type": "string"],
            "self": ["type": "string", "readOnly": true], "schema": ["type": "string", "readOnly": true]]
        if full {
            for key in ["input", "result"] { properties[key] = ["type": ["null", "object"]] }
            for key in ["message", "image_id", "user_id", "request_id"] { properties[key] = ["type": "string"] }
        }
        return ["name": "task", "properties": .object(properties)]
    }

    static var tasks: JSON {
        ["name": "tasks", "properties": ["tasks": ["type": "array", "items": task(full: false)], "schema": ["type": "string"],
                                         "first": ["type": "string"], "next": ["type": "string"]],
         "links": [["rel": "first", "href": "{first}"], ["rel": "next", "href": "{next}"], ["rel": "describedby", "href": "{schema}"]]]
    }
}
