import Foundation
import HTTPTypes
@testable import Identity
import NimbusCore
import NimbusTestSupport
import XCTest

/// EC2 credentials and `/v3/ec2tokens`.
final class EC2CredentialTests: XCTestCase {
    /// Vectors computed outside Nimbus: version 4 is AWS's published `get-vanilla` case of its
    /// signature test suite; version 2 was computed with Python's hmac and urllib as
    /// keystoneclient's signer does it.
    func testSignaturesMatchIndependentVectors() throws {
        let v4 = EC2Signature.Request(
            params: [:], verb: "GET", host: "example.amazonaws.com", path: "/",
            headers: ["Host": "example.amazonaws.com", "X-Amz-Date": "20150830T123600Z",
                      "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=x"],
            bodyHash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(try EC2Signature(secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY").expected(v4),
                       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        let v2 = EC2Signature.Request(
            params: ["Action": "DescribeInstances", "AWSAccessKeyId": "AKIDEXAMPLE", "SignatureVersion": "2", "Timestamp": "2026-12-06T19:00:00Z",
                     "Version": "2016-11-15", "Filter.1.Name": "tag:Name value/ü"],
            verb: "GET", host: "ec2.example.com:8788", path: "/", headers: [:], bodyHash: "")
        XCTAssertEqual(try EC2Signature(secret: "5f7d9c1a2b3e4f60718293a4b5c6d7e8").expected(v2), "RtXpMlQc8kkmtM0TpANmI70knBWVaHFMnK/V5MfMyQU=")
        var unknown = v2
        unknown.params["SignatureVersion"] = "3"
        XCTAssertThrowsError(try EC2Signature(secret: "s").expected(unknown))
        XCTAssertThrowsError(try EC2Signature(secret: "s").expected(EC2Signature.Request(params: [:], verb: "GET", host: "h", path: "/",
                                                                                          headers: [:], bodyHash: "")))
        XCTAssertEqual(IdentityService.hostWithoutPort("EC2.Example.com:8788"), "ec2.example.com")
        XCTAssertEqual(IdentityService.hostWithoutPort("[::1]:8788"), "::1")
        XCTAssertNil(IdentityService.hostWithoutPort("ec2.example.com"))
        XCTAssertEqual(IdentityService.amzDate("20150830T123600Z"), Timestamps.parse("2015-08-30T12:36:00Z"))
    }

    static func signedV2(access: String, secret: String, host: String, signHost: String? = nil, timestamp: Date = Date()) throws -> JSON {
        let params = ["Action": "DescribeInstances", "AWSAccessKeyId": access, "SignatureVersion": "2", "Timestamp": Timestamps.iso8601(timestamp),
                      "Version": "2016-11-15"]
        let signature = try EC2Signature(secret: secret).expected(EC2Signature.Request(params: params, verb: "GET", host: signHost ?? host,
                                                                                       path: "/", headers: [:], bodyHash: ""))
        return ["credentials": ["access": .string(access), "signature": .string(signature), "host": .string(host), "verb": "GET", "path": "/",
                                "params": .object(params.mapValues { .string($0) })]]
    }

    func testEC2CredentialLifecycleAndTokens() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let carol = try await api.projectUser(admin: admin, name: "carol")
            let path = "/identity/v3/users/\(alice.user)/credentials/OS-EC2"
            let created = try await api.call(.post, path, token: alice.token, body: ["tenant_id": .string(alice.project)])
            XCTAssertEqual(created.status, 201, created.text)
            let credential = created.json["credential"]
            let access = try XCTUnwrap(credential?["access"]?.stringValue)
            let secret = try XCTUnwrap(credential?["secret"]?.stringValue)
            XCTAssertEqual(credential?["user_id"]?.stringValue, alice.user)
            XCTAssertEqual(credential?["tenant_id"]?.stringValue, alice.project)
            XCTAssertEqual(credential?["trust_id"], .null)
            XCTAssertTrue(credential?["links"]?["self"]?.stringValue?.hasSuffix("/v3/users/\(alice.user)/credentials/OS-EC2/\(access)") == true)

            let listed = try await api.call(.get, path, token: alice.token)
            XCTAssertEqual(listed.json["credentials"]?.arrayValue?.compactMap { $0["access"]?.stringValue }, [access], listed.text)
            let shown = try await api.call(.get, "\(path)/\(access)", token: alice.token)
            XCTAssertEqual(shown.json["credential"]?["secret"]?.stringValue, secret, shown.text)
            // The secret is stored encrypted.
            let blobs = try await cloud.rawColumn("SELECT blob FROM identity_credential")
            XCTAssertEqual(blobs.count, 1)
            XCTAssertFalse(blobs.contains { $0.contains(secret) || $0.contains(access) })
            // The generic credentials API sees it as an ec2 credential addressed by its key's hash.
            let generic = try await api.call(.get, "/identity/v3/credentials?type=ec2", token: alice.token)
            XCTAssertEqual(generic.json["credentials"]?.arrayValue?.first?["id"]?.stringValue, IdentityService.ec2CredentialID(access: access))

            // Others' credentials, unknown projects and keys.
            assertKeystoneError(try await api.call(.post, path, token: carol.token, body: ["tenant_id": .string(alice.project)]), 403)
            assertKeystoneError(try await api.call(.get, "\(path)/\(access)", token: carol.token), 403)
            assertKeystoneError(try await api.call(.post, path, token: alice.token, body: ["tenant_id": "nope"]), 404)
            assertKeystoneError(try await api.call(.post, path, token: alice.token, body: [:]), 404)
            assertKeystoneError(try await api.call(.get, "\(path)/nope", token: alice.token), 404)
            assertKeystoneError(try await api.call(.get, "/identity/v3/users/\(carol.user)/credentials/OS-EC2/\(access)", token: admin), 404)

            // A request signed with the secret gets a token for alice on her project.
            let ec2 = try await api.call(.post, "/identity/v3/ec2tokens", token: admin,
                                         body: try Self.signedV2(access: access, secret: secret, host: "ec2.example.com:8788"))
            XCTAssertEqual(ec2.status, 200, ec2.text)
            XCTAssertEqual(ec2.json["token"]?["user"]?["id"]?.stringValue, alice.user)
            XCTAssertEqual(ec2.json["token"]?["project"]?["id"]?.stringValue, alice.project)
            XCTAssertEqual(ec2.json["token"]?["methods"], ["ec2credential"])
            let token = try XCTUnwrap(ec2.subjectToken)
            let used = try await api.call(.get, "/identity/v3/users/\(alice.user)", token: token)
            XCTAssertEqual(used.status, 200, used.text)
            // Clients that sign the host without its port are accepted too.
            let portless = try await api.call(.post, "/identity/v3/ec2tokens", token: admin,
                                              body: try Self.signedV2(access: access, secret: secret, host: "ec2.example.com:8788", signHost: "ec2.example.com"))
            XCTAssertEqual(portless.status, 200, portless.text)

            // Wrong secret, no signature, unknown key, stale timestamp, a caller that is not a service.
            assertKeystoneError(try await api.call(.post, "/identity/v3/ec2tokens", token: admin,
                                                   body: try Self.signedV2(access: access, secret: "wrong", host: "ec2.example.com")), 401)
            assertKeystoneError(try await api.call(.post, "/identity/v3/ec2tokens", token: admin,
                                                   body: ["credentials": ["access": .string(access), "host": "h", "verb": "GET", "path": "/",
                                                                          "params": ["SignatureVersion": "2"]]]), 401)
            assertKeystoneError(try await api.call(.post, "/identity/v3/ec2tokens", token: admin,
                                                   body: try Self.signedV2(access: "unknown", secret: secret, host: "h")), 404)
            let stale = try await api.call(.post, "/identity/v3/ec2tokens", token: admin,
                                           body: try Self.signedV2(access: access, secret: secret, host: "h", timestamp: Date().addingTimeInterval(-3600)))
            assertKeystoneError(stale, 401)
            XCTAssertEqual(stale.json["error"]?["message"]?.stringValue, "Credential is expired", stale.text)
            assertKeystoneError(try await api.call(.post, "/identity/v3/ec2tokens", token: alice.token,
                                                   body: try Self.signedV2(access: access, secret: secret, host: "h")), 403)
            assertKeystoneError(try await api.call(.post, "/identity/v3/ec2tokens", token: admin, body: [:]), 400)
            assertKeystoneError(try await api.call(.post, "/identity/v3/ec2tokens", token: admin, body: ["credentials": ["access": 5]]), 401)

            // Deleted: gone from the API, and its signatures no longer authenticate.
            let deleted = try await api.call(.delete, "\(path)/\(access)", token: alice.token).status
            XCTAssertEqual(deleted, 204)
            assertKeystoneError(try await api.call(.get, "\(path)/\(access)", token: alice.token), 404)
            assertKeystoneError(try await api.call(.post, "/identity/v3/ec2tokens", token: admin,
                                                   body: try Self.signedV2(access: access, secret: secret, host: "h")), 404)
        }
    }

    /// Version 4 through a credential made with the generic API (whose blob names the secret):
    /// AWS's own vector verifies (and is then refused as too old), a fresh request gets a token.
    func testSignatureVersion4() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let awsSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
            let blob = JSON.object(["access": "AKIDEXAMPLE", "secret": .string(awsSecret)]).serialized()
            let made = try await api.call(.post, "/identity/v3/credentials", token: alice.token,
                                          body: ["credential": ["user_id": .string(alice.user), "project_id": .string(alice.project), "type": "ec2",
                                                                "blob": .string(blob)]])
            XCTAssertEqual(made.status, 201, made.text)
            func body(date: String, scopeDate: String, signature: String) -> JSON {
                let authorization = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\(scopeDate)/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=\(signature)"
                return ["credentials": ["access": "AKIDEXAMPLE", "signature": .string(signature), "host": "example.amazonaws.com", "verb": "GET",
                                        "path": "/", "params": [:], "body_hash": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                                        "headers": ["Host": "example.amazonaws.com", "X-Amz-Date": .string(date), "Authorization": .string(authorization)]]]
            }
            let vector = try await api.call(.post, "/identity/v3/ec2tokens", token: admin,
                                            body: body(date: "20150830T123600Z", scopeDate: "20150830",
                                                       signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"))
            XCTAssertEqual(vector.json["error"]?["message"]?.stringValue, "Credential is expired", vector.text)
            let tampered = try await api.call(.post, "/identity/v3/ec2tokens", token: admin,
                                              body: body(date: "20150830T123600Z", scopeDate: "20150830",
                                                         signature: "6fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"))
            XCTAssertEqual(tampered.json["error"]?["message"]?.stringValue, "Invalid EC2 signature.", tampered.text)

            let now = Timestamps.iso8601(Date()).replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "")
            let day = String(now.prefix(8))
            var fresh = body(date: now, scopeDate: day, signature: "")
            let request = EC2Signature.Request(params: [:], verb: "GET", host: "example.amazonaws.com", path: "/",
                                               headers: ["Host": "example.amazonaws.com", "X-Amz-Date": now,
                                                         "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\(day)/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=x"],
                                               bodyHash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
            fresh = body(date: now, scopeDate: day, signature: try EC2Signature(secret: awsSecret).expected(request))
            let ok = try await api.call(.post, "/identity/v3/ec2tokens", token: admin, body: fresh)
            XCTAssertEqual(ok.status, 200, ok.text)
            XCTAssertEqual(ok.json["token"]?["user"]?["id"]?.stringValue, alice.user)
        }
    }

    /// `/v3/s3tokens` with vectors computed by Python's hmac as Keystone's s3tokens computes them.
    func testS3Tokens() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let blob = JSON.object(["access": "S3ACCESS", "secret": "5f7d9c1a2b3e4f60718293a4b5c6d7e8"]).serialized()
            let made = try await api.call(.post, "/identity/v3/credentials", token: admin,
                                          body: ["credential": ["user_id": .string(alice.user), "project_id": .string(alice.project), "type": "ec2",
                                                                "blob": .string(blob)]])
            XCTAssertEqual(made.status, 201, made.text)
            let v1 = "R0VUCgoKVHVlLCAyNyBNYXIgMjAwNyAxOTozNjo0MiArMDAwMAovam9obnNtaXRoL3Bob3Rvcy9wdXBweS5qcGc="
            let v4 = "QVdTNC1ITUFDLVNIQTI1NgoyMDI2MTIwNlQxOTAwMDBaCjIwMjYxMjA2L3VzLWVhc3QtMS9zMy9hd3M0X3JlcXVlc3QKMGRlZWI4ZmExZGJiZWU0YzBkYmU3ZjVl"
                + "M2M5MTgzOTQwMTM5ZjI2ZDIyNzk3ZWU4YWIwN2MwMDU1N2E0YzJmZg=="
            func body(_ token: String, _ signature: String) -> JSON {
                ["credentials": ["access": "S3ACCESS", "token": .string(token), "signature": .string(signature)]]
            }
            for (token, signature) in [(v1, "j4RIy8EVWFq6JSdScanU+rkj+B4="), (v4, "27b2ee5b8e21eb3af5a17edea3e88a145747aa28302f8b5aede1ba64f5c15634")] {
                let reply = try await api.call(.post, "/identity/v3/s3tokens", token: admin, body: body(token, signature))
                XCTAssertEqual(reply.status, 200, reply.text)
                XCTAssertEqual(reply.json["token"]?["user"]?["id"]?.stringValue, alice.user)
                XCTAssertEqual(reply.json["token"]?["project"]?["id"]?.stringValue, alice.project)
                XCTAssertNil(reply.subjectToken)
            }
            let mismatch = try await api.call(.post, "/identity/v3/s3tokens", token: admin, body: body(v1, "k4RIy8EVWFq6JSdScanU+rkj+B4="))
            assertKeystoneError(mismatch, 401)
            XCTAssertEqual(mismatch.json["error"]?["message"]?.stringValue, "Credential signature mismatch")
            // A version 4 scope for a service other than s3, iam or sts.
            let ec2Scope = Data("AWS4-HMAC-SHA256\n20261206T190000Z\n20261206/us-east-1/ec2/aws4_request\nabc".utf8).base64EncodedString()
            assertKeystoneError(try await api.call(.post, "/identity/v3/s3tokens", token: admin, body: body(ec2Scope, "x")), 401)
            assertKeystoneError(try await api.call(.post, "/identity/v3/s3tokens", token: admin, body: body("%%%", "x")), 401)
            assertKeystoneError(try await api.call(.post, "/identity/v3/s3tokens", token: alice.token,
                                                   body: body(v1, "j4RIy8EVWFq6JSdScanU+rkj+B4=")), 403)
        }
    }
}
