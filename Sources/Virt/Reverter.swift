import Foundation

/// Undo steps for a multi-step change: each step that succeeds registers how to take itself
/// back; if the change fails part-way, `revert()` (or leaving scope through `run`) runs those
/// undo steps newest first, so the host ends up as it was before the change began.
///
/// Usage:
///
///     try await Reverter.run { reverter in
///         try makeDirectory();  reverter.add { removeDirectory() }
///         try startProcess();   reverter.add { await stopProcess() }
///     }   // on throw: stopProcess, then removeDirectory; on return: nothing is undone
///
/// Undo steps do not throw: an undo that fails can only be logged, and the remaining steps
/// must still run. A Reverter belongs to one task and is not shared.
public final class Reverter {
    private var steps: [() async -> Void] = []
    private var done = false

    public init() {}

    /// Registers an undo step; it runs before every step registered earlier.
    public func add(_ undo: @escaping () async -> Void) {
        steps.append(undo)
    }

    /// Keeps the change: no undo step will run.
    public func success() {
        done = true
        steps.removeAll()
    }

    /// Runs the undo steps newest first, once; later calls do nothing.
    public func revert() async {
        guard !done else { return }
        done = true
        let pending = steps
        steps.removeAll()
        for undo in pending.reversed() { await undo() }
    }

    /// Runs `body`; if it throws, every undo step it registered runs (newest first) before the
    /// error is rethrown. If it returns, the change is kept.
    public static func run<T>(_ body: (Reverter) async throws -> T) async throws -> T {
        let reverter = Reverter()
        do {
            let result = try await body(reverter)
            reverter.success()
            return result
        } catch {
            await reverter.revert()
            throw error
        }
    }
}
