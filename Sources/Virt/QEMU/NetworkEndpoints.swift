import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NimbusCore

/// TCP ports on the host's address for the servers moves start (NBD exports, a migration's
/// incoming stream), and the URIs other hosts reach them by.
enum HostPorts {
    /// A TCP port free on `address` at this moment: the kernel picks it for a socket bound to
    /// port 0, which is then closed. Another program may take it before the caller binds it, so
    /// callers retry with another port when their bind fails (`withFreePort`).
    static func free(on address: String) throws -> Int {
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(address, "0", &hints, &found) == 0, let info = found else { throw VirtError.failed("\(address) is not an IP address") }
        defer { freeaddrinfo(found) }
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), info.pointee.ai_protocol)
        guard fd >= 0 else { throw VirtError.failed("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            throw VirtError.failed("cannot listen on \(address): \(String(cString: strerror(errno)))")
        }
        var bound = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw VirtError.failed("getsockname: \(String(cString: strerror(errno)))") }
        // sin_port and sin6_port sit at the same offset, in network byte order.
        return withUnsafeBytes(of: bound) { Int($0[2]) << 8 | Int($0[3]) }
    }

    /// Runs `body` with a free port on `address`, again with another port (up to `attempts`
    /// times) when it fails, as it does when another program took the port first.
    static func withFreePort<T>(on address: String, attempts: Int = 3, _ body: (Int) async throws -> T) async throws -> T {
        var lastError: (any Error)?
        for _ in 0..<max(attempts, 1) {
            do {
                return try await body(try free(on: address))
            } catch {
                lastError = error
            }
        }
        throw lastError ?? VirtError.failed("no free port on \(address)")
    }

    /// The address as a URI's host: IPv6 literals in brackets.
    static func uriHost(_ address: String) -> String { address.contains(":") ? "[\(address)]" : address }
}

/// An NBD export's URI, `nbd://host:port/name` (QEMU's form; the host may be a bracketed IPv6
/// literal).
struct NBDExportURI: Equatable {
    var host: String
    var port: Int
    var name: String

    var uri: String { "nbd://\(HostPorts.uriHost(host)):\(port)/\(name)" }

    init(host: String, port: Int, name: String) { (self.host, self.port, self.name) = (host, port, name) }

    /// Parses `uri`; nil when it is not an NBD URI with a host, a port and an export name.
    init?(_ uri: String) {
        guard uri.hasPrefix("nbd://") else { return nil }
        let rest = uri.dropFirst("nbd://".count)
        guard let slash = rest.firstIndex(of: "/") else { return nil }
        let authority = rest[..<slash]
        let name = String(rest[rest.index(after: slash)...])
        guard !name.isEmpty, let colon = authority.lastIndex(of: ":"), let port = Int(authority[authority.index(after: colon)...]),
              (1...65535).contains(port) else { return nil }
        var host = String(authority[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        (self.host, self.port, self.name) = (host, port, name)
    }

    /// QMP's and `json:` filenames' NBD server object.
    var server: JSON { ["type": "inet", "host": .string(host), "port": .string(String(port))] }
}
