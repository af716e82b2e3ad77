import Foundation
import NimbusCore
import NimbusStore

/// ML2's type drivers: what each network type needs in a segment, which ids it may hand to
/// tenant networks, and how much of the path MTU its encapsulation costs.
enum NetworkType: String, Sendable, CaseIterable {
    case local, flat, vlan, vxlan, gre

    /// Bytes of encapsulation, taken off `[ml2] path_mtu` (Neutron's figures for IPv4 underlay).
    var overhead: Int { switch self { case .vxlan: 50; case .gre: 42; default: 0 } }

    /// The segmentation ids the type can express at all.
    var idLimits: ClosedRange<Int64>? {
        switch self {
        case .vlan: 1...4094
        case .vxlan: 1...(1 << 24 - 1)
        case .gre: 1...(1 << 32 - 1)
        case .local, .flat: nil
        }
    }

    var needsPhysicalNetwork: Bool { self == .flat || self == .vlan }
}

/// A network's layer-2 segment: what `provider:*` shows.
struct SegmentSpec: Sendable, Equatable {
    var type: NetworkType
    var physicalNetwork: String?
    var segmentationID: Int64?
}

/// ML2 configuration (`[ml2]`, `[ml2_type_*]`), parsed and checked at startup.
public struct ML2Settings: Sendable {
    var typeDrivers: [NetworkType] = NetworkType.allCases
    var tenantNetworkTypes: [NetworkType] = [.vxlan]
    /// Physical network → the VLAN ids tenant networks may take on it (none: provider-only).
    var vlanRanges: [String: [ClosedRange<Int64>]] = [:]
    var tunnelRanges: [NetworkType: [ClosedRange<Int64>]] = [.vxlan: [1...1000], .gre: [1...1000]]
    /// Physical networks flat networks may use; `*` allows any.
    var flatNetworks: [String] = ["*"]
    var pathMTU = 1500

    public init() {}

    /// From the option texts as `nimbus.conf` spells them; a malformed one is a startup error naming it.
    public init(typeDrivers: [String], tenantNetworkTypes: [String], networkVLANRanges: [String], vniRanges: [String],
                tunnelIDRanges: [String], flatNetworks: [String], pathMTU: Int) throws {
        func types(_ names: [String], _ option: String) throws -> [NetworkType] {
            try names.map { name in
                guard let type = NetworkType(rawValue: name) else { throw ConfigError("[ml2] \(option): unknown network type '\(name)'") }
                return type
            }
        }
        self.typeDrivers = try types(typeDrivers, "type_drivers")
        self.tenantNetworkTypes = try types(tenantNetworkTypes, "tenant_network_types")
        for type in self.tenantNetworkTypes where !self.typeDrivers.contains(type) {
            throw ConfigError("[ml2] tenant_network_types: '\(type.rawValue)' is not in type_drivers")
        }
        for entry in networkVLANRanges {
            let parts = entry.split(separator: ":").map(String.init)
            guard parts.count == 1 || parts.count == 3 else {
                throw ConfigError("[ml2_type_vlan] network_vlan_ranges: '\(entry)' is not physnet or physnet:min:max")
            }
            vlanRanges[parts[0], default: []] += parts.count == 3 ? [try Self.range("[ml2_type_vlan] network_vlan_ranges", parts[1], parts[2], .vlan)] : []
        }
        for (type, entries, option) in [(NetworkType.vxlan, vniRanges, "[ml2_type_vxlan] vni_ranges"), (.gre, tunnelIDRanges, "[ml2_type_gre] tunnel_id_ranges")] {
            tunnelRanges[type] = try entries.map { entry in
                let parts = entry.split(separator: ":").map(String.init)
                guard parts.count == 2 else { throw ConfigError("\(option): '\(entry)' is not min:max") }
                return try Self.range(option, parts[0], parts[1], type)
            }
        }
        self.flatNetworks = flatNetworks
        self.pathMTU = pathMTU
    }

    static func range(_ option: String, _ low: String, _ high: String, _ type: NetworkType) throws -> ClosedRange<Int64> {
        guard let a = Int64(low), let b = Int64(high), a <= b, let limits = type.idLimits, limits.contains(a), limits.contains(b) else {
            throw ConfigError("\(option): '\(low):\(high)' is not a valid \(type.rawValue) id range")
        }
        return a...b
    }

    func mtu(_ type: NetworkType) -> Int { pathMTU - type.overhead }

    /// The (physical network, id ranges) a type allocates from; tunnels have no physical network.
    func pools(_ type: NetworkType) -> [(physicalNetwork: String, ranges: [ClosedRange<Int64>])] {
        switch type {
        case .vlan: vlanRanges.keys.sorted().map { ($0, vlanRanges[$0] ?? []) }
        case .vxlan, .gre: [("", tunnelRanges[type] ?? [])]
        case .local, .flat: []
        }
    }

    /// Checks a provider segment an admin asked for, as the type driver's `validate_provider_segment`.
    func validate(_ spec: SegmentSpec) throws {
        guard typeDrivers.contains(spec.type) else {
            throw APIError(.badRequest, "Invalid input for operation: network_type value '\(spec.type.rawValue)' not supported.", code: "InvalidInput")
        }
        func invalid(_ message: String) -> APIError { APIError(.badRequest, "Invalid input for operation: \(message).", code: "InvalidInput") }
        if spec.type.needsPhysicalNetwork {
            if spec.type == .flat, spec.physicalNetwork == nil { throw invalid("physical_network required for flat provider network") }
            if let physnet = spec.physicalNetwork {
                let known = spec.type == .flat ? (flatNetworks.contains("*") || flatNetworks.contains(physnet)) : vlanRanges[physnet] != nil
                if !known { throw invalid("physical_network '\(physnet)' unknown for \(spec.type.rawValue) provider network") }
            } else if spec.segmentationID != nil {
                throw invalid("segmentation_id requires physical_network for VLAN provider network")
            }
        } else if spec.physicalNetwork != nil {
            throw invalid("\(spec.type.rawValue) networks cannot have a physical_network")
        }
        if let id = spec.segmentationID {
            guard let limits = spec.type.idLimits else { throw invalid("\(spec.type.rawValue) networks cannot have a segmentation_id") }
            if !limits.contains(id) {
                throw invalid("segmentation_id out of range (\(limits.lowerBound) through \(limits.upperBound))")
            }
        }
    }
}

/// What binds ports to hosts for a back end (Neutron's ML2 mechanism driver), reduced to the
/// calls Nimbus makes. Pre-commit calls run inside the write's transaction and may veto it;
/// post-commit calls run after commit and must not fail the request.
protocol MechanismDriver: Sendable {
    func networkPrecommit(_ network: [String: JSON], _ x: any SQLExecutor) async throws
    func networkPostcommit(_ network: [String: JSON]) async
    func portPrecommit(_ port: [String: JSON], _ x: any SQLExecutor) async throws
    func portPostcommit(_ port: [String: JSON]) async
    /// The VIF type and details for a port bound on `host`, or nil when the driver cannot bind it there.
    func bind(port: [String: JSON], host: String, segment: SegmentSpec) -> (vifType: String, vifDetails: [String: JSON])?
}

/// Binds every port and does nothing else: the stand-in until a real back end plugs VIFs.
struct NoopMechanismDriver: MechanismDriver {
    func networkPrecommit(_ network: [String: JSON], _ x: any SQLExecutor) async throws {}
    func networkPostcommit(_ network: [String: JSON]) async {}
    func portPrecommit(_ port: [String: JSON], _ x: any SQLExecutor) async throws {}
    func portPostcommit(_ port: [String: JSON]) async {}
    func bind(port: [String: JSON], host: String, segment: SegmentSpec) -> (vifType: String, vifDetails: [String: JSON])? {
        ("other", ["port_filter": false])
    }
}
