import CEpoll
import Glibc

let serversPath = "/compute/v2.1/servers"
let createdKeys = JSONScan.Keys(outer: "server", ["id"])
let shownKeys = JSONScan.Keys(outer: "server", ["status", "name", "fault", "OS-EXT-SRV-ATTR:host", "OS-EXT-STS:task_state"])

/// One of --concurrency workers: a connection and the cycle it is in. A worker does what one
/// of compute_boot.py's threads does, one request at a time; the event loop stands in for
/// the blocking calls and the sleeps.
final class Worker {
    enum Phase { case post, get, delete, sleeping, done }

    let number: Int
    let conn: HTTPConnection
    var phase = Phase.done
    /// A GET is sent again once on a fresh connection if the kept-alive one was closed under it.
    var retried = false
    var requestSent = 0.0
    var index = 0
    var serverID = ""
    var path = ""
    var tPost = 0.0
    var tPosted = 0.0
    var polls = 0
    var getTime = 0.0
    var toActive = 0.0
    var host: String?
    var watchingWrite = false
    var finished = false

    init(number: Int, conn: HTTPConnection) {
        self.number = number
        self.conn = conn
    }
}

/// Runs the cycles from one thread over non-blocking sockets and epoll.
///
/// Why not a blocking thread per worker, which is simpler: every blocking recv and every
/// poll-interval sleep of fifty threads is a context switch of its own, and on this machine
/// (2 cores, in a VM) context switches are the largest part of the client's CPU. One thread
/// waiting in epoll_pwait2 picks up whatever answers have arrived and polls are due in one
/// wake-up. Measured back to back against the same server, a thread-per-worker version spent
/// 45–55 µs of CPU per request with ~1.7 context switches, this one 37–42 µs with ~1.1 (the
/// Python threads: 210–260 µs).
final class Load {
    let o: Options
    let epfd: Int32
    let poll: Double
    var workers: [Worker] = []
    /// Workers waiting for their next GET, by deadline. Every wait is the same --poll-ms from
    /// when it starts, so the deadlines come in order and a queue is enough (no heap).
    var sleepers: [(deadline: Double, worker: Worker)] = []
    var sleepersHead = 0
    var next = 0
    var running = 0
    var stopping = false
    var records: [Record] = []
    var errors: [String] = []
    let progressEvery: Int
    // json.dumps's spacing, so the server parses the same bytes either client sends.
    let bodyHead: [UInt8]
    let bodyTail: [UInt8]

    init(_ o: Options, endpoint: Endpoint) throws {
        self.o = o
        poll = o.pollMs / 1000.0
        epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epfd >= 0 else { throw LoadError("epoll_create1: \(errnoText())") }
        progressEvery = max(o.cycles / 10, 1)
        bodyHead = Array("{\"server\": {\"name\": \"bench-\(o.label)-".utf8)
        bodyTail = Array(("\", \"imageRef\": \(jsonString(o.image)), \"flavorRef\": \(jsonString(o.flavor)), "
            + "\"networks\": \"none\"}}").utf8)
        records.reserveCapacity(o.cycles)
        for n in 0..<min(o.concurrency, o.cycles) {
            workers.append(Worker(number: n, conn: HTTPConnection(endpoint: endpoint, token: o.token, microversion: o.microversion)))
        }
    }

    /// Runs every cycle; the seconds from the first POST to the last worker's end.
    func run() -> Double {
        let t0 = now()
        running = workers.count
        for w in workers { startCycle(w) }
        var events = [epoll_event](repeating: epoll_event(), count: workers.count)
        var lastStallCheck = t0
        while running > 0 {
            // Waiting at most a second, to notice a request that has gone unanswered too long.
            var wait = 1.0
            if sleepersHead < sleepers.count { wait = min(wait, max(0, sleepers[sleepersHead].deadline - now())) }
            var timeout = timespec(tv_sec: Int(wait), tv_nsec: Int((wait - Double(Int(wait))) * 1e9))
            let n = epoll_pwait2(epfd, &events, Int32(events.count), &timeout, nil)
            if n < 0 && errno != EINTR {
                errors.append("epoll_pwait2: \(errnoText())")
                break
            }
            for e in events.prefix(Int(max(n, 0))) {
                event(workers[Int(e.data.u32)], e.events)
            }
            let t = now()
            while sleepersHead < sleepers.count && sleepers[sleepersHead].deadline <= t {
                let w = sleepers[sleepersHead].worker
                sleepersHead += 1
                if w.phase == .sleeping { startGet(w) }
            }
            if sleepersHead > 4096 && sleepersHead * 2 > sleepers.count {
                sleepers.removeFirst(sleepersHead)
                sleepersHead = 0
            }
            if t - lastStallCheck > 1 {
                lastStallCheck = t
                checkStalled(t)
            }
        }
        return now() - t0
    }

    // --- the cycle -------------------------------------------------------------------------

    private func startCycle(_ w: Worker) {
        guard !stopping, next < o.cycles else {
            finish(w)
            return
        }
        w.index = next
        next += 1
        let body = bodyHead + Array(String(w.index).utf8) + bodyTail
        w.phase = .post
        w.tPost = now()
        send(w, "POST", serversPath, json: body)
    }

    private func startGet(_ w: Worker) {
        w.phase = .get
        send(w, "GET", w.path)
    }

    /// The whole answer to `w`'s request is in, at `t`.
    private func answered(_ w: Worker, at t: Double) throws {
        let c = w.conn
        switch w.phase {
        case .post:
            w.tPosted = t
            try check(c, 202)
            guard let id = try JSONScan.members(createdKeys, in: c.body)["id"]?.string else {
                throw LoadError("POST \(serversPath) answered 202 without a server id")
            }
            w.serverID = id
            w.path = "\(serversPath)/\(id)"
            w.polls = 0
            w.getTime = 0
            startGet(w)
        case .get:
            try check(c, 200)
            let shown = try JSONScan.members(shownKeys, in: c.body)
            w.polls += 1
            w.getTime += t - w.requestSent
            let status = shown["status"]?.string
            if status == "ACTIVE" {
                w.toActive = t - w.tPost
                w.host = shown["OS-EXT-SRV-ATTR:host"]?.string
                w.phase = .delete
                send(w, "DELETE", w.path)
            } else if status != "BUILD" {
                throw LoadError(faultText(w.serverID, shown))
            } else if t - w.tPost > o.bootTimeout {
                throw LoadError("server \(w.serverID) still \(pythonText(shown["status"])) "
                    + "(task \(pythonText(shown["OS-EXT-STS:task_state"]))) after \(o.bootTimeout) s")
            } else {
                w.phase = .sleeping
                sleepers.append((now() + poll, w))
            }
        case .delete:
            try check(c, 204)
            records.append(Record(
                id: w.serverID, host: w.host, start: w.tPost, end: t, post: w.tPosted - w.tPost,
                toActive: w.toActive, delete: t - w.requestSent, cycle: t - w.tPost, polls: w.polls,
                getMean: w.getTime / Double(w.polls)))
            if records.count % progressEvery == 0 { log("\(o.label): \(records.count)/\(o.cycles) cycles") }
            startCycle(w)
        case .sleeping, .done:
            break
        }
    }

    private func check(_ c: HTTPConnection, _ expected: Int) throws {
        guard c.status == expected else {
            let text = String(decoding: c.body.prefix(500), as: UTF8.self)
            throw LoadError("\(c.method) \(c.path) answered \(c.status): \(text)")
        }
    }

    // --- the connection --------------------------------------------------------------------

    private func send(_ w: Worker, _ method: String, _ path: String, json: [UInt8]? = nil) {
        w.retried = false
        w.requestSent = now()
        do {
            if !w.conn.isOpen { try open(w) }
            do {
                try w.conn.start(method, path, json: json)
            } catch let error as HTTPConnection.Disconnected {
                try reconnect(w, error)
            }
            watch(w)
        } catch {
            fail(w, "\(error)")
        }
    }

    private func open(_ w: Worker) throws {
        try w.conn.connect()
        w.watchingWrite = false
        var e = epoll_event()
        e.events = UInt32(EPOLLIN.rawValue)
        e.data.u32 = UInt32(w.number)
        guard epoll_ctl(epfd, EPOLL_CTL_ADD, w.conn.fd, &e) == 0 else { throw LoadError("epoll_ctl: \(errnoText())") }
    }

    /// The kept-alive connection was gone: compute_boot.py's Client sends a GET once more on a
    /// fresh one, and fails anything else, since a POST that may have arrived must not be sent
    /// twice (it would boot a second server).
    private func reconnect(_ w: Worker, _ error: HTTPConnection.Disconnected) throws {
        let c = w.conn
        c.close()
        guard c.method == "GET", !w.retried else { throw LoadError("\(c.method) \(c.path): \(error.text)") }
        w.retried = true
        try open(w)
        do {
            try c.resend()
        } catch let again as HTTPConnection.Disconnected {
            throw LoadError("\(c.method) \(c.path): \(again.text)")
        }
    }

    /// Asks for EPOLLOUT only while part of a request is still unsent (rare: a request is
    /// well under a socket buffer).
    private func watch(_ w: Worker) {
        var e = epoll_event()
        e.events = UInt32(EPOLLIN.rawValue) | (w.conn.wantsWrite ? UInt32(EPOLLOUT.rawValue) : 0)
        e.data.u32 = UInt32(w.number)
        if w.conn.wantsWrite || w.watchingWrite {
            _ = epoll_ctl(epfd, EPOLL_CTL_MOD, w.conn.fd, &e)
            w.watchingWrite = w.conn.wantsWrite
        }
    }

    private func event(_ w: Worker, _ events: UInt32) {
        let c = w.conn
        guard c.isOpen else { return }
        do {
            switch w.phase {
            case .post, .get, .delete:
                if events & UInt32(EPOLLOUT.rawValue) != 0 && c.wantsWrite {
                    do { try c.writable() } catch let error as HTTPConnection.Disconnected { try reconnect(w, error) }
                    watch(w)
                }
                if events & UInt32(EPOLLIN.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 {
                    let complete: Bool
                    do {
                        complete = try c.readable()
                    } catch let error as HTTPConnection.Disconnected {
                        try reconnect(w, error)
                        watch(w)
                        return
                    }
                    if complete { try answered(w, at: now()) }
                }
            case .sleeping, .done:
                // Nothing is asked between requests: this is the server closing a kept-alive
                // connection. Close ours; the next request opens a fresh one.
                var byte: UInt8 = 0
                if recv(c.fd, &byte, 1, Int32(MSG_PEEK)) > 0 {
                    throw LoadError("the server sent data on \(w.path) between requests")
                }
                c.close()
            }
        } catch {
            fail(w, "\(error)")
        }
    }

    private func checkStalled(_ t: Double) {
        // http.client's timeout=120: a server that stops answering fails the run instead of hanging it.
        for w in workers where [.post, .get, .delete].contains(w.phase) && t - w.requestSent > 120 {
            fail(w, "\(w.conn.method) \(w.conn.path): no answer after 120 s")
        }
    }

    /// Like one of compute_boot.py's threads failing: its error is kept, no new cycle starts,
    /// and the other workers finish the cycle they are in.
    private func fail(_ w: Worker, _ message: String) {
        errors.append(message)
        stopping = true
        finish(w)
    }

    private func finish(_ w: Worker) {
        guard !w.finished else { return }
        w.finished = true
        w.phase = .done
        w.conn.close()  // which also takes it out of the epoll set
        running -= 1
    }
}
