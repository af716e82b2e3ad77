import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NimbusCore
import Synchronization

/// What a QMP exchange can fail with.
public enum QMPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The socket could not be reached, or QEMU sent no greeting, within the time allowed.
    case connectFailed(String)
    /// QEMU answered the command with an error: its class (`GenericError`, `CommandNotFound`,
    /// `DeviceNotActive`, …) and its message.
    case commandFailed(command: String, errorClass: String, description: String)
    /// No answer (or no such event) within the time allowed.
    case timedOut(String)
    /// QEMU closed the monitor (usually: the process ended).
    case disconnected

    public var description: String {
        switch self {
        case .connectFailed(let why): return "QMP connect failed: \(why)"
        case .commandFailed(let command, let errorClass, let description): return "QMP \(command) failed: \(errorClass): \(description)"
        case .timedOut(let what): return "QMP timed out waiting for \(what)"
        case .disconnected: return "QMP monitor closed"
        }
    }
}

/// One QMP monitor connection (QEMU's JSON control protocol over a unix socket).
///
/// A dedicated thread reads the socket line by line: replies are matched to their command by
/// `id`, so several tasks may have commands in flight on one connection; asynchronous events
/// (`SHUTDOWN`, `STOP`, `RESUME`, `POWERDOWN`, `DEVICE_DELETED`, …) are kept, numbered, in a
/// bounded buffer, so a waiter that notes `lastEventSequence` before acting cannot miss an event
/// that arrives before it starts waiting. Every wait has a timeout.
///
/// QEMU serves one client per monitor socket at a time; a second client's connection is
/// accepted by the kernel but gets no greeting until the first one leaves.
public final class QMPClient: Sendable {
    public struct Event: Sendable {
        public var name: String
        public var data: JSON?
        /// Position in this connection's event stream, from 1.
        public var sequence: Int
    }

    private enum Waiter {
        case reply(CheckedContinuation<JSON, any Error>)
        case event(names: Set<String>, after: Int, CheckedContinuation<Event, any Error>)
        case close(CheckedContinuation<Void, any Error>)
    }

    private struct State {
        var nextKey: Int64 = 1
        var waiters: [Int64: Waiter] = [:]
        var greeting: JSON?
        var events: [Event] = []
        var eventCount = 0
        var closed = false
    }

    /// Events kept for late waiters; older ones are dropped (a waiter only ever needs the
    /// events since it noted `lastEventSequence`, moments earlier).
    private static let eventBufferLimit = 256

    private let fd: Int32
    private let state = Mutex(State())

    private init(fd: Int32) { self.fd = fd }

    /// Connects to the monitor at `path`, waits for QEMU's greeting and negotiates
    /// capabilities (`qmp_capabilities`). Retries while the socket does not exist yet or
    /// refuses, until `timeout`.
    /// Postcondition: the connection is in command mode.
    public static func connect(path: String, timeout: Duration = .seconds(10)) async throws -> QMPClient {
        let deadline = ContinuousClock.now + timeout
        var lastError = "no attempt"
        while true {
            switch openSocket(path: path) {
            case .success(let fd):
                let client = QMPClient(fd: fd)
                client.startReader()
                do {
                    _ = try await client.greeting(timeout: deadline - .now)
                    _ = try await client.execute("qmp_capabilities", timeout: max(deadline - .now, .seconds(1)))
                    return client
                } catch {
                    client.close()
                    throw QMPError.connectFailed("\(path): \(error)")
                }
            case .failure(let why):
                lastError = why.description
            }
            if ContinuousClock.now >= deadline { throw QMPError.connectFailed("\(path): \(lastError)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Sends `command` (with `arguments`, an object, when given) and returns its `return` value.
    /// Throws `commandFailed` with QEMU's error class and description, `timedOut`, or
    /// `disconnected`.
    @discardableResult
    public func execute(_ command: String, arguments: JSON? = nil, timeout: Duration = .seconds(30)) async throws -> JSON {
        var message: [String: JSON] = ["execute": .string(command)]
        if let arguments { message["arguments"] = arguments }
        let reply = try await wait(for: "reply to \(command)", timeout: timeout, register: { key, continuation in
            message["id"] = .int(key)
            return .reply(continuation)
        }, afterRegistering: { [fd] in
            try Self.send(fd: fd, line: JSON.object(message).serialized())
        })
        if let error = reply["error"] {
            throw QMPError.commandFailed(command: command, errorClass: error["class"]?.stringValue ?? "?",
                                         description: error["desc"]?.stringValue ?? error.serialized())
        }
        return reply["return"] ?? .null
    }

    /// The number of the newest event received so far (0 before any); pass it to
    /// `waitForEvent(_:after:timeout:)` to wait only for events caused by what follows.
    public var lastEventSequence: Int { state.withLock { $0.eventCount } }

    /// Every event still buffered, oldest first.
    public var events: [Event] { state.withLock { $0.events } }

    /// Returns the first event named in `names` numbered after `sequence`, waiting up to
    /// `timeout` for it. Throws `timedOut`, or `disconnected` when the monitor closes first.
    public func waitForEvent(_ names: Set<String>, after sequence: Int, timeout: Duration) async throws -> Event {
        try await wait(for: "event \(names.sorted().joined(separator: "/"))", timeout: timeout, register: { _, continuation in
            .event(names: names, after: sequence, continuation)
        }, match: { state in
            state.events.first { $0.sequence > sequence && names.contains($0.name) }
        })
    }

    /// Returns once QEMU has closed the monitor (it does so as the process ends); throws
    /// `timedOut` after `timeout`.
    public func waitUntilClosed(timeout: Duration) async throws {
        try await wait(for: "the monitor to close", timeout: timeout, register: { _, continuation in
            .close(continuation)
        }, match: { state in state.closed ? () : nil })
    }

    public var isClosed: Bool { state.withLock { $0.closed } }

    /// Closes the connection; commands and waits still pending fail with `disconnected`.
    /// QEMU keeps running. Idempotent.
    public func close() {
        // shutdown, not close: it wakes the reader thread blocked in read(), which then closes
        // the descriptor exactly once.
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }

    // MARK: Waiting

    private func greeting(timeout: Duration) async throws -> JSON {
        try await wait(for: "the QMP greeting", timeout: timeout, register: { _, continuation in
            .reply(continuation)
        }, match: { state in state.greeting }, greetingSlot: true)
    }

    /// The key the greeting's waiter is registered under (commands use positive keys).
    private static let greetingKey: Int64 = 0

    /// Registers a waiter (unless `match` already finds what it waits for), runs
    /// `afterRegistering` (sending the command, so its reply cannot overtake the registration),
    /// and fails the waiter with `timedOut` after `timeout`.
    private func wait<T: Sendable>(for what: String, timeout: Duration,
                                   register: (Int64, CheckedContinuation<T, any Error>) -> Waiter,
                                   match: (State) -> T? = { _ in nil },
                                   afterRegistering: () throws -> Void = {},
                                   greetingSlot: Bool = false) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let outcome: WaitOutcome<T> = state.withLock { state in
                if let found = match(state) { return .found(found) }
                if state.closed { return .closed }
                let key: Int64
                if greetingSlot {
                    key = Self.greetingKey
                } else {
                    key = state.nextKey
                    state.nextKey += 1
                }
                state.waiters[key] = register(key, continuation)
                return .registered(key)
            }
            switch outcome {
            case .found(let value): continuation.resume(returning: value)
            case .closed: continuation.resume(throwing: QMPError.disconnected)
            case .registered(let key):
                do {
                    try afterRegistering()
                } catch {
                    if let waiter = state.withLock({ $0.waiters.removeValue(forKey: key) }) { Self.fail(waiter, with: error) }
                    return
                }
                Task { [weak self] in
                    try? await Task.sleep(for: timeout)
                    guard let self, let waiter = self.state.withLock({ $0.waiters.removeValue(forKey: key) }) else { return }
                    Self.fail(waiter, with: QMPError.timedOut(what))
                }
            }
        }
    }

    private static func fail(_ waiter: Waiter, with error: any Error) {
        switch waiter {
        case .reply(let continuation): continuation.resume(throwing: error)
        case .event(_, _, let continuation): continuation.resume(throwing: error)
        case .close(let continuation): continuation.resume(throwing: error)
        }
    }

    // MARK: Reading

    private func startReader() {
        let thread = Thread { [self] in self.readLoop() }
        thread.name = "qmp-reader"
        thread.start()
    }

    private func readLoop() {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            buffer.append(contentsOf: chunk[0..<count])
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[buffer.startIndex..<newline]
                buffer.removeSubrange(buffer.startIndex...newline)
                if let message = try? JSON.parse(line) { handle(message) }
            }
        }
        let waiters: [Waiter] = state.withLock { state in
            state.closed = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        Glibc.close(fd)
        for waiter in waiters {
            if case .close(let continuation) = waiter { continuation.resume() } else { Self.fail(waiter, with: QMPError.disconnected) }
        }
    }

    private func handle(_ message: JSON) {
        if message["QMP"] != nil {
            let waiter = state.withLock { state -> Waiter? in
                state.greeting = message
                return state.waiters.removeValue(forKey: Self.greetingKey)
            }
            if case .reply(let continuation)? = waiter { continuation.resume(returning: message) }
        } else if let name = message["event"]?.stringValue {
            let (event, ready) = state.withLock { state -> (Event, [Waiter]) in
                state.eventCount += 1
                let event = Event(name: name, data: message["data"], sequence: state.eventCount)
                state.events.append(event)
                if state.events.count > Self.eventBufferLimit { state.events.removeFirst(state.events.count - Self.eventBufferLimit) }
                var ready: [Waiter] = []
                for (key, waiter) in state.waiters {
                    if case .event(let names, let after, _) = waiter, names.contains(name), event.sequence > after {
                        ready.append(waiter)
                        state.waiters.removeValue(forKey: key)
                    }
                }
                return (event, ready)
            }
            for case .event(_, _, let continuation) in ready { continuation.resume(returning: event) }
        } else if let id = message["id"]?.intValue, id != Self.greetingKey {
            if case .reply(let continuation)? = state.withLock({ $0.waiters.removeValue(forKey: id) }) {
                continuation.resume(returning: message)
            }
        }
    }

    // MARK: Socket

    private static func openSocket(path: String) -> Result<Int32, QMPSocketError> {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return .failure("socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure("socket: \(String(cString: strerror(errno)))") }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if result != 0 {
            let why = String(cString: strerror(errno))
            Glibc.close(fd)
            return .failure(QMPSocketError(why))
        }
        return .success(fd)
    }

    private static func send(fd: Int32, line: String) throws {
        let bytes = Array((line + "\n").utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw QMPError.disconnected
            }
            sent += n
        }
    }
}

private enum WaitOutcome<T> { case found(T), closed, registered(Int64) }

/// Why a connection attempt failed (kept as text: the caller only reports the last one).
struct QMPSocketError: Error, ExpressibleByStringLiteral, ExpressibleByStringInterpolation, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
    init(stringLiteral value: String) { description = value }
}
