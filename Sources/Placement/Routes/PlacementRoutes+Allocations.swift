import Foundation
import HTTPTypes
import Hummingbird
import NimbusCore

/// Allocations, allocation candidates and the reshaper.
extension PlacementRoutes {
    // MARK: Bodies

    /// `{RC: amount ≥ 1, …}` with at least one class.
    static func resources(_ value: JSON?, path: String) throws -> [String: Int64] {
        guard let value else { throw SchemaBody.invalid("'resources' is a required property in \(path)") }
        guard let object = value.objectValue else { throw SchemaBody.invalid("\(value.shown) is not of type 'object' in \(path)") }
        guard !object.isEmpty else { throw SchemaBody.invalid("{} does not have enough properties in \(path)") }
        var out: [String: Int64] = [:]
        for (rc, amount) in object {
            guard PlacementNames.isName(rc) else { throw SchemaBody.invalid("'\(rc)' does not match '^[A-Z0-9_]+$' in \(path)") }
            guard case .int(let n) = amount else { throw SchemaBody.invalid("\(amount.shown) is not of type 'integer' in \(path).\(rc)") }
            guard n >= 1 else { throw SchemaBody.invalid("\(n) is less than the minimum of 1 in \(path).\(rc)") }
            out[rc] = n
        }
        return out
    }

    /// One consumer's allocations in the shape of the request's microversion. `post` is the
    /// per-consumer shape of `POST /allocations` and the reshaper, where `{}` removes.
    func consumerAllocations(_ consumer: String, _ raw: JSON, _ call: Call, post: Bool) throws -> ConsumerAllocations {
        let body = try SchemaBody(raw, path: post ? consumer : "")
        var request = ConsumerAllocations(consumer: consumer, project: PlacementService.incompleteConsumerProject,
                                          user: PlacementService.incompleteConsumerUser, generation: .none, consumerType: nil, allocations: [:])
        if !call.at(12) {
            try body.check(allowed: call.at(8) ? ["allocations", "project_id", "user_id"] : ["allocations"],
                           required: call.at(8) ? ["allocations", "project_id", "user_id"] : ["allocations"])
            let items = try body.array("allocations") ?? []
            guard !items.isEmpty else { throw SchemaBody.invalid("[] is too short") }
            for item in items {
                let one = try SchemaBody(item, path: "allocations")
                try one.check(allowed: ["resource_provider", "resources"], required: ["resource_provider", "resources"])
                let rp = try SchemaBody(one.fields["resource_provider"]!, path: "resource_provider")
                try rp.check(allowed: ["uuid"], required: ["uuid"])
                guard let raw = try rp.string("uuid"), let uuid = PlacementNames.uuid(raw) else {
                    throw SchemaBody.invalid("\(rp.fields["uuid"]!.shown) is not a 'uuid'")
                }
                // The list form may name a provider twice; huge amounts saturate rather than trap.
                for (rc, amount) in try Self.resources(one.fields["resources"], path: "allocations") {
                    request.allocations[uuid, default: [:]][rc] = request.allocations[uuid, default: [:]][rc, default: 0].addingSaturating(amount)
                }
            }
        } else {
            var allowed: Set<String> = ["allocations", "project_id", "user_id"]
            var required = ["allocations", "project_id", "user_id"]
            if call.at(28) { allowed.insert("consumer_generation"); required.append("consumer_generation") }
            if call.at(34) { allowed.insert("mappings") }
            if call.at(38) { allowed.insert("consumer_type"); required.append("consumer_type") }
            try body.check(allowed: allowed, required: required)
            let allocations = try body.object("allocations") ?? [:]
            if allocations.isEmpty && !post && !call.at(28) { throw SchemaBody.invalid("{} does not have enough properties") }
            for (key, value) in allocations {
                guard PlacementNames.isProviderKey(key) else { throw SchemaBody.invalid("'\(key)' does not match '^[0-9a-fA-F-]{36}$'") }
                let one = try SchemaBody(value, path: "allocations.\(key)")
                try one.check(allowed: ["resources", "generation"], required: ["resources"])
                request.allocations[key.lowercased()] = try Self.resources(one.fields["resources"], path: "allocations.\(key)")
            }
            if call.at(28) {
                guard let generation = try body.generation("consumer_generation", nullable: true) else {
                    throw SchemaBody.invalid("'consumer_generation' is a required property")
                }
                request.generation = .expect(generation)
            }
            if call.at(34), let mappings = body.fields["mappings"] {
                guard mappings.objectValue?.values.allSatisfy({ $0.arrayValue?.allSatisfy { $0.stringValue != nil } ?? false }) ?? false else {
                    throw SchemaBody.invalid("\(mappings.shown) is not a valid 'mappings' object")
                }
            }
            if call.at(38) { request.consumerType = try body.string("consumer_type", pattern: PlacementNames.isName) }
        }
        if call.at(8) {
            request.project = try body.string("project_id")!
            request.user = try body.string("user_id")!
        }
        return request
    }

    func consumerParam(_ call: Call) throws -> String {
        let raw = call.param("consumer")
        guard let uuid = PlacementNames.uuid(raw) else { throw APIError.badRequest("Malformed consumer_uuid: \(raw)") }
        return uuid
    }

    // MARK: Allocations

    func showAllocations(_ call: Call) async throws -> Response {
        try authorize(call, "placement:allocations:list")
        let view = try await service.consumerAllocations(call.param("consumer").lowercased())
        var out: [String: JSON] = ["allocations": .object(view.allocations.mapValues { entry in
            ["generation": .int(entry.generation), "resources": .object(entry.resources.mapValues { .int($0) })]
        })]
        if !view.allocations.isEmpty {
            if call.at(12) {
                out["project_id"] = .optional(view.project)
                out["user_id"] = .optional(view.user)
            }
            if call.at(28) { out["consumer_generation"] = view.generation.map { .int($0) } ?? .null }
            if call.at(38) { out["consumer_type"] = .string(view.consumerType ?? "unknown") }
        }
        return json(.object(out))
    }

    func putAllocations(_ call: Call) async throws -> Response {
        try authorize(call, "placement:allocations:update")
        let consumer = try consumerParam(call)
        let request = try consumerAllocations(consumer, try await body(call), call, post: false)
        try await service.writeAllocations([request])
        return Response(status: .noContent)
    }

    func postAllocations(_ call: Call) async throws -> Response {
        try authorize(call, "placement:allocations:manage")
        let raw = try await body(call)
        guard let object = raw.objectValue else { throw SchemaBody.invalid("\(raw.shown) is not of type 'object'") }
        guard !object.isEmpty else { throw SchemaBody.invalid("{} does not have enough properties") }
        var requests: [ConsumerAllocations] = []
        for (key, value) in object.sorted(by: { $0.key < $1.key }) {
            guard let consumer = PlacementNames.uuid(key) else { throw SchemaBody.invalid("'\(key)' is not a valid consumer uuid") }
            requests.append(try consumerAllocations(consumer, value, call, post: true))
        }
        try await service.writeAllocations(requests)
        return Response(status: .noContent)
    }

    func deleteAllocations(_ call: Call) async throws -> Response {
        try authorize(call, "placement:allocations:delete")
        try await service.deleteConsumer(call.param("consumer").lowercased())
        return Response(status: .noContent)
    }

    func providerAllocations(_ call: Call) async throws -> Response {
        try authorize(call, "placement:resource_providers:allocations:list")
        let (generation, allocations) = try await service.providerAllocations(uuidParam(call))
        let body: [String: JSON] = allocations.mapValues { entry in
            var out: [String: JSON] = ["resources": .object(entry.resources.mapValues { .int($0) })]
            if call.at(28) { out["consumer_generation"] = entry.consumerGeneration.map { .int($0) } ?? .null }
            return .object(out)
        }
        return json(["resource_provider_generation": .int(generation), "allocations": .object(body)])
    }

    // MARK: Reshaper

    func reshape(_ call: Call) async throws -> Response {
        try authorize(call, "placement:reshaper:reshape")
        let body = try SchemaBody(try await body(call))
        try body.check(allowed: ["inventories", "allocations"], required: ["inventories", "allocations"])
        var inventories: [(provider: String, generation: Int64, inventories: [String: Inventory])] = []
        for (key, value) in (try body.object("inventories") ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard PlacementNames.isProviderKey(key) else { throw SchemaBody.invalid("'\(key)' does not match '^[0-9a-fA-F-]{36}$'") }
            let one = try SchemaBody(value, path: "inventories.\(key)")
            try one.check(allowed: ["inventories", "resource_provider_generation"], required: ["inventories", "resource_provider_generation"])
            guard let generation = try one.generation("resource_provider_generation") ?? nil else {
                throw SchemaBody.invalid("'resource_provider_generation' is a required property")
            }
            var classes: [String: Inventory] = [:]
            for (rc, inv) in try one.object("inventories") ?? [:] {
                guard PlacementNames.isName(rc) else { throw SchemaBody.invalid("'\(rc)' does not match '^[A-Z0-9_]+$'") }
                let fields = try SchemaBody(inv, path: "inventories.\(key).inventories.\(rc)")
                try fields.check(allowed: Self.inventoryFields, required: ["total"])
                classes[rc] = try Self.inventory(fields)
            }
            inventories.append((key.lowercased(), generation, classes))
        }
        var requests: [ConsumerAllocations] = []
        for (key, value) in (try body.object("allocations") ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard let consumer = PlacementNames.uuid(key) else { throw SchemaBody.invalid("'\(key)' is not a valid consumer uuid") }
            requests.append(try consumerAllocations(consumer, value, call, post: true))
        }
        try await service.writeAllocations(requests, inventories: inventories)
        return Response(status: .noContent)
    }

    // MARK: Allocation candidates

    /// Splits `resources_X` style names: (base, suffix) for the request-group parameters.
    static func groupParameter(_ name: String, version: Microversion) -> (base: String, suffix: String)? {
        func at(_ minor: Int) -> Bool { version >= Microversion(1, minor) }
        var bases = ["resources", "required", "member_of"]
        if at(31) { bases.append("in_tree") }
        for base in bases where name.hasPrefix(base) {
            let suffix = String(name.dropFirst(base.count))
            if suffix.isEmpty {
                if base == "required" && !at(17) { return nil }
                if base == "member_of" && !at(21) { return nil }
                return (base, "")
            }
            guard at(25) else { return nil }
            if at(33) {
                guard suffix.count <= 64, suffix.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else { return nil }
            } else {
                guard suffix.first != "0", suffix.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            }
            return (base, suffix)
        }
        return nil
    }

    func candidateQuery(_ call: Call) async throws -> (query: CandidateQuery, requestedClasses: Set<String>) {
        let (query, classes, traitNames) = try Self.parseCandidateQuery(call.query, version: call.version)
        for rc in classes.sorted() where try await !service.resourceClassExists(rc) {
            throw APIError.badRequest("Invalid resource class in resources parameter: No such resource class \(rc).")
        }
        try await requireTraits(traitNames)
        return (query, classes)
    }

    /// Everything `candidateQuery` checks that needs no database: the query, the resource
    /// classes it requests and every trait it names (which the caller then looks up). Static
    /// so that the fuzz targets (Sources/NimbusFuzzTargets) can run it on its own.
    static func parseCandidateQuery(_ q: QueryString, version: Microversion) throws
        -> (query: CandidateQuery, requestedClasses: Set<String>, traitNames: Set<String>)
    {
        func at(_ minor: Int) -> Bool { version >= Microversion(1, minor) }
        try q.allowOnly { name in
            switch name {
            case "limit": return at(16)
            case "group_policy": return at(25)
            case "root_required": return at(35)
            case "same_subtree": return at(36)
            default: return groupParameter(name, version: version) != nil
            }
        }
        var query = CandidateQuery()
        query.nestedAware = at(29)
        var suffixes: [String] = []
        for name in q.names {
            if let (_, suffix) = groupParameter(name, version: version), !suffixes.contains(suffix) { suffixes.append(suffix) }
        }
        if !at(25) && q.last("resources") == nil {
            throw APIError.badRequest("Invalid query string parameters: 'resources' is a required property")
        }
        var classes: Set<String> = []
        var traitNames: Set<String> = []
        for suffix in suffixes {
            var group = RequestGroup()
            if let value = q.last("resources" + suffix) {
                group.resources = try PlacementQuery.resources(value, key: "resources" + suffix)
                classes.formUnion(group.resources.keys)
            }
            let traits = try PlacementQuery.traits(q.values("required" + suffix), key: "required" + suffix, version: version)
            (group.requiredTraits, group.forbiddenTraits) = (traits.required, traits.forbidden)
            let both = Set(traits.required.filter { $0.count == 1 }.flatMap { $0 }).intersection(traits.forbidden)
            if !both.isEmpty {
                throw APIError.badRequest("Conflicting required and forbidden traits found in the following traits keys: required\(suffix): (\(both.sorted().joined(separator: ", ")))")
            }
            traitNames.formUnion(PlacementQuery.traitNames(traits))
            let members = try PlacementQuery.memberOf(q.values("member_of" + suffix), key: "member_of" + suffix, version: version)
            (group.memberOf, group.forbiddenAggregates) = (members.memberOf, members.forbidden)
            if let inTree = q.last("in_tree" + suffix) { group.inTree = try PlacementQuery.uuid(inTree, key: "in_tree" + suffix) }
            query.groups[suffix] = group
        }
        if !query.groups.values.contains(where: { !$0.resources.isEmpty }) {
            throw APIError(.badRequest, "There must be at least one resources or resources[$S] parameter.",
                           code: at(36) ? PlacementService.Code.missingValue : nil)
        }
        if let value = q.last("limit") {
            guard let limit = Int(value), limit >= 1, value.first != "0", value.allSatisfy(\.isNumber) else {
                throw APIError.badRequest("Invalid query string parameters: '\(value)' does not match '^[1-9][0-9]*$'")
            }
            query.limit = limit
        }
        for value in q.values("same_subtree") {
            let list = value.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let unknown = list.filter { $0.isEmpty || query.groups[$0] == nil }
            if !unknown.isEmpty {
                throw APIError(.badRequest, "Real suffixes should be specified in `same_subtree`: \(unknown) not found in \(query.groups.keys.filter { !$0.isEmpty }.sorted()).",
                               code: PlacementService.Code.badValue)
            }
            query.sameSubtree.append(list)
        }
        let resourceless = query.groups.filter { $0.value.resources.isEmpty }.keys.sorted()
        if !resourceless.isEmpty {
            if !at(36) { throw APIError.badRequest("All request groups must specify resources.") }
            let named = Set(query.sameSubtree.flatMap { $0 })
            let bad = resourceless.filter { !$0.isEmpty && !named.contains($0) }
            if !bad.isEmpty {
                throw APIError(.badRequest, "Resourceless suffixed group request should be specified in `same_subtree` query param: bad group(s) - \(bad).",
                               code: PlacementService.Code.badValue)
            }
        }
        if let policy = q.last("group_policy") {
            guard policy == "none" || policy == "isolate" else {
                throw APIError.badRequest("Invalid query string parameters: '\(policy)' is not one of ['none', 'isolate']")
            }
            query.isolate = policy == "isolate"
        } else if query.groups.filter({ !$0.key.isEmpty && !$0.value.resources.isEmpty }).count > 1 {
            throw APIError.badRequest("The \"group_policy\" parameter is required when specifying more than one \"resources{N}\" parameter.")
        }
        for value in q.values("root_required") {
            let traits = try PlacementQuery.traits([value], key: "root_required", version: Microversion(1, 38))
            query.rootRequired += traits.required
            query.rootForbidden.formUnion(traits.forbidden)
            traitNames.formUnion(PlacementQuery.traitNames(traits))
        }
        return (query, classes, traitNames)
    }

    func allocationCandidates(_ call: Call) async throws -> Response {
        try authorize(call, "placement:allocation_candidates:list")
        let (query, requested) = try await candidateQuery(call)
        let result = try await service.allocationCandidates(query)
        let requests: [JSON] = result.candidates.map { candidate in
            if !call.at(12) {
                return ["allocations": .array(candidate.allocations.sorted { $0.key < $1.key }.map { uuid, resources in
                    ["resource_provider": ["uuid": .string(uuid)], "resources": .object(resources.mapValues { .int($0) })]
                })]
            }
            var out: [String: JSON] = ["allocations": .object(candidate.allocations.mapValues { ["resources": .object($0.mapValues { .int($0) })] })]
            if call.at(34) { out["mappings"] = .object(candidate.mappings.mapValues { .array($0.map { .string($0) }) }) }
            return .object(out)
        }
        let summaries: [String: JSON] = result.summaries.mapValues { s in
            let resources = call.at(27) ? s.resources : s.resources.filter { requested.contains($0.key) }
            var out: [String: JSON] = ["resources": .object(resources.mapValues { ["capacity": .int($0.capacity), "used": .int($0.used)] })]
            if call.at(17) { out["traits"] = .array(s.traits.sorted().map { .string($0) }) }
            if call.at(29) {
                out["parent_provider_uuid"] = .optional(s.parentUUID)
                out["root_provider_uuid"] = .string(s.rootUUID)
            }
            return .object(out)
        }
        return json(["allocation_requests": .array(requests), "provider_summaries": .object(summaries)])
    }
}
