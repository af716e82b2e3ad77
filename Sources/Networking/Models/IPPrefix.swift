import Foundation

/// An IP network in CIDR notation, normalised as Neutron stores prefixes: the host bits
/// cleared and the address in canonical text (`10.1.2.3/8` is `10.0.0.0/8`, a bare address
/// is a /32 or /128, IPv6 in its compressed form).
public struct IPPrefix: Sendable, Hashable, CustomStringConvertible {
    public let version: Int
    public let bytes: [UInt8]
    public let length: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let address = String(parts[0])
        let family = address.contains(":") ? AF_INET6 : AF_INET
        var buffer = [UInt8](repeating: 0, count: family == AF_INET6 ? 16 : 4)
        guard inet_pton(family, address, &buffer) == 1 else { return nil }
        let bits = buffer.count * 8
        var length = bits
        if parts.count == 2 {
            guard let n = Int(parts[1]), (0...bits).contains(n), parts[1].allSatisfy(\.isNumber) else { return nil }
            length = n
        }
        for index in buffer.indices {
            let keep = max(0, min(8, length - index * 8))
            buffer[index] &= keep == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - keep))
        }
        (self.version, self.bytes, self.length) = (family == AF_INET6 ? 6 : 4, buffer, length)
    }

    /// 0.0.0.0/0 or ::/0: any address of the family.
    public var isAny: Bool { length == 0 }

    public var description: String {
        var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = inet_ntop(version == 6 ? AF_INET6 : AF_INET, bytes, &out, socklen_t(out.count))
        let address = out.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return "\(address)/\(length)"
    }
}
