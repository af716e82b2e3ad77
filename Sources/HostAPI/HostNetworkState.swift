import Foundation

/// What one host's network dataplane must make true: computed by the controller from Neutron's
/// state for that host (the ports bound there, the networks they are on, the DHCP servers and
/// routers scheduled there) and applied by the host's agent, which compares it with what the
/// host has and changes only the difference. Everything the dataplane creates is named from the
/// ids here, so the same state applied twice changes nothing, and a restarted agent finds its
/// own work.
public struct HostNetworkState: Sendable, Equatable, Codable {
    public var host: String
    /// Every network with something wired on this host: a port, a DHCP server or a router port.
    public var networks: [Network]
    /// The ports the host plugs into guests (`binding:host_id` is this host, a `compute:` owner).
    public var ports: [Port]
    /// The security groups `ports` use, with their rules and, for rules naming a remote group,
    /// that group's members' addresses.
    public var securityGroups: [SecurityGroup]
    /// The networks whose DHCP server runs on this host.
    public var dhcp: [DHCPServer]
    /// The routers this host's L3 agent runs (each in its `qrouter-` namespace).
    public var routers: [Router]

    public init(host: String, networks: [Network] = [], ports: [Port] = [], securityGroups: [SecurityGroup] = [],
                dhcp: [DHCPServer] = [], routers: [Router] = []) {
        (self.host, self.networks, self.ports, self.securityGroups, self.dhcp, self.routers) = (host, networks, ports, securityGroups, dhcp, routers)
    }

    enum CodingKeys: String, CodingKey { case host, networks, ports, securityGroups, dhcp, routers }

    /// `routers` may be absent (a controller older than routers on the dataplane): none.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(host: try container.decode(String.self, forKey: .host), networks: try container.decode([Network].self, forKey: .networks),
                  ports: try container.decode([Port].self, forKey: .ports), securityGroups: try container.decode([SecurityGroup].self, forKey: .securityGroups),
                  dhcp: try container.decode([DHCPServer].self, forKey: .dhcp),
                  routers: try container.decodeIfPresent([Router].self, forKey: .routers) ?? [])
    }

    public struct Network: Sendable, Equatable, Codable {
        public var id: String
        /// ML2's segment: `vxlan`, `vlan`, `flat`, `local` (or `gre`).
        public var networkType: String
        public var physicalNetwork: String?
        public var segmentationID: Int?
        public var mtu: Int
        /// The tunnel endpoints (underlay addresses) of the other hosts with something wired on
        /// this network: a `vxlan` network floods to exactly these.
        public var peers: [String]

        public init(id: String, networkType: String, physicalNetwork: String? = nil, segmentationID: Int? = nil, mtu: Int = 1500,
                    peers: [String] = []) {
            (self.id, self.networkType, self.physicalNetwork, self.segmentationID, self.mtu, self.peers) =
                (id, networkType, physicalNetwork, segmentationID, mtu, peers)
        }
    }

    public struct FixedIP: Sendable, Equatable, Codable {
        public var subnetID: String
        public var address: String

        public init(subnetID: String, address: String) { (self.subnetID, self.address) = (subnetID, address) }
    }

    /// Neutron's `allowed_address_pairs` entry: an address or CIDR the port may also send from,
    /// with its MAC (the port's own when absent).
    public struct AddressPair: Sendable, Equatable, Codable {
        public var ipAddress: String
        public var macAddress: String?

        public init(ipAddress: String, macAddress: String? = nil) { (self.ipAddress, self.macAddress) = (ipAddress, macAddress) }
    }

    public struct Port: Sendable, Equatable, Codable {
        public var id: String
        public var networkID: String
        public var macAddress: String
        public var fixedIPs: [FixedIP]
        public var allowedAddressPairs: [AddressPair]
        public var securityGroupIDs: [String]
        /// False lifts anti-spoofing and security groups from the port.
        public var portSecurityEnabled: Bool
        public var adminStateUp: Bool
        public var deviceOwner: String
        public var deviceID: String

        public init(id: String, networkID: String, macAddress: String, fixedIPs: [FixedIP] = [], allowedAddressPairs: [AddressPair] = [],
                    securityGroupIDs: [String] = [], portSecurityEnabled: Bool = true, adminStateUp: Bool = true,
                    deviceOwner: String = "", deviceID: String = "") {
            (self.id, self.networkID, self.macAddress, self.fixedIPs, self.allowedAddressPairs) = (id, networkID, macAddress, fixedIPs, allowedAddressPairs)
            (self.securityGroupIDs, self.portSecurityEnabled, self.adminStateUp, self.deviceOwner, self.deviceID) =
                (securityGroupIDs, portSecurityEnabled, adminStateUp, deviceOwner, deviceID)
        }
    }

    public struct SecurityGroup: Sendable, Equatable, Codable {
        public var id: String
        public var rules: [Rule]
        /// The addresses of the group's member ports (fixed IPs and allowed address pairs), for
        /// other groups' rules that name this group as their remote group.
        public var memberAddresses: [String]

        public init(id: String, rules: [Rule] = [], memberAddresses: [String] = []) {
            (self.id, self.rules, self.memberAddresses) = (id, rules, memberAddresses)
        }
    }

    /// A security group rule as Neutron stores it; absent fields match anything.
    public struct Rule: Sendable, Equatable, Codable {
        public var id: String
        /// `ingress` (to the port) or `egress` (from the port).
        public var direction: String
        /// `IPv4` or `IPv6`.
        public var ethertype: String
        /// A name (`tcp`, `udp`, `icmp`, `icmpv6`, …) or an IP protocol number as text.
        public var `protocol`: String?
        /// For tcp/udp/sctp the port range; for icmp the type (`portRangeMin`) and code (`portRangeMax`).
        public var portRangeMin: Int?
        public var portRangeMax: Int?
        public var remoteIPPrefix: String?
        public var remoteGroupID: String?

        public init(id: String, direction: String, ethertype: String = "IPv4", protocol: String? = nil, portRangeMin: Int? = nil,
                    portRangeMax: Int? = nil, remoteIPPrefix: String? = nil, remoteGroupID: String? = nil) {
            (self.id, self.direction, self.ethertype, self.protocol) = (id, direction, ethertype, `protocol`)
            (self.portRangeMin, self.portRangeMax, self.remoteIPPrefix, self.remoteGroupID) = (portRangeMin, portRangeMax, remoteIPPrefix, remoteGroupID)
        }
    }

    public struct Subnet: Sendable, Equatable, Codable {
        public var id: String
        public var cidr: String
        public var ipVersion: Int
        public var gatewayIP: String?
        public var dnsNameservers: [String]
        /// Neutron's `host_routes`: destination CIDR → next hop (DHCP option 121).
        public var hostRoutes: [HostRoute]
        public var enableDHCP: Bool
        /// No router has an interface on the subnet: its guests reach the metadata service
        /// through the DHCP server's namespace (Neutron's isolated metadata), by a host route
        /// to 169.254.169.254 that DHCP hands out.
        public var isolated: Bool

        public init(id: String, cidr: String, ipVersion: Int = 4, gatewayIP: String? = nil, dnsNameservers: [String] = [],
                    hostRoutes: [HostRoute] = [], enableDHCP: Bool = true, isolated: Bool = true) {
            (self.id, self.cidr, self.ipVersion, self.gatewayIP) = (id, cidr, ipVersion, gatewayIP)
            (self.dnsNameservers, self.hostRoutes, self.enableDHCP, self.isolated) = (dnsNameservers, hostRoutes, enableDHCP, isolated)
        }
    }

    public struct HostRoute: Sendable, Equatable, Codable {
        public var destination: String
        public var nexthop: String

        public init(destination: String, nexthop: String) { (self.destination, self.nexthop) = (destination, nexthop) }
    }

    /// Neutron's `extra_dhcp_opts` entry: a dnsmasq option name or number and its value.
    public struct DHCPOption: Sendable, Equatable, Codable {
        public var name: String
        public var value: String
        public var ipVersion: Int

        public init(name: String, value: String, ipVersion: Int = 4) { (self.name, self.value, self.ipVersion) = (name, value, ipVersion) }
    }

    /// One fixed lease: every port of the network with an address on a DHCP-enabled subnet.
    public struct DHCPHost: Sendable, Equatable, Codable {
        public var portID: String
        public var macAddress: String
        public var ipAddress: String
        public var hostname: String
        public var options: [DHCPOption]
        /// The port's owner: a `compute:` port's device is its server, whose metadata the
        /// network's metadata proxy serves to requests from `ipAddress`.
        public var deviceOwner: String
        public var deviceID: String
        public var projectID: String

        public init(portID: String, macAddress: String, ipAddress: String, hostname: String, options: [DHCPOption] = [],
                    deviceOwner: String = "", deviceID: String = "", projectID: String = "") {
            (self.portID, self.macAddress, self.ipAddress, self.hostname, self.options) = (portID, macAddress, ipAddress, hostname, options)
            (self.deviceOwner, self.deviceID, self.projectID) = (deviceOwner, deviceID, projectID)
        }
    }

    /// A network's DHCP server on this host: dnsmasq in `qdhcp-<network id>` on the network's
    /// `network:dhcp` port.
    public struct DHCPServer: Sendable, Equatable, Codable {
        public var networkID: String
        public var port: Port
        public var mtu: Int
        public var subnets: [Subnet]
        public var hosts: [DHCPHost]

        public init(networkID: String, port: Port, mtu: Int, subnets: [Subnet], hosts: [DHCPHost]) {
            (self.networkID, self.port, self.mtu, self.subnets, self.hosts) = (networkID, port, mtu, subnets, hosts)
        }
    }
}

extension HostNetworkState {
    /// An IPv4 address of a router's port with its subnet's range (`10.0.0.1` in `10.0.0.0/24`):
    /// the interface gets `10.0.0.1/24`.
    public struct RouterAddress: Sendable, Equatable, Codable {
        public var subnetID: String
        public var address: String
        public var cidr: String

        public init(subnetID: String, address: String, cidr: String) { (self.subnetID, self.address, self.cidr) = (subnetID, address, cidr) }
    }

    /// One of a router's ports: an interface on a project network (`network:router_interface`,
    /// `qr-` in the router's namespace) or its gateway (`network:router_gateway`, `qg-`).
    public struct RouterPort: Sendable, Equatable, Codable {
        public var id: String
        public var networkID: String
        public var macAddress: String
        public var addresses: [RouterAddress]
        /// The network's MTU.
        public var mtu: Int

        public init(id: String, networkID: String, macAddress: String, addresses: [RouterAddress], mtu: Int = 1500) {
            (self.id, self.networkID, self.macAddress, self.addresses, self.mtu) = (id, networkID, macAddress, addresses, mtu)
        }
    }

    /// A router's way out: its port on the external network and where the default route goes.
    public struct RouterGateway: Sendable, Equatable, Codable {
        public var port: RouterPort
        /// The gateway IP of the external subnet of the port's first address: the router's
        /// default route. Nil when that subnet has none (no default route).
        public var nexthop: String?

        public init(port: RouterPort, nexthop: String?) { (self.port, self.nexthop) = (port, nexthop) }
    }

    /// A floating IP associated through a router: traffic to `floatingAddress` is DNATed to
    /// `fixedAddress`, and what `fixedAddress` sends out of the gateway leaves from `floatingAddress`.
    public struct FloatingIP: Sendable, Equatable, Codable {
        public var floatingAddress: String
        public var fixedAddress: String

        public init(floatingAddress: String, fixedAddress: String) { (self.floatingAddress, self.fixedAddress) = (floatingAddress, fixedAddress) }
    }

    /// A server's fixed address, for a metadata proxy to tell whose request it serves.
    public struct MetadataClient: Sendable, Equatable, Codable {
        public var address: String
        public var instanceID: String
        public var projectID: String

        public init(address: String, instanceID: String, projectID: String) {
            (self.address, self.instanceID, self.projectID) = (address, instanceID, projectID)
        }
    }

    /// A router scheduled to this host (Neutron's legacy, centralised router): its interfaces,
    /// its gateways, SNAT, static routes, floating IPs and NDP proxies. IPv4 routing only.
    public struct Router: Sendable, Equatable, Codable {
        public var id: String
        public var interfaces: [RouterPort]
        /// The first gateway (Neutron's `external_gateway_info`): the default route, SNAT,
        /// floating IPs and NDP proxies go through it.
        public var gateway: RouterGateway?
        /// Further gateway ports (`external-gateway-multihoming`), plugged with their
        /// addresses; no route or NAT uses them.
        public var extraGateways: [RouterPort]
        /// IPv6 addresses of ports behind the router that its gateway answers neighbour
        /// solicitations for (Neutron's NDP proxies).
        public var ndpProxies: [String]
        /// Traffic leaving through the gateway takes the gateway's address (Neutron's `enable_snat`).
        public var enableSNAT: Bool
        /// Neutron's `routes`: destination CIDR → next hop on one of the router's subnets.
        public var routes: [HostRoute]
        public var floatingIPs: [FloatingIP]
        /// The servers on the router's subnets: the router's metadata proxy finds a request's
        /// instance among them by its source address.
        public var metadataClients: [MetadataClient]

        public init(id: String, interfaces: [RouterPort] = [], gateway: RouterGateway? = nil, extraGateways: [RouterPort] = [], enableSNAT: Bool = true,
                    routes: [HostRoute] = [], floatingIPs: [FloatingIP] = [], metadataClients: [MetadataClient] = [], ndpProxies: [String] = []) {
            (self.id, self.interfaces, self.gateway, self.enableSNAT, self.routes, self.floatingIPs) = (id, interfaces, gateway, enableSNAT, routes, floatingIPs)
            (self.extraGateways, self.metadataClients, self.ndpProxies) = (extraGateways, metadataClients, ndpProxies)
        }

        enum CodingKeys: String, CodingKey {
            case id, interfaces, gateway, extraGateways, enableSNAT, routes, floatingIPs, metadataClients, ndpProxies
        }

        /// A state from a controller that predates multihoming and NDP proxies has neither.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(id: try c.decode(String.self, forKey: .id), interfaces: try c.decode([RouterPort].self, forKey: .interfaces),
                      gateway: try c.decodeIfPresent(RouterGateway.self, forKey: .gateway),
                      extraGateways: try c.decodeIfPresent([RouterPort].self, forKey: .extraGateways) ?? [],
                      enableSNAT: try c.decode(Bool.self, forKey: .enableSNAT), routes: try c.decode([HostRoute].self, forKey: .routes),
                      floatingIPs: try c.decode([FloatingIP].self, forKey: .floatingIPs),
                      metadataClients: try c.decode([MetadataClient].self, forKey: .metadataClients),
                      ndpProxies: try c.decodeIfPresent([String].self, forKey: .ndpProxies) ?? [])
        }

        /// The gateway ports: the first gateway's, then the extra ones.
        public var gatewayPorts: [RouterPort] { (gateway.map { [$0.port] } ?? []) + extraGateways }

        /// The networks the router has a port on: its interfaces' and its gateways'.
        public var networkIDs: [String] { interfaces.map(\.networkID) + gatewayPorts.map(\.networkID) }
    }
}

/// A host's network agent report (Neutron's agent heartbeat and `update_device_up` in one):
/// the host's dataplane is alive, its tunnels end at `tunnelingIP`, and `wiredPorts` are wired.
public struct NetworkAgentReport: Sendable, Equatable, Codable {
    public var host: String
    public var tunnelingIP: String
    public var wiredPorts: [String]

    public init(host: String, tunnelingIP: String, wiredPorts: [String] = []) {
        (self.host, self.tunnelingIP, self.wiredPorts) = (host, tunnelingIP, wiredPorts)
    }
}

/// How a host's network agent reaches the controller: in process for `nimbus up`'s own host,
/// over HTTP (`/network-agent/v1`) for `nimbus agent`.
public protocol NetworkAgentLink: Sendable {
    /// What `host` must wire now, computed from Neutron's state at the time of the call.
    func networkState(host: String) async throws -> HostNetworkState
    /// Records the report: afterwards the host's Linux bridge and DHCP agents are alive as of
    /// now, and each of `wiredPorts` still bound to the host is ACTIVE.
    func reportNetwork(_ report: NetworkAgentReport) async throws
}
