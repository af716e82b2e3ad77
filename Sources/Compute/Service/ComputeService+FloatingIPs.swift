import Foundation
import NimbusCore

/// A Neutron floating IP as Nova's `os-floating-ips` proxy shows it.
public struct ProxyFloatingIP: Sendable, Equatable {
    public var id: String
    public var address: String
    /// The external network's name (its id when unnamed).
    public var pool: String
    public var fixedAddress: String?
    /// The device of the port it is NATed to (a server's uuid), when associated.
    public var instanceID: String?

    public init(id: String, address: String, pool: String, fixedAddress: String?, instanceID: String?) {
        (self.id, self.address, self.pool, self.fixedAddress, self.instanceID) = (id, address, pool, fixedAddress, instanceID)
    }

    /// Nova's body for one floating IP.
    public var json: JSON {
        ["id": .string(id), "ip": .string(address), "pool": .string(pool), "fixed_ip": .optional(fixedAddress), "instance_id": .optional(instanceID)]
    }
}

/// What Nova's floating IP proxies (`os-floating-ips` below 2.36, `addFloatingIp` and
/// `removeFloatingIp` below 2.44) ask of the networking service, as the caller. The
/// networking service's `NetworkClient` also offers this; without it there are no floating IPs.
public protocol FloatingIPProxyClient: Sendable {
    /// The floating IPs of the caller's project, oldest first.
    func proxyFloatingIPs(caller: AuthContext) async throws -> [ProxyFloatingIP]
    /// The floating IP with this id, or nil when there is none the caller may see.
    func proxyFloatingIP(id: String, caller: AuthContext) async throws -> ProxyFloatingIP?
    /// The floating IP with this address, or nil when there is none the caller may see.
    func proxyFloatingIP(address: String, caller: AuthContext) async throws -> ProxyFloatingIP?
    /// A new floating IP of the caller's project on the external network named (by name or
    /// id) `pool`, or on the default pool when nil. Throws Nova's errors: 404 for an unknown
    /// pool or one without free addresses, 403 over quota.
    func allocateProxyFloatingIP(pool: String?, caller: AuthContext) async throws -> ProxyFloatingIP
    /// Releases (deletes) the floating IP, associated or not.
    func releaseProxyFloatingIP(id: String, caller: AuthContext) async throws
    /// NATs the floating IP to `fixedAddress` of `port`, moving it from wherever it was; a
    /// refusal of the networking service (no route to the external network…) is a 400.
    func associateProxyFloatingIP(id: String, port: String, fixedAddress: String, caller: AuthContext) async throws
    func disassociateProxyFloatingIP(id: String, caller: AuthContext) async throws
}

extension ComputeService {
    var floatingIPProxy: (any FloatingIPProxyClient)? { conductor.network as? any FloatingIPProxyClient }

    func requireFloatingIPProxy() throws -> any FloatingIPProxyClient {
        guard let proxy = floatingIPProxy else { throw APIError.notFound("Floating IPs need the networking service.") }
        return proxy
    }

    // MARK: os-floating-ips

    public func proxyFloatingIPs(caller: AuthContext) async throws -> [JSON] {
        try authorize("os_compute_api:os-floating-ips:list", caller)
        return try await (floatingIPProxy?.proxyFloatingIPs(caller: caller) ?? []).map(\.json)
    }

    public func proxyFloatingIP(_ id: String, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-floating-ips:show", caller)
        return try await requireFloatingIP(id, caller: caller).json
    }

    /// Nova's allocate: the body (`{"pool": name}`) may be absent or empty.
    public func allocateProxyFloatingIP(_ body: JSON?, caller: AuthContext) async throws -> JSON {
        try authorize("os_compute_api:os-floating-ips:create", caller)
        var pool: String?
        if let body, !body.isNull, let raw = body["pool"], !raw.isNull {
            guard let name = raw.stringValue else { throw APIError.badRequest("Invalid input for field/attribute pool. Value: \(raw.serialized()).") }
            pool = name
        }
        return try await requireFloatingIPProxy().allocateProxyFloatingIP(pool: pool, caller: caller).json
    }

    /// Nova's delete: disassociated (if it was) and released.
    public func releaseProxyFloatingIP(_ id: String, caller: AuthContext) async throws {
        try authorize("os_compute_api:os-floating-ips:delete", caller)
        let floating = try await requireFloatingIP(id, caller: caller)
        try await requireFloatingIPProxy().releaseProxyFloatingIP(id: floating.id, caller: caller)
    }

    func requireFloatingIP(_ id: String, caller: AuthContext) async throws -> ProxyFloatingIP {
        guard let floating = try await floatingIPProxy?.proxyFloatingIP(id: id, caller: caller) else {
            throw APIError.notFound("Floating IP not found for ID \(id)")
        }
        return floating
    }

    // MARK: addFloatingIp, removeFloatingIp

    /// `addFloatingIp`: NATs the floating address to the server's `fixed_address`, or to its
    /// first IPv4 address, as Nova picks it from the server's network info.
    func addFloatingIP(_ uuid: String, _ value: JSON, caller: AuthContext) async throws {
        let (address, fixedAddress) = try Self.floatingIPActionBody(value, action: "addFloatingIp", allowFixed: true)
        let instance = try await visibleInstance(uuid, caller: caller)
        try authorize("os_compute_api:os-floating-ips:add", caller, project: instance.projectID)
        let nics = (instance.extra["nics"]?.arrayValue ?? []).compactMap(AttachedNIC.init(json:))
        guard !nics.isEmpty else { throw APIError.badRequest("Instance network is not ready yet") }
        let fixed = nics.flatMap { nic in nic.fixedIPs.map { (port: nic.portID, address: $0) } }
        guard !fixed.isEmpty else { throw APIError.badRequest("No fixed IPs associated to instance") }
        let target: (port: String, address: String)
        if let fixedAddress {
            guard let found = fixed.first(where: { $0.address == fixedAddress }) else {
                throw APIError.badRequest("Specified fixed address not assigned to instance")
            }
            target = found
        } else {
            guard let found = fixed.first(where: { IPAddress($0.address)?.version == 4 }) else {
                throw APIError.badRequest("Unable to associate floating IP \(address) to any fixed IPs for instance \(uuid). "
                                          + "Instance has no fixed IPv4 addresses to associate.")
            }
            target = found
        }
        let proxy = try requireFloatingIPProxy()
        guard let floating = try await proxy.proxyFloatingIP(address: address, caller: caller) else { throw APIError.notFound("floating IP not found") }
        do {
            try await proxy.associateProxyFloatingIP(id: floating.id, port: target.port, fixedAddress: target.address, caller: caller)
        } catch let error as APIError where error.status == .badRequest || error.status == .conflict {
            throw APIError.badRequest("Unable to associate floating IP \(address) to fixed IP \(target.address) for instance \(uuid). Error: \(error.message)")
        }
    }

    /// `removeFloatingIp`: 409 unless the floating address is NATed to this server.
    func removeFloatingIP(_ uuid: String, _ value: JSON, caller: AuthContext) async throws {
        let (address, _) = try Self.floatingIPActionBody(value, action: "removeFloatingIp", allowFixed: false)
        let instance = try await visibleInstance(uuid, caller: caller)
        try authorize("os_compute_api:os-floating-ips:remove", caller, project: instance.projectID)
        let proxy = try requireFloatingIPProxy()
        guard let floating = try await proxy.proxyFloatingIP(address: address, caller: caller) else { throw APIError.notFound("floating IP not found") }
        guard floating.instanceID == uuid else {
            throw APIError.conflict("Floating IP \(address) is not associated with instance \(uuid).")
        }
        try await proxy.disassociateProxyFloatingIP(id: floating.id, caller: caller)
    }

    /// Nova's schema: `address` (an IP address) required, `fixed_address` (one too) only for
    /// `addFloatingIp`, nothing else.
    static func floatingIPActionBody(_ value: JSON, action: String, allowFixed: Bool) throws -> (address: String, fixed: String?) {
        guard let object = value.objectValue else {
            throw APIError.badRequest("Invalid input for field/attribute \(action). Value: \(value.serialized()). \(value.serialized()) is not of type 'object'")
        }
        let allowed: Set<String> = allowFixed ? ["address", "fixed_address"] : ["address"]
        if let extra = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw APIError.badRequest("Invalid input for field/attribute \(action). Value: \(value.serialized()). Additional properties are not allowed ('\(extra)' was unexpected)")
        }
        guard let raw = object["address"] else {
            throw APIError.badRequest("Invalid input for field/attribute \(action). Value: \(value.serialized()). 'address' is a required property")
        }
        func ip(_ field: String, _ raw: JSON) throws -> String {
            guard let text = raw.stringValue, IPAddress(text) != nil else {
                throw APIError.badRequest("Invalid input for field/attribute \(field). Value: \(raw.serialized()). \(raw.serialized()) is not a 'ip-address'")
            }
            return text
        }
        return (try ip("address", raw), try object["fixed_address"].map { try ip("fixed_address", $0) })
    }
}
