#if canImport(Glibc)
import Glibc
#endif
import HostAPI
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import NimbusCore

/// Whose guests a metadata proxy serves: Neutron runs one in each network's DHCP namespace
/// (for networks without a router) and one in each router's namespace.
public enum MetadataScope: Sendable, Hashable, CustomStringConvertible {
    case network(String)
    case router(String)

    public var description: String {
        switch self {
        case .network(let id): "network \(id)"
        case .router(let id): "router \(id)"
        }
    }
}

/// Which instance a metadata request comes from (the lookup Neutron's metadata agent makes
/// in the network API).
public protocol InstanceLookup: Sendable {
    /// Postcondition: the instance and its project whose port has `address` as a fixed IP on
    /// the scope's network (for a router: on one of the networks it has an interface on); nil
    /// when no instance's port there has it. Throws only when the lookup could not be made.
    func instance(in scope: MetadataScope, address: String) async throws -> (instanceID: String, projectID: String)?
}

/// Neutron's metadata proxy (its namespace proxy and metadata agent in one): an HTTP/1.1
/// server guests reach at 169.254.169.254. For each request it finds the instance from the
/// request's source address (`InstanceLookup`), and forwards the request to the controller's
/// metadata API through `api`, naming the instance and its project and signing the instance
/// id with the shared secret (`MetadataRequest.forwarded`); the API's answer goes back to the
/// guest as it is. A source that is no instance's gets 404 without the API being asked;
/// methods other than GET, HEAD and POST get 405.
public struct MetadataProxy: Sendable {
    /// Where the proxy listens.
    public enum Listener: Sendable {
        /// A bound stream socket (made inside a namespace, say); the proxy listens on it if it
        /// does not yet, and closes it when it stops.
        case socket(Int32)
        /// An address to bind (`127.0.0.1`, port 0 for any).
        case address(host: String, port: Int)
    }

    let lookup: any InstanceLookup
    let api: any MetadataAPILink
    let secret: String
    let logger: Logger

    public init(lookup: any InstanceLookup, api: any MetadataAPILink, secret: String, logger: Logger) {
        (self.lookup, self.api, self.secret, self.logger) = (lookup, api, secret, logger)
    }

    /// Serves the guests of `scope` on `listener` until the calling task is cancelled (then
    /// the listener is closed and open connections end), or until accepting fails.
    /// `onListening` is called once with the port it listens on.
    public func serve(_ listener: Listener, scope: MetadataScope, onListening: @Sendable (Int) async -> Void = { _ in }) async throws {
        let logger = logger
        let http = HTTP1Channel(responder: { request, writer, channel in
            let address = Self.clientAddress(channel.remoteAddress)
            var path = request.uri.path
            if let query = request.uri.query { path += "?" + query }
            // A body beyond the limit is cut there; the API refuses it as too large.
            let body = (try? await request.body.collect(upTo: MetadataRequest.bodyLimit + 1)).map { Array($0.readableBytesView) } ?? []
            let reply = await respond(method: request.method.rawValue, path: path, accept: request.headers[.accept], body: body, from: address,
                                      scope: scope)
            var fields = HTTPFields()
            if let contentType = reply.contentType { fields[.contentType] = contentType }
            let response = Response(status: HTTPResponse.Status(code: reply.status), headers: fields,
                                    body: .init(byteBuffer: ByteBuffer(bytes: reply.body)))
            let sent = request.method == .head ? response.createHeadResponse() : response
            try await writer.write(response: sent.head, body: sent.body)
        }, configuration: .init(idleTimeout: .seconds(60)))
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.backlog, value: 128)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        let server: NIOAsyncChannel<HTTP1Channel.Value, Never>
        switch listener {
        case .socket(let descriptor):
            // NIO takes the socket as it is; a socket that is only bound must listen first.
            guard listen(descriptor, 128) == 0 else {
                let reason = String(cString: strerror(errno))
                close(descriptor)
                throw MetadataProxyError(description: "cannot listen on the metadata socket \(descriptor): \(reason)")
            }
            server = try await bootstrap.bind(descriptor) { channel in http.setup(channel: channel, logger: logger) }
        case .address(let host, let port):
            server = try await bootstrap.bind(host: host, port: port) { channel in http.setup(channel: channel, logger: logger) }
        }
        let port = server.channel.localAddress?.port ?? 0
        logger.info("metadata proxy for \(scope) listening on port \(port)")
        await onListening(port)
        try await withTaskCancellationHandler {
            try await withThrowingDiscardingTaskGroup { connections in
                try await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        connections.addTask { await http.handle(value: connection, logger: logger) }
                    }
                }
            }
        } onCancel: {
            server.channel.close(promise: nil)
        }
    }

    /// The answer to one guest's request, `address` being where it came from; a HEAD
    /// request's answer is the GET answer (with its body, which `serve` leaves out). A POST
    /// (a guest's password) goes to the API with its body.
    public func respond(method: String, path: String, accept: String?, body: [UInt8] = [], from address: String,
                        scope: MetadataScope) async -> MetadataReply {
        func refuse(_ status: HTTPResponse.Status, _ message: String) -> MetadataReply {
            let (contentType, text) = APIError(status, message).webobBody(accept: accept ?? "")
            return MetadataReply(status: Int(status.code), contentType: contentType, body: Array(text.utf8))
        }
        guard ["GET", "HEAD", "POST"].contains(method) else {
            return refuse(.methodNotAllowed, "The method \(method) is not allowed for this resource.")
        }
        let owner: (instanceID: String, projectID: String)?
        do {
            owner = try await lookup.instance(in: scope, address: address)
        } catch {
            logger.error("metadata proxy for \(scope): cannot find the instance at \(address): \(error)")
            return refuse(.internalServerError, Self.unknownError)
        }
        guard let owner else {
            logger.info("metadata proxy for \(scope): no instance has the address \(address)")
            return refuse(.notFound, "The resource could not be found.")
        }
        // HEAD is asked as GET, so the reply's length is the document's however the API is
        // reached (over HTTP a HEAD reply has no body to measure); `serve` sends no body.
        let request = MetadataRequest.forwarded(method: method == "POST" ? "POST" : "GET", path: path, instanceID: owner.instanceID,
                                                projectID: owner.projectID, guestAddress: address, secret: secret, accept: accept,
                                                body: method == "POST" ? body : [])
        do {
            let reply = try await api.forward(request)
            if reply.status == 403 {
                logger.warning("metadata proxy for \(scope): the metadata API refused the request of instance \(owner.instanceID) (403); are the shared secrets the same?")
            }
            return reply
        } catch {
            logger.error("metadata proxy for \(scope): cannot reach the metadata API for instance \(owner.instanceID): \(error)")
            return refuse(.internalServerError, Self.unknownError)
        }
    }

    static let unknownError = "An unknown error has occurred. Please try your request again."

    /// The peer's IP address; an IPv4 address mapped into IPv6 (`::ffff:10.0.0.5`, a
    /// dual-stack socket's view of an IPv4 peer) as the IPv4 address it is.
    static func clientAddress(_ address: SocketAddress?) -> String {
        let ip = address?.ipAddress ?? ""
        return ip.lowercased().hasPrefix("::ffff:") && ip.contains(".") ? String(ip.dropFirst(7)) : ip
    }
}

public struct MetadataProxyError: Error, CustomStringConvertible {
    public let description: String
}
