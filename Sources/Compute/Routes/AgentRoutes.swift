import Foundation
import HTTPTypes
import Hummingbird
import NimbusCore

/// The control plane's side of `nimbus agent` (nova-compute talking to nova-conductor): not an
/// OpenStack API, so it has its own prefix, `/compute-agent/v1`. Agents authenticate with a
/// Keystone token holding the `service` (or `admin`) role; they never reach the database.
public struct AgentRoutes: Sendable {
    let conductor: Conductor
    let policy: PolicyEngine
    let validator: any TokenValidating
    let maxBodySize: Int

    public init(conductor: Conductor, policy: PolicyEngine, validator: any TokenValidating, maxBodySize: Int) {
        (self.conductor, self.policy, self.validator, self.maxBodySize) = (conductor, policy, validator, maxBodySize)
    }

    public static let policyRule = "compute_agent"

    func authorize(_ context: NimbusRequestContext) throws {
        let caller = try context.requireAuth()
        guard policy.enforce(Self.policyRule, credentials: caller.policyInput, target: [:]) else {
            throw APIError.forbidden("Policy doesn't allow \(Self.policyRule) to be performed.")
        }
    }

    public func register(on router: Router<NimbusRequestContext>) {
        let api = router.group("compute-agent/v1").add(middleware: ErrorStyleMiddleware(.nova)).add(middleware: TokenAuthMiddleware(validator: validator))
        api.post("/hosts/:host/register") { request, context in
            try authorize(context)
            let body = try await request.jsonBody(limit: maxBodySize)
            guard let registration = AgentRegistration(json: body), registration.host == (try context.parameters.require("host")) else {
                throw APIError.badRequest("Malformed registration.")
            }
            try await conductor.register(registration)
            return Response(status: .noContent)
        }
        api.post("/hosts/:host/heartbeat") { _, context in
            try authorize(context)
            try await conductor.heartbeat(host: try context.parameters.require("host"))
            return Response(status: .noContent)
        }
        api.get("/hosts/:host/messages") { request, context in
            try authorize(context)
            let query = request.queryDictionary
            let after = Int64(query["after"] ?? "0") ?? 0
            let wait = min(max(Int(query["wait"] ?? "0") ?? 0, 0), 30)
            let messages = try await conductor.fetch(host: try context.parameters.require("host"), after: after, wait: .seconds(wait))
            return JSONResponse(["messages": .array(messages.map(\.json))]).response()
        }
        api.post("/hosts/:host/reports") { request, context in
            try authorize(context)
            guard let report = AgentReport(json: try await request.jsonBody(limit: maxBodySize)) else { throw APIError.badRequest("Malformed report.") }
            try await conductor.apply(report)
            return Response(status: .noContent)
        }
    }
}

extension AgentRegistration {
    public var json: JSON {
        let r = resources, c = capabilities
        return ["host": .string(host), "host_ip": .string(hostIP),
                "resources": ["vcpus": .int(r.vcpus), "memory_mb": .int(r.memoryMB), "disk_gb": .int(r.diskGB),
                              "hypervisor_type": .string(r.hypervisorType), "hypervisor_version": .int(r.hypervisorVersion),
                              "cpu_info": .object(r.cpuInfo.mapValues { .string($0) })],
                "capabilities": ["supports_live_migration": .bool(c.supportsLiveMigration), "supports_pause": .bool(c.supportsPause),
                                 "supports_suspend": .bool(c.supportsSuspend), "supports_rescue": .bool(c.supportsRescue),
                                 "supports_snapshot": .bool(c.supportsSnapshot)]]
    }

    /// The range of a host's vCPU, memory and disk counts: placement's inventory `total` (and
    /// Nova's compute-node columns) hold no more than 2^31 − 1. Outside it the conductor's
    /// arithmetic on them (reserved host memory, hypervisor statistics' sums) would overflow.
    static let resourceRange: ClosedRange<Int64> = 0...Int64(Int32.max)

    public init?(json: JSON) {
        guard let host = json["host"]?.stringValue, let r = json["resources"], let vcpus = r["vcpus"]?.intValue,
              let memory = r["memory_mb"]?.intValue, let disk = r["disk_gb"]?.intValue,
              [vcpus, memory, disk].allSatisfy(Self.resourceRange.contains) else { return nil }
        let resources = HostResources(vcpus: vcpus, memoryMB: memory, diskGB: disk, hypervisorType: r["hypervisor_type"]?.stringValue ?? "fake",
                                      hypervisorVersion: r["hypervisor_version"]?.intValue ?? 0,
                                      cpuInfo: r["cpu_info"]?.objectValue?.compactMapValues(\.stringValue) ?? [:])
        self.init(host: host, hostIP: json["host_ip"]?.stringValue ?? "", resources: resources,
                  capabilities: DriverCapabilities.from(json["capabilities"]?.objectValue ?? [:]))
    }
}
