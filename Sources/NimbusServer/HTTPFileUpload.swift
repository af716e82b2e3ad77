import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NimbusCore

/// One HTTP/1.1 request whose body is a file, sent over plain TCP from a blocking socket on a
/// Dispatch worker: how `nimbus agent` uploads a snapshot. URLSession on Linux drives libcurl
/// through Dispatch sources, and sending 1 GiB that way took 14–27 s of the agent's CPU on the
/// machine BENCHMARKS.md was measured on, most of it threads handing each 64 KiB piece to one
/// another; here the file is read 1 MiB at a time into one buffer and written to the socket,
/// which costs the kernel's copies and little else. Only `http` URLs are sent this way (nil
/// for any other scheme: the caller uses URLSession, which speaks TLS); proxies are not used.
enum HTTPFileUpload {
    struct Response {
        var status: Int
        /// The body as sent (de-chunked): only read for error messages.
        var body: [UInt8]
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
        static func errno(_ what: String) -> Failure { Failure("\(what): \(String(cString: strerror(Glibc.errno)))") }
    }

    static let chunkSize = 1 << 20

    /// Sends `method url` with `headers`, `Content-Length` and `Connection: close`, and the
    /// file's bytes as the body; the response. Waits at most `timeout` for any one write or
    /// read. A server that answers before it has read the whole body (a refusal) has its answer
    /// returned, not the failed write.
    static func send(_ method: String, to url: URL, headers: [(String, String)], file path: String,
                     timeout: Duration) async throws -> Response? {
        guard url.scheme?.lowercased() == "http", let components = URLComponents(url: url, resolvingAgainstBaseURL: false),
              let host = components.host, !host.isEmpty else { return nil }
        let port = components.port ?? 80
        let target = (components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath)
            + (components.percentEncodedQuery.map { "?" + $0 } ?? "")
        return try await offload {
            let file = open(path, O_RDONLY | O_CLOEXEC)
            guard file >= 0 else { throw Failure.errno("cannot open \(path)") }
            defer { close(file) }
            var info = stat()
            guard fstat(file, &info) == 0 else { throw Failure.errno("cannot stat \(path)") }
            let length = Int64(info.st_size)

            let socket = try connect(host: host, port: port, timeout: timeout)
            defer { close(socket) }
            let hostHeader = (host.contains(":") ? "[\(host)]" : host) + (components.port.map { ":\($0)" } ?? "")
            var head = "\(method) \(target) HTTP/1.1\r\nHost: \(hostHeader)\r\nContent-Length: \(length)\r\nConnection: close\r\n"
            for (name, value) in headers { head += "\(name): \(value)\r\n" }
            head += "\r\n"
            var sendError: Failure?
            do {
                try Array(head.utf8).withUnsafeBytes { try sendAll(socket, $0) }
                try sendBody(from: file, length: length, to: socket)
            } catch let error as Failure {
                sendError = error
            }
            do {
                return try readResponse(socket)
            } catch {
                throw sendError ?? error
            }
        }
    }

    private static func connect(host: String, port: Int, timeout: Duration) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &list)
        guard resolved == 0 else { throw Failure("cannot resolve \(host): \(String(cString: gai_strerror(resolved)))") }
        defer { freeaddrinfo(list) }
        var lastError = Failure("cannot connect to \(host):\(port)")
        var entry = list
        while let address = entry?.pointee {
            entry = address.ai_next
            let socket = Glibc.socket(address.ai_family, address.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), address.ai_protocol)
            guard socket >= 0 else { lastError = Failure.errno("socket"); continue }
            var limit = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
            setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            if Glibc.connect(socket, address.ai_addr, address.ai_addrlen) == 0 { return socket }
            lastError = Failure.errno("cannot connect to \(host):\(port)")
            close(socket)
        }
        throw lastError
    }

    /// Writes all of `bytes`; MSG_NOSIGNAL, so a peer that closed gives EPIPE, not SIGPIPE.
    private static func sendAll(_ socket: Int32, _ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.send(socket, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure.errno("sending the request")
            }
            offset += n
        }
    }

    private static func sendBody(from file: Int32, length: Int64, to socket: Int32) throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 4096)
        defer { buffer.deallocate() }
        var sent: Int64 = 0
        while sent < length {
            let n = read(file, buffer.baseAddress, Int(min(Int64(chunkSize), length - sent)))
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure.errno("reading the file")
            }
            guard n > 0 else { throw Failure("the file shrank while it was sent") }
            try sendAll(socket, UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            sent += Int64(n)
        }
    }

    /// Reads the response past any interim 1xx one: its header, then its body by
    /// `Content-Length`, or else to the end of the connection, which the request asked the
    /// server to close.
    private static func readResponse(_ socket: Int32) throws -> Response {
        var received: [UInt8] = []
        var closed = false
        /// Reads more; false at the end of the connection.
        func more() throws -> Bool {
            guard !closed else { return false }
            var chunk = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let n = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
                if n > 0 {
                    received += chunk[0..<n]
                    return true
                }
                if n < 0 && errno == EINTR { continue }
                // A reset after (part of) the response: what arrived is the answer.
                if n < 0 && received.isEmpty { throw Failure.errno("reading the response") }
                closed = true
                return false
            }
        }
        var start = 0
        while true {
            var headerEnd = received[start...].firstRange(of: [13, 10, 13, 10])
            while headerEnd == nil {
                guard try more() else { throw Failure("the response ended inside its header") }
                headerEnd = received[start...].firstRange(of: [13, 10, 13, 10])
            }
            let lines = String(decoding: received[start..<headerEnd!.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
            let statusParts = lines[0].split(separator: " ", maxSplits: 2)
            guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else {
                throw Failure("not an HTTP response: \(lines[0])")
            }
            start = headerEnd!.upperBound
            if (100..<200).contains(status) { continue }
            var fields: [String: String] = [:]
            for line in lines.dropFirst() {
                let field = line.split(separator: ":", maxSplits: 1)
                if field.count == 2 { fields[field[0].trimmingCharacters(in: .whitespaces).lowercased()] = field[1].trimmingCharacters(in: .whitespaces) }
            }
            if status == 204 || status == 304 { return Response(status: status, body: []) }
            if fields["transfer-encoding"]?.lowercased().contains("chunked") == true {
                while try more() {}
                return Response(status: status, body: dechunked(received[start...]))
            }
            if let length = fields["content-length"].flatMap({ Int($0) }) {
                while received.count - start < length {
                    guard try more() else { break }
                }
                return Response(status: status, body: Array(received[start..<min(received.count, start + length)]))
            }
            while try more() {}
            return Response(status: status, body: Array(received[start...]))
        }
    }

    /// A chunked body's data (as much of it as is well formed).
    private static func dechunked(_ body: ArraySlice<UInt8>) -> [UInt8] {
        var data: [UInt8] = []
        var rest = body
        while let lineEnd = rest.firstRange(of: [13, 10]) {
            let sizeField = String(decoding: rest[..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeField.trimmingCharacters(in: .whitespaces), radix: 16), size > 0,
                  rest.distance(from: lineEnd.upperBound, to: rest.endIndex) >= size else { break }
            let start = lineEnd.upperBound
            data += rest[start..<rest.index(start, offsetBy: size)]
            rest = rest[rest.index(start, offsetBy: size)...].dropFirst(2)
        }
        return data
    }
}
