@testable import NimbusCore

enum JSONTargets {
    /// A request body as `Request.jsonBody` sees it: the bytes go to `JSON.parse`. What parses
    /// must serialise and parse back to the same value (responses are built by `serialized()`),
    /// and every typed accessor a handler might call is run over every object in it.
    static func json(_ data: [UInt8]) {
        guard let value = try? JSON.parse(data) else { return }

        let text = value.serialized()
        guard let again = try? JSON.parse(text) else {
            fatalError("serialized() wrote JSON that JSON.parse rejects: \(text.prefix(200))")
        }
        guard again == value else {
            fatalError("JSON round trip changed the value: \(text.prefix(200))")
        }

        exerciseBody(value)
        walk(value, depth: 0)
    }

    /// What handlers do with a whole body: pick the object or list under a key.
    static func exerciseBody(_ body: JSON) {
        var keys = ["user", "server", "image", "network", "limits", "auth"]
        if let object = body.objectValue { keys += object.keys.prefix(8) }
        for key in keys {
            if let input = try? JSONInput(body: body, key: key) { exercise(input) }
            if let inputs = try? JSONInput.list(body: body, key: key) { inputs.prefix(8).forEach(exercise) }
        }
    }

    static func walk(_ value: JSON, depth: Int) {
        // The parser stops at 64 levels; 8 is deep enough to reach every accessor's branches.
        guard depth < 8 else { return }
        switch value {
        case .object(let fields):
            exercise(JSONInput(fields, path: depth == 0 ? "" : "body"))
            for child in fields.values.prefix(16) { walk(child, depth: depth + 1) }
        case .array(let items):
            for child in items.prefix(16) { walk(child, depth: depth + 1) }
        default:
            _ = value.intValue
            _ = value.doubleValue
            _ = value.typeName
        }
    }

    static func exercise(_ input: JSONInput) {
        _ = try? input.rejectUnknown(["name", "id", "enabled"])
        _ = input.extras(excluding: ["name", "id"])
        // The input's own keys (bounded, a body can have thousands), plus names that are
        // usually absent, so that both the missing and the present paths run.
        for key in Array(input.fields.keys.prefix(16)) + ["name", "missing"] {
            _ = input.has(key)
            _ = try? input.string(key)
            _ = try? input.requiredString(key)
            _ = try? input.requiredString(key, maxLength: 4, allowEmpty: true)
            _ = try? input.optionalString(key)
            _ = try? input.optionalString(key, maxLength: 0, allowEmpty: false)
            _ = try? input.bool(key)
            _ = try? input.int(key)
            _ = try? input.int(key, in: 0...65535)
            _ = try? input.int(key, in: Int64.min...Int64.max)
            _ = try? input.requiredInt(key, in: -1...1)
            _ = try? input.object(key)
            _ = try? input.requiredObject(key)
            _ = try? input.array(key)
            _ = try? input.stringArray(key)
        }
    }
}
