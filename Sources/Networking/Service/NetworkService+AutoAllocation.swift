import Foundation
import NimbusCore
import NimbusStore

/// Get-me-a-network (`/v2.0/auto-allocated-topology/{project_id}`): on first ask a project
/// gets a network, a subnet from each default subnet pool, and a router from those subnets to
/// the default external network; later asks return the same network. Nova asks for it when a
/// server is created with `networks: auto` and the project has no network of its own.
extension NetworkService {
    /// Neutron's own right, with which the topology is built for the project once the caller
    /// has been allowed to ask for it (the default subnet pools need not be the caller's).
    static let serviceContext = AuthContext(
        token: "", userID: "neutron", userName: "neutron", userDomainID: "default", userDomainName: "Default", scope: .system,
        roles: [AuthContext.Role(id: "admin", name: "admin"), AuthContext.Role(id: "service", name: "service")],
        methods: ["internal"], auditIDs: [], issuedAt: Date(), expiresAt: .distantFuture)

    static func topology(network: String, project: String) -> JSON {
        ["auto_allocated_topology": ["id": .string(network), "project_id": .string(project), "tenant_id": .string(project)]]
    }

    /// The project's topology, made if it has none; with `dryRun` only whether it could be
    /// made (the id `dry-run=pass`, else 409 AutoAllocationFailure naming what is missing).
    public func autoAllocatedTopology(project: String, dryRun: Bool, caller: AuthContext) async throws -> JSON {
        try authorize("get_auto_allocated_topology", caller, target: ["project_id": project, "tenant_id": project])
        let network = try await write { x -> String? in
            if !dryRun, let row = try await x.first("SELECT network_id FROM network_auto_allocated_topology WHERE project_id = ?", .text(project)) {
                return row.string("network_id")
            }
            let (external, versions) = try await self.autoAllocationRequirements(x)
            if dryRun { return nil }
            return try await self.buildTopology(project: project, external: external, versions: versions, x)
        }
        guard let network else { return Self.topology(network: "dry-run=pass", project: project) }
        return Self.topology(network: network, project: project)
    }

    /// The default external network and the IP versions with a default subnet pool.
    func autoAllocationRequirements(_ x: any SQLExecutor) async throws -> (external: String, versions: [Int]) {
        guard let external = try await x.first("SELECT id FROM network_network WHERE external = 1 AND is_default = 1 ORDER BY created_at")?.string("id") else {
            throw Self.autoAllocationFailure("No default router:external network")
        }
        let versions = try await x.query("SELECT DISTINCT ip_version FROM network_subnetpool WHERE is_default = 1 ORDER BY ip_version").map { Int($0.int("ip_version")) }
        guard !versions.isEmpty else { throw Self.autoAllocationFailure("No default subnetpools defined") }
        return (external, versions)
    }

    static func autoAllocationFailure(_ reason: String) -> APIError {
        conflict("Deployment error: \(reason).", code: "AutoAllocationFailure")
    }

    /// Creates the network, its subnets (IPv6 ones address themselves by SLAAC), the router
    /// and its interfaces in the caller's transaction, and records them for the project.
    func buildTopology(project: String, external: String, versions: [Int], _ x: any SQLExecutor) async throws -> String {
        let caller = Self.serviceContext
        func input(_ key: String, _ fields: [String: JSON]) throws -> JSONInput {
            try JSONInput(body: [key: .object(fields.merging(["project_id": .string(project)]) { a, _ in a })], key: key)
        }
        let network = try await networkInsert(try input("network", ["name": "auto_allocated_network"]), caller: caller)(x)
        var subnets: [String] = []
        for version in versions {
            var fields: [String: JSON] = ["network_id": .string(network), "ip_version": .int(Int64(version)), "use_default_subnetpool": true,
                                          "name": .string("auto_allocated_subnet_v\(version)")]
            if version == 6 { fields["ipv6_ra_mode"] = "slaac"; fields["ipv6_address_mode"] = "slaac" }
            subnets.append(try await subnetInsert(try input("subnet", fields), caller: caller)(x))
        }
        let router = try await routerInsert(try input("router", ["name": "auto_allocated_router", "external_gateway_info": ["network_id": .string(external)]]),
                                            caller: caller)(x)
        for subnet in subnets { _ = try await attachInterface(router, subnet: subnet, port: nil, caller: caller, x) }
        try await x.execute("INSERT INTO network_auto_allocated_topology (project_id, network_id, router_id) VALUES (?, ?, ?)",
                            .text(project), .text(network), .text(router))
        return network
    }

    /// Takes the project's topology down: the router's interfaces and gateway, the router,
    /// then the network. A network something else still uses stays (409 NetworkInUse), and
    /// then nothing is taken down.
    public func deleteAutoAllocatedTopology(project: String, caller: AuthContext) async throws {
        try authorize("delete_auto_allocated_topology", caller, target: ["project_id": project, "tenant_id": project])
        try await write { x in
            guard let row = try await x.first("SELECT network_id, router_id FROM network_auto_allocated_topology WHERE project_id = ?", .text(project)) else {
                throw APIError(.notFound, "Auto allocated topology for project \(project) could not be found.", code: "TopologyNotFound")
            }
            let network = row.string("network_id")
            if try await x.first("SELECT 1 FROM network_port WHERE network_id = ? AND device_owner NOT IN ('network:dhcp', ?)",
                                 .text(network), .text(Self.interfaceOwner)) != nil {
                throw Self.conflict("Unable to complete operation on network \(network). There are one or more ports still in use on the network.", code: "NetworkInUse")
            }
            if let router = row.optionalString("router_id") {
                for port in try await x.query("SELECT id FROM network_port WHERE device_id = ? AND device_owner = ?", .text(router), .text(Self.interfaceOwner)) {
                    try await self.removePort(port.string("id"), x)
                }
                try await self.removeRouter(router, x)
            }
            try await self.removeNetwork(network, x)
        }
    }
}
