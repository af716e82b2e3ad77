import Crypto
import Foundation
import NimbusCore

/// The AWS request signatures Keystone's `/v3/ec2tokens` verifies, computed as keystoneclient's
/// `Ec2Signer` computes them: versions 0 and 1 (HMAC-SHA1), 2 (HMAC-SHA256 over the method,
/// host, path and canonical query) and 4 (AWS4-HMAC-SHA256 with a derived key, from the
/// `Authorization` header or the `X-Amz-*` query parameters).
struct EC2Signature {
    /// What the service that received the signed request passes on.
    struct Request {
        var params: [String: String]
        var verb: String
        var host: String
        var path: String
        var headers: [String: String]
        var bodyHash: String
    }

    enum Failure: Error { case unknownVersion, malformed }

    let secret: String

    /// The signature the request should carry.
    func expected(_ request: Request) throws(Failure) -> String {
        switch request.params["SignatureVersion"] {
        case "0":
            guard let action = request.params["Action"], let timestamp = request.params["Timestamp"] else { throw .malformed }
            return base64(HMAC<Insecure.SHA1>.authenticationCode(for: Data((action + timestamp).utf8), using: key))
        case "1":
            var mac = HMAC<Insecure.SHA1>(key: key)
            for name in request.params.keys.sorted(by: { $0.lowercased() < $1.lowercased() }) {
                mac.update(data: Data(name.utf8))
                mac.update(data: Data(request.params[name]!.utf8))
            }
            return base64(mac.finalize())
        case "2":
            // Keystone always signs version 2 with SHA-256 and says so in the signed query.
            var params = request.params
            params["SignatureMethod"] = "HmacSHA256"
            let text = "\(request.verb)\n\(request.host)\n\(request.path)\n" + Self.canonicalQuery(params)
            return base64(HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: key))
        case .some:
            throw .unknownVersion
        case nil:
            guard Self.isVersion4(request) else { throw .malformed }
            return try version4(request)
        }
    }

    var key: SymmetricKey { SymmetricKey(data: Data(secret.utf8)) }

    static func isVersion4(_ request: Request) -> Bool {
        if let authorization = request.headers["Authorization"] { return authorization.hasPrefix("AWS4-HMAC-SHA256") }
        return request.params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    }

    func version4(_ request: Request) throws(Failure) -> String {
        /// A field of the `Authorization` header, else the `X-Amz-<name>` query parameter.
        func authField(_ name: String) -> String? {
            if let authorization = request.headers["Authorization"] {
                guard let range = authorization.range(of: name + "=") else { return "" }
                return String(authorization[range.upperBound...].prefix { $0 != "," })
            }
            return request.params["X-Amz-" + name]
        }
        guard let signedHeaders = authField("SignedHeaders"), let credential = authField("Credential"),
              let date = request.headers["X-Amz-Date"] ?? request.params["X-Amz-Date"] else { throw .malformed }
        var lowered: [String: String] = [:]
        for (name, value) in request.headers {
            lowered[name.lowercased().trimmingCharacters(in: .whitespaces)] = value.trimmingCharacters(in: .whitespaces)
        }
        // Boto before 2.9.3 signed the host without its port.
        let agent = Array((lowered["user-agent"] ?? "").utf8)
        let oldBoto = agent.count >= 10 && agent.starts(with: Array("Boto/2.".utf8)) && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(agent[7])
            && agent[8] == UInt8(ascii: ".") && (UInt8(ascii: "0")...UInt8(ascii: "2")).contains(agent[9])
        var headerLines: [String] = []
        for name in signedHeaders.split(separator: ";", omittingEmptySubsequences: false).map(String.init) {
            guard var value = lowered[name] else { continue }
            if name == "host" && oldBoto { value = String(value.prefix { $0 != ":" }) }
            headerLines.append("\(name):\(value)")
        }
        // POST requests carry their parameters in the body, which body_hash covers.
        let query = request.verb.uppercased() == "POST" ? "" : Self.canonicalQuery(request.params)
        let canonical = [request.verb.uppercased(), request.path, query, headerLines.joined(separator: "\n") + "\n", signedHeaders,
                         request.bodyHash].joined(separator: "\n")
        let parts = credential.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 4, date.hasPrefix(parts[1]) else { throw .malformed }
        let scope = parts[1...].joined(separator: "/")
        let toSign = ["AWS4-HMAC-SHA256", date, scope, Hex.encode(SHA256.hash(data: Data(canonical.utf8)))].joined(separator: "\n")
        var signingKey = SymmetricKey(data: Data(("AWS4" + secret).utf8))
        for part in [parts[1], parts[2], parts[3], "aws4_request"] {
            signingKey = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: signingKey)))
        }
        return Hex.encode(HMAC<SHA256>.authenticationCode(for: Data(toSign.utf8), using: signingKey))
    }

    /// The signature of an S3 request as Keystone's s3tokens computes it from the string the
    /// client signed: version 4 (`AWS4-HMAC-SHA256`, four lines, a scope of
    /// `date/region/{s3,iam,sts}/aws4_request`), else version 1 (base64 HMAC-SHA1). nil for a
    /// malformed version 4 string.
    static func s3(stringToSign: [UInt8], secret: String) -> String? {
        guard stringToSign.starts(with: Array("AWS4".utf8)) else {
            return Data(HMAC<Insecure.SHA1>.authenticationCode(for: stringToSign, using: SymmetricKey(data: Data(secret.utf8)))).base64EncodedString()
        }
        let lines = stringToSign.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        guard lines.count == 4, Array(lines[0]) == Array("AWS4-HMAC-SHA256".utf8) else { return nil }
        let scope = lines[2].split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).map { Array($0) }
        guard scope.count == 4, scope[3] == Array("aws4_request".utf8),
              [Array("s3".utf8), Array("iam".utf8), Array("sts".utf8)].contains(scope[2]) else { return nil }
        var key = SymmetricKey(data: Data(("AWS4" + secret).utf8))
        for part in scope { key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: part, using: key))) }
        return Hex.encode(HMAC<SHA256>.authenticationCode(for: stringToSign, using: key))
    }

    /// Parameters sorted by name (code point order), names and values percent-encoded except
    /// for RFC 3986's unreserved characters, joined with `&`.
    static func canonicalQuery(_ params: [String: String]) -> String {
        params.keys.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
            .map { percentEncode($0) + "=" + percentEncode(params[$0]!) }.joined(separator: "&")
    }

    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(2)
            }
        }
        return out
    }

    func base64<M: MessageAuthenticationCode>(_ mac: M) -> String { Data(mac).base64EncodedString() }

    /// Constant-time comparison, so that timing does not reveal how much of a guess was right.
    static func equal(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<x.count { diff |= x[i] ^ y[i] }
        return diff == 0
    }
}

private extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
