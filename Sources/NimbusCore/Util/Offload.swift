import Foundation

/// Runs blocking work (a child process waited for, a file hashed, a socket written) on a
/// Dispatch worker thread and resumes the caller with its result, so that it does not hold one
/// of the cooperative pool's threads, of which there is one per core.
public func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}
