import Compute
import Foundation
import Logging
import Networking
import NimbusCore

/// The compute service's view of the networking service, in process: requested networks and
/// ports are checked as the user who asked (Nova's validate_networks); ports are then made and
/// bound with the compute service's own right, as Nova's service user does in Neutron.
struct NetworkServiceClient: NetworkClient {
    let network: NetworkService
    let logger: Logger

    func resolve(_ request: NetworkRequest, caller: AuthContext) async throws -> [RequestedNIC] {
        switch request {
        case .none:
            return []
        case .auto:
            // Nova's get-me-a-network: the one network the project can boot on (its own or
            // shared, with a subnet); with none, the project's auto-allocated topology.
            let usable = try await network.listNetworks(caller: caller).filter { net in
                net["router:external"]?.boolValue != true && !(net["subnets"]?.arrayValue?.isEmpty ?? true)
            }
            if usable.count > 1 { throw APIError.conflict("Multiple possible networks found, use a Network ID to be more specific.") }
            if let only = usable.first?["id"]?.stringValue { return [RequestedNIC(networkID: only)] }
            return try await autoAllocated(caller: caller).map { [RequestedNIC(networkID: $0)] } ?? []
        case .list(let nics):
            for nic in nics {
                if let port = nic.portID {
                    guard let shown = try await visible({ try await network.port(port, caller: caller) }) else {
                        throw APIError.badRequest("Port id \(port) could not be found.")
                    }
                    if let device = shown["device_id"]?.stringValue, !device.isEmpty { throw APIError.conflict("Port \(port) is still in use.") }
                } else if let id = nic.networkID, try await visible({ try await network.network(id, caller: caller) }) == nil {
                    throw APIError.badRequest("Network \(id) could not be found.")
                }
            }
            return nics
        }
    }

    /// The project's auto-allocated network, or nil when the cloud lacks what one needs (a
    /// default external network and subnet pool). Nova refuses such a boot (400 "Unable to
    /// automatically allocate a network"); Nimbus boots the server without a network instead,
    /// so a cloud with no networking set up still runs servers, as `nimbus up` promises.
    func autoAllocated(caller: AuthContext) async throws -> String? {
        guard let project = caller.projectID else { return nil }
        do {
            return try await network.autoAllocatedTopology(project: project, dryRun: false, caller: caller)["auto_allocated_topology"]?["id"]?.stringValue
        } catch let error as APIError where error.code == "AutoAllocationFailure" || error.status == .forbidden {
            logger.info("no auto-allocated network for project \(project): \(error.message)")
            return nil
        }
    }

    func allocate(_ nics: [RequestedNIC], instance: String, project: String, host: String, zone: String,
                  securityGroups: [String]) async throws -> [AttachedNIC] {
        // Ports made for this instance by an earlier, interrupted attempt are used again.
        var leftover = try await network.devicePorts(instance)
        let given = Set(nics.compactMap(\.portID))
        var ports: [String] = []
        var created: [String] = []
        do {
            for nic in nics {
                if let port = nic.portID {
                    ports.append(port)
                } else if let id = nic.networkID {
                    if let index = leftover.firstIndex(where: { $0["network_id"]?.stringValue == id && !given.contains($0["id"]?.stringValue ?? "") }) {
                        ports.append(leftover.remove(at: index)["id"]?.stringValue ?? "")
                    } else {
                        let port = try await network.createInstancePort(network: id, project: project, instance: instance, fixedIPv4: nic.fixedIP,
                                                                        securityGroups: securityGroups)
                        let portID = port["id"]?.stringValue ?? ""
                        created.append(portID)
                        ports.append(portID)
                    }
                }
            }
            var attached: [AttachedNIC] = []
            for port in ports {
                let bound = try await network.bindPort(port, host: host, instance: instance, availabilityZone: zone)
                // Nova's PortBindingFailed: no host agent can carry the port's network there.
                if bound["binding:vif_type"]?.stringValue == "binding_failed" {
                    throw APIError.badRequest("Binding failed for port \(port), please check neutron logs for more information.")
                }
                attached.append(try await nic(bound))
            }
            return attached
        } catch {
            // Only what this call made goes back: the instance's other ports may be serving it
            // (a move's rebind), and a failed build's are released when the server is deleted.
            for port in created { try? await network.deletePort(port, caller: .computeService) }
            throw error
        }
    }

    func securityGroups(_ names: [String], caller: AuthContext) async throws -> [(id: String, name: String)] {
        guard let project = caller.projectID else { return [] }
        var groups: [(id: String, name: String)] = []
        for name in names {
            guard let group = try await network.projectSecurityGroup(name, project: project) else {
                throw APIError.badRequest("Security group \(name) not found for project \(project).")
            }
            if !groups.contains(where: { $0.id == group.id }) { groups.append(group) }
        }
        return groups
    }

    func changeSecurityGroup(_ group: String, instance: String, project: String, adding: Bool, caller: AuthContext) async throws -> String {
        guard let found = try await network.projectSecurityGroup(group, project: project) else {
            throw APIError.notFound("Security group \(group) not found for project \(project).")
        }
        let ports = try await network.devicePorts(instance)
        for port in ports {
            let current = port["security_groups"]?.arrayValue?.compactMap(\.stringValue) ?? []
            if adding == current.contains(found.id) {
                throw APIError.badRequest(adding ? "Security group \(found.name) is already associated with the instance \(instance)"
                                                 : "Security group \(found.name) not associated with the instance \(instance)")
            }
        }
        for port in ports {
            let current = port["security_groups"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let groups = adding ? current + [found.id] : current.filter { $0 != found.id }
            _ = try await network.updatePort(port["id"]?.stringValue ?? "", ["port": ["security_groups": .array(groups.map { .string($0) })]], caller: caller)
        }
        return found.name
    }

    func deallocate(instance: String, keep: Set<String>) async throws {
        try await network.releaseDevicePorts(instance, keep: keep)
    }

    func hostAlive(_ host: String) async {
        do { try await network.reportAgentState(host: host, type: .linuxBridge) } catch {
            logger.warning("cannot record the Linux bridge agent of \(host): \(error)")
        }
    }

    /// A bound port as the driver and `addresses` need it.
    func nic(_ port: [String: JSON]) async throws -> AttachedNIC {
        let networkID = port["network_id"]?.stringValue ?? ""
        let name = try await network.network(networkID, caller: .computeService)["name"]?.stringValue ?? networkID
        var binding: [String: String] = [:]
        for key in ["binding:vif_type", "binding:host_id"] { binding[key] = port[key]?.stringValue }
        for (key, value) in port["binding:vif_details"]?.objectValue ?? [:] { binding[key] = value.stringValue ?? value.serialized() }
        let id = port["id"]?.stringValue ?? ""
        let fixedIPs = port["fixed_ips"]?.arrayValue ?? []
        var subnets: [String: String] = [:]
        for fixed in fixedIPs {
            if let address = fixed["ip_address"]?.stringValue, let subnet = fixed["subnet_id"]?.stringValue { subnets[address] = subnet }
        }
        return AttachedNIC(portID: id, networkID: networkID, networkName: name, macAddress: port["mac_address"]?.stringValue ?? "",
                           fixedIPs: fixedIPs.compactMap { $0["ip_address"]?.stringValue }, binding: binding,
                           floatingIPs: try await network.floatingAddresses(port: id), subnets: subnets, status: port["status"]?.stringValue ?? "")
    }

    func attached(instance: String) async throws -> [AttachedNIC] {
        var nics: [AttachedNIC] = []
        for port in try await network.devicePorts(instance) { nics.append(try await nic(port)) }
        return nics
    }

    func instanceSecurityGroups(instance: String, caller: AuthContext) async throws -> [InstanceSecurityGroup] {
        var ids: [String] = []
        for port in try await network.devicePorts(instance) {
            for id in port["security_groups"]?.arrayValue?.compactMap(\.stringValue) ?? [] where !ids.contains(id) { ids.append(id) }
        }
        var groups: [InstanceSecurityGroup] = []
        var remoteGroups: [String: SecurityGroup?] = [:]
        for id in ids {
            guard let group = try await visible({ try await network.securityGroup(id, caller: caller) }) else { continue }
            groups.append(try await novaGroup(group, caller: caller, remoteGroups: &remoteGroups))
        }
        return groups
    }

    /// The result, or nil when the caller may not see it (Neutron's 404).
    func visible<T>(_ lookup: () async throws -> T) async throws -> T? {
        do { return try await lookup() } catch let error as APIError where error.status == .notFound { return nil }
    }
}
