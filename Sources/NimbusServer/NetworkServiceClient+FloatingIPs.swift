import Compute
import Foundation
import Networking
import NimbusCore

/// Nova's floating IP proxies (`os-floating-ips`, `addFloatingIp`, `removeFloatingIp`) on
/// Neutron's floating IPs, as the caller.
extension NetworkServiceClient: FloatingIPProxyClient {
    func proxyFloatingIPs(caller: AuthContext) async throws -> [ProxyFloatingIP] {
        // Nova lists the floating IPs of the request's project, an admin's too.
        let own = try await network.listFloatingIPs(caller: caller).filter { $0["project_id"]?.stringValue == caller.projectID }
        var pools: [String: String] = [:]
        var out: [ProxyFloatingIP] = []
        for floating in own { out.append(try await proxyView(floating, caller: caller, pools: &pools)) }
        return out
    }

    func proxyFloatingIP(id: String, caller: AuthContext) async throws -> ProxyFloatingIP? {
        guard let floating = try await visible({ try await network.floatingIP(id, caller: caller) }) else { return nil }
        var pools: [String: String] = [:]
        return try await proxyView(floating, caller: caller, pools: &pools)
    }

    func proxyFloatingIP(address: String, caller: AuthContext) async throws -> ProxyFloatingIP? {
        guard let floating = try await network.listFloatingIPs(caller: caller).first(where: { $0["floating_ip_address"]?.stringValue == address }) else {
            return nil
        }
        var pools: [String: String] = [:]
        return try await proxyView(floating, caller: caller, pools: &pools)
    }

    /// The pool is an external network named so (or with that id); with none named, Nova's
    /// `default_floating_pool` ("nova"), or the cloud's only external network when none is
    /// called that (Nimbus has no such option to set).
    func allocateProxyFloatingIP(pool: String?, caller: AuthContext) async throws -> ProxyFloatingIP {
        let external = try await network.listNetworks(caller: caller).filter { $0["router:external"]?.boolValue == true }
        let wanted = pool ?? "nova"
        var matches = external.filter { $0["name"]?.stringValue == wanted || $0["id"]?.stringValue == wanted }
        if matches.isEmpty && pool == nil && external.count == 1 { matches = external }
        guard let chosen = matches.first?["id"]?.stringValue else { throw APIError.notFound("Floating IP pool not found.") }
        guard matches.count == 1 else { throw APIError.conflict("Multiple floating IP pools matches found for name '\(wanted)'") }
        let created: [[String: JSON]]
        do {
            created = try await network.create("floatingip", [["floating_network_id": .string(chosen)]], caller: caller)
        } catch let error as APIError where error.status == .conflict {
            throw APIError.forbidden("IP allocation over quota in pool \(wanted).")
        } catch let error as APIError where error.code == "ExternalIpAddressExhausted" {
            throw APIError.notFound("No more floating IPs in pool \(wanted).")
        }
        guard let id = created.first?["id"]?.stringValue, let floating = try await proxyFloatingIP(id: id, caller: caller) else {
            throw APIError.notFound("Floating IP pool not found.")
        }
        return floating
    }

    func releaseProxyFloatingIP(id: String, caller: AuthContext) async throws {
        try await network.deleteFloatingIP(id, caller: caller)
    }

    func associateProxyFloatingIP(id: String, port: String, fixedAddress: String, caller: AuthContext) async throws {
        _ = try await network.updateFloatingIP(id, ["floatingip": ["port_id": .string(port), "fixed_ip_address": .string(fixedAddress)]], caller: caller)
    }

    func disassociateProxyFloatingIP(id: String, caller: AuthContext) async throws {
        _ = try await network.updateFloatingIP(id, ["floatingip": ["port_id": .null]], caller: caller)
    }

    /// Nova's view: the pool is the external network's name (its id when unnamed or unseen),
    /// the instance the device of the port it is NATed to.
    func proxyView(_ floating: [String: JSON], caller: AuthContext, pools: inout [String: String]) async throws -> ProxyFloatingIP {
        let networkID = floating["floating_network_id"]?.stringValue ?? ""
        if pools[networkID] == nil {
            let name = try await visible({ try await network.network(networkID, caller: caller) })?["name"]?.stringValue ?? ""
            pools[networkID] = name.isEmpty ? networkID : name
        }
        let device = floating["port_details"]?["device_id"]?.stringValue
        return ProxyFloatingIP(id: floating["id"]?.stringValue ?? "", address: floating["floating_ip_address"]?.stringValue ?? "",
                               pool: pools[networkID] ?? networkID, fixedAddress: floating["fixed_ip_address"]?.stringValue,
                               instanceID: device?.isEmpty == false ? device : nil)
    }
}
