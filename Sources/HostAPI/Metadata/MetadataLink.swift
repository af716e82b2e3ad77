import Crypto
import Foundation
import NimbusCore

/// The headers with which Neutron's metadata proxy tells Nova's metadata API whose request it
/// forwards: the instance and its project as the proxy found them from the request's source,
/// the instance id signed with the shared secret, and the guest's own address.
public enum MetadataHeaders {
    public static let instanceID = "X-Instance-ID"
    public static let tenantID = "X-Tenant-ID"
    public static let signature = "X-Instance-ID-Signature"
    public static let forwardedFor = "X-Forwarded-For"
}

/// `X-Instance-ID-Signature`: the lower-case hex HMAC-SHA256 of the instance id, keyed with
/// `[neutron] metadata_proxy_shared_secret`. Only a holder of the secret can name an instance
/// to the metadata API.
public enum MetadataSignature {
    public static func sign(instanceID: String, secret: String) -> String {
        Hex.encode(HMAC<SHA256>.authenticationCode(for: Data(instanceID.utf8), using: SymmetricKey(data: Data(secret.utf8))))
    }

    /// Whether `signature` is the instance id's signature. The comparison takes the same time
    /// wherever the two first differ, so timing does not reveal how much of a guess was right.
    public static func isValid(_ signature: String, instanceID: String, secret: String) -> Bool {
        let expected = Array(sign(instanceID: instanceID, secret: secret).utf8)
        let given = Array(signature.utf8)
        guard given.count == expected.count else { return false }
        var difference: UInt8 = 0
        for index in expected.indices { difference |= expected[index] ^ given[index] }
        return difference == 0
    }
}

/// A request to the metadata API as a host's proxy forwards it.
public struct MetadataRequest: Sendable, Equatable {
    /// `GET` or `HEAD`, or `POST` (a guest's encrypted password).
    public var method: String
    /// The path below the API's root, with its query string if any (`/openstack/latest/meta_data.json`).
    public var path: String
    /// Header values by lower-cased name; a header sent more than once has several values.
    public var headers: [String: [String]]
    /// What the guest sent (a POST's body).
    public var body: [UInt8]

    public init(method: String, path: String, headers: [String: [String]] = [:], body: [UInt8] = []) {
        (self.method, self.path, self.body) = (method, path, body)
        self.headers = Dictionary(headers.map { ($0.key.lowercased(), $0.value) }) { first, second in first + second }
    }

    /// The most a proxy or the API reads of a guest's request body: Nova keeps at most 1020
    /// bytes of a password, and nothing else is posted.
    public static let bodyLimit = 16 * 1024

    /// A proxy's request for the instance `instanceID` of `projectID`, whose guest at
    /// `guestAddress` asked for `path`; signed with `secret`. `accept` is the guest's Accept
    /// header (the error bodies' form depends on it).
    public static func forwarded(method: String, path: String, instanceID: String, projectID: String, guestAddress: String, secret: String,
                                 accept: String? = nil, body: [UInt8] = []) -> MetadataRequest {
        var headers = [MetadataHeaders.instanceID: [instanceID], MetadataHeaders.tenantID: [projectID],
                       MetadataHeaders.signature: [MetadataSignature.sign(instanceID: instanceID, secret: secret)],
                       MetadataHeaders.forwardedFor: [guestAddress]]
        if let accept { headers["Accept"] = [accept] }
        return MetadataRequest(method: method, path: path, headers: headers, body: body)
    }

    /// Every value of the header `name` (any case), in order.
    public func values(_ name: String) -> [String] { headers[name.lowercased()] ?? [] }
}

/// The metadata API's answer.
public struct MetadataReply: Sendable, Equatable {
    public var status: Int
    public var contentType: String?
    public var body: [UInt8]

    public init(status: Int, contentType: String?, body: [UInt8]) { (self.status, self.contentType, self.body) = (status, contentType, body) }

    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// How a host's metadata proxy reaches the controller's metadata API. In one process
/// (`nimbus up`) it is a direct call into the API; a separate `nimbus agent` sends the same
/// request over HTTP to the controller's listener.
public protocol MetadataAPILink: Sendable {
    /// Postcondition: returns the API's answer to `request` — its status, content type and
    /// body, refusals included (a bad signature is a 403 reply, not a throw); throws only when
    /// the API could not be asked or did not answer.
    func forward(_ request: MetadataRequest) async throws -> MetadataReply
}
