import Crypto
import Foundation
import _CryptoExtras

/// Keypairs Nova makes when a create names no `public_key` (before 2.92): an RSA 2048 key,
/// returned once as `private_key` and never stored. An `ssh` keypair's public key is OpenSSH's
/// `ssh-rsa` line; an `x509` keypair's is a self-signed certificate for the user (Nova's WinRM
/// certificate: CN = the user id, client authentication, a user principal name
/// `<user id>@localhost`, valid ten years).
enum KeyPairGenerator {
    struct Generated {
        var publicKey: String
        var privateKey: String
    }

    static func generate(type: String, userID: String, now: Date = Date()) throws -> Generated {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        if type == "x509" {
            return Generated(publicKey: try certificate(key, commonName: userID, now: now), privateKey: key.pemRepresentation)
        }
        let primitives = try key.publicKey.getKeyPrimitives()
        var blob = Data()
        for part in [Data("ssh-rsa".utf8), mpint(primitives.publicExponent), mpint(primitives.modulus)] {
            blob.append(contentsOf: withUnsafeBytes(of: UInt32(part.count).bigEndian, Array.init))
            blob.append(part)
        }
        return Generated(publicKey: "ssh-rsa \(blob.base64EncodedString()) Generated-by-Nova", privateKey: key.pemRepresentation)
    }

    /// SSH's mpint: big-endian, no leading zero bytes, one added when the top bit is set.
    static func mpint(_ value: Data) -> Data {
        let trimmed = value.drop { $0 == 0 }
        return trimmed.first.map { $0 & 0x80 != 0 } == true ? Data([0]) + trimmed : Data(trimmed)
    }

    // MARK: The certificate

    static let sha256WithRSA = "1.2.840.113549.1.1.11", commonNameOID = "2.5.4.3", extendedKeyUsage = "2.5.29.37"
    static let clientAuth = "1.3.6.1.5.5.7.3.2", subjectAltName = "2.5.29.17", userPrincipalName = "1.3.6.1.4.1.311.20.2.3"

    static func certificate(_ key: _RSA.Signing.PrivateKey, commonName: String, now: Date) throws -> String {
        let algorithm = DER.sequence(DER.oid(sha256WithRSA) + DER.null)
        let name = DER.sequence(DER.set(DER.sequence(DER.oid(commonNameOID) + DER.utf8(commonName))))
        let validity = DER.sequence(DER.time(now) + DER.time(now.addingTimeInterval(10 * 365 * 86400)))
        var serial = [UInt8](repeating: 0, count: 16)
        for i in serial.indices { serial[i] = UInt8.random(in: 0...255) }
        serial[0] = serial[0] & 0x7F | 0x40  // positive, and no leading zero to strip
        let usage = DER.sequence(DER.oid(extendedKeyUsage) + DER.octets(DER.sequence(DER.oid(clientAuth))))
        let upn = DER.tlv(0xA0, DER.oid(userPrincipalName) + DER.tlv(0xA0, DER.utf8("\(commonName)@localhost")))
        let altName = DER.sequence(DER.oid(subjectAltName) + DER.octets(DER.sequence(upn)))
        let tbs = DER.sequence(DER.tlv(0xA0, DER.integer(Data([2]))) + DER.integer(Data(serial)) + algorithm + name + validity + name
                               + key.publicKey.derRepresentation + DER.tlv(0xA3, DER.sequence(usage + altName)))
        let signature = try key.signature(for: SHA256.hash(data: tbs), padding: .insecurePKCS1v1_5).rawRepresentation
        let certificate = DER.sequence(tbs + algorithm + DER.tlv(0x03, Data([0]) + signature))
        return pem("CERTIFICATE", certificate)
    }

    static func pem(_ label: String, _ der: Data) -> String {
        let text = der.base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return "-----BEGIN \(label)-----\n\(text)\n-----END \(label)-----\n"
    }
}

/// The few DER encodings a certificate needs.
enum DER {
    static func tlv(_ tag: UInt8, _ content: Data) -> Data {
        var out = Data([tag])
        if content.count < 0x80 {
            out.append(UInt8(content.count))
        } else {
            var length = content.count
            var bytes: [UInt8] = []
            while length > 0 { bytes.insert(UInt8(length & 0xFF), at: 0); length >>= 8 }
            out.append(0x80 | UInt8(bytes.count))
            out.append(contentsOf: bytes)
        }
        return out + content
    }

    static func sequence(_ content: Data) -> Data { tlv(0x30, content) }
    static func set(_ content: Data) -> Data { tlv(0x31, content) }
    static func integer(_ bigEndian: Data) -> Data { tlv(0x02, bigEndian) }
    static func octets(_ content: Data) -> Data { tlv(0x04, content) }
    static func utf8(_ text: String) -> Data { tlv(0x0C, Data(text.utf8)) }
    static let null = Data([0x05, 0x00])

    static func oid(_ dotted: String) -> Data {
        let arcs = dotted.split(separator: ".").compactMap { UInt64($0) }
        var content = Data([UInt8(arcs[0] * 40 + arcs[1])])
        for arc in arcs.dropFirst(2) {
            var bytes = [UInt8(arc & 0x7F)]
            var rest = arc >> 7
            while rest > 0 { bytes.insert(UInt8(rest & 0x7F) | 0x80, at: 0); rest >>= 7 }
            content.append(contentsOf: bytes)
        }
        return tlv(0x06, content)
    }

    /// UTCTime through 2049, GeneralizedTime after (RFC 5280).
    static func time(_ date: Date) -> Data {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy"
        let year = Int(formatter.string(from: date)) ?? 2000
        formatter.dateFormat = year < 2050 ? "yyMMddHHmmss'Z'" : "yyyyMMddHHmmss'Z'"
        return tlv(year < 2050 ? 0x17 : 0x18, Data(formatter.string(from: date).utf8))
    }
}
