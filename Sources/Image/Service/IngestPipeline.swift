import Crypto
import Foundation
import NIOCore

/// Where an upload's bytes go once received: SHA-512 on one serial queue, MD5 (and SHA-256
/// when asked) with format inspection on a second, and the store write on a third. The chains
/// run independently, each taking the batches in order, and the receiving task may run up to
/// `depth` batches ahead of the slowest one, so the socket, the two hashes and the disk all
/// keep moving; memory stays at `depth` batches whatever the image size.
///
/// The chains run on Dispatch threads rather than Swift's cooperative pool, which has one
/// thread per core: hashing there left no thread to take the next bytes off the socket, and
/// an upload spent most of its time waiting for its own body. The write has its own chain
/// because MD5 alone is the longest one (~1.4 s per GiB here, against ~1.25 s for SHA-512 and
/// ~0.3 s for the write), and a `write(2)` that blocks on the filesystem then holds up no hash.
/// Without a writer (the store already holds the data: `ImageDataStore.adopt`) there is no
/// write chain.
final class IngestPipeline: @unchecked Sendable {
    struct Result {
        var md5: Insecure.MD5
        var sha512: SystemSHA512
        var sha256: SHA256?
        var inspector: DiskFormatInspector
        var size: Int64
    }

    /// Each batch is handed to this many serial queues.
    private let chains: Int

    private let writer: (any ImageDataWriter)?
    private let depth: Int
    private let hashQueue = DispatchQueue(label: "nimbus.image.sha512")
    private let md5Queue = DispatchQueue(label: "nimbus.image.md5")
    private let writeQueue = DispatchQueue(label: "nimbus.image.write")
    // Touched only on `hashQueue`.
    private let sha512 = SystemSHA512()
    // Touched only on `md5Queue`.
    private var md5 = Insecure.MD5()
    private var sha256: SHA256?
    private var inspector = DiskFormatInspector()
    private var size: Int64 = 0
    // Touched only under `lock`.
    private let lock = NSLock()
    private var pending = 0
    private var failure: (any Error)?
    private var waiter: CheckedContinuation<Void, Never>?
    private var waitingFor = 0

    init(writer: (any ImageDataWriter)?, computeSHA256: Bool, depth: Int = 4) {
        self.writer = writer
        chains = writer == nil ? 2 : 3
        self.depth = depth
        if computeSHA256 { sha256 = SHA256() }
    }

    /// Hands a batch to every chain, first waiting while `depth` batches are still in flight.
    /// Throws the first failure of an earlier batch (a write error).
    func submit(_ batch: [ByteBuffer]) async throws {
        await waitUntil(pendingAtMost: chains * (depth - 1))
        if let failure = lock.withLock({ failure }) { throw failure }
        lock.withLock { pending += chains }
        hashQueue.async {
            for chunk in batch { chunk.withUnsafeReadableBytes { self.sha512.update($0) } }
            self.finished(nil)
        }
        md5Queue.async {
            for chunk in batch {
                chunk.withUnsafeReadableBytes { bytes in
                    self.md5.update(bufferPointer: bytes)
                    self.sha256?.update(bufferPointer: bytes)
                    self.inspector.feed(bytes)
                    self.size += Int64(bytes.count)
                }
            }
            self.finished(nil)
        }
        guard let writer else { return }
        writeQueue.async {
            // After a failed write the object is abandoned: later batches are not written.
            guard self.lock.withLock({ self.failure == nil }) else { return self.finished(nil) }
            do {
                for chunk in batch { try chunk.withUnsafeReadableBytes { try writer.write($0) } }
                self.finished(nil)
            } catch {
                self.finished(error)
            }
        }
    }

    /// Waits for every batch to be written and hashed; the digests, or the first failure.
    func finish() async throws -> Result {
        await waitUntil(pendingAtMost: 0)
        if let failure = lock.withLock({ failure }) { throw failure }
        // Every chain is idle: nothing else touches their state now.
        return Result(md5: md5, sha512: sha512, sha256: sha256, inspector: inspector, size: size)
    }

    /// Waits for the chains to stop touching the writer, whatever happened (before an abort).
    func drain() async { await waitUntil(pendingAtMost: 0) }

    private func finished(_ error: (any Error)?) {
        let wake: CheckedContinuation<Void, Never>? = lock.withLock {
            pending -= 1
            if let error, failure == nil { failure = error }
            guard let waiter, pending <= waitingFor else { return nil }
            self.waiter = nil
            return waiter
        }
        wake?.resume()
    }

    private func waitUntil(pendingAtMost limit: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = lock.withLock { () -> Bool in
                if pending <= limit { return true }
                waitingFor = limit
                waiter = continuation
                return false
            }
            if ready { continuation.resume() }
        }
    }
}
