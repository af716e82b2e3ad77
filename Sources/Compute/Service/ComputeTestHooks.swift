import Synchronization

/// Fault-injection points for tests; nothing sets them outside tests. Each forces, at one
/// place, an interleaving or a crash that timing alone would rarely produce.
public final class ComputeTestHooks: Sendable {
    public typealias Step = @Sendable () async throws -> Void

    private struct State {
        var skipsFollowUps = false
        var imageCreating: Step?
    }

    private let state = Mutex(State())

    init() {}

    /// When true, work that follows a commit is not run after it, as if the process had died
    /// right after the commit.
    public var skipsFollowUps: Bool {
        get { state.withLock { $0.skipsFollowUps } }
        set { state.withLock { $0.skipsFollowUps = newValue } }
    }

    /// Runs just before a snapshot's (or backup's, or shelve's) image is created in the image
    /// service; a throw stands for the image service failing.
    public func onImageCreating(_ step: Step?) { state.withLock { $0.imageCreating = step } }

    func imageCreating() async throws {
        if let step = state.withLock({ $0.imageCreating }) { try await step() }
    }
}
