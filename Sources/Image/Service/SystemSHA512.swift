import COpenSSL

/// SHA-512 from the system's OpenSSL (libcrypto). Every byte of every upload is hashed with
/// it (`os_hash_value`), and it was the upload's most expensive step: on the machines Nimbus
/// is measured on, OpenSSL's SHA-512 runs at about 1.9 times the speed of swift-crypto's
/// BoringSSL build (598 against 316 MB/s, 1 MiB updates; see BENCHMARKS.md), because its
/// assembly uses AVX2 there. MD5 is as fast in both, so it stays with swift-crypto.
///
/// A reference type, so the hashing state moves between tasks without copies; exactly one
/// task uses it at a time (the upload hands it to the task of the batch in flight and takes
/// it back by awaiting that task).
final class SystemSHA512: @unchecked Sendable {
    private let context: OpaquePointer

    init() {
        // Allocation failure is the only way either call fails; there is no hashing without it.
        guard let context = EVP_MD_CTX_new(), EVP_DigestInit_ex(context, EVP_sha512(), nil) == 1 else {
            fatalError("OpenSSL could not set up a SHA-512 context")
        }
        self.context = context
    }

    deinit { EVP_MD_CTX_free(context) }

    func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        EVP_DigestUpdate(context, base, bytes.count)
    }

    /// The 64-byte digest; the object is spent afterwards.
    func finalize() -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        return Array(digest.prefix(Int(length)))
    }
}
