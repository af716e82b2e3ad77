import Foundation
import NimbusCore
import NimbusStore

/// Conntrack helpers of a router (`l3-conntrack-helper`): a kernel helper (ftp, tftp…) for
/// one protocol and port of the router's traffic. Stored and checked as Neutron does; the
/// router namespace's nftables do not yet assign them (`ct helper`).
extension NetworkService {
    /// Neutron's `[DEFAULT] l3_conntrack_helpers` default: the helpers allowed, with their protocol.
    static let conntrackHelperProtocols: [String: String] = [
        "amanda": "udp", "ftp": "tcp", "h323": "tcp", "irc": "tcp", "netbios-ns": "udp", "pptp": "tcp", "sane": "tcp",
        "sip": "udp", "snmp": "udp", "tftp": "udp",
    ]

    static func conntrackHelperNotFound(_ id: String) -> APIError {
        APIError(.notFound, "Conntrack Helper \(id) could not be found.", code: "ConntrackHelperNotFound")
    }

    static func conntrackHelper(_ row: Row) -> [String: JSON] {
        ["id": .string(row.string("id")), "protocol": .string(row.string("protocol")), "port": .int(row.int("port")),
         "helper": .string(row.string("helper"))]
    }

    /// The router as the caller sees it, after checking they may do `action` on its helpers.
    func conntrackHelperRouter(_ routerID: String, _ action: String, caller: AuthContext, _ x: any SQLExecutor) async throws -> Rendered {
        let router = try await stored("router", routerID, x)
        try authorizeVisible(action, "router", router, id: routerID, caller: caller)
        return router
    }

    public func conntrackHelpers(router: String, caller: AuthContext) async throws -> [[String: JSON]] {
        _ = try await conntrackHelperRouter(router, "get_router_conntrack_helper", caller: caller, db)
        return try await db.query("SELECT * FROM network_conntrack_helper WHERE router_id = ? ORDER BY created_at, id", .text(router)).map(Self.conntrackHelper)
    }

    public func conntrackHelper(_ id: String, router: String, caller: AuthContext) async throws -> [String: JSON] {
        _ = try await conntrackHelperRouter(router, "get_router_conntrack_helper", caller: caller, db)
        guard let row = try await db.first("SELECT * FROM network_conntrack_helper WHERE id = ? AND router_id = ?", .text(id), .text(router)) else {
            throw Self.conntrackHelperNotFound(id)
        }
        return Self.conntrackHelper(row)
    }

    static func conntrackHelperValues(_ input: JSONInput, current: [String: JSON]?) throws -> (helper: String, proto: String, port: Int64) {
        try allowOnly(input, ["protocol", "port", "helper"])
        let helper = try input.string("helper") ?? current?["helper"]?.stringValue
        let proto = try input.string("protocol") ?? current?["protocol"]?.stringValue
        let port = try input.int("port", in: 1...65535) ?? current?["port"]?.intValue
        guard let helper, let proto, let port else {
            throw badRequest("Failed to parse request. Required attributes 'helper', 'protocol' and 'port' must be specified", code: "InvalidInput")
        }
        guard let allowed = conntrackHelperProtocols[helper] else {
            throw badRequest("The conntrack helper \(helper) is not allowed; allowed helpers: \(conntrackHelperProtocols.keys.sorted()).", code: "BadRequest")
        }
        guard proto == allowed else {
            throw badRequest("Conntrack helper \(helper) is for protocol \(allowed), not \(proto).", code: "BadRequest")
        }
        return (helper, proto, port)
    }

    public func createConntrackHelper(router: String, _ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        let values = try Self.conntrackHelperValues(input, current: nil)
        let id = Identifiers.uuid()
        try await write { x in
            _ = try await self.conntrackHelperRouter(router, "create_router_conntrack_helper", caller: caller, x)
            try await self.requireFreeConntrackHelper(router, values, except: nil, x)
            try await x.execute("INSERT INTO network_conntrack_helper (id, router_id, protocol, port, helper, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                                .text(id), .text(router), .text(values.proto), .integer(values.port), .text(values.helper), Self.now())
        }
        return try await conntrackHelper(id, router: router, caller: caller)
    }

    public func updateConntrackHelper(_ id: String, router: String, _ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try await write { x in
            _ = try await self.conntrackHelperRouter(router, "update_router_conntrack_helper", caller: caller, x)
            guard let row = try await x.first("SELECT * FROM network_conntrack_helper WHERE id = ? AND router_id = ?", .text(id), .text(router)) else {
                throw Self.conntrackHelperNotFound(id)
            }
            let values = try Self.conntrackHelperValues(input, current: Self.conntrackHelper(row))
            try await self.requireFreeConntrackHelper(router, values, except: id, x)
            try await x.execute("UPDATE network_conntrack_helper SET protocol = ?, port = ?, helper = ? WHERE id = ?",
                                .text(values.proto), .integer(values.port), .text(values.helper), .text(id))
        }
        return try await conntrackHelper(id, router: router, caller: caller)
    }

    public func deleteConntrackHelper(_ id: String, router: String, caller: AuthContext) async throws {
        try await write { x in
            _ = try await self.conntrackHelperRouter(router, "delete_router_conntrack_helper", caller: caller, x)
            guard try await x.execute("DELETE FROM network_conntrack_helper WHERE id = ? AND router_id = ?", .text(id), .text(router)) > 0 else {
                throw Self.conntrackHelperNotFound(id)
            }
        }
    }

    /// Neutron's key (router, protocol, port, helper); a duplicate is its 400.
    func requireFreeConntrackHelper(_ router: String, _ values: (helper: String, proto: String, port: Int64), except id: String?,
                                    _ x: any SQLExecutor) async throws {
        if try await x.first("SELECT 1 FROM network_conntrack_helper WHERE router_id = ? AND protocol = ? AND port = ? AND helper = ? AND id <> ?",
                             .text(router), .text(values.proto), .integer(values.port), .text(values.helper), .text(id ?? "")) != nil {
            throw Self.badRequest("A duplicate conntrack helper entry with same attributes already exists, conflicting values are {'router_id': '\(router)', 'protocol': '\(values.proto)', 'port': \(values.port), 'helper': '\(values.helper)'}",
                                  code: "BadRequest")
        }
    }
}
