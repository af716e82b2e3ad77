import Foundation
import HostAPI
import HTTPTypes
import Hummingbird
import NimbusCore

/// The control plane's side of a host's network agent (Neutron's agents' RPC to the server):
/// not an OpenStack API, so it has its own prefix, `/network-agent/v1`. Agents authenticate
/// with a Keystone token holding the `service` (or `admin`) role, as on `/compute-agent/v1`.
public struct NetworkAgentRoutes: Sendable {
    let service: NetworkService
    let validator: any TokenValidating
    let maxBodySize: Int

    public init(service: NetworkService, validator: any TokenValidating, maxBodySize: Int) {
        (self.service, self.validator, self.maxBodySize) = (service, validator, maxBodySize)
    }

    public static let policyRule = "network_agent"

    func authorize(_ context: NimbusRequestContext) throws {
        let caller = try context.requireAuth()
        guard service.policy.enforce(Self.policyRule, credentials: caller.policyInput, target: [:]) else {
            throw APIError(.forbidden, "(rule:\(Self.policyRule)) is disallowed by policy", code: "PolicyNotAuthorized")
        }
    }

    public func register(on router: Router<NimbusRequestContext>) {
        let api = router.group("network-agent/v1").add(middleware: ErrorStyleMiddleware(.neutron)).add(middleware: TokenAuthMiddleware(validator: validator, service: nil))
        api.get("/hosts/:host/state") { _, context in
            try authorize(context)
            let state = try await service.hostNetworkState(host: try context.parameters.require("host"))
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: .init(data: try JSONEncoder().encode(state))))
        }
        api.post("/hosts/:host/report") { request, context in
            try authorize(context)
            // Parsed by Nimbus's own parser first (its size and depth limits), then decoded.
            let body = try await request.jsonBody(limit: maxBodySize)
            guard let report = try? JSONDecoder().decode(NetworkAgentReport.self, from: Data(body.serializedBytes())),
                  report.host == (try context.parameters.require("host")) else {
                throw APIError(.badRequest, "Malformed network agent report.", code: "HTTPBadRequest")
            }
            try await service.applyNetworkReport(report)
            return Response(status: .noContent)
        }
    }
}
