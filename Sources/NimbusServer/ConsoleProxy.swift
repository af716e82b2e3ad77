import Compute
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOPosix
import NimbusCore
import Virt

/// nova-novncproxy's role, on the one listener: Debian's noVNC pages under `/novnc/` (no token
/// needed to load them), and the websocket those pages open — `ws://<listener>/?token=<token>`,
/// from the `path` parameter of the URL `remote-consoles` answers. The websocket is accepted
/// only with a console token that `ComputeService.consumeConsoleToken` accepts (it is then
/// spent); its binary frames are relayed, both ways, to the guest's VNC server on its host.
public struct ConsoleProxy: Sendable {
    /// Where Debian's `novnc` package puts noVNC.
    public static let staticFiles = "/usr/share/novnc"
    public static let urlPrefix = "/novnc"
    /// The page a console URL opens by default (`[vnc] novncproxy_base_url`).
    public static let pagePath = "\(urlPrefix)/vnc_lite.html"
    /// What serving the pages needs on the listener's machine (`nimbus up` installs it).
    public static let hostTools = [HostTool(file: "\(staticFiles)/vnc_lite.html", package: "novnc")]
    /// The websocket path: noVNC connects to `/` + its `path` parameter, which Nova's URL sets
    /// to `?token=…`.
    static let websocketPath = "/"
    /// Largest websocket frame: a framebuffer update travels in one frame rather than many.
    static let maxFrameSize = 1 << 20

    let compute: ComputeService
    let logger: Logger

    public init(compute: ComputeService, logger: Logger) {
        self.compute = compute
        self.logger = logger
    }

    /// `GET /novnc/<file>`: noVNC's files, as they are on disk. Requests outside the prefix
    /// never reach the file middleware, so everything else is answered exactly as before.
    func registerStaticFiles(on router: Router<NimbusRequestContext>) {
        router.group(RouterPath(Self.urlPrefix))
            .add(middleware: FileMiddleware<NimbusRequestContext, LocalFileSystem>(Self.staticFiles, urlBasePath: Self.urlPrefix, logger: logger))
            .get("**") { _, _ -> Response in throw HTTPError(.notFound) }
    }

    /// The websocket upgrade's gate: a GET of the websocket path carrying a token the compute
    /// service accepts. Anything else is refused (400, connection closed) with the reason
    /// logged, not told.
    func shouldUpgrade(_ request: HTTPRequest, logger: Logger) async -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>> {
        let target = request.path ?? ""
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard request.method == .get, path == Self.websocketPath,
              let token = URLComponents(string: "http://proxy\(target)")?.queryItems?.first(where: { $0.name == "token" })?.value, !token.isEmpty else {
            logger.info("console proxy: refused a websocket to \(path): no console token")
            return .dontUpgrade
        }
        let connection: ComputeService.ConsoleConnection
        do {
            connection = try await compute.consumeConsoleToken(token)
        } catch {
            logger.warning("console proxy: refused a websocket: \(error)")
            return .dontUpgrade
        }
        logger.info("console proxy: console of server \(connection.instanceUUID) opened (VNC at \(connection.endpoint.host):\(connection.endpoint.port))")
        return .upgrade([:]) { inbound, outbound, context in
            await Self.relay(inbound, outbound, to: connection, logger: context.logger)
        }
    }

    /// Bytes both ways between the websocket and the guest's VNC server until either side ends;
    /// then both are closed.
    static func relay(_ inbound: WebSocketInboundStream, _ outbound: WebSocketOutboundWriter, to connection: ComputeService.ConsoleConnection,
                      logger: Logger) async {
        do {
            let vnc = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(5))
                .connect(host: connection.endpoint.host, port: connection.endpoint.port) { channel in
                    channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
                }
            try await vnc.executeThenClose { fromGuest, toGuest in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for try await bytes in fromGuest { try await outbound.writeBinaryMessage(bytes) }
                    }
                    group.addTask {
                        // noVNC sends binary messages; text ones (websockify's old base64
                        // mode) and their continuations are not for the guest.
                        var binary = true
                        for try await frame in inbound {
                            switch frame.opcode {
                            case .binary: binary = true
                            case .text: binary = false
                            case .continuation: break
                            }
                            if binary { try await toGuest.write(frame.data) }
                        }
                    }
                    // Either side ended: so does the other.
                    try await group.next()
                    group.cancelAll()
                }
            }
        } catch {
            logger.info("console proxy: console of server \(connection.instanceUUID) ended: \(error)")
            return
        }
        logger.info("console proxy: console of server \(connection.instanceUUID) closed")
    }
}

/// The listener's child channel: `NimbusHTTP1Channel`'s HTTP/1, plus the console proxy's
/// websocket upgrade on a connection's first request (Hummingbird's websocket upgrade channel;
/// requests without an `Upgrade: websocket` header are served as before).
public struct NimbusWebSocketChannel: ServerChildChannel {
    public typealias Value = HTTP1WebSocketUpgradeChannel.Value
    let upgrade: HTTP1WebSocketUpgradeChannel

    init(responder: @escaping HTTPChannelHandler.Responder, consoles: ConsoleProxy) {
        upgrade = HTTP1WebSocketUpgradeChannel(
            responder: responder,
            configuration: .init(http1: .init(), ws: .init(maxFrameSize: ConsoleProxy.maxFrameSize)),
            shouldUpgrade: { request, _, logger in await consoles.shouldUpgrade(request, logger: logger) })
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        NimbusHTTP1Channel.tuned(channel, upgradable: true) { [upgrade] in upgrade.setup(channel: channel, logger: logger) }
    }

    public func handle(value: Value, logger: Logger) async {
        await upgrade.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// What `nimbus up` serves: every API, and the console proxy's websocket.
    public static func nimbusHTTP1(consoles: ConsoleProxy) -> HTTPServerBuilder {
        .init { responder in NimbusWebSocketChannel(responder: responder, consoles: consoles) }
    }
}
