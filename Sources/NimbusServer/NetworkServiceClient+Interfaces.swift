import Compute
import Networking
import NimbusCore

/// Interface attach and detach (`os-interface`): one port at a time, checked as the caller and
/// then made and bound with the compute service's own right, as at boot.
extension NetworkServiceClient {
    func attachPort(_ request: RequestedNIC, instance: String, project: String, host: String, zone: String, securityGroups: [String],
                    caller: AuthContext) async throws -> (nic: AttachedNIC, request: RequestedNIC, created: Bool) {
        var resolved = request
        var created = false
        if let port = request.portID {
            guard let shown = try await visible({ try await network.port(port, caller: caller) }) else {
                throw APIError.notFound("Port id \(port) could not be found.")
            }
            if let device = shown["device_id"]?.stringValue, !device.isEmpty {
                throw APIError(.conflict, "Port \(port) is still in use.", code: "PortInUse")
            }
        } else {
            var networkID = request.networkID ?? ""
            if request.networkID == nil { networkID = try await onlyUsableNetwork(caller: caller) }
            guard try await visible({ try await network.network(networkID, caller: caller) }) != nil else {
                throw APIError.notFound("Network \(networkID) could not be found.")
            }
            resolved.networkID = networkID
            let made: [String: JSON]
            do {
                made = try await network.createInstancePort(network: networkID, project: project, instance: instance, fixedIPv4: request.fixedIP,
                                                            securityGroups: securityGroups)
            } catch let error as APIError {
                throw Self.novaError(error, network: networkID, address: request.fixedIP, instance: instance)
            }
            created = true
            let portID = made["id"]?.stringValue ?? ""
            do {
                return (try await bindForAttach(portID, instance: instance, host: host, zone: zone), resolved, created)
            } catch {
                try? await network.releaseInstancePort(portID, instance: instance, delete: true)
                throw error
            }
        }
        let portID = request.portID ?? ""
        do {
            return (try await bindForAttach(portID, instance: instance, host: host, zone: zone), resolved, created)
        } catch {
            try? await network.releaseInstancePort(portID, instance: instance, delete: false)
            throw error
        }
    }

    /// Binds the port for the instance: a port another instance took meanwhile is Nova's 409
    /// PortInUse, one no agent of the host can carry its 400 PortBindingFailed.
    func bindForAttach(_ port: String, instance: String, host: String, zone: String) async throws -> AttachedNIC {
        let bound: [String: JSON]
        do {
            bound = try await network.bindPort(port, host: host, instance: instance, availabilityZone: zone)
        } catch let error as APIError where error.code == "PortInUse" {
            throw APIError(.conflict, "Port \(port) is still in use.", code: "PortInUse")
        }
        if bound["binding:vif_type"]?.stringValue == "binding_failed" {
            throw APIError.badRequest("Binding failed for port \(port), please check neutron logs for more information.")
        }
        return try await nic(bound)
    }

    /// With no network named, Nova attaches to the caller's one usable network: several are
    /// 400 NetworkAmbiguous, none 400 InterfaceAttachFailedNoNetwork.
    func onlyUsableNetwork(caller: AuthContext) async throws -> String {
        let usable = try await network.listNetworks(caller: caller).filter { net in
            net["router:external"]?.boolValue != true && !(net["subnets"]?.arrayValue?.isEmpty ?? true)
        }
        if usable.count > 1 { throw APIError.badRequest("Multiple possible networks found, use a Network ID to be more specific.") }
        guard let only = usable.first?["id"]?.stringValue else {
            throw APIError.badRequest("No specific network was requested and none are available for project '\(caller.projectID ?? "")'.")
        }
        return only
    }

    /// Neutron's refusal of a port as Nova's API words it for `os-interface`.
    static func novaError(_ error: APIError, network: String, address: String?, instance: String) -> APIError {
        switch error.code {
        case "OverQuota": return APIError(.forbidden, "Maximum number of ports exceeded")
        case "IpAddressGenerationFailure": return APIError.badRequest("No fixed IP addresses available for network: \(network)")
        case "IpAddressAlreadyAllocated":
            return APIError(.conflict, "Fixed IP address \(address ?? "") is already in use on instance \(instance).")
        case "NetworkNotFound": return APIError.notFound("Network \(network) could not be found.")
        default: return error
        }
    }

    func releasePort(_ port: String, instance: String, delete: Bool) async throws {
        try await network.releaseInstancePort(port, instance: instance, delete: delete)
    }
}
