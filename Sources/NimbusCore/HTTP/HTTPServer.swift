import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1

/// HTTP/1.1 as Hummingbird serves it, plus two things an image upload needs from the server:
///
/// - Reads off the socket may grow to 1 MiB. NIO's default allocator for accepted connections
///   reads at most 64 KiB at a time, so a 1 GiB upload reached the handler as ~16,000 body
///   parts, each a trip through the HTTP decoder, the async channel and the body sequence. The
///   adaptive allocator still starts small and only grows while reads fill their buffer, so
///   ordinary API requests read as before; a connection holds at most NIOAsyncChannel's high
///   watermark of parts before it stops reading, so memory stays bounded.
/// - `Expect: 100-continue` is answered (``ExpectContinueHandler``).
public struct NimbusHTTP1Channel: ServerChildChannel {
    public typealias Value = HTTP1Channel.Value
    static let maximumRead = 1 << 20

    let http1: HTTP1Channel

    public init(responder: @escaping HTTPChannelHandler.Responder) {
        http1 = HTTP1Channel(responder: responder)
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        Self.tuned(channel, upgradable: false) { http1.setup(channel: channel, logger: logger) }
    }

    /// Another HTTP/1 child channel's `setup`, with the larger reads and the `100 Continue`
    /// answers added. `upgradable`: the channel may become a websocket (an upgrade
    /// channel), so the `100 Continue` handler leaves the pipeline when the upgrade request
    /// arrives, before any websocket byte could reach it.
    public static func tuned<Value: Sendable>(_ channel: any Channel, upgradable: Bool,
                                              setup: @escaping @Sendable () -> EventLoopFuture<Value>) -> EventLoopFuture<Value> {
        channel.setOption(ChannelOptions.recvAllocator,
                          value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: Self.maximumRead))
            .flatMap { setup() }
            .flatMapThrowing { value in
                // Right after the request decoder, where requests still carry their HTTP version.
                let decoder = try channel.pipeline.syncOperations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
                try channel.pipeline.syncOperations.addHandler(ExpectContinueHandler(leavesOnWebSocketUpgrade: upgradable), position: .after(decoder))
                return value
            }
    }

    public func handle(value: Value, logger: Logger) async {
        await http1.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// What `nimbus up` serves: see ``NimbusHTTP1Channel``.
    public static var nimbusHTTP1: HTTPServerBuilder {
        .init { responder in NimbusHTTP1Channel(responder: responder) }
    }
}

/// Sends `100 Continue` to an HTTP/1.1 request that asks for it (`Expect: 100-continue`), as
/// RFC 9110 §10.1.1 expects of a server that will read the body. Hummingbird does not, and
/// curl (among others) sends that header with every upload over 1 MiB and then holds the body
/// back for a second before sending it anyway: a second of every image upload, a third of a
/// 1 GiB upload's time here.
///
/// The answer goes out when the request head arrives, unless a response to an earlier request
/// on the connection is still being written (pipelining), where a 100 would be taken as part
/// of that response; the client then sends its body after its own timeout, as before.
final class ExpectContinueHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Requests whose response has not been completely written.
    private var unanswered = 0
    /// Whether a websocket upgrade request removes this handler: after the upgrade the pipeline
    /// carries websocket bytes, which this handler must not see (nor the upgrade's handlers
    /// remove, since they do not know it).
    private let leavesOnWebSocketUpgrade: Bool

    init(leavesOnWebSocketUpgrade: Bool = false) { self.leavesOnWebSocketUpgrade = leavesOnWebSocketUpgrade }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if leavesOnWebSocketUpgrade, case .head(let head) = unwrapInboundIn(data),
           head.headers["upgrade"].contains(where: { $0.lowercased().contains("websocket") }) {
            context.fireChannelRead(data)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        if case .head(let head) = unwrapInboundIn(data) {
            unanswered += 1
            // HTTP/1.0 requests must have the expectation ignored (RFC 9110 §10.1.1).
            if unanswered == 1, head.version.major == 1, head.version.minor >= 1,
               head.headers["expect"].contains(where: { $0.trimmingCharacters(in: .whitespaces).lowercased() == "100-continue" }) {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
            }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { unanswered = max(0, unanswered - 1) }
        context.write(data, promise: promise)
    }
}
