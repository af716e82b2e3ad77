import CFileIO
import Foundation
import NimbusCore
#if canImport(Glibc)
import Glibc
#endif

/// Listening sockets inside other network namespaces, for one process to serve many: a socket
/// belongs to the namespace it was created in, whichever thread later uses it. So a thread of
/// its own enters the namespace (`setns` changes only the calling thread's), creates and binds
/// the socket, and goes back; the agent's other threads never leave their namespace.
public enum NamespaceSocket {
    /// A TCP socket bound to `address`:`port` in the named namespace (`/run/netns/<name>`), not
    /// yet listening; the caller owns the descriptor.
    public static func bind(namespace: String, address: String, port: Int) async throws -> Int32 {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result { try bindHere(namespace: namespace, address: address, port: port) })
            }
            thread.start()
        }
    }

    /// Runs on a thread used for nothing else, so its namespace can change under no one.
    private static func bindHere(namespace: String, address: String, port: Int) throws -> Int32 {
        let original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        guard original >= 0 else { throw DataplaneError("cannot open this thread's network namespace: \(String(cString: strerror(errno)))") }
        defer { close(original) }
        let target = open("/run/netns/\(namespace)", O_RDONLY | O_CLOEXEC)
        guard target >= 0 else { throw DataplaneError("no network namespace \(namespace): \(String(cString: strerror(errno)))") }
        defer { close(target) }
        guard nimbus_enter_network_namespace(target) == 0 else { throw DataplaneError("cannot enter \(namespace): \(String(cString: strerror(errno)))") }
        defer {
            // A thread left in the wrong namespace would be a silent bug for whoever ran on it
            // next: stop rather than go on.
            if nimbus_enter_network_namespace(original) != 0 { fatalError("cannot return from network namespace \(namespace)") }
        }

        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw DataplaneError("socket in \(namespace): \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, address, &socketAddress.sin_addr) == 1 else {
            close(fd)
            throw DataplaneError("not an IPv4 address: \(address)")
        }
        let bound = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw DataplaneError("cannot bind \(address):\(port) in \(namespace): \(message)")
        }
        return fd
    }
}
