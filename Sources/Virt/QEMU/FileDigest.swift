import COpenSSL
import NimbusCore
import Foundation

/// Digests of a file, read in 1 MiB pieces, with the system's OpenSSL (libcrypto): the same
/// library the image service hashes uploads with (see Image/Service/SystemSHA512.swift).
enum FileDigest {
    enum Algorithm { case md5, sha512 }

    /// The lowercase hex digest of the file at `path`.
    static func hex(_ algorithm: Algorithm, of path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw VirtError.failed("cannot read \(path)") }
        defer { try? handle.close() }
        guard let context = EVP_MD_CTX_new() else { throw VirtError.failed("OpenSSL could not allocate a digest context") }
        defer { EVP_MD_CTX_free(context) }
        let digest = algorithm == .md5 ? EVP_md5() : EVP_sha512()
        guard EVP_DigestInit_ex(context, digest, nil) == 1 else { throw VirtError.failed("OpenSSL could not start a digest") }
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            chunk.withUnsafeBytes { _ = EVP_DigestUpdate(context, $0.baseAddress, $0.count) }
        }
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &output, &length)
        return Hex.encode(Array(output.prefix(Int(length))))
    }
}
