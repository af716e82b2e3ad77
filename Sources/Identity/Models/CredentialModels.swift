import Foundation
import NimbusCore

/// A secret stored for a user (`/v3/credentials`), e.g. EC2 access keys or TOTP seeds.
public struct Credential: Sendable {
    public var id: String
    public var userID: String
    public var projectID: String?
    public var type: String
    /// Plain text in memory; encrypted at rest.
    public var blob: String
    public var extra: [String: JSON]

    public func json(_ links: Links) -> JSON {
        merged(["id": .string(id), "user_id": .string(userID), "project_id": .optional(projectID), "type": .string(type),
                "blob": .string(blob), "links": links.resource("credentials", id)], extra: extra)
    }
}

/// A policy document stored for other services to fetch (`/v3/policies`, deprecated in Keystone
/// but still served).
public struct PolicyDocument: Sendable {
    public var id: String
    public var type: String
    public var blob: String
    public var extra: [String: JSON]

    public func json(_ links: Links) -> JSON {
        merged(["id": .string(id), "type": .string(type), "blob": .string(blob), "links": links.resource("policies", id)], extra: extra)
    }
}

/// A named endpoint filter (`OS-EP-FILTER` endpoint groups).
public struct EndpointGroup: Sendable {
    public var id: String
    public var name: String
    public var description: String
    /// Any of `service_id`, `interface`, `region_id`.
    public var filters: [String: String]

    public static let filterKeys: Set<String> = ["service_id", "interface", "region_id"]

    public func json(_ links: Links) -> JSON {
        ["id": .string(id), "name": .string(name), "description": .string(description),
         "filters": .object(filters.mapValues { .string($0) }), "links": links.resource("OS-EP-FILTER/endpoint_groups", id)]
    }
}

/// An EC2 credential as `/v3/users/{id}/credentials/OS-EC2` shows it: an `ec2` credential whose
/// blob holds the access key, the secret and the trust or application credential it was made
/// under. It is addressed by its access key.
public struct EC2Credential: Sendable {
    public var userID: String
    public var projectID: String?
    public var access: String
    public var secret: String
    public var trustID: String?
    public var applicationCredentialID: String?

    /// nil when the stored credential is not a readable EC2 credential.
    init?(_ credential: Credential) {
        guard credential.type == "ec2", let blob = (try? JSON.parse(credential.blob))?.objectValue,
              let access = blob["access"]?.stringValue else { return nil }
        self.init(userID: credential.userID, projectID: credential.projectID, access: access, secret: blob["secret"]?.stringValue ?? "",
                  trustID: blob["trust_id"]?.stringValue, applicationCredentialID: blob["app_cred_id"]?.stringValue)
    }

    init(userID: String, projectID: String?, access: String, secret: String, trustID: String?, applicationCredentialID: String?) {
        self.userID = userID
        self.projectID = projectID
        self.access = access
        self.secret = secret
        self.trustID = trustID
        self.applicationCredentialID = applicationCredentialID
    }

    /// The stored blob (Keystone's field names).
    var blob: String {
        var fields: [String: JSON] = ["access": .string(access), "secret": .string(secret), "trust_id": .optional(trustID)]
        if let applicationCredentialID { fields["app_cred_id"] = .string(applicationCredentialID) }
        return JSON.object(fields).serialized()
    }

    public func json(_ links: Links) -> JSON {
        ["user_id": .string(userID), "tenant_id": .optional(projectID), "access": .string(access), "secret": .string(secret),
         "trust_id": .optional(trustID), "links": ["self": .string("\(links.v3)/users/\(userID)/credentials/OS-EC2/\(access)")]]
    }
}
