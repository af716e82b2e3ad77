import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 address as a number, so subnets and pools are plain integer ranges.
public struct IPAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let version: Int
    public let value: UInt128

    public init(version: Int, value: UInt128) {
        self.version = version
        self.value = value
    }

    /// Parses the textual forms `inet_pton` accepts; nil for anything else.
    public init?(_ text: String) {
        if text.contains(":") {
            var raw = in6_addr()
            guard inet_pton(AF_INET6, text, &raw) == 1 else { return nil }
            let bytes = withUnsafeBytes(of: &raw) { Array($0) }
            self.init(version: 6, value: bytes.reduce(UInt128(0)) { $0 << 8 | UInt128($1) })
        } else {
            var raw = in_addr()
            guard inet_pton(AF_INET, text, &raw) == 1 else { return nil }
            self.init(version: 4, value: UInt128(UInt32(bigEndian: raw.s_addr)))
        }
    }

    public var bits: Int { version == 4 ? 32 : 128 }

    /// The canonical text (`inet_ntop`), which is what Neutron shows and what the uniqueness
    /// of an allocation is keyed on.
    public var description: String {
        if version == 4 {
            let v = UInt32(truncatingIfNeeded: value)
            return "\(v >> 24).\(v >> 16 & 0xff).\(v >> 8 & 0xff).\(v & 0xff)"
        }
        var raw = in6_addr()
        withUnsafeMutableBytes(of: &raw) { buffer in
            for i in 0..<16 { buffer[i] = UInt8(truncatingIfNeeded: value >> UInt128(8 * (15 - i))) }
        }
        var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        inet_ntop(AF_INET6, &raw, &out, socklen_t(out.count))
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Wraps past the top of the address space instead of trapping; callers walking blocks
    /// stop when the result leaves the network they walk.
    public func advanced(by n: UInt128) -> IPAddress { IPAddress(version: version, value: value &+ n) }

    public static func < (a: IPAddress, b: IPAddress) -> Bool { (a.version, a.value) < (b.version, b.value) }
}

/// A CIDR: `10.0.0.0/24`, `2001:db8::/64`.
public struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int
    /// The host bits: the offset of the last address from the first.
    public let hostMask: UInt128

    public init(address: IPAddress, prefixLength: Int) {
        let hostBits = address.bits - prefixLength
        self.hostMask = hostBits == 0 ? 0 : (hostBits == 128 ? .max : (UInt128(1) << UInt128(hostBits)) - 1)
        self.address = IPAddress(version: address.version, value: address.value & ~hostMask)
        self.prefixLength = prefixLength
    }

    /// Parses `address/prefix`; `strict` refuses host bits, as Neutron does for a subnet's CIDR.
    public init?(_ text: String, strict: Bool = false) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPAddress(String(parts[0])) else { return nil }
        let prefix = parts.count == 2 ? Int(parts[1]) : address.bits
        guard let prefix, (0...address.bits).contains(prefix) else { return nil }
        self.init(address: address, prefixLength: prefix)
        if strict && self.address != address { return nil }
    }

    public var version: Int { address.version }
    public var first: IPAddress { address }
    public var last: IPAddress { IPAddress(version: version, value: address.value | hostMask) }
    public var size: UInt128 { hostMask &+ 1 }

    public func contains(_ ip: IPAddress) -> Bool { ip.version == version && ip.value & ~hostMask == address.value }
    public func overlaps(_ other: IPNetwork) -> Bool { contains(other.first) || other.contains(first) }
    /// Whether `other` lies wholly inside this network.
    public func contains(_ other: IPNetwork) -> Bool { other.prefixLength >= prefixLength && contains(other.first) }

    public var description: String { "\(address)/\(prefixLength)" }
}

/// An inclusive range of addresses: an allocation pool.
public struct IPRange: Hashable, Sendable {
    public init(start: IPAddress, end: IPAddress) { (self.start, self.end) = (start, end) }

    public let start: IPAddress
    public let end: IPAddress

    public func contains(_ ip: IPAddress) -> Bool { start <= ip && ip <= end }
    public func overlaps(_ other: IPRange) -> Bool { start <= other.end && other.start <= end }
    public var json: JSON { ["start": .string(start.description), "end": .string(end.description)] }
}
