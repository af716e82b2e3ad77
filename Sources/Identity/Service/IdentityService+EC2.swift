import Crypto
import Foundation
import NimbusCore
import NimbusStore

/// EC2 credentials (`/v3/users/{id}/credentials/OS-EC2`), kept as `ec2` credentials of the
/// credentials API, and `/v3/ec2tokens` and `/v3/s3tokens`, which turn a request signed with
/// one into a token.
extension IdentityService {
    /// Keystone's `[credential] auth_ttl` default: how old a signed request's timestamp may be.
    static let ec2SignatureLifetime: Double = 15 * 60

    static func ec2CredentialID(access: String) -> String { Hex.encode(SHA256.hash(data: Data(access.utf8))) }

    /// A delegated token (trust-scoped or from an application credential) reaches only the EC2
    /// credentials of the project it is scoped to.
    func delegationAllows(_ caller: AuthContext, projectID: String?) -> Bool {
        guard trustID(of: caller) != nil || caller.applicationCredentialID != nil else { return true }
        return projectID != nil && projectID == caller.projectID
    }

    func requireEC2Credential(userID: String, access: String) async throws -> EC2Credential {
        let id = Self.ec2CredentialID(access: access)
        guard let row = try await db.first("SELECT * FROM identity_credential WHERE id = ?", .text(id)), let stored = credential(row),
              let ec2 = EC2Credential(stored), ec2.userID == userID else {
            throw APIError.notFound("Could not find credential: \(id).")
        }
        return ec2
    }

    public func createEC2Credential(userID: String, _ body: JSON, caller: AuthContext) async throws -> EC2Credential {
        try authorize("identity:ec2_create_credential", caller, target: ["user_id": userID, "target.credential.user_id": userID])
        if let appCredID = caller.applicationCredentialID, try await store.appCredential(id: appCredID, db)?.unrestricted != true {
            throw Self.forbiddenAction("Using method 'application_credential' is not allowed for managing additional application credentials")
        }
        _ = try await requireUser(userID, db)
        let input = JSONInput(body.objectValue ?? [:], path: "")
        let projectID = try input.optionalString("tenant_id", maxLength: 64)
        guard let projectID, try await store.project(id: projectID, db) != nil else {
            throw APIError.notFound("Could not find project: \(projectID ?? "None").")
        }
        guard delegationAllows(caller, projectID: projectID) else {
            throw Self.forbiddenAction("EC2 credential project does not match the project scope of the delegated token")
        }
        let ec2 = EC2Credential(userID: userID, projectID: projectID, access: Identifiers.hexID(), secret: Identifiers.hexID(),
                                trustID: trustID(of: caller), applicationCredentialID: caller.applicationCredentialID)
        let sealed = try sealCredential(ec2.blob)
        _ = try await conflict("credential") {
            try await db.execute("INSERT INTO identity_credential (id, user_id, project_id, type, blob, extra) VALUES (?, ?, ?, 'ec2', ?, '{}')",
                                 [.text(Self.ec2CredentialID(access: ec2.access)), .text(userID), .text(projectID), .text(sealed)])
        }
        return ec2
    }

    public func listEC2Credentials(userID: String, caller: AuthContext) async throws -> [EC2Credential] {
        try authorize("identity:ec2_list_credentials", caller, target: ["user_id": userID, "target.credential.user_id": userID])
        _ = try await requireUser(userID, db)
        let rows = try await db.query("SELECT * FROM identity_credential WHERE user_id = ? AND type = 'ec2' ORDER BY id", [.text(userID)])
        return rows.compactMap(credential).compactMap(EC2Credential.init).filter { delegationAllows(caller, projectID: $0.projectID) }
    }

    public func getEC2Credential(userID: String, access: String, caller: AuthContext) async throws -> EC2Credential {
        _ = try await requireUser(userID, db)
        let ec2 = try await requireEC2Credential(userID: userID, access: access)
        try authorize("identity:ec2_get_credential", caller, target: ["user_id": userID, "target.credential.user_id": ec2.userID])
        guard delegationAllows(caller, projectID: ec2.projectID) else {
            throw Self.forbiddenAction("EC2 credential project does not match the project scope of the delegated token")
        }
        return ec2
    }

    public func deleteEC2Credential(userID: String, access: String, caller: AuthContext) async throws {
        let ec2 = try await getEC2Credential(userID: userID, access: access, caller: caller)
        try authorize("identity:ec2_delete_credential", caller, target: ["user_id": userID, "target.credential.user_id": ec2.userID])
        try await db.execute("DELETE FROM identity_credential WHERE id = ?", [.text(Self.ec2CredentialID(access: access))])
    }

    // MARK: ec2tokens and s3tokens

    /// `POST /v3/ec2tokens`: checks the signature a client made with an EC2 credential's secret
    /// over its request (as the service that received the request reports it) and issues a
    /// token for the credential's user on its project, through its trust or application
    /// credential when it was made under one.
    public func authenticateEC2(_ body: JSON, caller: AuthContext) async throws -> AuthContext {
        try authorize("identity:ec2tokens_validate", caller)
        let (ec2, fields) = try await signedCredential(body)
        var request = EC2Signature.Request(params: try Self.stringMap(fields["params"], "params"), verb: fields["verb"]?.stringValue ?? "",
                                           host: fields["host"]?.stringValue ?? "", path: fields["path"]?.stringValue ?? "",
                                           headers: try Self.stringMap(fields["headers"], "headers"),
                                           bodyHash: fields["body_hash"]?.stringValue ?? "")
        guard let signature = fields["signature"]?.stringValue, !signature.isEmpty else {
            throw APIError.unauthorized("EC2 signature not supplied.")
        }
        let signer = EC2Signature(secret: ec2.secret)
        var valid = (try? signer.expected(request)).map { EC2Signature.equal($0, signature) } ?? false
        // Some clients sign the host without its port.
        if !valid, let withoutPort = Self.hostWithoutPort(request.host) {
            request.host = withoutPort
            valid = (try? signer.expected(request)).map { EC2Signature.equal($0, signature) } ?? false
        }
        guard valid else { throw APIError.unauthorized("Invalid EC2 signature.") }
        return try await ec2Token(ec2, request: request)
    }

    /// `POST /v3/s3tokens` (S3 gateways such as Ceph's RGW and Swift's s3api): the gateway
    /// sends the string the client signed, base64url-encoded, and the client's signature.
    public func authenticateS3(_ body: JSON, caller: AuthContext) async throws -> AuthContext {
        try authorize("identity:s3tokens_validate", caller)
        let (ec2, fields) = try await signedCredential(body)
        guard let token = fields["token"]?.stringValue, let toSign = Base64URL.decode(token),
              let signature = fields["signature"]?.stringValue,
              let expected = EC2Signature.s3(stringToSign: toSign, secret: ec2.secret) else {
            throw APIError.unauthorized("Invalid EC2 signature.")
        }
        guard EC2Signature.equal(expected, signature) else { throw APIError.unauthorized("Credential signature mismatch") }
        return try await ec2Token(ec2, request: EC2Signature.Request(params: try Self.stringMap(fields["params"], "params"), verb: "", host: "",
                                                                     path: "", headers: try Self.stringMap(fields["headers"], "headers"),
                                                                     bodyHash: ""))
    }

    /// The EC2 credential a signed-request body names by its access key, and the body's
    /// credential fields (under `credentials`, `credential` or `ec2Credentials`, as Keystone reads them).
    func signedCredential(_ body: JSON) async throws -> (EC2Credential, [String: JSON]) {
        guard let object = body.objectValue, !object.isEmpty else { throw APIError.badRequest("request must include a request body") }
        let fields = (object["credentials"] ?? object["credential"] ?? object["ec2Credentials"])?.objectValue ?? [:]
        guard let access = fields["access"]?.stringValue else { throw APIError.unauthorized("EC2 Signature not supplied") }
        guard let row = try await db.first("SELECT * FROM identity_credential WHERE id = ?", .text(Self.ec2CredentialID(access: access))),
              let stored = credential(row), let ec2 = EC2Credential(stored) else {
            throw APIError.notFound("EC2 access key not found.")
        }
        return (ec2, fields)
    }

    /// The token a verified signature earns: the credential's user on its project, through the
    /// trust or application credential the credential was made under.
    func ec2Token(_ ec2: EC2Credential, request: EC2Signature.Request) async throws -> AuthContext {
        guard let projectID = ec2.projectID else { throw APIError.unauthorized("User not valid for project.") }
        let project = try await requireProject(projectID, db)
        let user = try await requireUser(ec2.userID, db)
        guard user.enabled, project.enabled else { throw APIError.unauthorized(Self.authFailed) }
        try Self.checkSignatureTime(request)

        if let trustID = ec2.trustID {
            // The trust's tokens are the trustee's (the trustor's when impersonating).
            guard let trust = try await usableTrust(trustID, db) else { throw APIError.unauthorized("Could not find trust: \(trustID).") }
            let trustee = try await requireUser(trust.trusteeUserID, db)
            return try await mintToken(user: trustee, methods: ["ec2credential"], scope: .trust(id: trust.id, projectID: trust.projectID))
        }
        if let appCredID = ec2.applicationCredentialID {
            guard let appCred = try await store.appCredential(id: appCredID, db),
                  appCred.expiresAt.map({ $0.timeIntervalSince1970 > Self.now() }) ?? true else {
                throw APIError.unauthorized("Could not find Application Credential: \(appCredID).")
            }
            guard appCred.projectID == projectID else {
                throw APIError.unauthorized("EC2 credential project does not match the application credential project.")
            }
            return try await mintToken(user: user, methods: ["ec2credential"], scope: .project(projectID), appCred: appCred)
        }
        guard !(try await effectiveRoles(userID: user.id, target: .project(projectID), db)).isEmpty else {
            throw APIError.unauthorized("User not valid for project.")
        }
        return try await mintToken(user: user, methods: ["ec2credential"], scope: .project(projectID))
    }

    /// A JSON object of strings (numbers and booleans read as Python's `str()` would print them).
    static func stringMap(_ value: JSON?, _ field: String) throws -> [String: String] {
        guard let value, !value.isNull else { return [:] }
        guard let object = value.objectValue else { throw APIError.badRequest("Invalid input for field '\(field)': expected an object.") }
        return try object.mapValues { v in
            switch v {
            case .string(let s): return s
            case .int(let i): return String(i)
            case .double(let d): return String(d)
            case .bool(let b): return b ? "True" : "False"
            default: throw APIError.badRequest("Invalid input for field '\(field)': values must be strings.")
            }
        }
    }

    /// `host:port` → `host` (lower-cased, as Python's `urlsplit` reads it); nil without a port.
    static func hostWithoutPort(_ host: String) -> String? {
        guard host.contains(":") else { return nil }
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") { return String(host[host.index(after: host.startIndex)..<close]).lowercased() }
        return String(host.prefix { $0 != ":" }).lowercased()
    }

    /// A signed request's timestamp (version 2's `Timestamp`, version 4's `X-Amz-Date`) must be
    /// readable and no older than the signature lifetime; a request without one is accepted,
    /// as Keystone accepts it.
    static func checkSignatureTime(_ request: EC2Signature.Request) throws {
        guard let text = request.params["Timestamp"] ?? request.headers["X-Amz-Date"] ?? request.params["X-Amz-Date"] else { return }
        guard let date = Timestamps.parse(text) ?? amzDate(text) else {
            throw APIError.unauthorized("Credential timestamp is invalid: \(text)")
        }
        if now() > date.timeIntervalSince1970 + ec2SignatureLifetime { throw APIError.unauthorized("Credential is expired") }
    }

    /// AWS's basic ISO 8601 form, `20261206T190000Z`.
    static func amzDate(_ text: String) -> Date? {
        let u = Array(text.utf8)
        guard u.count == 16, u[8] == UInt8(ascii: "T"), u[15] == UInt8(ascii: "Z") else { return nil }
        let s = String(decoding: u, as: UTF8.self)
        func field(_ from: Int, _ length: Int) -> String { String(s.dropFirst(from).prefix(length)) }
        return Timestamps.parse("\(field(0, 4))-\(field(4, 2))-\(field(6, 2))T\(field(9, 2)):\(field(11, 2)):\(field(13, 2))Z")
    }
}
