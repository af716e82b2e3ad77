extension NetworkExtensions {
    /// Trunks. The API is complete; the Linux bridge dataplane cannot wire them on hosts
    /// without 802.1Q, and a trunk whose parent is bound says so with status ERROR.
    static let trunks: [NetworkExtension] = [
        NetworkExtension(alias: "trunk", name: "Trunk Extension", description: "Trunk ports: a parent port with VLAN sub-ports."),
        NetworkExtension(alias: "trunk-details", name: "Trunk port details", description: "The trunk_details of a trunk's parent port."),
    ]
}

extension NetworkExtensions {
    /// Floating IP port forwardings.
    static let portForwardings: [NetworkExtension] = [
        NetworkExtension(alias: "floating-ip-port-forwarding", name: "Floating IP Port Forwarding",
                         description: "A protocol and port of a floating IP forwarded to a port and address inside."),
        NetworkExtension(alias: "floating-ip-port-forwarding-description", name: "Floating IP Port Forwarding new attribute description",
                         description: "The description of port forwardings."),
    ]
}

extension NetworkExtensions {
    /// Metering labels and rules: stored, not counted (no metering agent).
    static let metering: [NetworkExtension] = [
        NetworkExtension(alias: "metering", name: "Neutron Metering", description: "Metering labels and label rules."),
        NetworkExtension(alias: "metering_source_and_destination_fields", name: "Neutron Metering with source and destination filtering",
                         description: "source_ip_prefix and destination_ip_prefix of metering label rules."),
    ]
}

extension NetworkExtensions {
    /// Conntrack helpers of routers: stored, not yet assigned in the router namespace.
    static let conntrackHelpers: [NetworkExtension] = [
        NetworkExtension(alias: "l3-conntrack-helper", name: "L3 Conntrack Helper", description: "Conntrack helpers of routers."),
    ]
}

extension NetworkExtensions {
    /// The service plugins' extensions: QoS, trunks, port forwardings, metering, conntrack helpers.
    static var services: [NetworkExtension] { qos + trunks + portForwardings + metering + conntrackHelpers + flavors + localIPs }
}

extension NetworkExtensions {
    /// Network flavors and service profiles.
    static let flavors: [NetworkExtension] = [
        NetworkExtension(alias: "flavors", name: "Neutron Service Flavors", description: "Flavors of services and their service profiles."),
    ]
}

extension NetworkExtensions {
    /// Local IPs: stored, not translated by the Linux bridge dataplane.
    static let localIPs: [NetworkExtension] = [
        NetworkExtension(alias: "local_ip", name: "Local IP", description: "Local IPs and their port associations."),
    ]
}
