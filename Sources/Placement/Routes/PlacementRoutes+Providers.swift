import Foundation
import HTTPTypes
import Hummingbird
import NimbusCore

/// Resource providers, their inventories, usages, aggregates and traits; resource classes and
/// traits.
extension PlacementRoutes {
    // MARK: JSON

    func providerJSON(_ p: ResourceProvider, _ call: Call) -> JSON {
        let base = "\(Self.prefix)/resource_providers/\(p.uuid)"
        var links: [JSON] = [["rel": "self", "href": .string(base)], ["rel": "inventories", "href": .string(base + "/inventories")],
                             ["rel": "usages", "href": .string(base + "/usages")]]
        if call.at(1) { links.append(["rel": "aggregates", "href": .string(base + "/aggregates")]) }
        if call.at(6) { links.append(["rel": "traits", "href": .string(base + "/traits")]) }
        if call.at(11) { links.append(["rel": "allocations", "href": .string(base + "/allocations")]) }
        var out: [String: JSON] = ["uuid": .string(p.uuid), "name": .string(p.name), "generation": .int(p.generation), "links": .array(links)]
        if call.at(14) {
            out["parent_provider_uuid"] = .optional(p.parentUUID)
            out["root_provider_uuid"] = .string(p.rootUUID)
        }
        return .object(out)
    }

    static func inventoryJSON(_ i: Inventory) -> [String: JSON] {
        ["total": .int(i.total), "reserved": .int(i.reserved), "min_unit": .int(i.minUnit), "max_unit": .int(i.maxUnit),
         "step_size": .int(i.stepSize), "allocation_ratio": .double(i.allocationRatio)]
    }

    static let inventoryFields: Set<String> = ["total", "reserved", "min_unit", "max_unit", "step_size", "allocation_ratio"]

    /// One inventory from a body, defaults filled in.
    static func inventory(_ body: SchemaBody) throws -> Inventory {
        var i = Inventory(total: try body.int("total", min: 1) ?? 0)
        i.reserved = try body.int("reserved", min: 0) ?? 0
        i.minUnit = try body.int("min_unit", min: 1) ?? 1
        i.maxUnit = try body.int("max_unit", min: 1) ?? Inventory.maxInteger
        i.stepSize = try body.int("step_size", min: 1) ?? 1
        i.allocationRatio = try body.number("allocation_ratio", max: 3.40282e38) ?? 1.0
        return i
    }

    // MARK: Providers

    func listProviders(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_providers:list")
        let q = call.query
        try q.allowOnly { name in
            switch name {
            case "name", "uuid": return true
            case "member_of": return call.at(3)
            case "resources": return call.at(4)
            case "in_tree": return call.at(14)
            case "required": return call.at(18)
            default: return false
            }
        }
        var filter = ProviderFilter()
        filter.name = q.last("name")
        if let uuid = q.last("uuid") { filter.uuid = try PlacementQuery.uuid(uuid, key: "uuid") }
        let members = try PlacementQuery.memberOf(q.values("member_of"), key: "member_of", version: call.version)
        (filter.memberOf, filter.forbiddenAggregates) = (members.memberOf, members.forbidden)
        if let resources = q.last("resources") {
            filter.resources = try PlacementQuery.resources(resources)
            for rc in filter.resources.keys.sorted() where try await !service.resourceClassExists(rc) {
                throw APIError.badRequest("Invalid resource class in resources parameter: No such resource class \(rc).")
            }
        }
        if let inTree = q.last("in_tree") { filter.inTree = try PlacementQuery.uuid(inTree, key: "in_tree") }
        let traits = try PlacementQuery.traits(q.values("required"), key: "required", version: call.version)
        try await requireTraits(PlacementQuery.traitNames(traits))
        (filter.requiredTraits, filter.forbiddenTraits) = (traits.required, traits.forbidden)
        let providers = try await service.listProviders(filter)
        return json(["resource_providers": .array(providers.map { providerJSON($0, call) })])
    }

    func requireTraits(_ names: Set<String>) async throws {
        var missing: [String] = []
        for name in names.sorted() where try await !service.traitExists(name) { missing.append(name) }
        if !missing.isEmpty { throw APIError.badRequest("Invalid query string parameters: No such trait(s): \(missing.joined(separator: ", ")).") }
    }

    func createProvider(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_providers:create")
        let body = try SchemaBody(try await body(call))
        try body.check(allowed: call.at(14) ? ["name", "uuid", "parent_provider_uuid"] : ["name", "uuid"], required: ["name"])
        let name = try body.string("name", maxLength: 200)!
        var uuid: String?
        if let raw = try body.string("uuid", maxLength: 36) {
            guard let u = PlacementNames.uuid(raw) else { throw SchemaBody.invalid("'\(raw)' is not a 'uuid'") }
            uuid = u
        }
        var parent: String?
        if call.at(14), let value = body.fields["parent_provider_uuid"], !value.isNull {
            guard let raw = value.stringValue, let u = PlacementNames.uuid(raw) else { throw SchemaBody.invalid("\(value.shown) is not a 'uuid'") }
            parent = u
        }
        let provider = try await service.createProvider(uuid: uuid, name: name, parent: parent)
        let headers: HTTPFields = [.location: location(call, "/resource_providers/\(provider.uuid)")]
        if call.at(20) { return json(providerJSON(provider, call), headers: headers) }
        return Response(status: .created, headers: headers)
    }

    func showProvider(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_providers:show")
        return json(providerJSON(try await service.provider(uuidParam(call)), call))
    }

    func updateProvider(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_providers:update")
        let body = try SchemaBody(try await body(call))
        try body.check(allowed: call.at(14) ? ["name", "parent_provider_uuid"] : ["name"], required: ["name"])
        let name = try body.string("name", maxLength: 200)!
        var parent: String??
        if let value = body.fields["parent_provider_uuid"] {
            if value.isNull {
                parent = .some(nil)
            } else {
                guard let raw = value.stringValue, let u = PlacementNames.uuid(raw) else { throw SchemaBody.invalid("\(value.shown) is not a 'uuid'") }
                parent = .some(u)
            }
        }
        let provider = try await service.updateProvider(uuidParam(call), name: name, parent: parent, allowReparent: call.at(37))
        return json(providerJSON(provider, call))
    }

    func deleteProvider(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_providers:delete")
        try await service.deleteProvider(uuidParam(call))
        return Response(status: .noContent)
    }

    // MARK: Inventories

    func listInventories(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_providers:inventories:list")
        let (generation, inventories) = try await service.inventories(uuidParam(call))
        return json(["resource_provider_generation": .int(generation),
                     "inventories": .object(inventories.mapValues { .object(Self.inventoryJSON($0)) })])
    }

    func setInventories(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_providers:inventories:update")
        let body = try SchemaBody(try await body(call))
        try body.check(allowed: ["resource_provider_generation", "inventories"], required: ["resource_provider_generation", "inventories"])
        guard let generation = try body.generation("resource_provider_generation") ?? nil else {
            throw SchemaBody.invalid("'resource_provider_generation' is a required property")
        }
        var inventories: [String: Inventory] = [:]
        for (rc, value) in try body.object("inventories") ?? [:] {
            guard PlacementNames.isName(rc) else { throw SchemaBody.invalid("'\(rc)' does not match '^[A-Z0-9_]+$'") }
            let one = try SchemaBody(value, path: "inventories.\(rc)")
            try one.check(allowed: Self.inventoryFields, required: ["total"])
            inventories[rc] = try Self.inventory(one)
        }
        let result = try await service.setInventories(uuidParam(call), generation: generation, inventories, strictReserved: !call.at(26))
        return json(["resource_provider_generation": .int(result.generation),
                     "inventories": .object(result.inventories.mapValues { .object(Self.inventoryJSON($0)) })])
    }

    func addInventory(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_providers:inventories:create")
        let body = try SchemaBody(try await body(call))
        try body.check(allowed: Self.inventoryFields.union(["resource_class"]), required: ["resource_class", "total"])
        let rc = try body.string("resource_class", pattern: PlacementNames.isName)!
        let uuid = uuidParam(call)
        let result = try await service.addInventory(uuid, rc, try Self.inventory(body), strictReserved: !call.at(26))
        var out = Self.inventoryJSON(result.inventory)
        out["resource_provider_generation"] = .int(result.generation)
        return json(.object(out), status: .created, headers: [.location: location(call, "/resource_providers/\(uuid)/inventories/\(rc)")])
    }

    func deleteInventories(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_providers:inventories:delete")
        _ = try await service.setInventories(uuidParam(call), generation: nil, [:], strictReserved: false)
        return Response(status: .noContent)
    }

    func showInventory(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_providers:inventories:show")
        let result = try await service.inventory(uuidParam(call), call.param("rc"))
        var out = Self.inventoryJSON(result.inventory)
        out["resource_provider_generation"] = .int(result.generation)
        return json(.object(out))
    }

    func updateInventory(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_providers:inventories:update")
        let body = try SchemaBody(try await body(call))
        try body.check(allowed: Self.inventoryFields.union(["resource_provider_generation"]), required: ["resource_provider_generation", "total"])
        guard let generation = try body.generation("resource_provider_generation") ?? nil else {
            throw SchemaBody.invalid("'resource_provider_generation' is a required property")
        }
        let result = try await service.updateInventory(uuidParam(call), call.param("rc"), generation: generation, try Self.inventory(body),
                                                       strictReserved: !call.at(26))
        var out = Self.inventoryJSON(result.inventory)
        out["resource_provider_generation"] = .int(result.generation)
        return json(.object(out))
    }

    func deleteInventory(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_providers:inventories:delete")
        try await service.deleteInventory(uuidParam(call), call.param("rc"))
        return Response(status: .noContent)
    }

    // MARK: Usages

    func providerUsages(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_providers:usages")
        let (generation, usages) = try await service.providerUsages(uuidParam(call))
        return json(["resource_provider_generation": .int(generation), "usages": .object(usages.mapValues { .int($0) })])
    }

    func projectUsages(_ call: Call) async throws -> Response {
        let q = call.query
        try q.allowOnly { ["project_id", "user_id"].contains($0) || ($0 == "consumer_type" && call.at(38)) }
        guard let project = q.last("project_id") else {
            throw APIError.badRequest("Invalid query string parameters: 'project_id' is a required property")
        }
        try authorize(call, "placement:usages", target: ["project_id": project])
        let groups = try await service.projectUsages(project: project, user: q.last("user_id"))
        guard call.at(38) else {
            var total: [String: Int64] = [:]
            for group in groups.values { for (rc, n) in group.usages { total[rc, default: 0] += n } }
            return json(["usages": .object(total.filter { $0.value > 0 }.mapValues { .int($0) })])
        }
        func entry(_ usages: [String: Int64], _ consumers: Int64) -> JSON {
            var out = usages.filter { $0.value > 0 }.mapValues { JSON.int($0) }
            out["consumer_count"] = .int(consumers)
            return .object(out)
        }
        var out: [String: JSON] = [:]
        switch q.last("consumer_type") {
        case "all"?:
            var total: [String: Int64] = [:]
            var count: Int64 = 0
            for group in groups.values {
                count += group.consumers
                for (rc, n) in group.usages { total[rc, default: 0] += n }
            }
            if count > 0 { out["all"] = entry(total, count) }
        case let type?:
            guard type == "unknown" || PlacementNames.isName(type) else {
                throw APIError.badRequest("Invalid query string parameters: '\(type)' does not match '^[A-Z0-9_]+$'")
            }
            if let group = groups[type == "unknown" ? nil : type], group.consumers > 0 { out[type] = entry(group.usages, group.consumers) }
        case nil:
            for (type, group) in groups where group.consumers > 0 { out[type ?? "unknown"] = entry(group.usages, group.consumers) }
        }
        return json(["usages": .object(out)])
    }

    // MARK: Aggregates

    func providerAggregates(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_providers:aggregates:list")
        let (generation, aggregates) = try await service.providerAggregates(uuidParam(call))
        var out: [String: JSON] = ["aggregates": .array(aggregates.map { .string($0) })]
        if call.at(19) { out["resource_provider_generation"] = .int(generation) }
        return json(.object(out))
    }

    func setProviderAggregates(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_providers:aggregates:update")
        let raw = try await body(call)
        let list: [JSON]
        var generation: Int64?
        if call.at(19) {
            let body = try SchemaBody(raw)
            try body.check(allowed: ["aggregates", "resource_provider_generation"], required: ["aggregates", "resource_provider_generation"])
            list = try body.array("aggregates") ?? []
            guard let g = try body.generation("resource_provider_generation") ?? nil else {
                throw SchemaBody.invalid("'resource_provider_generation' is a required property")
            }
            generation = g
        } else {
            guard let array = raw.arrayValue else { throw SchemaBody.invalid("\(raw.shown) is not of type 'array'") }
            list = array
        }
        var aggregates: [String] = []
        for item in list {
            guard let s = item.stringValue, let uuid = PlacementNames.uuid(s) else { throw SchemaBody.invalid("\(item.shown) is not a 'uuid'") }
            aggregates.append(uuid)
        }
        if Set(aggregates).count != aggregates.count { throw SchemaBody.invalid("\(JSON.array(list).shown) has non-unique elements") }
        let result = try await service.setProviderAggregates(uuidParam(call), generation: generation, Set(aggregates))
        var out: [String: JSON] = ["aggregates": .array(result.aggregates.map { .string($0) })]
        if call.at(19) { out["resource_provider_generation"] = .int(result.generation) }
        return json(.object(out))
    }

    // MARK: Provider traits

    func providerTraits(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_providers:traits:list")
        let (generation, traits) = try await service.providerTraits(uuidParam(call))
        return json(["traits": .array(traits.map { .string($0) }), "resource_provider_generation": .int(generation)])
    }

    func setProviderTraits(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_providers:traits:update")
        let body = try SchemaBody(try await body(call))
        try body.check(allowed: ["traits", "resource_provider_generation"], required: ["traits", "resource_provider_generation"])
        guard let generation = try body.generation("resource_provider_generation") ?? nil else {
            throw SchemaBody.invalid("'resource_provider_generation' is a required property")
        }
        var traits: [String] = []
        for item in try body.array("traits") ?? [] {
            guard let name = item.stringValue, !name.isEmpty, name.count <= 255 else { throw SchemaBody.invalid("\(item.shown) is not a valid trait name") }
            traits.append(name)
        }
        if Set(traits).count != traits.count { throw SchemaBody.invalid("traits has non-unique elements") }
        let result = try await service.setProviderTraits(uuidParam(call), generation: generation, Set(traits))
        return json(["traits": .array(result.traits.map { .string($0) }), "resource_provider_generation": .int(result.generation)])
    }

    func deleteProviderTraits(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_providers:traits:delete")
        try await service.deleteProviderTraits(uuidParam(call))
        return Response(status: .noContent)
    }

    // MARK: Resource classes

    func resourceClassJSON(_ name: String) -> JSON {
        ["name": .string(name), "links": [["rel": "self", "href": .string("\(Self.prefix)/resource_classes/\(name)")]]]
    }

    func listResourceClasses(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_classes:list")
        return json(["resource_classes": .array(try await service.resourceClasses().map(resourceClassJSON))])
    }

    func createResourceClass(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_classes:create")
        let body = try SchemaBody(try await body(call))
        try body.check(allowed: ["name"], required: ["name"])
        let name = try body.string("name")!
        try PlacementService.requireCustomClass(name)
        try await service.createResourceClass(name)
        return Response(status: .created, headers: [.location: location(call, "/resource_classes/\(name)")])
    }

    func showResourceClass(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_classes:show")
        let name = call.param("name")
        guard try await service.resourceClassExists(name) else { throw APIError.notFound("No such resource class \(name).") }
        return json(resourceClassJSON(name))
    }

    func putResourceClass(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_classes:update")
        let name = call.param("name")
        if call.at(7) {
            try PlacementService.requireCustomClass(name)
            let created = try await service.ensureResourceClass(name)
            return Response(status: created ? .created : .noContent, headers: [.location: location(call, "/resource_classes/\(name)")])
        }
        let body = try SchemaBody(try await body(call))
        try body.check(allowed: ["name"], required: ["name"])
        let newName = try body.string("name")!
        try await service.renameResourceClass(name, to: newName)
        return json(resourceClassJSON(newName))
    }

    func deleteResourceClass(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_classes:delete")
        try await service.deleteResourceClass(call.param("name"))
        return Response(status: .noContent)
    }

    // MARK: Traits

    func listTraits(_ call: Call) async throws -> Response {
        try authorize(call, "placement:traits:list")
        let q = call.query
        try q.allowOnly { $0 == "name" || $0 == "associated" }
        var filter: PlacementService.TraitNameFilter?
        if let name = q.last("name") {
            if name.hasPrefix("in:") {
                filter = .anyOf(Set(name.dropFirst(3).split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }))
            } else if name.hasPrefix("startswith:") {
                filter = .prefix(String(name.dropFirst("startswith:".count)))
            } else {
                throw APIError.badRequest("Badly formatted name parameter. Expected name query string parameter in form: ?name=[in|startswith]:[name1,name2|prefix]. Got: \"\(name)\"")
            }
        }
        var associated: Bool?
        if let value = q.last("associated") {
            switch value.lowercased() {
            case "true": associated = true
            case "false": associated = false
            default:
                throw APIError.badRequest("Invalid query string parameters: '\(value)' is not one of ['true', 'false']")
            }
        }
        let traits = try await service.traits(name: filter, associated: associated)
        return json(["traits": .array(traits.map { .string($0) })])
    }

    func showTrait(_ call: Call) async throws -> Response {
        try authorize(call, "placement:traits:show")
        let name = call.param("name")
        guard try await service.traitExists(name) else { throw APIError.notFound("No such trait(s): \(name)") }
        return Response(status: .noContent)
    }

    func putTrait(_ call: Call) async throws -> Response {
        try authorize(call, "placement:traits:update")
        let name = call.param("name")
        let headers: HTTPFields = [.location: location(call, "/traits/\(name)")]
        try PlacementService.requireCustomTrait(name)
        let created = try await service.ensureTrait(name)
        return Response(status: created ? .created : .noContent, headers: headers)
    }

    func deleteTrait(_ call: Call) async throws -> Response {
        try authorize(call, "placement:traits:delete")
        try await service.deleteTrait(call.param("name"))
        return Response(status: .noContent)
    }
}
