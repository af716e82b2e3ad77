import Compute
import Dataplane
import Foundation
import HostAPI
import Hummingbird
import Logging
import NimbusCore
import NimbusServer
import NimbusTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The host side's metadata proxy end to end on loopback: guests (HTTP clients bound to
/// their own 127.0.0.x addresses) reach the proxy, which finds their instance by that source
/// address and forwards to the metadata API — in process, as `nimbus up`'s host does, and
/// over HTTP to a listening controller, as a `nimbus agent`'s does.
final class MetadataProxyTests: XCTestCase {
    /// Source addresses → instances, as the network API answers for one network.
    struct AddressBook: InstanceLookup {
        let scope: MetadataScope
        let entries: [String: Metadata.Owner]

        func instance(in scope: MetadataScope, address: String) async throws -> (instanceID: String, projectID: String)? {
            guard scope == self.scope, let owner = entries[address] else { return nil }
            return (owner.instance, owner.project)
        }
    }

    struct BrokenLookup: InstanceLookup {
        struct Failure: Error {}
        func instance(in scope: MetadataScope, address: String) async throws -> (instanceID: String, projectID: String)? { throw Failure() }
    }

    static let scope = MetadataScope.network("net-1")

    func testEachGuestGetsItsOwnMetadataOnly() async throws {
        try await onEachEngine(settings: Metadata.settings(hosts: 1)) { cloud, plane, api in
            let (first, second) = try await Self.twoServers(api, cloud: cloud)
            let book = AddressBook(scope: Self.scope, entries: ["127.0.0.2": first, "127.0.0.3": second])
            // A socket bound but not yet listening, as the dataplane hands one over.
            let (descriptor, port) = try Self.boundSocket()
            let proxy = plane.metadataProxy(lookup: book)
            let (serving, listening) = try await Guest.start { listening in try await proxy.serve(.socket(descriptor), scope: Self.scope, onListening: listening) }
            defer { serving.cancel() }
            XCTAssertEqual(listening, port)

            for (source, owner) in [("127.0.0.2", first), ("127.0.0.3", second)] {
                let meta = try await Guest.request("/openstack/latest/meta_data.json", port: port, from: source)
                XCTAssertEqual(meta.status, 200, meta.text)
                XCTAssertEqual(try JSON.parse(meta.body)["uuid"]?.stringValue, owner.instance, "the guest at \(source)")
                XCTAssertEqual(try JSON.parse(meta.body)["project_id"]?.stringValue, owner.project)
                let instanceID = try await Guest.request("/latest/meta-data/instance-id", port: port, from: source)
                XCTAssertEqual(instanceID.text, MetadataTree.ec2ID("i", owner.instance))
                // The guest's address reaches the API (X-Forwarded-For): a server without a
                // fixed address is told it as its local-ipv4, as Nova does.
                let local = try await Guest.request("/latest/meta-data/local-ipv4", port: port, from: source)
                XCTAssertEqual(local.text, source)
                let head = try await Guest.request("/openstack/latest/meta_data.json", method: "HEAD", port: port, from: source)
                XCTAssertEqual(head.status, 200)
                XCTAssertEqual(head.body, [])
                XCTAssertEqual(head.headers["content-length"], String(meta.body.count))
                let post = try await Guest.request("/openstack/latest/meta_data.json", method: "POST", port: port, from: source)
                XCTAssertEqual(post.status, 405, post.text)
            }
            // A source that is no instance's: 404, without the API being asked.
            let stranger = try await Guest.request("/openstack/latest/meta_data.json", port: port, from: "127.0.0.4")
            XCTAssertEqual(stranger.status, 404, stranger.text)
            XCTAssertEqual(stranger.text, "404 Not Found\n\nThe resource could not be found.\n\n   ")

            // A proxy for another network does not know these guests.
            let (other, otherPort) = try await Guest.start { listening in
                try await proxy.serve(.address(host: "127.0.0.1", port: 0), scope: .router("router-1"), onListening: listening)
            }
            defer { other.cancel() }
            let elsewhere = try await Guest.request("/openstack/latest/meta_data.json", port: otherPort, from: "127.0.0.2")
            XCTAssertEqual(elsewhere.status, 404, elsewhere.text)

            // The lookup failing is the proxy's 500, as Neutron's agent answers it.
            let broken = MetadataProxy(lookup: BrokenLookup(), api: plane.compute.metadata, secret: Metadata.secret, logger: Logger(label: "test"))
            let reply = await broken.respond(method: "GET", path: "/", accept: nil, from: "127.0.0.2", scope: Self.scope)
            XCTAssertEqual(reply.status, 500, reply.text)
        }
    }

    func testOverHTTPAndWithAWrongSecret() async throws {
        try await onEachEngine(settings: Metadata.settings(hosts: 1)) { cloud, plane, api in
            let (first, second) = try await Self.twoServers(api, cloud: cloud)
            let book = AddressBook(scope: Self.scope, entries: ["127.0.0.2": first, "127.0.0.3": second])
            // The controller on a real listener, as a separate agent reaches it.
            let (controller, controllerPort) = try await Guest.start { listening in
                let app = Application(router: try plane.makeRouter(), configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                                      onServerRunning: { channel in await listening(channel.localAddress?.port ?? 0) })
                try await app.runService(gracefulShutdownSignals: [])
            }
            defer { controller.cancel() }
            let controllerURL = URL(string: "http://127.0.0.1:\(controllerPort)")!
            var config = NimbusConfig()
            config.set("neutron", "metadata_proxy_shared_secret", Metadata.secret)
            let proxies: [(String, MetadataProxy)] = [
                ("remote", RemoteAgent.metadataProxy(controller: controllerURL, config: config, lookup: book, logger: Logger(label: "test"))),
                ("remote, wrong secret", MetadataProxy(lookup: book, api: HTTPMetadataAPILink(controller: controllerURL), secret: "forged",
                                                       logger: Logger(label: "test"))),
                ("in process, wrong secret", MetadataProxy(lookup: book, api: plane.compute.metadata, secret: "forged", logger: Logger(label: "test"))),
            ]
            for (name, proxy) in proxies {
                let (serving, port) = try await Guest.start { listening in
                    try await proxy.serve(.address(host: "127.0.0.1", port: 0), scope: Self.scope, onListening: listening)
                }
                defer { serving.cancel() }
                for (source, owner) in [("127.0.0.2", first), ("127.0.0.3", second)] {
                    let meta = try await Guest.request("/openstack/latest/meta_data.json", port: port, from: source)
                    if name.hasSuffix("wrong secret") {
                        XCTAssertEqual(meta.status, 403, "\(name): \(meta.text)")
                        XCTAssertEqual(meta.text, "403 Forbidden\n\nInvalid proxy request signature.\n\n   ", name)
                    } else {
                        XCTAssertEqual(meta.status, 200, "\(name): \(meta.text)")
                        XCTAssertEqual(try JSON.parse(meta.body)["uuid"]?.stringValue, owner.instance, name)
                        XCTAssertEqual(meta.headers["content-type"], "application/json")
                        let head = try await Guest.request("/openstack/latest/meta_data.json", method: "HEAD", port: port, from: source)
                        XCTAssertEqual(head.status, 200)
                        XCTAssertEqual(head.body, [])
                        XCTAssertEqual(head.headers["content-length"], String(meta.body.count), "the length of what GET sends")
                        let listing = try await Guest.request("/latest/meta-data/placement/", port: port, from: source)
                        XCTAssertEqual(listing.text, "availability-zone")
                        let missing = try await Guest.request("/openstack/latest/nothing", port: port, from: source)
                        XCTAssertEqual(missing.status, 404, missing.text)
                        // A guest's password reaches the API with its body, and only its own server keeps it.
                        let password = "pw-\(owner.instance.prefix(8))-\(name.count)"
                        let posted = try await Guest.request("/openstack/latest/password", method: "POST", body: password, port: port, from: source)
                        XCTAssertEqual(posted.status, 200, "\(name): \(posted.text)")
                        let kept = try await Guest.request("/openstack/latest/password", port: port, from: source)
                        XCTAssertEqual(kept.text, password, name)
                        let cleared = try await api.call(.delete, "/compute/v2.1/servers/\(owner.instance)/os-server-password", token: try await api.adminToken(cloud))
                        XCTAssertEqual(cleared.status, 204, cleared.text)
                    }
                }
            }
            // A controller that cannot be reached: the proxy's 500.
            let (closed, closedPort) = try Self.boundSocket()
            close(closed)
            let unreachable = MetadataProxy(lookup: book, api: HTTPMetadataAPILink(controller: URL(string: "http://127.0.0.1:\(closedPort)")!),
                                            secret: Metadata.secret, logger: Logger(label: "test"))
            let reply = await unreachable.respond(method: "GET", path: "/openstack/latest/meta_data.json", accept: nil, from: "127.0.0.2", scope: Self.scope)
            XCTAssertEqual(reply.status, 500, reply.text)
        }
    }

    /// Two servers of two projects.
    static func twoServers(_ api: API, cloud: TestCloud) async throws -> (Metadata.Owner, Metadata.Owner) {
        let admin = try await api.adminToken(cloud)
        let (image, flavor) = try await Compute.bootables(api, admin: admin)
        var owners: [Metadata.Owner] = []
        for name in ["alice", "bob"] {
            let user = try await api.projectUser(admin: admin, name: name)
            let booted = try await Compute.boot(api, token: user.token, image: image, flavor: flavor, name: "\(name)-vm")
            let id = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)
            _ = try await Compute.waitFor(api, id, token: user.token, status: "ACTIVE")
            owners.append(Metadata.Owner(instance: id, project: user.project))
        }
        return (owners[0], owners[1])
    }

    /// A TCP socket bound to a free loopback port, not listening; and the port.
    static func boundSocket() throws -> (Int32, Int) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7f00_0001).bigEndian)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard descriptor >= 0, bound else {
            if descriptor >= 0 { close(descriptor) }
            throw GuestError( "cannot bind a loopback socket")
        }
        return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
    }
}

extension Metadata {
    struct Owner: Sendable {
        var instance, project: String
    }
}

struct GuestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A guest's HTTP requests: one request a connection, from a chosen loopback source address.
enum Guest {
    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// Runs a server in a task until the task is cancelled, once it listens: the task and the
    /// port it listens on (`run` calls `listening` with it).
    static func start(_ run: @escaping @Sendable (_ listening: @escaping @Sendable (Int) async -> Void) async throws -> Void) async throws
        -> (Task<Void, Never>, Int)
    {
        let (ports, sink) = AsyncStream<Int>.makeStream()
        let task = Task {
            do { try await run { sink.yield($0) } } catch { print("server stopped: \(error)") }
            sink.finish()
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw GuestError( "the server stopped before it listened") }
        return (task, port)
    }

    static func request(_ path: String, method: String = "GET", body: String? = nil, port: Int, from source: String) async throws -> Reply {
        try await Task.detached { try blockingRequest(path, method: method, body: body, port: port, from: source) }.value
    }

    static func blockingRequest(_ path: String, method: String, body: String?, port: Int, from source: String) throws -> Reply {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw GuestError( "no socket") }
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        func address(_ ip: String, _ port: Int) -> sockaddr_in {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET, ip, &address.sin_addr)
            return address
        }
        var local = address(source, 0), remote = address("127.0.0.1", port)
        let connected = withUnsafePointer(to: &local) { localPointer in
            withUnsafePointer(to: &remote) { remotePointer in
                localPointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } == 0
                    && remotePointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } == 0
            }
        }
        guard connected else { throw GuestError( "cannot connect from \(source) to port \(port): \(String(cString: strerror(errno)))") }
        let length = body.map { "Content-Length: \($0.utf8.count)\r\n" } ?? ""
        let request = Array("\(method) \(path) HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n\(length)\r\n\(body ?? "")".utf8)
        guard send(descriptor, request, request.count, 0) == request.count else { throw GuestError( "short send") }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            guard count > 0 else { break }
            received += buffer[0..<count]
        }
        let separator = Array("\r\n\r\n".utf8)
        guard let end = (0...max(received.count - 4, 0)).first(where: { received.count >= $0 + 4 && Array(received[$0..<$0 + 4]) == separator }) else {
            throw GuestError( "no complete response: \(String(decoding: received, as: UTF8.self))")
        }
        let lines = String(decoding: received[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let status = Int(lines[0].split(separator: " ").dropFirst().first ?? "") ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Reply(status: status, headers: headers, body: Array(received[(end + 4)...]))
    }
}
