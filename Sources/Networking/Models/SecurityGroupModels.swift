import Foundation
import NimbusCore
import NimbusStore

/// A security group: a project's named set of rules, applied to the ports that name it.
public struct SecurityGroup: Sendable {
    public var id: String
    public var projectID: String
    public var name: String
    public var description: String
    public var stateful: Bool
    public var tags: [String]
    public var revisionNumber: Int64
    public var createdAt: Date
    public var updatedAt: Date
    /// Filled in by the service when it reads the group.
    public var rules: [SecurityGroupRule] = []
    /// Whether an RBAC policy shares the group with the reader's project (or every project).
    public var shared = false

    init(row: Row) {
        id = row.string("id")
        projectID = row.string("project_id")
        name = row.string("name")
        description = row.string("description")
        stateful = row.bool("stateful")
        tags = ((try? JSON.parse(row.string("tags")))?.arrayValue ?? []).compactMap(\.stringValue)
        revisionNumber = row.int("revision_number")
        createdAt = Date(timeIntervalSince1970: row.double("created_at"))
        updatedAt = Date(timeIntervalSince1970: row.double("updated_at"))
    }

    /// Neutron's representation, its rules embedded.
    var json: [String: JSON] {
        ["id": .string(id), "name": .string(name), "description": .string(description), "project_id": .string(projectID),
         "tenant_id": .string(projectID), "stateful": .bool(stateful), "shared": .bool(shared), "tags": .array(tags.map { .string($0) }),
         "security_group_rules": .array(rules.map { .object($0.json) }), "revision_number": .int(revisionNumber),
         "created_at": .string(Timestamps.iso8601(createdAt)), "updated_at": .string(Timestamps.iso8601(updatedAt))]
    }
}

/// One rule of a security group: traffic of one direction and family that the group lets
/// through, narrowed by protocol, ports and the remote side (a prefix or the ports of a group).
public struct SecurityGroupRule: Sendable, Equatable {
    public enum Direction: String, Sendable, CaseIterable { case ingress, egress }
    public enum EtherType: String, Sendable, CaseIterable {
        case ipv4 = "IPv4", ipv6 = "IPv6"
        var anyPrefix: String { self == .ipv4 ? "0.0.0.0/0" : "::/0" }
    }

    public var id: String
    public var securityGroupID: String
    public var projectID: String
    public var direction: Direction
    public var etherType: EtherType
    /// As the client gave it, lower-cased: a name from `IPProtocols.numbers` or a number 0-255; nil for any.
    public var `protocol`: String?
    /// TCP/UDP-like protocols: the port range; ICMP: the type and code.
    public var portRangeMin: Int64?
    public var portRangeMax: Int64?
    /// As the client gave it: host bits may be set (`10.2.3.4/24`).
    public var remoteIPPrefix: String?
    /// The remote prefix without host bits (`10.2.3.0/24`), Neutron's `normalized_cidr`.
    public var normalizedCIDR: String? { remoteIPPrefix.flatMap { IPNetwork($0)?.description } }
    public var remoteGroupID: String?
    /// The remote side as an address group's CIDRs.
    public var remoteAddressGroupID: String?
    public var description: String
    public var revisionNumber: Int64
    public var createdAt: Date
    public var updatedAt: Date

    init(id: String, securityGroupID: String, projectID: String, direction: Direction, etherType: EtherType, protocol: String? = nil,
         portRangeMin: Int64? = nil, portRangeMax: Int64? = nil, remoteIPPrefix: String? = nil, remoteGroupID: String? = nil,
         description: String = "", at now: Date) {
        (self.id, self.securityGroupID, self.projectID, self.direction, self.etherType, self.protocol) =
            (id, securityGroupID, projectID, direction, etherType, `protocol`)
        (self.portRangeMin, self.portRangeMax, self.remoteIPPrefix, self.remoteGroupID, self.description) =
            (portRangeMin, portRangeMax, remoteIPPrefix, remoteGroupID, description)
        (revisionNumber, createdAt, updatedAt) = (0, now, now)
    }

    init(row: Row) {
        id = row.string("id")
        securityGroupID = row.string("security_group_id")
        projectID = row.string("project_id")
        direction = Direction(rawValue: row.string("direction")) ?? .ingress
        etherType = EtherType(rawValue: row.string("ethertype")) ?? .ipv4
        `protocol` = row.optionalString("protocol")
        portRangeMin = row.optionalInt("port_range_min")
        portRangeMax = row.optionalInt("port_range_max")
        remoteIPPrefix = row.optionalString("remote_ip_prefix")
        remoteGroupID = row.optionalString("remote_group_id")
        remoteAddressGroupID = row.optionalString("remote_address_group_id")
        description = row.string("description")
        revisionNumber = row.int("revision_number")
        createdAt = Date(timeIntervalSince1970: row.double("created_at"))
        updatedAt = Date(timeIntervalSince1970: row.double("updated_at"))
    }

    /// The IP protocol number, whether the rule names it or numbers it; nil for any.
    public var protocolNumber: Int? { `protocol`.flatMap(IPProtocols.number) }

    /// What makes two rules the same rule (Neutron's duplicate check): the protocol by number,
    /// a prefix by its network (host bits left out), and a prefix of the whole family the same
    /// as no prefix.
    var identity: [String?] {
        [direction.rawValue, etherType.rawValue, protocolNumber.map(String.init), portRangeMin.map(String.init),
         portRangeMax.map(String.init), normalizedCIDR == etherType.anyPrefix ? nil : normalizedCIDR, remoteGroupID, securityGroupID, remoteAddressGroupID]
    }

    var json: [String: JSON] {
        ["id": .string(id), "security_group_id": .string(securityGroupID), "project_id": .string(projectID),
         "tenant_id": .string(projectID), "direction": .string(direction.rawValue), "ethertype": .string(etherType.rawValue),
         "protocol": .optional(`protocol`), "port_range_min": portRangeMin.map { .int($0) } ?? .null,
         "port_range_max": portRangeMax.map { .int($0) } ?? .null, "remote_ip_prefix": .optional(remoteIPPrefix),
         "normalized_cidr": .optional(normalizedCIDR), "remote_group_id": .optional(remoteGroupID), "remote_address_group_id": .optional(remoteAddressGroupID), "description": .string(description),
         "revision_number": .int(revisionNumber), "created_at": .string(Timestamps.iso8601(createdAt)),
         "updated_at": .string(Timestamps.iso8601(updatedAt))]
    }
}
