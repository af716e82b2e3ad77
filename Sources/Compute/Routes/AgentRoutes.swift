import Foundation
import HostAPI
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
        let api = router.group("compute-agent/v1").add(middleware: ErrorStyleMiddleware(.nova)).add(middleware: TokenAuthMiddleware(validator: validator, service: nil))
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
            let listed = (query["excluding"] ?? "").split(separator: ",")
            let excluding = Set(listed.compactMap { Int64($0) })
            guard excluding.count == listed.count, excluding.count <= Conductor.maxExcluded else {
                throw APIError.badRequest("excluding must list at most \(Conductor.maxExcluded) message ids, separated by commas.")
            }
            let wait = min(max(Int(query["wait"] ?? "0") ?? 0, 0), 30)
            let messages = try await conductor.fetch(host: try context.parameters.require("host"), excluding: excluding, wait: .seconds(wait))
            return JSONResponse(["messages": .array(messages.map(\.json))]).response()
        }
        api.post("/hosts/:host/reports") { request, context in
            try authorize(context)
            guard let report = AgentReport(json: try await request.jsonBody(limit: maxBodySize)) else { throw APIError.badRequest("Malformed report.") }
            try await conductor.apply(report)
            return Response(status: .noContent)
        }
        api.post("/hosts/:host/power-states") { request, context in
            try authorize(context)
            guard let report = PowerStateReport(json: try await request.jsonBody(limit: maxBodySize)),
                  report.host == (try context.parameters.require("host")) else { throw APIError.badRequest("Malformed power-state report.") }
            try await conductor.syncPowerStates(report)
            return Response(status: .noContent)
        }
    }
}
