import Foundation
import HostAPI
import NimbusCore

/// What dnsmasq is told for one network's DHCP server, as Neutron's DHCP agent tells it: a
/// command line that changes only when the subnets or the interface do, and a hosts file and
/// an options file that change with every port and that dnsmasq reads again on SIGHUP.
public struct DnsmasqFiles: Sendable, Equatable {
    /// `mac,host-10-0-0-5.openstacklocal.,10.0.0.5` lines (with `set:port-<id>` for ports that
    /// carry extra DHCP options).
    public var hosts: String
    /// `tag:…,option:…,value` lines: each subnet's router, DNS servers, host routes and MTU,
    /// and the ports' extra options.
    public var options: String
    /// dnsmasq's arguments after the executable, given the directory holding its files.
    public var arguments: [String]

    public static let domain = "openstacklocal"
    public static let leaseSeconds = 86400

    public init(server: HostNetworkState.DHCPServer, interface: String, directory: String) {
        var hosts = ""
        for host in server.hosts {
            let tag = host.options.isEmpty ? "" : "set:port-\(host.portID),"
            hosts += "\(host.macAddress),\(tag)\(host.hostname).\(Self.domain).,\(host.ipAddress)\n"
        }
        self.hosts = hosts

        var options = ""
        for subnet in server.subnets where subnet.enableDHCP && subnet.ipVersion == 4 {
            let tag = "tag:subnet-\(subnet.id)"
            if let gateway = subnet.gatewayIP { options += "\(tag),option:router,\(gateway)\n" } else { options += "\(tag),option:router\n" }
            if !subnet.dnsNameservers.isEmpty { options += "\(tag),option:dns-server,\(subnet.dnsNameservers.joined(separator: ","))\n" }
            // RFC 3442: a client given option 121 ignores option 3, so the default route goes in
            // it too (Neutron adds it the same way).
            var routes = subnet.hostRoutes.map { "\($0.destination),\($0.nexthop)" }
            // An isolated subnet's guests reach the metadata service through this server.
            if subnet.isolated, let own = server.port.fixedIPs.first(where: { $0.subnetID == subnet.id })?.address {
                routes.append("\(MetadataAddress.ipv4)/32,\(own)")
            }
            if !routes.isEmpty, let gateway = subnet.gatewayIP { routes.append("0.0.0.0/0,\(gateway)") }
            if !routes.isEmpty {
                options += "\(tag),option:classless-static-route,\(routes.joined(separator: ","))\n"
                options += "\(tag),249,\(routes.joined(separator: ","))\n"
            }
            options += "\(tag),option:mtu,\(server.mtu)\n"
        }
        for host in server.hosts {
            for option in host.options where option.ipVersion == 4 {
                let name = Int(option.name) != nil ? option.name : "option:\(option.name)"
                options += "tag:port-\(host.portID),\(name),\(option.value)\n"
            }
        }
        self.options = options

        var arguments = [
            "--no-hosts", "--no-resolv", "--conf-file=/dev/null", "--port=0",
            "--pid-file=\(directory)/pid", "--dhcp-hostsfile=\(directory)/host", "--dhcp-optsfile=\(directory)/opts",
            "--dhcp-leasefile=\(directory)/leases", "--interface=\(interface)", "--bind-interfaces", "--except-interface=lo",
            "--domain=\(Self.domain)", "--dhcp-authoritative", "--dhcp-lease-max=\(1 << 16)", "--log-facility=\(directory)/log",
        ]
        for subnet in server.subnets where subnet.enableDHCP && subnet.ipVersion == 4 {
            guard let network = IPNetwork(subnet.cidr), network.version == 4 else { continue }
            let netmask = IPAddress(version: 4, value: ~network.hostMask & 0xffff_ffff)
            arguments.append("--dhcp-range=set:subnet-\(subnet.id),\(network.address),static,\(netmask),\(Self.leaseSeconds)s")
        }
        self.arguments = arguments
    }
}

/// Where guests find the metadata service (the link-local address EC2 chose, which OpenStack kept).
public enum MetadataAddress {
    public static let ipv4 = "169.254.169.254"
    public static let port = 80
}
