import Foundation
import HostAPI
import HTTPTypes
import Logging
import NimbusCore

/// Nova's metadata API (nova-api-metadata) as Neutron's metadata proxies reach it: a proxy
/// names the instance whose guest asked (`X-Instance-ID`, `X-Tenant-ID`), proves it holds the
/// shared secret by signing the instance id (`X-Instance-ID-Signature`), and passes the
/// guest's address (`X-Forwarded-For`). The answer is that instance's own metadata, rendered
/// by `MetadataTree` from the same `GuestSpec` its host's config drive is written from.
///
/// Refusals are Nova's: a missing header 400, a signature that does not match 403, an
/// instance that does not exist or is not the named project's 404, a path with nothing 404;
/// their bodies are webob's. A guest may POST its encrypted password once to
/// `openstack/<version>/password` (from 2013-04-04), which `GET` then returns, as
/// `os-server-password` does to its owner. With no shared secret configured every request is refused (403):
/// the headers could then be anyone's. `nimbus up`'s own hosts call `forward` directly;
/// `nimbus agent`s reach the same answers over HTTP (`MetadataRoutes`).
public struct MetadataService: MetadataAPILink {
    let compute: ComputeService
    let secret: String
    let logger: Logger

    init(compute: ComputeService, secret: String, logger: Logger) {
        (self.compute, self.secret, self.logger) = (compute, secret, logger)
    }

    public func forward(_ request: MetadataRequest) async throws -> MetadataReply { await respond(to: request) }

    /// The answer to one request; never throws (an internal failure is Nova's 500). A HEAD
    /// request gets the GET answer: HTTP servers leave its body out.
    public func respond(to request: MetadataRequest) async -> MetadataReply {
        let accept = request.values("Accept").first ?? ""
        func refuse(_ status: HTTPResponse.Status, _ message: String = "The resource could not be found.") -> MetadataReply {
            let (contentType, text) = APIError(status, message).webobBody(accept: accept)
            return MetadataReply(status: Int(status.code), contentType: contentType, body: Array(text.utf8))
        }
        guard !secret.isEmpty else {
            logger.warning("metadata request refused: [neutron] metadata_proxy_shared_secret is not set, so no proxy can be trusted")
            return refuse(.forbidden, Self.badSignature)
        }
        let rawPath = String(request.path.prefix { $0 != "?" })
        let path = rawPath.removingPercentEncoding ?? rawPath
        let isPassword = Self.isPasswordPath(path)
        guard request.method == "GET" || request.method == "HEAD" || (request.method == "POST" && isPassword) else {
            return refuse(.methodNotAllowed, "The method \(request.method) is not allowed for this resource.")
        }
        if MetadataTree.isRoot(path) { return Self.reply(MetadataTree.rootListing) }

        let instanceIDs = request.values(MetadataHeaders.instanceID), tenantIDs = request.values(MetadataHeaders.tenantID)
        let signatures = request.values(MetadataHeaders.signature)
        let message: String? = if instanceIDs.isEmpty {
            "X-Instance-ID header is missing from request."
        } else if signatures.isEmpty {
            "X-Instance-ID-Signature header is missing from request."
        } else if tenantIDs.isEmpty {
            "X-Tenant-ID header is missing from request."
        } else if instanceIDs.count > 1 {
            "Multiple X-Instance-ID headers found within request."
        } else if tenantIDs.count > 1 {
            "Multiple X-Tenant-ID headers found within request."
        } else {
            nil
        }
        if let message { return refuse(.badRequest, message) }
        let (instanceID, tenantID) = (instanceIDs[0], tenantIDs[0])
        let requester = request.values(MetadataHeaders.forwardedFor).first
        guard signatures.count == 1, MetadataSignature.isValid(signatures[0], instanceID: instanceID, secret: secret) else {
            logger.warning("metadata request for instance \(instanceID) from \(requester ?? "?") refused: its signature does not match the shared secret's")
            return refuse(.forbidden, Self.badSignature)
        }

        let instance: Instance?
        do {
            instance = try await compute.store.instance(uuid: instanceID, compute.db)
        } catch {
            logger.error("metadata for instance \(instanceID): \(error)")
            return refuse(.internalServerError, "An unknown error has occurred. Please try your request again.")
        }
        guard let instance, instance.deletedAt == nil else {
            logger.error("metadata requested for instance \(instanceID), which does not exist")
            return refuse(.notFound)
        }
        guard instance.projectID == tenantID else {
            logger.warning("metadata requested for instance \(instanceID) as project \(tenantID), which does not own it")
            return refuse(.notFound)
        }
        if isPassword {
            guard request.method == "POST" else { return MetadataReply(status: 200, contentType: "text/plain", body: Array((instance.guestPassword ?? "").utf8)) }
            guard request.body.count <= Instance.guestPasswordLimit else { return refuse(.badRequest, "Request is too large.") }
            do {
                guard try await compute.setGuestPassword(instance.uuid, String(decoding: request.body, as: UTF8.self)) else {
                    return refuse(.conflict, "Password already set.")
                }
            } catch {
                logger.error("metadata password of instance \(instanceID): \(error)")
                return refuse(.internalServerError, "An unknown error has occurred. Please try your request again.")
            }
            return MetadataReply(status: 200, contentType: "text/plain", body: [])
        }
        let metadata = InstanceMetadata(guest: compute.conductor.guest(instance))
        guard let document = MetadataTree.lookup(path, in: metadata, requester: requester) else { return refuse(.notFound) }
        return Self.reply(document)
    }

    static let badSignature = "Invalid proxy request signature."

    /// `/openstack/<version>/password` at a version that has it (2013-04-04 on, or `latest`).
    static func isPasswordPath(_ path: String) -> Bool {
        let parts = path.split(separator: "/").map(String.init)
        guard parts.count == 3, parts[0] == "openstack", parts[2] == "password" else { return false }
        return parts[1] == "latest" || (MetadataTree.openStackVersions.contains(parts[1]) && parts[1] >= "2013-04-04")
    }

    static func reply(_ document: MetadataTree.Document) -> MetadataReply {
        MetadataReply(status: 200, contentType: document.contentType, body: document.body)
    }
}

extension ComputeService {
    /// The metadata API, checking proxies' signatures with `[neutron] metadata_proxy_shared_secret`.
    public var metadata: MetadataService { MetadataService(compute: self, secret: settings.metadataProxySharedSecret, logger: logger) }
}
