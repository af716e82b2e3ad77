import Foundation
import HostAPI
import HTTPTypes
import Hummingbird
import NimbusCore

/// The metadata API on the listener, under `/metadata` (not in the catalog: only metadata
/// proxies call it, with no token; `MetadataService` checks their signatures). Every method
/// reaches the service, which answers what it does not serve with 405.
public struct MetadataRoutes: Sendable {
    public static let prefix = "/metadata"
    let service: MetadataService

    public init(service: MetadataService) { self.service = service }

    public func register(on router: Router<NimbusRequestContext>) {
        let group = router.group(RouterPath(Self.prefix)).add(middleware: ErrorStyleMiddleware(.glance))
        for method: HTTPRequest.Method in [.get, .head, .post, .put, .delete, .patch, .options] {
            group.on("", method: method) { request, _ in await respond(request) }
            group.on("**", method: method) { request, _ in await respond(request) }
        }
    }

    func respond(_ request: Request) async -> Response {
        var path = String(request.uri.path.dropFirst(Self.prefix.count))
        if let query = request.uri.query { path += "?" + query }
        var headers: [String: [String]] = [:]
        for field in request.headers { headers[field.name.canonicalName, default: []].append(field.value) }
        // A body beyond the limit is cut there; the service refuses it as too large.
        let body = (try? await request.body.collect(upTo: MetadataRequest.bodyLimit + 1)).map { Array($0.readableBytesView) } ?? []
        let reply = await service.respond(to: MetadataRequest(method: request.method.rawValue, path: path, headers: headers, body: body))
        var fields = HTTPFields()
        if let contentType = reply.contentType { fields[.contentType] = contentType }
        let response = Response(status: HTTPResponse.Status(code: reply.status), headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: reply.body)))
        // HEAD is registered here, so Hummingbird does not drop the body itself.
        return request.method == .head ? response.createHeadResponse() : response
    }
}
