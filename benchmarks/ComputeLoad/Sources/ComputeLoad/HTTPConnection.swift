import Glibc

/// A failure that invalidates the run; `description` is what the benchmark prints.
struct LoadError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Where to connect, resolved once: every connection goes to the same address.
struct Endpoint {
    let hostHeader: String
    let prefix: String
    let family: Int32
    let address: sockaddr_storage
    let addressLength: socklen_t

    /// `http://HOST[:PORT][/PREFIX]`; only plain HTTP, which is all `nimbus up` serves here.
    init(base: String) throws {
        guard base.hasPrefix("http://") else { throw LoadError("--base must be an http:// URL, got \(base)") }
        var rest = Substring(base.dropFirst("http://".count))
        var path = ""
        if let slash = rest.firstIndex(of: "/") {
            path = String(rest[slash...])
            rest = rest[..<slash]
        }
        while path.hasSuffix("/") { path.removeLast() }
        var host = String(rest)
        var port = "80"
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {  // [v6]:port
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") { port = String(after.dropFirst()) }
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":") {
            port = String(host[host.index(after: colon)...])
            host = String(host[..<colon])
        }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, port, &hints, &found)
        guard rc == 0, let first = found else {
            throw LoadError("cannot resolve \(host):\(port): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(found) }
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { dst in
            dst.copyMemory(from: UnsafeRawBufferPointer(start: first.pointee.ai_addr, count: Int(first.pointee.ai_addrlen)))
        }
        self.hostHeader = String(rest)
        self.prefix = path
        self.family = first.pointee.ai_family
        self.address = storage
        self.addressLength = first.pointee.ai_addrlen
    }
}

/// One keep-alive HTTP/1.1 connection on a non-blocking socket, driven by the event loop:
/// `start` writes a request, `readable` is called when the socket has data and says whether
/// the answer is complete. One request at a time, no pipelining.
final class HTTPConnection {
    let endpoint: Endpoint
    /// Sent with every request, in http.client's order after Host and Accept-Encoding.
    private let fixedHeaders: [UInt8]
    private(set) var fd: Int32 = -1
    private var out: [UInt8] = []
    private var sent = 0
    private var inbuf: UnsafeMutableRawBufferPointer
    private var filled = 0
    private var closeAfter = false
    /// The last answer's body (de-chunked); valid until the next request.
    private(set) var body: [UInt8] = []
    private(set) var status = 0
    /// The request in flight, to send again on a fresh connection (see `retryable`).
    private(set) var method = ""
    private(set) var path = ""

    init(endpoint: Endpoint, token: String, microversion: String) {
        self.endpoint = endpoint
        self.fixedHeaders = Array(("Accept: application/json\r\nX-Auth-Token: \(token)\r\n"
            + "OpenStack-API-Version: compute \(microversion)\r\n").utf8)
        self.inbuf = .allocate(byteCount: 1 << 16, alignment: 16)
        out.reserveCapacity(1024)
        body.reserveCapacity(1 << 14)
    }

    deinit {
        close()
        inbuf.deallocate()
    }

    var isOpen: Bool { fd >= 0 }
    /// Whether part of the request is still to be written (the loop then waits for EPOLLOUT).
    var wantsWrite: Bool { sent < out.count }

    func close() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
        filled = 0
    }

    /// A blocking connect, then non-blocking from there on: on loopback it returns at once,
    /// and it only happens for a worker's first request or after the server closed.
    func connect() throws {
        close()
        let s = socket(endpoint.family, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw LoadError("socket: \(errnoText())") }
        var one: Int32 = 1
        _ = setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = endpoint.address
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(s, $0, endpoint.addressLength) }
        }
        guard rc == 0 else {
            let text = errnoText()
            _ = Glibc.close(s)
            throw LoadError("connect to \(endpoint.hostHeader): \(text)")
        }
        _ = fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK)
        fd = s
    }

    /// Builds the request and writes as much of it as the socket takes.
    func start(_ method: String, _ path: String, json: [UInt8]? = nil) throws {
        self.method = method
        self.path = path
        out.removeAll(keepingCapacity: true)
        out.append(contentsOf: method.utf8)
        out.append(0x20)
        out.append(contentsOf: endpoint.prefix.utf8)
        out.append(contentsOf: path.utf8)
        out.append(contentsOf: " HTTP/1.1\r\nHost: ".utf8)
        out.append(contentsOf: endpoint.hostHeader.utf8)
        out.append(contentsOf: "\r\nAccept-Encoding: identity\r\n".utf8)
        if let json {
            out.append(contentsOf: "Content-Length: \(json.count)\r\n".utf8)
        }
        out.append(contentsOf: fixedHeaders)
        if let json {
            out.append(contentsOf: "Content-Type: application/json\r\n\r\n".utf8)
            out.append(contentsOf: json)
        } else {
            out.append(contentsOf: "\r\n".utf8)
        }
        try resend()
    }

    /// Writes the current request from its start (after a reconnect, or the first time).
    func resend() throws {
        sent = 0
        filled = 0
        closeAfter = false
        try writable()
    }

    /// Writes what the socket takes of the rest of the request.
    func writable() throws {
        try out.withUnsafeBytes { bytes in
            while sent < bytes.count {
                let n = send(fd, bytes.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL))
                if n < 0 {
                    if errno == EINTR { continue }
                    if errno == EAGAIN || errno == EWOULDBLOCK { return }
                    if errno == EPIPE || errno == ECONNRESET { throw Disconnected(text: errnoText()) }
                    throw LoadError("\(method) \(path): send: \(errnoText())")
                }
                sent += n
            }
        }
    }

    /// The connection went away under a request before any of the answer came (http.client's
    /// RemoteDisconnected, BrokenPipeError, ConnectionResetError): what a GET is retried for.
    struct Disconnected: Error { let text: String }

    /// Reads what has arrived; true once the whole answer is in (`status`, `body`).
    func readable() throws -> Bool {
        var eof = false
        while true {
            if filled == inbuf.count {  // an answer larger than the buffer: grow it
                let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: inbuf.count * 2, alignment: 16)
                bigger.baseAddress!.copyMemory(from: inbuf.baseAddress!, byteCount: filled)
                inbuf.deallocate()
                inbuf = bigger
            }
            let n = recv(fd, inbuf.baseAddress! + filled, inbuf.count - filled, 0)
            if n > 0 {
                filled += n
                if filled < inbuf.count { break }  // drained what was there
                continue
            }
            if n == 0 {
                eof = true
                break
            }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { break }
            if errno == ECONNRESET && filled == 0 { throw Disconnected(text: errnoText()) }
            throw LoadError("\(method) \(path): recv: \(errnoText())")
        }
        if eof && filled == 0 { throw Disconnected(text: "the server closed the connection without an answer") }
        guard try parse(eof: eof) else {
            if eof { throw LoadError("\(method) \(path): the connection closed inside the answer") }
            return false
        }
        if closeAfter || eof { close() }
        filled = 0
        return true
    }

    /// Whether `inbuf[0..<filled]` holds a whole answer; if so, sets `status` and `body`.
    /// Called again from the start after each read: an answer is a few KiB and nearly always
    /// arrives in one.
    private func parse(eof: Bool) throws -> Bool {
        let b = UnsafeRawBufferPointer(start: inbuf.baseAddress!, count: filled)
        guard let statusEnd = lineEnd(b, 0) else { return false }
        guard statusEnd >= 14, b[0] == 0x48, b[8] == 0x20,
              let code = Int(ascii(b, 9, 12)) else {
            throw LoadError("\(method) \(path): malformed status line: \(ascii(b, 0, statusEnd - 2))")
        }
        var contentLength = -1
        var chunked = false
        var connectionClose = false
        var at = statusEnd
        while true {
            guard let end = lineEnd(b, at) else { return false }
            if end - at == 2 {
                at = end
                break
            }
            if let value = headerValue(b, at, end, "content-length") {
                guard let n = Int(value), n >= 0 else { throw LoadError("\(method) \(path): bad Content-Length \(value)") }
                contentLength = n
            } else if let value = headerValue(b, at, end, "transfer-encoding") {
                chunked = value.lowercased().contains("chunked")
            } else if let value = headerValue(b, at, end, "connection") {
                connectionClose = value.lowercased() == "close"
            }
            at = end
        }
        body.removeAll(keepingCapacity: true)
        if code == 204 || code == 304 || (100..<200).contains(code) {
            // no body
        } else if chunked {
            while true {
                guard let end = lineEnd(b, at) else { return false }
                var size = 0
                var i = at
                while i < end - 2, let digit = hexValue(b[i]) {
                    size = size * 16 + digit
                    i += 1
                }
                at = end
                if size == 0 {
                    while true {  // trailers, then the empty line
                        guard let line = lineEnd(b, at) else { return false }
                        let empty = line - at == 2
                        at = line
                        if empty { break }
                    }
                    break
                }
                guard at + size + 2 <= b.count else { return false }
                body.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[at..<at + size]))
                at += size + 2
            }
        } else if contentLength >= 0 {
            guard at + contentLength <= b.count else { return false }
            body.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[at..<at + contentLength]))
        } else {
            // Neither length nor chunks: the body runs to the end of the connection.
            guard eof else { return false }
            body.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[at...]))
            connectionClose = true
        }
        status = code
        closeAfter = connectionClose
        return true
    }

    /// The offset just past the CRLF that ends the line at `from`; nil if not all here yet.
    private func lineEnd(_ b: UnsafeRawBufferPointer, _ from: Int) -> Int? {
        var i = from
        while i + 1 < b.count {
            if b[i] == 0x0D && b[i + 1] == 0x0A { return i + 2 }
            i += 1
        }
        return nil
    }

    private func hexValue(_ c: UInt8) -> Int? {
        switch c {
        case 0x30...0x39: Int(c - 0x30)
        case 0x41...0x46: Int(c - 0x41 + 10)
        case 0x61...0x66: Int(c - 0x61 + 10)
        default: nil
        }
    }

    /// The trimmed value if the header line [from, end) is `name` (lower case, ASCII).
    private func headerValue(_ b: UnsafeRawBufferPointer, _ from: Int, _ end: Int, _ name: StaticString) -> String? {
        let n = name.utf8CodeUnitCount
        guard end - from > n, b[from + n] == 0x3A else { return nil }  // ':'
        let want = name.utf8Start
        for i in 0..<n where b[from + i] | 0x20 != want[i] { return nil }
        var start = from + n + 1
        var stop = end - 2
        while start < stop && (b[start] == 0x20 || b[start] == 0x09) { start += 1 }
        while stop > start && (b[stop - 1] == 0x20 || b[stop - 1] == 0x09) { stop -= 1 }
        return ascii(b, start, stop)
    }

    private func ascii(_ b: UnsafeRawBufferPointer, _ from: Int, _ end: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: b[from..<max(from, end)]), as: UTF8.self)
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }
