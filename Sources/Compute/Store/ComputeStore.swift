import Foundation
import HostAPI
import NimbusCore
import NimbusStore

/// SQL for the compute service. Every function takes the executor it runs on, so callers
/// compose them into transactions.
struct ComputeStore: Sendable {
    static func date(_ r: Row, _ column: String) -> Date { Date(timeIntervalSince1970: r.double(column)) }
    static func optionalDate(_ r: Row, _ column: String) -> Date? { r.optionalDouble(column).map { Date(timeIntervalSince1970: $0) } }
    static func time(_ d: Date?) -> SQLValue { d.map { .real($0.timeIntervalSince1970) } ?? .null }
    static func json(_ r: Row, _ column: String) -> JSON { (try? JSON.parse(r.string(column))) ?? .null }
    static func strings(_ value: JSON) -> [String: String] { value.objectValue?.compactMapValues(\.stringValue) ?? [:] }
    static func text(_ map: [String: String]) -> SQLValue { .text(JSON.object(map.mapValues { .string($0) }).serialized()) }

    // MARK: Flavors

    static func flavor(_ r: Row) -> Flavor {
        Flavor(id: r.string("id"), name: r.string("name"), ram: r.int("ram"), vcpus: r.int("vcpus"), disk: r.int("disk"),
               ephemeral: r.int("ephemeral"), swap: r.int("swap"), rxtxFactor: r.double("rxtx_factor"), isPublic: r.bool("is_public"),
               disabled: r.bool("disabled"), description: r.optionalString("description"), extraSpecs: strings(json(r, "extra_specs")),
               createdAt: date(r, "created_at"))
    }

    func insert(_ f: Flavor, _ x: any SQLExecutor) async throws {
        try await x.execute("""
            INSERT INTO compute_flavor (id, name, ram, vcpus, disk, ephemeral, swap, rxtx_factor, is_public, disabled, description, extra_specs, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [.text(f.id), .text(f.name), .integer(f.ram), .integer(f.vcpus), .integer(f.disk), .integer(f.ephemeral), .integer(f.swap),
                  .real(f.rxtxFactor), .bool(f.isPublic), .bool(f.disabled), .optional(f.description), Self.text(f.extraSpecs),
                  .real(f.createdAt.timeIntervalSince1970)])
    }

    func updateFlavor(_ f: Flavor, _ x: any SQLExecutor) async throws {
        try await x.execute("UPDATE compute_flavor SET description = ?, extra_specs = ? WHERE id = ?",
                            [.optional(f.description), Self.text(f.extraSpecs), .text(f.id)])
    }

    func flavor(id: String, _ x: any SQLExecutor) async throws -> Flavor? {
        try await x.first("SELECT * FROM compute_flavor WHERE id = ?", .text(id)).map(Self.flavor)
    }

    func flavors(_ x: any SQLExecutor) async throws -> [Flavor] {
        try await x.query("SELECT * FROM compute_flavor ORDER BY id", []).map(Self.flavor)
    }

    func deleteFlavor(id: String, _ x: any SQLExecutor) async throws -> Bool {
        try await x.execute("DELETE FROM compute_flavor WHERE id = ?", [.text(id)]) > 0
    }

    func flavorAccess(flavorID: String, _ x: any SQLExecutor) async throws -> [String] {
        try await x.query("SELECT project_id FROM compute_flavor_access WHERE flavor_id = ? ORDER BY project_id", [.text(flavorID)])
            .map { $0.string("project_id") }
    }

    /// Flavor ids the project was given access to.
    func accessibleFlavors(project: String, _ x: any SQLExecutor) async throws -> Set<String> {
        Set(try await x.query("SELECT flavor_id FROM compute_flavor_access WHERE project_id = ?", [.text(project)]).map { $0.string("flavor_id") })
    }

    func addFlavorAccess(flavorID: String, project: String, _ x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO compute_flavor_access (flavor_id, project_id) VALUES (?, ?)", [.text(flavorID), .text(project)])
    }

    func removeFlavorAccess(flavorID: String, project: String, _ x: any SQLExecutor) async throws -> Bool {
        try await x.execute("DELETE FROM compute_flavor_access WHERE flavor_id = ? AND project_id = ?", [.text(flavorID), .text(project)]) > 0
    }

    // MARK: Keypairs

    static func keypair(_ r: Row) -> KeyPair {
        KeyPair(id: r.int("id"), userID: r.string("user_id"), name: r.string("name"), publicKey: r.string("public_key"),
                fingerprint: r.string("fingerprint"), type: r.string("type"), createdAt: date(r, "created_at"))
    }

    func insert(_ k: KeyPair, _ x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO compute_keypair (id, user_id, name, public_key, fingerprint, type, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            [.integer(k.id), .text(k.userID), .text(k.name), .text(k.publicKey), .text(k.fingerprint), .text(k.type),
                             .real(k.createdAt.timeIntervalSince1970)])
    }

    func keypairs(user: String, _ x: any SQLExecutor) async throws -> [KeyPair] {
        try await x.query("SELECT * FROM compute_keypair WHERE user_id = ? ORDER BY name", [.text(user)]).map(Self.keypair)
    }

    func keypair(user: String, name: String, _ x: any SQLExecutor) async throws -> KeyPair? {
        try await x.first("SELECT * FROM compute_keypair WHERE user_id = ? AND name = ?", .text(user), .text(name)).map(Self.keypair)
    }

    func deleteKeypair(user: String, name: String, _ x: any SQLExecutor) async throws -> Bool {
        try await x.execute("DELETE FROM compute_keypair WHERE user_id = ? AND name = ?", [.text(user), .text(name)]) > 0
    }

    // MARK: Instances

    static func instance(_ r: Row) -> Instance {
        let flavorJSON = json(r, "flavor")
        return Instance(
            uuid: r.string("uuid"), name: r.string("name"), projectID: r.string("project_id"), userID: r.string("user_id"),
            vmState: VMState(rawValue: r.string("vm_state")) ?? .error, taskState: r.optionalString("task_state").flatMap(TaskState.init),
            powerState: PowerState(rawValue: r.int("power_state")) ?? .noState, host: r.optionalString("host"), node: r.optionalString("node"),
            availabilityZone: r.optionalString("availability_zone"),
            flavor: Flavor(embedded: flavorJSON) ?? Flavor(id: "", name: "", ram: 0, vcpus: 0, disk: 0),
            newFlavor: r.optionalString("new_flavor").flatMap { try? JSON.parse($0) }.flatMap(Flavor.init(embedded:)),
            imageRef: r.string("image_ref"), keyName: r.optionalString("key_name"), metadata: strings(json(r, "metadata")),
            tags: json(r, "tags").arrayValue?.compactMap(\.stringValue) ?? [], locked: r.bool("locked"),
            lockedReason: r.optionalString("locked_reason"), lockedBy: r.optionalString("locked_by"),
            fault: r.optionalString("fault").flatMap { try? JSON.parse($0) }, launchIndex: r.int("launch_index"),
            reservationID: r.string("reservation_id"), createdAt: date(r, "created_at"), updatedAt: date(r, "updated_at"),
            launchedAt: optionalDate(r, "launched_at"), terminatedAt: optionalDate(r, "terminated_at"), deletedAt: optionalDate(r, "deleted_at"),
            extra: json(r, "extra").objectValue ?? [:])
    }

    static let instanceColumns = ["name", "project_id", "user_id", "vm_state", "task_state", "power_state", "host", "node",
                                  "availability_zone", "flavor", "new_flavor", "image_ref", "key_name", "metadata", "tags", "locked",
                                  "locked_reason", "locked_by", "fault", "launch_index", "reservation_id", "created_at", "updated_at",
                                  "launched_at", "terminated_at", "deleted_at", "extra"]

    static func binds(_ i: Instance) -> [SQLValue] {
        [.text(i.name), .text(i.projectID), .text(i.userID), .text(i.vmState.rawValue), .optional(i.taskState?.rawValue),
         .integer(i.powerState.rawValue), .optional(i.host), .optional(i.node), .optional(i.availabilityZone),
         .text(i.flavor.embedded.serialized()), .optional(i.newFlavor?.embedded.serialized()), .text(i.imageRef), .optional(i.keyName),
         text(i.metadata), .text(JSON.array(i.tags.map { .string($0) }).serialized()), .bool(i.locked), .optional(i.lockedReason),
         .optional(i.lockedBy), .optional(i.fault?.serialized()), .integer(i.launchIndex), .text(i.reservationID),
         .real(i.createdAt.timeIntervalSince1970), .real(i.updatedAt.timeIntervalSince1970), time(i.launchedAt), time(i.terminatedAt),
         time(i.deletedAt), .text(JSON.object(i.extra).serialized())]
    }

    static let instanceInsert = "INSERT INTO compute_instance (uuid, \(instanceColumns.joined(separator: ", "))) VALUES (?\(String(repeating: ", ?", count: instanceColumns.count)))"
    static let instanceUpdate = "UPDATE compute_instance SET \(instanceColumns.map { "\($0) = ?" }.joined(separator: ", ")) WHERE uuid = ?"

    func insert(_ i: Instance, _ x: any SQLExecutor) async throws {
        try await x.execute(Self.instanceInsert, [.text(i.uuid)] + Self.binds(i))
    }

    /// Writes every field. With `expecting`, only while the stored vm_state and task_state
    /// are still those (Nova's `expected_task_state`): two racing actions cannot both win.
    @discardableResult
    func update(_ i: Instance, expecting: (VMState, TaskState?)? = nil, _ x: any SQLExecutor) async throws -> Bool {
        var sql = Self.instanceUpdate
        var binds = Self.binds(i) + [.text(i.uuid)]
        if let (vm, task) = expecting {
            sql += " AND vm_state = ? AND " + (task == nil ? "task_state IS NULL" : "task_state = ?")
            binds.append(.text(vm.rawValue))
            if let task { binds.append(.text(task.rawValue)) }
        }
        return try await x.execute(sql, binds) > 0
    }

    /// Inside a transaction on PostgreSQL the row stays locked until commit, so a
    /// read-modify-write of a server (an action, an agent's report) cannot lose a concurrent
    /// one's change; SQLite runs one transaction at a time anyway.
    func instance(uuid: String, _ x: any SQLExecutor) async throws -> Instance? {
        let lock = x.dialect == .postgres ? " FOR UPDATE" : ""
        return try await x.first("SELECT * FROM compute_instance WHERE uuid = ?" + lock, .text(uuid)).map(Self.instance)
    }

    /// Instances of one project (nil: every project), newest first; deleted ones only when asked.
    func instances(project: String?, includeDeleted: Bool, _ x: any SQLExecutor) async throws -> [Instance] {
        var sql = "SELECT * FROM compute_instance WHERE 1 = 1"
        var binds: [SQLValue] = []
        if let project { sql += " AND project_id = ?"; binds.append(.text(project)) }
        if !includeDeleted { sql += " AND deleted_at IS NULL" }
        return try await x.query(sql + " ORDER BY created_at DESC, uuid DESC", binds).map(Self.instance)
    }

    func instances(host: String, _ x: any SQLExecutor) async throws -> [Instance] {
        try await x.query("SELECT * FROM compute_instance WHERE host = ? AND deleted_at IS NULL", [.text(host)]).map(Self.instance)
    }

    /// Servers in a non-final state, for the conductor to resume after a restart.
    func unsettledInstances(_ x: any SQLExecutor) async throws -> [Instance] {
        try await x.query("SELECT * FROM compute_instance WHERE deleted_at IS NULL AND (vm_state = 'building' OR task_state IS NOT NULL)", [])
            .map(Self.instance)
    }

    // MARK: Actions

    func startAction(_ instanceUUID: String, action: String, requestID: String, userID: String, projectID: String,
                     event: String? = nil, _ x: any SQLExecutor) async throws -> Int64 {
        let now = Date().timeIntervalSince1970
        let row = try await x.first("""
            INSERT INTO compute_instance_action (instance_uuid, action, request_id, user_id, project_id, start_time, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id
            """, .text(instanceUUID), .text(action), .text(requestID), .text(userID), .text(projectID), .real(now), .real(now))
        let id = row?.int("id") ?? 0
        if let event { try await startEvent(actionID: id, event: event, host: nil, x) }
        return id
    }

    func startEvent(actionID: Int64, event: String, host: String?, _ x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO compute_instance_action_event (action_id, event, start_time, host) VALUES (?, ?, ?, ?)",
                            [.integer(actionID), .text(event), .real(Date().timeIntervalSince1970), .optional(host)])
        try await x.execute("UPDATE compute_instance_action SET updated_at = ? WHERE id = ?", [.real(Date().timeIntervalSince1970), .integer(actionID)])
    }

    /// Ends the action's open events; a failure also marks the action "Error" (its message).
    func finishEvents(actionID: Int64, error: String?, host: String?, _ x: any SQLExecutor) async throws {
        let now = Date().timeIntervalSince1970
        try await x.execute("""
            UPDATE compute_instance_action_event SET finish_time = ?, result = ?, traceback = ?, host = COALESCE(host, ?)
            WHERE action_id = ? AND finish_time IS NULL
            """, [.real(now), .text(error == nil ? "Success" : "Error"), .optional(error), .optional(host), .integer(actionID)])
        try await x.execute("UPDATE compute_instance_action SET updated_at = ?, message = COALESCE(?, message) WHERE id = ?",
                            [.real(now), .optional(error == nil ? nil : "Error"), .integer(actionID)])
    }

    static func action(_ r: Row) -> InstanceAction {
        InstanceAction(id: r.int("id"), instanceUUID: r.string("instance_uuid"), action: r.string("action"), requestID: r.string("request_id"),
                       userID: r.string("user_id"), projectID: r.string("project_id"), startTime: date(r, "start_time"),
                       updatedAt: date(r, "updated_at"), message: r.optionalString("message"), events: [])
    }

    func actions(instanceUUID: String, _ x: any SQLExecutor) async throws -> [InstanceAction] {
        try await x.query("SELECT * FROM compute_instance_action WHERE instance_uuid = ? ORDER BY start_time DESC, id DESC",
                          [.text(instanceUUID)]).map(Self.action)
    }

    func action(instanceUUID: String, requestID: String, _ x: any SQLExecutor) async throws -> InstanceAction? {
        guard var action = try await x.first("SELECT * FROM compute_instance_action WHERE instance_uuid = ? AND request_id = ?",
                                             .text(instanceUUID), .text(requestID)).map(Self.action) else { return nil }
        action.events = try await x.query("SELECT * FROM compute_instance_action_event WHERE action_id = ? ORDER BY start_time",
                                          [.integer(action.id)]).map { r in
            InstanceActionEvent(event: r.string("event"), startTime: Self.date(r, "start_time"), finishTime: Self.optionalDate(r, "finish_time"),
                                result: r.optionalString("result"), traceback: r.optionalString("traceback"), host: r.optionalString("host"),
                                details: r.optionalString("details"))
        }
        return action
    }

    // MARK: Services and nodes

    static func service(_ r: Row) -> ServiceRecord {
        ServiceRecord(id: r.string("id"), host: r.string("host"), binary: r.string("binary_name"), disabled: r.bool("disabled"),
                      disabledReason: r.optionalString("disabled_reason"), forcedDown: r.bool("forced_down"),
                      lastSeenUp: optionalDate(r, "last_seen_up"), createdAt: date(r, "created_at"), updatedAt: date(r, "updated_at"))
    }

    func services(_ x: any SQLExecutor) async throws -> [ServiceRecord] {
        try await x.query("SELECT * FROM compute_service ORDER BY created_at, host", []).map(Self.service)
    }

    func service(id: String, _ x: any SQLExecutor) async throws -> ServiceRecord? {
        try await x.first("SELECT * FROM compute_service WHERE id = ?", .text(id)).map(Self.service)
    }

    func service(host: String, binary: String, _ x: any SQLExecutor) async throws -> ServiceRecord? {
        try await x.first("SELECT * FROM compute_service WHERE host = ? AND binary_name = ?", .text(host), .text(binary)).map(Self.service)
    }

    func upsertService(_ s: ServiceRecord, _ x: any SQLExecutor) async throws {
        try await x.execute("""
            INSERT INTO compute_service (id, host, binary_name, disabled, disabled_reason, forced_down, last_seen_up, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (host, binary_name) DO UPDATE SET last_seen_up = excluded.last_seen_up, updated_at = excluded.updated_at
            """, [.text(s.id), .text(s.host), .text(s.binary), .bool(s.disabled), .optional(s.disabledReason), .bool(s.forcedDown),
                  Self.time(s.lastSeenUp), .real(s.createdAt.timeIntervalSince1970), .real(s.updatedAt.timeIntervalSince1970)])
    }

    func updateService(_ s: ServiceRecord, _ x: any SQLExecutor) async throws {
        try await x.execute("UPDATE compute_service SET disabled = ?, disabled_reason = ?, forced_down = ?, updated_at = ? WHERE id = ?",
                            [.bool(s.disabled), .optional(s.disabledReason), .bool(s.forcedDown), .real(Date().timeIntervalSince1970), .text(s.id)])
    }

    func heartbeat(host: String, binary: String, at time: Date, _ x: any SQLExecutor) async throws -> Bool {
        try await x.execute("UPDATE compute_service SET last_seen_up = ? WHERE host = ? AND binary_name = ?",
                            [.real(time.timeIntervalSince1970), .text(host), .text(binary)]) > 0
    }

    func deleteService(id: String, _ x: any SQLExecutor) async throws {
        try await x.execute("DELETE FROM compute_service WHERE id = ?", [.text(id)])
    }

    static func node(_ r: Row) -> ComputeNode {
        ComputeNode(uuid: r.string("uuid"), host: r.string("host"), hypervisorHostname: r.string("hypervisor_hostname"),
                    hypervisorType: r.string("hypervisor_type"), hypervisorVersion: r.int("hypervisor_version"), hostIP: r.string("host_ip"),
                    vcpus: r.int("vcpus"), memoryMB: r.int("memory_mb"), localGB: r.int("local_gb"),
                    reservedVCPUs: r.int("reserved_vcpus"), reservedMemoryMB: r.int("reserved_memory_mb"), reservedDiskGB: r.int("reserved_disk_gb"),
                    capabilities: json(r, "capabilities").objectValue ?? [:], updatedAt: date(r, "updated_at"))
    }

    func nodes(_ x: any SQLExecutor) async throws -> [ComputeNode] {
        try await x.query("SELECT * FROM compute_node ORDER BY host", []).map(Self.node)
    }

    func node(host: String, _ x: any SQLExecutor) async throws -> ComputeNode? {
        try await x.first("SELECT * FROM compute_node WHERE host = ?", .text(host)).map(Self.node)
    }

    func upsertNode(_ n: ComputeNode, _ x: any SQLExecutor) async throws {
        try await x.execute("""
            INSERT INTO compute_node (uuid, host, hypervisor_hostname, hypervisor_type, hypervisor_version, host_ip, vcpus, memory_mb, local_gb,
                reserved_vcpus, reserved_memory_mb, reserved_disk_gb, capabilities, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (host) DO UPDATE SET hypervisor_type = excluded.hypervisor_type, hypervisor_version = excluded.hypervisor_version,
                host_ip = excluded.host_ip, vcpus = excluded.vcpus, memory_mb = excluded.memory_mb, local_gb = excluded.local_gb,
                reserved_vcpus = excluded.reserved_vcpus, reserved_memory_mb = excluded.reserved_memory_mb, reserved_disk_gb = excluded.reserved_disk_gb,
                capabilities = excluded.capabilities, updated_at = excluded.updated_at
            """, [.text(n.uuid), .text(n.host), .text(n.hypervisorHostname), .text(n.hypervisorType), .integer(n.hypervisorVersion),
                  .text(n.hostIP), .integer(n.vcpus), .integer(n.memoryMB), .integer(n.localGB),
                  .integer(n.reservedVCPUs), .integer(n.reservedMemoryMB), .integer(n.reservedDiskGB), .text(JSON.object(n.capabilities).serialized()),
                  .real(n.updatedAt.timeIntervalSince1970)])
    }

    func deleteNode(host: String, _ x: any SQLExecutor) async throws {
        try await x.execute("DELETE FROM compute_node WHERE host = ?", [.text(host)])
    }

    // MARK: Aggregates

    func aggregates(_ x: any SQLExecutor) async throws -> [Aggregate] {
        let hosts = try await x.query("SELECT aggregate_id, host FROM compute_aggregate_host ORDER BY host", [])
        var byAggregate: [Int64: [String]] = [:]
        for row in hosts { byAggregate[row.int("aggregate_id"), default: []].append(row.string("host")) }
        return try await x.query("SELECT * FROM compute_aggregate ORDER BY id", []).map { r in
            Aggregate(id: r.int("id"), uuid: r.string("uuid"), name: r.string("name"), metadata: Self.strings(Self.json(r, "metadata")),
                      hosts: byAggregate[r.int("id")] ?? [], createdAt: Self.date(r, "created_at"), updatedAt: Self.optionalDate(r, "updated_at"))
        }
    }

    func insertAggregate(uuid: String, name: String, metadata: [String: String], _ x: any SQLExecutor) async throws -> Int64 {
        try await x.first("INSERT INTO compute_aggregate (uuid, name, metadata, created_at) VALUES (?, ?, ?, ?) RETURNING id",
                          .text(uuid), .text(name), Self.text(metadata), .real(Date().timeIntervalSince1970))?.int("id") ?? 0
    }

    func updateAggregate(_ a: Aggregate, _ x: any SQLExecutor) async throws {
        try await x.execute("UPDATE compute_aggregate SET name = ?, metadata = ?, updated_at = ? WHERE id = ?",
                            [.text(a.name), Self.text(a.metadata), .real(Date().timeIntervalSince1970), .integer(a.id)])
    }

    func deleteAggregate(id: Int64, _ x: any SQLExecutor) async throws {
        try await x.execute("DELETE FROM compute_aggregate WHERE id = ?", [.integer(id)])
    }

    func addAggregateHost(id: Int64, host: String, _ x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO compute_aggregate_host (aggregate_id, host) VALUES (?, ?)", [.integer(id), .text(host)])
    }

    func removeAggregateHost(id: Int64, host: String, _ x: any SQLExecutor) async throws -> Bool {
        try await x.execute("DELETE FROM compute_aggregate_host WHERE aggregate_id = ? AND host = ?", [.integer(id), .text(host)]) > 0
    }

    // MARK: Server groups

    func serverGroups(project: String?, _ x: any SQLExecutor) async throws -> [ServerGroup] {
        var sql = "SELECT * FROM compute_server_group"
        var binds: [SQLValue] = []
        if let project { sql += " WHERE project_id = ?"; binds.append(.text(project)) }
        let groups = try await x.query(sql + " ORDER BY created_at", binds)
        var result: [ServerGroup] = []
        for r in groups {
            let members = try await x.query("SELECT instance_uuid FROM compute_server_group_member WHERE group_uuid = ?", [.text(r.string("uuid"))])
            result.append(ServerGroup(uuid: r.string("uuid"), name: r.string("name"), projectID: r.string("project_id"), userID: r.string("user_id"),
                                      policy: r.string("policy"), rules: Self.json(r, "rules").objectValue?.compactMapValues(\.intValue) ?? [:],
                                      members: members.map { $0.string("instance_uuid") }, createdAt: Self.date(r, "created_at")))
        }
        return result
    }

    func serverGroup(uuid: String, _ x: any SQLExecutor) async throws -> ServerGroup? {
        try await serverGroups(project: nil, x).first { $0.uuid == uuid }
    }

    func insert(_ g: ServerGroup, _ x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO compute_server_group (uuid, name, project_id, user_id, policy, rules, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            [.text(g.uuid), .text(g.name), .text(g.projectID), .text(g.userID), .text(g.policy),
                             .text(JSON.object(g.rules.mapValues { .int($0) }).serialized()), .real(g.createdAt.timeIntervalSince1970)])
    }

    func deleteServerGroup(uuid: String, _ x: any SQLExecutor) async throws -> Bool {
        try await x.execute("DELETE FROM compute_server_group WHERE uuid = ?", [.text(uuid)]) > 0
    }

    func groups(containing instance: String, _ x: any SQLExecutor) async throws -> [String] {
        try await x.query("SELECT group_uuid FROM compute_server_group_member WHERE instance_uuid = ?", [.text(instance)]).map { $0.string("group_uuid") }
    }

    func addGroupMember(group: String, instance: String, _ x: any SQLExecutor) async throws {
        try await x.execute("INSERT INTO compute_server_group_member (group_uuid, instance_uuid) VALUES (?, ?)", [.text(group), .text(instance)])
    }

    func removeGroupMember(instance: String, _ x: any SQLExecutor) async throws {
        try await x.execute("DELETE FROM compute_server_group_member WHERE instance_uuid = ?", [.text(instance)])
    }

    // MARK: Quotas

    func quotaLimits(project: String, _ x: any SQLExecutor) async throws -> [String: Int64] {
        Dictionary(try await x.query("SELECT resource, hard_limit FROM compute_quota WHERE project_id = ?", [.text(project)])
            .map { ($0.string("resource"), $0.int("hard_limit")) }, uniquingKeysWith: { a, _ in a })
    }

    func setQuota(project: String, resource: String, limit: Int64, _ x: any SQLExecutor) async throws {
        try await x.execute("""
            INSERT INTO compute_quota (project_id, resource, hard_limit) VALUES (?, ?, ?)
            ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit
            """, [.text(project), .text(resource), .integer(limit)])
    }

    func deleteQuotas(project: String, _ x: any SQLExecutor) async throws {
        try await x.execute("DELETE FROM compute_quota WHERE project_id = ?", [.text(project)])
    }

    func classLimits(_ name: String, _ x: any SQLExecutor) async throws -> [String: Int64] {
        Dictionary(try await x.query("SELECT resource, hard_limit FROM compute_quota_class WHERE class_name = ?", [.text(name)])
            .map { ($0.string("resource"), $0.int("hard_limit")) }, uniquingKeysWith: { a, _ in a })
    }

    func setClassLimit(_ name: String, resource: String, limit: Int64, _ x: any SQLExecutor) async throws {
        try await x.execute("""
            INSERT INTO compute_quota_class (class_name, resource, hard_limit) VALUES (?, ?, ?)
            ON CONFLICT (class_name, resource) DO UPDATE SET hard_limit = excluded.hard_limit
            """, [.text(name), .text(resource), .integer(limit)])
    }

    func usage(project: String, _ x: any SQLExecutor) async throws -> [String: Int64] {
        Dictionary(try await x.query("SELECT resource, in_use FROM compute_quota_usage WHERE project_id = ?", [.text(project)])
            .map { ($0.string("resource"), $0.int("in_use")) }, uniquingKeysWith: { a, _ in a })
    }

    /// Adds `amount` to the usage unless that passes `limit` (negative = unlimited). False,
    /// changing nothing, when it would.
    func reserve(project: String, resource: String, amount: Int64, limit: Int64, _ x: any SQLExecutor) async throws -> Bool {
        try await x.execute("INSERT INTO compute_quota_usage (project_id, resource, in_use) VALUES (?, ?, 0) ON CONFLICT DO NOTHING",
                            [.text(project), .text(resource)])
        return try await x.execute("UPDATE compute_quota_usage SET in_use = in_use + ? WHERE project_id = ? AND resource = ? AND (? < 0 OR in_use + ? <= ?)",
                                   [.integer(amount), .text(project), .text(resource), .integer(limit), .integer(amount), .integer(limit)]) > 0
    }

    func release(project: String, resource: String, amount: Int64, _ x: any SQLExecutor) async throws {
        try await x.execute("UPDATE compute_quota_usage SET in_use = in_use - ? WHERE project_id = ? AND resource = ?",
                            [.integer(amount), .text(project), .text(resource)])
    }

    // MARK: Messages

    struct Message: Sendable {
        var id: Int64
        var host: String
        var kind: String
        var instanceUUID: String?
        var orderingKey: String
        var payload: JSON
    }

    /// Queues a message; returns its id (from the insert itself: on PostgreSQL another
    /// transaction's message may take a higher id and commit first, so no later read can tell).
    @discardableResult
    func send(host: String, kind: String, instanceUUID: String?, orderingKey: String, payload: JSON, _ x: any SQLExecutor) async throws -> Int64 {
        let rows = try await x.query("""
            INSERT INTO compute_message (host, kind, instance_uuid, ordering_key, payload, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id
            """, [.text(host), .text(kind), .optional(instanceUUID), .text(orderingKey), .text(payload.serialized()),
                  .real(Date().timeIntervalSince1970)])
        guard let id = rows.first?.int("id") else { throw DatabaseError.other("INSERT INTO compute_message returned no id") }
        return id
    }

    /// The host's messages in id order, but those in `excluding`.
    func messages(host: String, excluding: Set<Int64>, limit: Int, _ x: any SQLExecutor) async throws -> [Message] {
        let ids = excluding.sorted()
        let filter = ids.isEmpty ? "" : " AND id NOT IN (\(ids.map { _ in "?" }.joined(separator: ", ")))"
        return try await x.query("SELECT * FROM compute_message WHERE host = ?\(filter) ORDER BY id LIMIT ?",
                                 [.text(host)] + ids.map { .integer($0) } + [.integer(Int64(limit))]).map { r in
            Message(id: r.int("id"), host: r.string("host"), kind: r.string("kind"), instanceUUID: r.optionalString("instance_uuid"),
                    orderingKey: r.optionalString("ordering_key") ?? AgentMessage.orderingKey(instance: r.optionalString("instance_uuid")),
                    payload: Self.json(r, "payload"))
        }
    }

    /// Deletes the message; false when it was already gone (its report was applied before).
    func acknowledge(host: String, id: Int64, _ x: any SQLExecutor) async throws -> Bool {
        try await x.execute("DELETE FROM compute_message WHERE host = ? AND id = ?", [.text(host), .integer(id)]) > 0
    }
}
