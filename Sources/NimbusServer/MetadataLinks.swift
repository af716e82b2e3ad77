import Compute
import Dataplane
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HostAPI
import Logging
import NimbusCore

/// The metadata API as a separate `nimbus agent`'s proxies reach it: HTTP requests to the
/// controller's listener under `/metadata`. They carry no token: the signed instance id is
/// what the API trusts.
public struct HTTPMetadataAPILink: MetadataAPILink {
    let base: URL
    let session: URLSession

    /// `controller`: the controller's base URL (`http://10.0.0.1:8800`).
    public init(controller: URL) {
        base = controller
        let configuration = URLSessionConfiguration.default
        configuration.timeoutIntervalForRequest = 30
        session = URLSession(configuration: configuration)
    }

    struct LinkError: Error, CustomStringConvertible {
        let description: String
    }

    public func forward(_ request: MetadataRequest) async throws -> MetadataReply {
        // Characters a request line carries but Foundation's URL parser refuses are escaped;
        // escapes already there stay as they are.
        let escaped = request.path.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.union(CharacterSet(charactersIn: "%"))) ?? ""
        let root = base.absoluteString.hasSuffix("/") ? String(base.absoluteString.dropLast()) : base.absoluteString
        guard let url = URL(string: root + MetadataRoutes.prefix + (escaped.hasPrefix("/") ? "" : "/") + escaped) else {
            throw LinkError(description: "cannot make a URL of \(root) and \(request.path)")
        }
        var urlRequest = URLRequest(url: url)
        urlRequest.httpMethod = request.method
        if !request.body.isEmpty { urlRequest.httpBody = Data(request.body) }
        for (name, values) in request.headers {
            for value in values { urlRequest.addValue(value, forHTTPHeaderField: name) }
        }
        // URLSession would send `Accept: */*`, for which the API's errors are HTML pages; a
        // guest that sent no Accept gets them as plain text, as from Neutron's proxy.
        if request.values("Accept").isEmpty { urlRequest.setValue("", forHTTPHeaderField: "Accept") }
        let (data, response) = try await session.data(for: urlRequest)
        guard let http = response as? HTTPURLResponse else { throw LinkError(description: "\(request.method) \(url): no HTTP response") }
        return MetadataReply(status: http.statusCode, contentType: http.value(forHTTPHeaderField: "Content-Type"), body: Array(data))
    }
}

extension NimbusControlPlane {
    /// The metadata proxy `nimbus up`'s own host runs: its requests go straight into this
    /// process's metadata API, signed with the controller's own secret.
    public func metadataProxy(lookup: any InstanceLookup) -> MetadataProxy {
        MetadataProxy(lookup: lookup, api: compute.metadata, secret: config.string("neutron", "metadata_proxy_shared_secret"), logger: logger)
    }
}

extension RemoteAgent {
    /// The metadata proxy a separate agent runs: its requests go to the controller over HTTP,
    /// signed with `[neutron] metadata_proxy_shared_secret` of the agent's `--config-file`
    /// (the controller's secret). Without one the controller refuses them all (403).
    public static func metadataProxy(controller: URL, config: NimbusConfig, lookup: any InstanceLookup, logger: Logger) -> MetadataProxy {
        let secret = config.string("neutron", "metadata_proxy_shared_secret")
        if secret.isEmpty {
            logger.warning("[neutron] metadata_proxy_shared_secret is not set in the agent's configuration: the controller will refuse every metadata request")
        }
        return MetadataProxy(lookup: lookup, api: HTTPMetadataAPILink(controller: controller), secret: secret, logger: logger)
    }
}
