import Foundation
import HostAPI
import NimbusCore
import NimbusStore

/// The operator's view: compute services, hypervisors, availability zones, aggregates,
/// os-hosts, server groups and instance actions.
extension ComputeService {
    /// The control plane's own services. They run in this process, so they are up whenever
    /// this process answers; their heartbeat is refreshed as they are read.
    static let controlServices = ["nova-scheduler", "nova-conductor"]

    public func registerControlServices(host: String) async throws {
        let now = Date()
        for binary in Self.controlServices {
            try await store.upsertService(ServiceRecord(id: Identifiers.uuid(), host: host, binary: binary, disabled: false, disabledReason: nil,
                                                        forcedDown: false, lastSeenUp: now, createdAt: now, updatedAt: now), db)
        }
    }

    func allServices() async throws -> [ServiceRecord] {
        let now = Date()
        var services = try await store.services(db)
        for i in services.indices where Self.controlServices.contains(services[i].binary) { services[i].lastSeenUp = now }
        return services
    }

    func zoneOfHost(_ host: String, aggregates: [Aggregate]) -> String {
        Aggregate.zone(of: host, in: aggregates, default: settings.defaultAvailabilityZone)
    }

    func serviceJSON(_ s: ServiceRecord, version: Microversion, aggregates: [Aggregate], legacyID: Int) -> JSON {
        var out: [String: JSON] = [
            "id": version >= Microversion(2, 53) ? .string(s.id) : .int(Int64(legacyID)), "binary": .string(s.binary), "host": .string(s.host),
            "zone": .string(s.binary == "nova-compute" ? zoneOfHost(s.host, aggregates: aggregates) : "internal"),
            "status": s.disabled ? "disabled" : "enabled", "state": s.isUp(timeout: settings.serviceDownTime) ? "up" : "down",
            "updated_at": s.lastSeenUp.map { .string(Timestamps.novaTime($0)) } ?? .null, "disabled_reason": .optional(s.disabledReason),
        ]
        if version >= Microversion(2, 11) { out["forced_down"] = .bool(s.forcedDown) }
        return .object(out)
    }

    // MARK: os-services

    public func services(_ query: [String: String], version: Microversion, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-services:list", caller)
        let aggregates = try await store.aggregates(db)
        let services = try await allServices()
        let shown = services.enumerated().filter { _, s in
            (query["host"].map { $0 == s.host } ?? true) && (query["binary"].map { $0 == s.binary } ?? true)
        }
        return ["services": .array(shown.map { serviceJSON($1, version: version, aggregates: aggregates, legacyID: $0 + 1) })]
    }

    /// `PUT /os-services/{id}` (2.53+): enable/disable with a reason, force down or up.
    public func updateService(_ id: String, _ body: JSON, version: Microversion, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-services:update", caller)
        guard UUID(uuidString: id) != nil else { throw APIError.badRequest("Invalid uuid \(id)") }
        guard var service = try await store.service(id: id, db) else { throw APIError.notFound("Service \(id) could not be found.") }
        guard service.binary == "nova-compute" else {
            throw APIError.badRequest("Updating a \(service.binary) service is not supported. Only nova-compute services can be updated.")
        }
        guard let fields = body.objectValue else { throw APIError.badRequest("Malformed request body") }
        let status = fields["status"]?.stringValue
        if let status, status != "enabled" && status != "disabled" { throw APIError.badRequest("Invalid input for field/attribute status.") }
        if status == nil && fields["forced_down"] == nil {
            throw APIError.badRequest("No updates were requested. Fields 'status' or 'forced_down' should be specified.")
        }
        if let reason = fields["disabled_reason"]?.stringValue {
            guard status == "disabled" else { throw APIError.badRequest("Specifying 'disabled_reason' with status 'enabled' is invalid.") }
            guard reason.count <= 255 else { throw APIError.badRequest("Invalid input for field/attribute disabled_reason.") }
        }
        if let status {
            service.disabled = status == "disabled"
            service.disabledReason = service.disabled ? fields["disabled_reason"]?.stringValue : nil
        }
        if let forced = fields["forced_down"] {
            guard let b = forced.boolValue else { throw APIError.badRequest("Invalid input for field/attribute forced_down.") }
            service.forcedDown = b
        }
        try await store.updateService(service, db)
        await conductor.hosts.invalidate()
        if status != nil, let node = try await store.node(host: service.host, db) {
            // Placement learns of it too (COMPUTE_STATUS_DISABLED), so the scheduler skips the host.
            try await conductor.syncProvider(node, capabilities: DriverCapabilities(json: node.capabilities), disabled: service.disabled)
        }
        let aggregates = try await store.aggregates(db)
        return ["service": serviceJSON(service, version: version, aggregates: aggregates, legacyID: 0)]
    }

    /// `PUT /os-services/{enable,disable,disable-log-reason,force-down}` (before 2.53).
    public func updateServiceLegacy(_ action: String, _ body: JSON, caller: AuthContext) async throws -> JSON {
        guard let host = body["host"]?.stringValue, let binary = body["binary"]?.stringValue else {
            throw APIError.badRequest("Invalid input: 'host' and 'binary' are required.")
        }
        guard let service = try await store.service(host: host, binary: binary, db) else {
            throw APIError.notFound("Service \(binary) on host \(host) could not be found.")
        }
        var update: [String: JSON]
        switch action {
        case "enable": update = ["status": "enabled"]
        case "disable": update = ["status": "disabled"]
        case "disable-log-reason": update = ["status": "disabled", "disabled_reason": body["disabled_reason"] ?? .null]
        case "force-down": update = ["forced_down": body["forced_down"] ?? false]
        default: throw APIError.notFound("Unknown action")
        }
        let updated = try await updateService(service.id, .object(update), version: Microversion(2, 53), caller: caller)
        var out: [String: JSON] = ["host": .string(host), "binary": .string(binary)]
        if action == "force-down" { out["forced_down"] = updated["service"]?["forced_down"] ?? false } else {
            out["status"] = updated["service"]?["status"] ?? ""
            if action == "disable-log-reason" { out["disabled_reason"] = updated["service"]?["disabled_reason"] ?? .null }
        }
        return ["service": .object(out)]
    }

    public func deleteService(_ id: String, caller: AuthContext) async throws {
        try authorize("os_compute_api:os-services:delete", caller)
        guard UUID(uuidString: id) != nil else { throw APIError.badRequest("Invalid uuid \(id)") }
        guard let service = try await store.service(id: id, db) else { throw APIError.notFound("Service \(id) could not be found.") }
        if service.binary == "nova-compute" {
            if try await !store.instances(host: service.host, db).isEmpty {
                throw APIError.conflict("Unable to delete compute service that is hosting instances. Migrate or delete the instances first.")
            }
            let node = try await store.node(host: service.host, db)
            try await db.transaction { x in
                try await self.store.deleteService(id: id, x)
                try await self.store.deleteNode(host: service.host, x)
                for aggregate in try await self.store.aggregates(x) where aggregate.hosts.contains(service.host) {
                    _ = try await self.store.removeAggregateHost(id: aggregate.id, host: service.host, x)
                }
            }
            if let node { try await conductor.placement.deleteProvider(uuid: node.uuid) }
            await conductor.hosts.invalidate()
        } else {
            try await store.deleteService(id: id, db)
        }
    }

    // MARK: os-hypervisors

    public func hypervisors(_ query: [String: String], detail: Bool, version: Microversion, caller: AuthContext) async throws -> JSON {
        try authorize(detail ? "os_compute_api:os-hypervisors:detail" : "os_compute_api:os-hypervisors:list", caller)
        var nodes = try await store.nodes(db)
        if let pattern = query["hypervisor_hostname_pattern"] {
            nodes = nodes.filter { $0.hypervisorHostname.contains(pattern) }
            if nodes.isEmpty { throw APIError.notFound("No hypervisor matching '\(pattern)' could be found.") }
        }
        nodes = try Paging.page(nodes, query: query, id: \.uuid)
        let services = try await allServices()
        let instances = try await store.instances(project: nil, includeDeleted: false, db)
        let withServers = Self.truthy(query["with_servers"] ?? "false")
        return ["hypervisors": .array(nodes.enumerated().map { index, node in
            hypervisorJSON(node, index: index + 1, detail: detail, version: version, services: services, instances: instances, withServers: withServers)
        })]
    }

    public func hypervisor(_ id: String, query: [String: String], version: Microversion, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-hypervisors:show", caller)
        let nodes = try await store.nodes(db)
        let found: (Int, ComputeNode)?
        if version >= Microversion(2, 53) {
            guard UUID(uuidString: id) != nil else { throw APIError.badRequest("Invalid uuid \(id)") }
            found = nodes.enumerated().first { $0.element.uuid == id }.map { ($0.offset, $0.element) }
        } else {
            found = Int(id).flatMap { n in n >= 1 && n <= nodes.count ? (n - 1, nodes[n - 1]) : nil }
        }
        guard let (index, node) = found else { throw APIError.notFound("Hypervisor with ID '\(id)' could not be found.") }
        let services = try await allServices()
        let instances = try await store.instances(host: node.host, db)
        return ["hypervisor": hypervisorJSON(node, index: index + 1, detail: true, version: version, services: services, instances: instances,
                                             withServers: Self.truthy(query["with_servers"] ?? "false"))]
    }

    /// The legacy sums over every hypervisor (gone from 2.88, like the usage fields).
    public func hypervisorStatistics(version: Microversion, caller: AuthContext) async throws -> JSON {
        guard version < Microversion(2, 88) else { throw APIError.notFound("The resource could not be found.") }
        try authorize("os_compute_api:os-hypervisors:statistics", caller)
        let nodes = try await store.nodes(db)
        let services = try await allServices()
        let instances = try await store.instances(project: nil, includeDeleted: false, db)
        var totals: [String: Int64] = [:]
        for (index, node) in nodes.enumerated() {
            let shown = hypervisorJSON(node, index: index + 1, detail: true, version: version, services: services, instances: instances, withServers: false)
            for key in ["vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used", "free_ram_mb", "free_disk_gb",
                        "current_workload", "running_vms", "disk_available_least"] {
                totals[key, default: 0] += shown[key]?.intValue ?? 0
            }
        }
        totals["count"] = Int64(nodes.count)
        return ["hypervisor_statistics": .object(totals.mapValues { .int($0) })]
    }

    /// `GET /os-hypervisors/{id}/uptime` below 2.88 (2.88 folds uptime into show).
    public func hypervisorUptime(_ id: String, version: Microversion, caller: AuthContext) async throws -> JSON {
        guard version < Microversion(2, 88) else { throw APIError.notFound("The resource could not be found.") }
        try authorize("os_compute_api:os-hypervisors:uptime", caller)
        var shown = try await hypervisor(id, query: [:], version: version, caller: caller)["hypervisor"]?.objectValue ?? [:]
        shown = shown.filter { ["id", "hypervisor_hostname", "state", "status"].contains($0.key) }
        shown["uptime"] = .string(Self.hostUptime())
        return ["hypervisor": .object(shown)]
    }

    /// `GET /os-hypervisors/{pattern}/search` and `/servers`, replaced in 2.53 by query parameters.
    public func hypervisorSearch(_ pattern: String, withServers: Bool, version: Microversion, caller: AuthContext) async throws -> JSON {
        guard version < Microversion(2, 53) else { throw APIError.notFound("The resource could not be found.") }
        try authorize(withServers ? "os_compute_api:os-hypervisors:servers" : "os_compute_api:os-hypervisors:search", caller)
        let nodes = try await store.nodes(db)
        let services = try await allServices()
        let instances = try await store.instances(project: nil, includeDeleted: false, db)
        let matched = nodes.enumerated().filter { $0.element.hypervisorHostname.contains(pattern) }
        guard !matched.isEmpty else { throw APIError.notFound("No hypervisor matching '\(pattern)' could be found.") }
        return ["hypervisors": .array(matched.map { index, node in
            hypervisorJSON(node, index: index + 1, detail: false, version: version, services: services, instances: instances, withServers: withServers)
        })]
    }

    /// `uptime`'s one line, which Nova's libvirt driver returns as the hypervisor's uptime.
    static func hostUptime() -> String {
        let seconds = (try? String(contentsOfFile: "/proc/uptime", encoding: .utf8)).flatMap { Double($0.split(separator: " ").first ?? "") } ?? 0
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: ", ") ?? "0.00, 0.00, 0.00"
        let now = Int(Date().timeIntervalSince1970) % 86400
        let time = String(format: "%02d:%02d:%02d", now / 3600, now % 3600 / 60, now % 60)
        let days = Int(seconds) / 86400, hours = Int(seconds) % 86400 / 3600, minutes = Int(seconds) % 3600 / 60
        return " \(time) up \(days) days, \(hours):\(String(format: "%02d", minutes)),  0 users,  load average: \(load)"
    }

    func hypervisorJSON(_ node: ComputeNode, index: Int, detail: Bool, version: Microversion, services: [ServiceRecord], instances: [Instance],
                        withServers: Bool) -> JSON {
        let service = services.first { $0.host == node.host && $0.binary == "nova-compute" }
        var out: [String: JSON] = [
            "id": version >= Microversion(2, 53) ? .string(node.uuid) : .int(Int64(index)), "hypervisor_hostname": .string(node.hypervisorHostname),
            "state": service?.isUp(timeout: settings.serviceDownTime) == true ? "up" : "down", "status": service?.disabled == true ? "disabled" : "enabled",
        ]
        let onHost = instances.filter { $0.host == node.host }
        if withServers && (version >= Microversion(2, 75) || !onHost.isEmpty) {
            out["servers"] = .array(onHost.map { ["name": .string($0.name), "uuid": .string($0.uuid)] })
        }
        guard detail else { return .object(out) }
        out["hypervisor_type"] = .string(node.hypervisorType)
        out["hypervisor_version"] = .int(node.hypervisorVersion)
        out["host_ip"] = .string(node.hostIP)
        out["service"] = ["id": service.map { version >= Microversion(2, 53) ? .string($0.id) : .int(Int64(index)) } ?? .null,
                          "host": .string(node.host), "disabled_reason": .optional(service?.disabledReason)]
        if version >= Microversion(2, 88) {
            out["uptime"] = .null
        } else {
            // As Nova's resource tracker counts them: used memory and disk include what the host
            // reserves for itself; used vCPUs are the servers' alone.
            let vcpusUsed = onHost.reduce(0) { $0 + $1.flavor.vcpus }
            let ramUsed = onHost.reduce(0) { $0 + $1.flavor.ram } + node.reservedMemoryMB
            let diskUsed = onHost.reduce(0) { $0 + $1.flavor.disk + $1.flavor.ephemeral } + node.reservedDiskGB
            let cpuInfo = node.capabilities["cpu_info"] ?? [:]
            out["vcpus"] = .int(node.vcpus)
            out["memory_mb"] = .int(node.memoryMB)
            out["local_gb"] = .int(node.localGB)
            out["vcpus_used"] = .int(vcpusUsed)
            out["memory_mb_used"] = .int(ramUsed)
            out["local_gb_used"] = .int(diskUsed)
            out["free_ram_mb"] = .int(node.memoryMB - ramUsed)
            out["free_disk_gb"] = .int(node.localGB - diskUsed)
            out["current_workload"] = 0
            out["running_vms"] = .int(Int64(onHost.count))
            out["disk_available_least"] = .int(node.localGB - diskUsed)
            out["cpu_info"] = version >= Microversion(2, 28) ? cpuInfo : .string(cpuInfo.serialized())
        }
        return .object(out)
    }

    // MARK: os-availability-zone

    func availabilityZoneNames() async throws -> Set<String> {
        let aggregates = try await store.aggregates(db)
        return Set(try await store.services(db).filter { $0.binary == "nova-compute" && !$0.disabled }.map { zoneOfHost($0.host, aggregates: aggregates) })
    }

    public func availabilityZones(detail: Bool, caller: AuthContext) async throws -> JSON {
        if detail { try authorize("os_compute_api:os-availability-zone:detail", caller) }
        let aggregates = try await store.aggregates(db)
        var zones: [String: [String: [String: JSON]]] = [:]
        var available: [String: Bool] = [:]
        for service in try await allServices() {
            let zone = service.binary == "nova-compute" ? zoneOfHost(service.host, aggregates: aggregates) : "internal"
            available[zone] = (available[zone] ?? false) || !service.disabled
            guard !service.disabled else { continue }
            zones[zone, default: [:]][service.host, default: [:]][service.binary] = [
                "available": .bool(service.isUp(timeout: settings.serviceDownTime)), "active": true,
                "updated_at": service.lastSeenUp.map { .string(Timestamps.novaTime($0)) } ?? .null]
        }
        let names = available.keys.sorted().filter { detail || $0 != "internal" }
        return ["availabilityZoneInfo": .array(names.map { name in
            let hosts: JSON = detail && available[name] == true ? .object((zones[name] ?? [:]).mapValues { .object($0) }) : .null
            return ["zoneName": .string(name), "zoneState": ["available": .bool(available[name] ?? false)], "hosts": hosts]
        })]
    }

    // MARK: os-aggregates

    func aggregate(_ id: String) async throws -> Aggregate {
        guard let number = Int64(id) else { throw APIError.badRequest("Invalid input for aggregate id: \(id) must be an integer") }
        guard let aggregate = try await store.aggregates(db).first(where: { $0.id == number }) else {
            throw APIError.notFound("Aggregate \(id) could not be found.")
        }
        return aggregate
    }

    public func aggregates(caller: AuthContext) async throws -> [Aggregate] {
        try authorize("os_compute_api:os-aggregates:index", caller)
        return try await store.aggregates(db)
    }

    public func showAggregate(_ id: String, caller: AuthContext) async throws -> Aggregate {
        try authorize("os_compute_api:os-aggregates:show", caller)
        return try await aggregate(id)
    }

    static func checkZoneName(_ zone: String?, aggregate name: String) throws {
        guard let zone else { return }
        if zone.isEmpty { throw APIError.badRequest("Invalid input: Aggregate \(name) does not support empty named availability zone.") }
        if zone.contains(":") { throw APIError.badRequest("Invalid input: availability zone names cannot contain ':'.") }
    }

    public func createAggregate(_ body: JSON, caller: AuthContext) async throws -> Aggregate {
        try authorize("os_compute_api:os-aggregates:create", caller)
        let input = try JSONInput(body: body, key: "aggregate")
        let name = try input.requiredString("name", maxLength: 255)
        let zone = try input.optionalString("availability_zone", maxLength: 255)
        try Self.checkZoneName(zone, aggregate: name)
        let metadata = zone.map { ["availability_zone": $0] } ?? [:]
        let uuid = Identifiers.uuid()
        do {
            _ = try await store.insertAggregate(uuid: uuid, name: name, metadata: metadata, db)
        } catch DatabaseError.uniqueViolation {
            throw APIError.conflict("Aggregate \(name) already exists.")
        }
        await conductor.hosts.invalidate()
        // Read back after the insert: a concurrent delete (any admin listing aggregates sees the
        // new one) can take it first, which a force unwrap here turned into a trap.
        guard let created = try await store.aggregates(db).first(where: { $0.uuid == uuid }) else {
            throw APIError.notFound("Aggregate \(name) could not be found.")
        }
        return created
    }

    public func updateAggregate(_ id: String, _ body: JSON, caller: AuthContext) async throws -> Aggregate {
        try authorize("os_compute_api:os-aggregates:update", caller)
        let input = try JSONInput(body: body, key: "aggregate")
        var aggregate = try await aggregate(id)
        guard !input.fields.isEmpty else { throw APIError.badRequest("Invalid input for field/attribute aggregate.") }
        if input.has("name") { aggregate.name = try input.requiredString("name", maxLength: 255) }
        if input.has("availability_zone") {
            let zone = try input.optionalString("availability_zone", maxLength: 255)
            try Self.checkZoneName(zone, aggregate: aggregate.name)
            try await checkZoneChange(aggregate, to: zone)
            aggregate.metadata["availability_zone"] = zone
        }
        do { try await store.updateAggregate(aggregate, db) } catch DatabaseError.uniqueViolation {
            throw APIError.conflict("Aggregate \(aggregate.name) already exists.")
        }
        await conductor.hosts.invalidate()
        return try await self.aggregate(id)
    }

    /// A host may be in one availability zone only, and a zone cannot move under running servers.
    func checkZoneChange(_ aggregate: Aggregate, to zone: String?, addingHost: String? = nil) async throws {
        guard let zone else { return }
        let all = try await store.aggregates(db)
        for host in aggregate.hosts + [addingHost].compactMap({ $0 }) {
            let others = all.filter { $0.id != aggregate.id && $0.hosts.contains(host) }.compactMap(\.availabilityZone)
            if let conflict = others.first(where: { $0 != zone }) {
                let error = "Cannot add host \(host) to aggregate \(aggregate.id). Reason: One or more hosts already in availability zone(s) ['\(conflict)']."
                throw addingHost == nil ? APIError.badRequest(error) : APIError.conflict(error)
            }
        }
        if addingHost == nil, zone != aggregate.availabilityZone {
            for host in aggregate.hosts where try await !store.instances(host: host, db).isEmpty {
                throw APIError.badRequest("Cannot update aggregate \(aggregate.id). Reason: One or more hosts contain instances in this zone.")
            }
        }
    }

    public func deleteAggregate(_ id: String, caller: AuthContext) async throws {
        try authorize("os_compute_api:os-aggregates:delete", caller)
        let aggregate = try await aggregate(id)
        guard aggregate.hosts.isEmpty else {
            throw APIError.badRequest("Cannot remove host from aggregate \(id). Reason: Host aggregate is not empty.")
        }
        try await store.deleteAggregate(id: aggregate.id, db)
        await conductor.hosts.invalidate()
    }

    public func aggregateAction(_ id: String, _ body: JSON, caller: AuthContext) async throws -> Aggregate {
        guard let object = body.objectValue, object.count == 1, let (name, value) = object.first else {
            throw APIError.badRequest("Malformed request body")
        }
        var aggregate = try await aggregate(id)
        switch name {
        case "add_host", "remove_host":
            try authorize("os_compute_api:os-aggregates:\(name)", caller)
            guard let host = value["host"]?.stringValue else { throw APIError.badRequest("Invalid input for field/attribute host.") }
            if name == "add_host" {
                let known = try await store.node(host: host, db) != nil
                guard known else { throw APIError.notFound("Compute host \(host) could not be found.") }
                if aggregate.hosts.contains(host) { throw APIError.conflict("Aggregate \(id) already has host \(host).") }
                try await checkZoneChange(aggregate, to: aggregate.availabilityZone, addingHost: host)
                try await store.addAggregateHost(id: aggregate.id, host: host, db)
            } else {
                guard try await store.removeAggregateHost(id: aggregate.id, host: host, db) else {
                    throw APIError.notFound("Cannot remove host \(host) in aggregate \(id)")
                }
            }
            try await mirrorAggregates(host: host)
        case "set_metadata":
            try authorize("os_compute_api:os-aggregates:set_metadata", caller)
            guard let metadata = value["metadata"]?.objectValue else { throw APIError.badRequest("Invalid input for field/attribute metadata.") }
            for (key, item) in metadata {
                guard key.count <= 255, !key.isEmpty else { throw APIError.badRequest("Invalid metadata key \(key).") }
                if item.isNull { aggregate.metadata[key] = nil; continue }
                guard let text = item.stringValue, text.count <= 255 else { throw APIError.badRequest("Invalid metadata value for \(key).") }
                if key == "availability_zone" {
                    try Self.checkZoneName(text, aggregate: aggregate.name)
                    try await checkZoneChange(aggregate, to: text)
                }
                aggregate.metadata[key] = text
            }
            try await store.updateAggregate(aggregate, db)
        default:
            throw APIError.badRequest("There is no such action: \(name)")
        }
        await conductor.hosts.invalidate()
        return try await self.aggregate(id)
    }

    /// Placement mirrors host aggregate membership, so zone requests can use member_of.
    func mirrorAggregates(host: String) async throws {
        guard let node = try await store.node(host: host, db) else { return }
        let uuids = try await store.aggregates(db).filter { $0.hosts.contains(host) }.map(\.uuid)
        try await conductor.placement.setAggregates(provider: node.uuid, aggregates: Set(uuids))
    }

    // MARK: os-hosts (before 2.43)

    public func osHosts(zone: String?, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-hosts:list", caller)
        let aggregates = try await store.aggregates(db)
        let hosts: [JSON] = try await allServices().filter { !$0.disabled }.compactMap { service in
            let serviceZone = service.binary == "nova-compute" ? zoneOfHost(service.host, aggregates: aggregates) : "internal"
            if let zone, zone != serviceZone { return nil }
            return ["host_name": .string(service.host), "service": .string(String(service.binary.dropFirst("nova-".count))), "zone": .string(serviceZone)]
        }
        return ["hosts": .array(hosts)]
    }

    public func osHost(_ host: String, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-hosts:show", caller)
        guard let node = try await store.node(host: host, db) else { throw APIError.notFound("Compute host \(host) could not be found.") }
        let instances = try await store.instances(host: host, db)
        func resource(_ project: String, _ list: [Instance]) -> JSON {
            ["resource": ["host": .string(host), "project": .string(project), "cpu": .int(list.reduce(0) { $0 + $1.flavor.vcpus }),
                          "memory_mb": .int(list.reduce(0) { $0 + $1.flavor.ram }), "disk_gb": .int(list.reduce(0) { $0 + $1.flavor.disk })]]
        }
        var rows: [JSON] = [["resource": ["host": .string(host), "project": "(total)", "cpu": .int(node.vcpus), "memory_mb": .int(node.memoryMB),
                                          "disk_gb": .int(node.localGB)]],
                            resource("(used_now)", instances), resource("(used_max)", instances)]
        for project in Set(instances.map(\.projectID)).sorted() { rows.append(resource(project, instances.filter { $0.projectID == project })) }
        return ["host": .array(rows)]
    }

    /// `PUT /os-hosts/{host}`: `status` enable/disable switches the host's nova-compute
    /// service; `maintenance_mode` is checked, then refused as Nova's libvirt driver refuses it
    /// (501): Nimbus has no maintenance mode apart from disabling the service.
    public func updateOSHost(_ host: String, _ body: JSON, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-hosts:update", caller)
        let status = body["status"]?.stringValue, maintenance = body["maintenance_mode"]?.stringValue
        guard status != nil || maintenance != nil else { throw APIError.badRequest("'status' or 'maintenance_mode' needed for host update") }
        for (field, value) in [("status", status), ("maintenance_mode", maintenance)] {
            if let value, value != "enable" && value != "disable" {
                throw APIError.badRequest("Invalid input for field/attribute \(field). Value: \(value). '\(value)' is not one of ['enable', 'disable']")
            }
        }
        guard let service = try await store.service(host: host, binary: "nova-compute", db) else {
            throw APIError.notFound("Compute host \(host) could not be found.")
        }
        if maintenance != nil { throw APIError(.notImplemented, "Virt driver does not implement host maintenance mode.") }
        var out: [String: JSON] = ["host": .string(host)]
        if let status {
            _ = try await updateService(service.id, ["status": status == "enable" ? "enabled" : "disabled"], version: Microversion(2, 53),
                                        caller: caller)
            out["status"] = status == "enable" ? "enabled" : "disabled"
        }
        return .object(out)
    }

    /// `GET /os-hosts/{host}/{reboot,shutdown,startup}`: admin-only, and refused (501) as
    /// Nova's libvirt driver refuses them; a host's power is the operator's, not the API's.
    public func osHostPowerAction(_ host: String, _ action: String, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-hosts:\(action)", caller)
        guard try await store.node(host: host, db) != nil else { throw APIError.notFound("Compute host \(host) could not be found.") }
        throw APIError(.notImplemented, "Virt driver does not implement host power management.")
    }

    // MARK: os-server-groups

    public func serverGroups(_ query: [String: String], caller: AuthContext) async throws -> [ServerGroup] {
        try authorize("os_compute_api:os-server-groups:index", caller)
        let all = query["all_projects"].map { $0.isEmpty || Self.truthy($0) } ?? false
        if all { try authorize("os_compute_api:os-server-groups:index:all_projects", caller) }
        return try Paging.limited(try await store.serverGroups(project: all ? nil : caller.projectID, db), query: query)
    }

    public func serverGroup(_ id: String, caller: AuthContext) async throws -> ServerGroup {
        try authorize("os_compute_api:os-server-groups:show", caller)
        guard let group = try await store.serverGroup(uuid: id, db), caller.isAdmin || group.projectID == caller.projectID else {
            throw APIError.notFound("Instance group \(id) could not be found.")
        }
        return group
    }

    public func createServerGroup(_ body: JSON, version: Microversion, caller: AuthContext) async throws -> ServerGroup {
        try authorize("os_compute_api:os-server-groups:create", caller)
        let input = try JSONInput(body: body, key: "server_group")
        let name = try input.requiredString("name", maxLength: 255)
        let policy: String
        var rules: [String: Int64] = [:]
        if version >= Microversion(2, 64) {
            policy = try input.requiredString("policy")
            if let raw = input.fields["rules"]?.objectValue, !raw.isEmpty {
                guard policy == "anti-affinity" else { throw APIError.badRequest("Only anti-affinity policy supports rules.") }
                for (key, value) in raw {
                    guard key == "max_server_per_host", let n = value.intValue ?? value.stringValue.flatMap({ Int64($0) }), n >= 1 else {
                        throw APIError.badRequest("Invalid input for field/attribute rules. Value: \(JSON.object(raw).serialized()).")
                    }
                    rules[key] = n
                }
            }
        } else {
            guard let policies = input.fields["policies"]?.arrayValue?.compactMap(\.stringValue), policies.count == 1 else {
                throw APIError.badRequest("Invalid input for field/attribute policies.")
            }
            policy = policies[0]
        }
        guard ServerGroup.policies.contains(policy), version >= Microversion(2, 15) || !policy.hasPrefix("soft") else {
            throw APIError.badRequest("Invalid input for field/attribute policy. Value: \(policy).")
        }
        guard let project = caller.projectID else { throw APIError.badRequest("Server groups need a project-scoped token.") }
        let limit = try await quotaLimit(ComputeQuotas.serverGroups, project: project)
        if limit >= 0, try await store.serverGroups(project: project, db).count >= Int(limit) {
            throw APIError.forbidden("Quota exceeded, too many server groups.")
        }
        let group = ServerGroup(uuid: Identifiers.uuid(), name: name, projectID: project, userID: caller.userID, policy: policy, rules: rules,
                                members: [], createdAt: Date())
        try await store.insert(group, db)
        return group
    }

    public func deleteServerGroup(_ id: String, caller: AuthContext) async throws {
        try authorize("os_compute_api:os-server-groups:delete", caller)
        _ = try await serverGroup(id, caller: caller)
        _ = try await store.deleteServerGroup(uuid: id, db)
    }

    // MARK: os-instance-actions

    public func instanceActions(_ uuid: String, caller: AuthContext) async throws -> [InstanceAction] {
        try authorize("os_compute_api:os-instance-actions:list", caller)
        _ = try await visibleInstance(uuid, caller: caller, includeDeleted: true)
        return try await store.actions(instanceUUID: uuid, db)
    }

    public func instanceAction(_ uuid: String, requestID: String, caller: AuthContext) async throws -> InstanceAction {
        try authorize("os_compute_api:os-instance-actions:show", caller)
        _ = try await visibleInstance(uuid, caller: caller, includeDeleted: true)
        guard let action = try await store.action(instanceUUID: uuid, requestID: requestID, db) else {
            throw APIError.notFound("Action \(requestID) not found")
        }
        return action
    }
}
