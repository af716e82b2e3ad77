import Foundation
import NimbusCore
import NimbusStore
import Synchronization

/// Work that must follow a commit: calls to placement, the networking and image services, and
/// the conductor's own next steps after a report. None of it can join the transaction (those
/// services commit on their own), so it is made durable instead: recorded in
/// `compute_follow_up` by the transaction whose commit makes it necessary, run after that
/// commit, and deleted once done. A process that dies between the commit and the work — or
/// work that fails — leaves the row, and the next start runs it (`runLeftFollowUps`).
///
/// Every case is idempotent: running one whose work was already done (the process died after
/// the work but before deleting its row) changes nothing. The cases are stored as JSON by
/// their names, so renaming one needs a migration of the rows left.
enum FollowUp: Codable, Sendable {
    /// Placement: the consumer's allocations go (a deleted or offloaded server, a finished move).
    case deleteAllocations(consumer: String)
    /// Placement: what a migration consumer still holds goes back to the server (a move that
    /// failed, a revert). Nothing happens once the migration holds nothing, so a second run
    /// cannot empty the server's allocation.
    case returnAllocations(migration: String, instance: String, project: String, user: String)
    /// Placement: an evacuated server lets go of its dead source host's part.
    case dropProvider(String, instance: String, project: String, user: String)
    /// The image service: an image the compute service made and no longer needs (a shelved
    /// server's snapshot after unshelve); one already gone is fine.
    case deleteImage(String)
    /// Networking: a moved server's ports are bound to the host it now runs on (skipped when
    /// the server has moved on or gone since).
    case rebindPorts(instance: String, host: String, zone: String)
    /// Networking: a deleted server's ports go, those the user gave (`keep`) stay.
    case releasePorts(instance: String, keep: [String])
    /// Networking: one port detached from the server (or whose attach failed) goes, or, when
    /// the user gave it (`delete` false), is unbound (skipped once it is not the server's).
    case releasePort(instance: String, port: String, delete: Bool)
    /// A build that failed on `failedHost` goes to an alternate host, or the server to ERROR
    /// (skipped once the server is past that: rebuilt elsewhere, in ERROR, or deleted).
    case reschedule(instance: String, actionID: Int64, failedHost: String, error: String)
    /// The host uploaded a snapshot: the action ends (backups beyond `rotation` deleted), or
    /// a shelve goes on to offload (skipped once the server left the upload's task state).
    case finishSnapshot(instance: String, imageID: String, shelving: Bool, host: String, actionID: Int64, rotation: BackupRotation?)
}

/// `createBackup`'s rotation: the newest `keep` backups of `type` stay.
struct BackupRotation: Codable, Sendable {
    var type: String
    var keep: Int
}

/// What one transaction leaves to do once it has committed: the follow-ups it recorded and the
/// hosts whose agents to wake. Handed to `Conductor.finish` only after the commit; a
/// transaction that rolls back throws, and its `AfterCommit` is dropped unrun.
final class AfterCommit: Sendable {
    private let state = Mutex<(work: [(id: Int64, work: FollowUp)], wake: [String])>(([], []))

    init() {}

    func add(_ id: Int64, _ work: FollowUp) { state.withLock { $0.work.append((id, work)) } }
    /// Wakes `host`'s agent after the commit (a message for it was written).
    func wake(_ host: String) { state.withLock { $0.wake.append(host) } }

    var recorded: [(id: Int64, work: FollowUp)] { state.withLock { $0.work } }
    var hosts: [String] { state.withLock { $0.wake } }
}

extension Conductor {
    /// Records `work` in the caller's transaction; `finish(after)` runs it once that commits.
    func record(_ work: FollowUp, in after: AfterCommit, _ x: any SQLExecutor) async throws {
        let encoded = String(decoding: try JSONEncoder().encode(work), as: UTF8.self)
        guard let id = try await x.first("INSERT INTO compute_follow_up (work, created_at) VALUES (?, ?) RETURNING id",
                                         .text(encoded), .real(Date().timeIntervalSince1970))?.int("id") else {
            throw DatabaseError.other("INSERT INTO compute_follow_up returned no id")
        }
        after.add(id, work)
    }

    /// After the transaction that filled `after` committed: wakes its hosts and runs its
    /// follow-ups in the order they were recorded.
    func finish(_ after: AfterCommit) async {
        for host in after.hosts { await wake(host) }
        // A test standing in for a process that dies right after the commit.
        if hooks.skipsFollowUps { return }
        for (id, work) in after.recorded { await run(id, work) }
    }

    /// Follow-ups a previous process recorded and did not finish (it died, or the work
    /// failed), oldest first. Run at start, before anything else settles servers.
    func runLeftFollowUps() async throws {
        for row in try await db.query("SELECT id, work FROM compute_follow_up ORDER BY id", []) {
            guard let work = try? JSONDecoder().decode(FollowUp.self, from: Data(row.string("work").utf8)) else {
                logger.error("follow-up \(row.int("id")) cannot be read and is left in compute_follow_up: \(row.string("work"))")
                continue
            }
            await run(row.int("id"), work)
        }
    }

    /// Does the work and deletes its row; on failure the row stays for the next start.
    func run(_ id: Int64, _ work: FollowUp) async {
        do {
            try await carryOut(work)
            try await db.execute("DELETE FROM compute_follow_up WHERE id = ?", [.integer(id)])
        } catch {
            logger.error("follow-up \(id) (\(work)) failed and is left for the next start: \(error)")
        }
    }

    func carryOut(_ work: FollowUp) async throws {
        switch work {
        case .deleteAllocations(let consumer):
            try await placement.deleteAllocations(consumer: consumer)
        case .returnAllocations(let migration, let instance, let project, let user):
            guard try await !placement.allocations(consumer: migration).isEmpty else { return }
            try await placement.moveAllocations(from: migration, to: instance, project: project, user: user)
        case .dropProvider(let provider, let instance, let project, let user):
            try await dropProvider(provider, from: instance, project: project, user: user)
        case .deleteImage(let id):
            do { try await images.deleteImage(id) } catch let error as APIError where error.status == .notFound {}
        case .rebindPorts(let uuid, let host, let zone):
            guard let instance = try await store.instance(uuid: uuid, db), instance.deletedAt == nil, instance.host == host else { return }
            try await rebindNICs(instance, host: host, zone: zone)
        case .releasePorts(let uuid, let keep):
            try await network?.deallocate(instance: uuid, keep: Set(keep))
        case .releasePort(let uuid, let port, let delete):
            try await network?.releasePort(port, instance: uuid, delete: delete)
        case .reschedule(let uuid, let actionID, let failedHost, let error):
            guard let instance = try await store.instance(uuid: uuid, db), instance.deletedAt == nil, instance.vmState == .building,
                  instance.taskState == .spawning, instance.host == failedHost,
                  try await db.first("SELECT 1 AS found FROM compute_message WHERE instance_uuid = ?", .text(uuid)) == nil else { return }
            try await reschedule(instance, actionID: actionID, error: error)
        case .finishSnapshot(let uuid, let imageID, let shelving, let host, let actionID, let rotation):
            try await finishSnapshot(uuid, imageID: imageID, shelving: shelving, host: host, actionID: actionID, rotation: rotation)
        }
    }
}
