import Foundation

/// Work a service starts after answering a request (an image import, a server build), kept
/// track of so that shutdown can wait for it instead of closing the database under it.
public actor BackgroundWork {
    private var running: [UUID: Task<Void, Never>] = [:]

    public init() {}

    public func run(_ work: @escaping @Sendable () async -> Void) {
        let id = UUID()
        running[id] = Task {
            await work()
            self.finished(id)
        }
    }

    private func finished(_ id: UUID) { running[id] = nil }

    /// Returns when everything started so far (and what it started) has finished.
    public func waitForAll() async {
        while let (_, task) = running.first {
            await task.value
        }
    }
}
