import Foundation
import NimbusCore
import NimbusTestSupport

/// Real objects for path parameters, so requests reach past the "not found" check into the
/// handlers. Each is made for this run (never the callers' own user, project or roles), keyed by
/// the literal path segment before a parameter: `servers` in `/servers/{id}`.
struct Fixtures: Sendable {
    /// service → collection segment → id.
    var ids: [String: [String: String]] = [:]
    /// Ids any service may name in a body (`flavorRef`, `network_id`), by field-name stem.
    var byStem: [String: String] = [:]

    func id(for collection: String, service: String) -> String? {
        ids[service]?[collection] ?? ids["*"]?[collection]
    }

    /// A value of the right type for a field, a real id where the field names one.
    func plausible(field: String, kind: JSONFieldLog.Kind) -> JSON {
        let key = field.split(separator: ".").last.map { String($0.split(separator: "[").first ?? $0) } ?? field
        switch kind {
        case .boolean: return .bool(true)
        case .integer: return .int(1)
        case .object: return .object([:])
        case .objectList: return .array([.object([:])])
        case .array: return .array([])
        case .string, .unknown:
            let lowered = key.lowercased()
            if let id = byStem[lowered] { return .string(id) }
            if lowered.hasSuffix("cidr") { return .string("10.250.0.0/24") }
            if lowered.contains("ip_address") { return .string("10.250.0.5") }
            if lowered == "protocol" { return .string("tcp") }
            if lowered == "ethertype" { return .string("IPv4") }
            if lowered == "direction" { return .string("ingress") }
            return kind == .unknown ? .string("x") : .string("fuzz-\(lowered)")
        }
    }

    static func make(_ api: API, _ callers: Callers) async throws -> Fixtures {
        var maker = FixtureMaker(api: api, admin: callers.admin)
        let admin = callers.admin

        // Identity.
        let domain = await maker.create("identity", "domains", "/identity/v3/domains", ["domain": ["name": "fx-domain"]], key: "domain")
        let project = await maker.create("identity", "projects", "/identity/v3/projects", ["project": ["name": "fx-project", "tags": ["fx-tag"]]], key: "project")
        let user = await maker.create("identity", "users", "/identity/v3/users", ["user": ["name": "fx-user", "password": "fx-password"]], key: "user")
        let group = await maker.create("identity", "groups", "/identity/v3/groups", ["group": ["name": "fx-group"]], key: "group")
        let role = await maker.create("identity", "roles", "/identity/v3/roles", ["role": ["name": "fx-role"]], key: "role")
        maker.set("identity", "implies", await maker.create("identity", nil, "/identity/v3/roles", ["role": ["name": "fx-implied"]], key: "role"))
        maker.set("identity", "regions", await maker.create("identity", nil, "/identity/v3/regions", ["region": ["id": "fx-region"]], key: "region"))
        let service = await maker.create("identity", "services", "/identity/v3/services", ["service": ["type": "fx", "name": "fx"]], key: "service")
        await maker.create("identity", "endpoints", "/identity/v3/endpoints",
                           ["endpoint": ["service_id": .optional(service), "interface": "public", "url": "http://fx.invalid"]], key: "endpoint")
        await maker.create("identity", "endpoint_groups", "/identity/v3/OS-EP-FILTER/endpoint_groups",
                           ["endpoint_group": ["name": "fx", "filters": ["interface": "public"]]], key: "endpoint_group")
        await maker.create("identity", "policies", "/identity/v3/policies", ["policy": ["blob": "{}", "type": "application/json"]], key: "policy")
        await maker.create("identity", "credentials", "/identity/v3/credentials",
                           ["credential": ["blob": "fx", "type": "cert", "user_id": .optional(user)]], key: "credential")
        let registered = try await api.call(.post, "/identity/v3/registered_limits", token: admin,
                                            body: ["registered_limits": [["service_id": .optional(service), "resource_name": "fx", "default_limit": 5]]])
        maker.set("identity", "registered_limits", registered.json["registered_limits"]?.arrayValue?.first?["id"]?.stringValue)
        let limit = try await api.call(.post, "/identity/v3/limits", token: admin,
                                       body: ["limits": [["service_id": .optional(service), "project_id": .optional(project), "resource_name": "fx", "resource_limit": 3]]])
        maker.set("identity", "limits", limit.json["limits"]?.arrayValue?.first?["id"]?.stringValue)
        if let user, let project, let member = try? await api.roleID("member", token: admin) {
            try await api.call(.put, "/identity/v3/projects/\(project)/users/\(user)/roles/\(member)", token: admin)
            if let group, let role { try await api.call(.put, "/identity/v3/projects/\(project)/groups/\(group)/roles/\(role)", token: admin) }
            if let token = try? await api.token(user: "fx-user", password: "fx-password", projectID: project) {
                maker.set("identity", "application_credentials", await maker.create(
                    "identity", nil, "/identity/v3/users/\(user)/application_credentials", ["application_credential": ["name": "fx-appcred"]],
                    key: "application_credential", token: token))
            }
        }
        maker.set("*", "tags", "fx-tag")

        // Image: a small active image, shared with the reader's project.
        let image = await maker.create("image", "images", "/image/v2/images",
                                       ["name": "fx-image", "disk_format": "raw", "container_format": "bare", "visibility": "shared", "tags": ["fx-tag"]],
                                       key: nil)
        if let image {
            try await api.call(.put, "/image/v2/images/\(image)/file", token: admin, bytes: Array(repeating: 7, count: 4096))
            try await api.call(.post, "/image/v2/images/\(image)/members", token: admin, body: ["member": .string(callers.readerProject)])
            maker.set("image", "members", callers.readerProject)
            maker.set("compute", "images", image)
        }
        let stores = try await api.call(.get, "/image/v2/info/stores", token: admin)
        maker.set("image", "stores", stores.json["stores"]?.arrayValue?.first?["id"]?.stringValue)

        // Networking: a tenant network with a subnet and port, an external network, a router
        // between them, a floating IP, a security group with a rule, a subnet pool.
        let net = await maker.create("networking", "networks", "/networking/v2.0/networks", ["network": ["name": "fx-net"]], key: "network")
        let subnet = await maker.create("networking", "subnets", "/networking/v2.0/subnets",
                                        ["subnet": ["network_id": .optional(net), "cidr": "10.250.0.0/24", "ip_version": 4]], key: "subnet")
        await maker.create("networking", "ports", "/networking/v2.0/ports", ["port": ["network_id": .optional(net), "name": "fx-port"]], key: "port")
        let external = await maker.create("networking", nil, "/networking/v2.0/networks",
                                          ["network": ["name": "fx-ext", "router:external": true]], key: "network")
        await maker.create("networking", nil, "/networking/v2.0/subnets",
                           ["subnet": ["network_id": .optional(external), "cidr": "10.251.0.0/24", "ip_version": 4]], key: "subnet")
        let router = await maker.create("networking", "routers", "/networking/v2.0/routers",
                                        ["router": ["name": "fx-router", "external_gateway_info": ["network_id": .optional(external)]]], key: "router")
        if let router, let subnet {
            try await api.call(.put, "/networking/v2.0/routers/\(router)/add_router_interface", token: admin, body: ["subnet_id": .string(subnet)])
        }
        await maker.create("networking", "floatingips", "/networking/v2.0/floatingips",
                           ["floatingip": ["floating_network_id": .optional(external)]], key: "floatingip")
        let securityGroup = await maker.create("networking", "security-groups", "/networking/v2.0/security-groups",
                                       ["security_group": ["name": "fx-sg"]], key: "security_group")
        await maker.create("networking", "security-group-rules", "/networking/v2.0/security-group-rules",
                           ["security_group_rule": ["security_group_id": .optional(securityGroup), "direction": "ingress", "protocol": "tcp",
                                                    "port_range_min": 22, "port_range_max": 22]], key: "security_group_rule")
        await maker.create("networking", "subnetpools", "/networking/v2.0/subnetpools",
                           ["subnetpool": ["name": "fx-pool", "prefixes": ["10.252.0.0/16"], "default_prefixlen": 24]], key: "subnetpool")
        if let net { try await api.call(.put, "/networking/v2.0/networks/\(net)/tags/fx-tag", token: admin) }
        maker.set("networking", "agents", try await maker.first("/networking/v2.0/agents", "agents"))
        maker.set("networking", "segments", try await maker.first("/networking/v2.0/segments", "segments"))
        await maker.create("networking", "network_segment_ranges", "/networking/v2.0/network_segment_ranges",
                           ["network_segment_range": ["network_type": "vxlan", "minimum": 900, "maximum": 910]], key: "network_segment_range")
        maker.set("networking", "quotas", project)
        maker.set("networking", "auto-allocated-topology", callers.adminProject)
        maker.set("networking", "extensions", "router")

        // Compute: a flavor with an extra spec, a keypair, a server group, an aggregate, and an
        // ACTIVE server with metadata and a tag on a fake host.
        let flavor = await maker.create("compute", "flavors", "/compute/v2.1/flavors",
                                        ["flavor": ["name": "fx-flavor", "ram": 64, "vcpus": 1, "disk": 1]], key: "flavor")
        if let flavor {
            try await api.call(.post, "/compute/v2.1/flavors/\(flavor)/os-extra_specs", token: admin, body: ["extra_specs": ["fx": "1"]])
            maker.set("compute", "os-extra_specs", "fx")
        }
        try await api.call(.post, "/compute/v2.1/os-keypairs", token: admin, body: ["keypair": ["name": "fx-key"]])
        maker.set("compute", "os-keypairs", "fx-key")
        await maker.create("compute", "os-server-groups", "/compute/v2.1/os-server-groups",
                           ["server_group": ["name": "fx-group", "policies": ["affinity"]]], key: "server_group")
        await maker.create("compute", "os-aggregates", "/compute/v2.1/os-aggregates", ["aggregate": ["name": "fx-aggregate"]], key: "aggregate")
        let server = await maker.create("compute", "servers", "/compute/v2.1/servers",
                                        ["server": ["name": "fx-server", "flavorRef": .optional(flavor), "imageRef": .optional(image),
                                                    "networks": "none", "metadata": ["fx": "1"]]],
                                        key: "server", headers: ["OpenStack-API-Version": "compute 2.37"])
        maker.set("compute", "metadata", "fx")
        if let server {
            for _ in 0..<200 {
                let shown = try await api.call(.get, "/compute/v2.1/servers/\(server)", token: admin)
                if shown.json["server"]?["status"]?.stringValue != "BUILD" { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            try await api.call(.put, "/compute/v2.1/servers/\(server)/tags/fx-tag", token: admin, headers: ["OpenStack-API-Version": "compute 2.26"])
            let actions = try await api.call(.get, "/compute/v2.1/servers/\(server)/os-instance-actions", token: admin)
            maker.set("compute", "os-instance-actions", actions.json["instanceActions"]?.arrayValue?.first?["request_id"]?.stringValue)
        }
        let hypervisors = try await api.call(.get, "/compute/v2.1/os-hypervisors", token: admin)
        let hypervisor = hypervisors.json["hypervisors"]?.arrayValue?.first
        maker.set("compute", "os-hypervisors", hypervisor?["id"].map { $0.stringValue ?? $0.serialized() })
        let host = hypervisor?["hypervisor_hostname"]?.stringValue
        maker.set("compute", "os-hosts", host)
        maker.set("compute-agent", "hosts", host)
        maker.set("compute", "os-services", try await maker.first("/compute/v2.1/os-services", "services"))
        maker.set("compute", "os-quota-sets", project)
        maker.set("compute", "os-quota-class-sets", "default")
        maker.set("compute", "os-simple-tenant-usage", callers.adminProject)
        maker.set("compute", "extensions", "os-keypairs")

        // Placement: a provider with inventory, a custom class and trait, an allocation.
        let provider = await maker.create("placement", "resource_providers", "/placement/resource_providers",
                                          ["name": "fx-provider"], key: nil, headers: ["OpenStack-API-Version": "placement 1.20"])
        maker.set("placement", "resource_classes", "CUSTOM_FX")
        try await api.call(.put, "/placement/resource_classes/CUSTOM_FX", token: admin, headers: ["OpenStack-API-Version": "placement 1.7"])
        maker.set("placement", "traits", "CUSTOM_FX_TRAIT")
        try await api.call(.put, "/placement/traits/CUSTOM_FX_TRAIT", token: admin, headers: ["OpenStack-API-Version": "placement 1.6"])
        maker.set("placement", "inventories", "VCPU")
        if let provider {
            try await api.call(.put, "/placement/resource_providers/\(provider)/inventories", token: admin,
                               body: ["resource_provider_generation": 0, "inventories": ["VCPU": ["total": 8]]])
        }
        maker.set("placement", "allocations", server)

        var fixtures = maker.fixtures
        fixtures.byStem = [
            "flavorref": flavor, "imageref": image, "image_id": image, "flavor_id": flavor, "network_id": net, "subnet_id": subnet,
            "floating_network_id": external, "router_id": router, "security_group_id": securityGroup, "server_id": server,
            "instance_uuid": server, "device_id": server, "user_id": user, "domain_id": domain, "project_id": project,
            "tenant_id": project, "role_id": role, "group_id": group, "service_id": service, "region_id": "fx-region",
            "resource_provider_uuid": provider,
        ].compactMapValues { $0 }
        print("bad-input: fixtures for \(fixtures.ids.values.map(\.count).reduce(0, +)) path segments; missing: \(maker.missing)")
        return fixtures
    }
}

/// Makes fixtures through the API, noting what could not be made instead of failing: a
/// missing fixture only means fewer requests reach past "not found".
struct FixtureMaker {
    let api: API
    let admin: String
    var fixtures = Fixtures()
    var missing: [String] = []

    mutating func set(_ service: String, _ collection: String, _ id: String?) {
        guard let id else { missing.append("\(service)/\(collection)"); return }
        fixtures.ids[service, default: [:]][collection] = id
    }

    /// POSTs `body` and returns the new object's id (under `key`, or at the top level).
    @discardableResult
    mutating func create(_ service: String, _ collection: String?, _ path: String, _ body: JSON, key: String?,
                         token: String? = nil, headers: [String: String] = [:]) async -> String? {
        let reply = try? await api.call(.post, path, token: token ?? admin, body: body, headers: headers)
        let object: JSON? = key.map { reply?.json[$0] ?? nil } ?? reply?.json
        let id = (object?["id"]).map { $0.stringValue ?? $0.serialized() } ?? object?["uuid"]?.stringValue
        if id == nil { print("bad-input: fixture \(path) not made: \(reply?.status ?? 0) \(reply?.text.prefix(200) ?? "")") }
        if let collection { set(service, collection, id) }
        return id
    }

    func first(_ path: String, _ key: String) async throws -> String? {
        let reply = try await api.call(.get, path, token: admin)
        guard let first = reply.json[key]?.arrayValue?.first?["id"] else { return nil }
        return first.stringValue ?? first.serialized()
    }
}
