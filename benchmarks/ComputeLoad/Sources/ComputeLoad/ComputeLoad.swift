/// The compute benchmark's boot-and-delete load, in Swift: what compute_boot.py's
/// `boot_and_delete` does, for a fraction of its CPU.
///
/// The benchmark shares two cores between `nimbus up` and its client, and the Python client
/// spent about 2.5 ms of CPU per cycle: at the rates being measured, much of a core taken
/// from the server. Here --concurrency workers, each with one keep-alive connection, run
/// cycles until --cycles have been taken:
///
///   POST   {base}/compute/v2.1/servers         {"server": {"name": "bench-LABEL-I", "imageRef",
///                                               "flavorRef", "networks": "none"}}, expects 202
///   GET    {base}/compute/v2.1/servers/{id}    until "status" is ACTIVE, waiting --poll-ms
///                                               after each answer; anything but BUILD/ACTIVE fails
///   DELETE {base}/compute/v2.1/servers/{id}    expects 204
///
/// with compute_boot.py's headers (Accept, X-Auth-Token, `OpenStack-API-Version: compute
/// MICROVERSION`, Content-Type on the POST) and its measurement points, on CLOCK_MONOTONIC
/// like Python's perf_counter. Any other status, a server in ERROR (with its fault) or one
/// still building after --boot-timeout seconds stops the run: the other workers finish the
/// cycle they are in, the message goes to stderr and into --output as {"error": ...}, and the
/// exit status is 1. Otherwise --output gets {"cycles", "seconds", "per_second", "records"} with
/// compute_boot.py's record fields, which its reporting reads as if it had run the cycles.
///
/// The workers share one thread and an epoll set (see Load); Linux only.
import Glibc

struct Options {
    var base = ""
    var token = ""
    var image = ""
    var flavor = ""
    var microversion = "2.90"
    var concurrency = 50
    var cycles = 0
    var pollMs = 20.0
    var bootTimeout = 120.0
    var label = "run"
    var output = ""

    static let usage = """
        usage: ComputeLoad --base URL --token TOKEN --image ID --flavor ID --cycles N --output PATH
                           [--microversion 2.90] [--concurrency 50] [--poll-ms 20]
                           [--boot-timeout 120] [--label run]
        """

    static func parse(_ arguments: [String]) throws -> Options {
        var o = Options()
        var rest = arguments[...]
        func value(_ flag: String) throws -> String {
            guard let v = rest.popFirst() else { throw LoadError("\(flag) needs a value\n\(usage)") }
            return v
        }
        func number<T: LosslessStringConvertible>(_ flag: String) throws -> T {
            let text = try value(flag)
            guard let v = T(text) else { throw LoadError("\(flag): not a number: \(text)") }
            return v
        }
        while let flag = rest.popFirst() {
            switch flag {
            case "--base": o.base = try value(flag)
            case "--token": o.token = try value(flag)
            case "--image": o.image = try value(flag)
            case "--flavor": o.flavor = try value(flag)
            case "--microversion": o.microversion = try value(flag)
            case "--concurrency": o.concurrency = try number(flag)
            case "--cycles": o.cycles = try number(flag)
            case "--poll-ms": o.pollMs = try number(flag)
            case "--boot-timeout": o.bootTimeout = try number(flag)
            case "--label": o.label = try value(flag)
            case "--output": o.output = try value(flag)
            case "-h", "--help":
                print(usage)
                exit(0)
            default: throw LoadError("unknown argument \(flag)\n\(usage)")
            }
        }
        for (flag, v) in [("--base", o.base), ("--token", o.token), ("--image", o.image),
                          ("--flavor", o.flavor), ("--output", o.output)] where v.isEmpty {
            throw LoadError("\(flag) is required\n\(usage)")
        }
        guard o.cycles > 0, o.concurrency > 0 else { throw LoadError("--cycles and --concurrency must be positive") }
        return o
    }
}

/// One server's timings, as compute_boot.py records them (seconds).
struct Record {
    var id: String
    var host: String?
    var start: Double
    var end: Double
    var post: Double
    var toActive: Double
    var delete: Double
    var cycle: Double
    var polls: Int
    var getMean: Double
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// compute_boot.py's log(): "[HH:MM:SS] message" on stderr.
func log(_ message: String) {
    var t = time(nil)
    var parts = tm()
    localtime_r(&t, &parts)
    var stamp = [CChar](repeating: 0, count: 16)
    strftime(&stamp, stamp.count, "%H:%M:%S", &parts)
    let hhmmss = String(decoding: stamp.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    printError("[\(hhmmss)] \(message)")
}

/// One write(2) per line, unbuffered: progress shows as the run goes, between the parent's lines.
func printError(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

/// Python's str() of a value compute_boot.py puts in a message (None for missing or null).
func pythonText(_ value: JSONValue?) -> String {
    switch value {
    case .string(let s): s
    case .number(let n): n == n.rounded() && abs(n) < 1e15 ? String(Int(n)) : String(n)
    case .bool(let b): b ? "True" : "False"
    case .none, .null: "None"
    default: "\(value!)"
    }
}

/// compute_boot.py's fault_of().
func faultText(_ serverID: String, _ server: [String: JSONValue]) -> String {
    let fault = server["fault"]
    var text = fault?["message"]?.string ?? ""
    if text.isEmpty { text = "(no fault)" }
    if let details = fault?["details"]?.string, !details.isEmpty, details != text { text += " — \(details)" }
    return "server \(serverID) (\(pythonText(server["name"]))) went to \(pythonText(server["status"])) "
        + "on host \(pythonText(server["OS-EXT-SRV-ATTR:host"])): \(text)"
}

func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

func writeFile(_ path: String, _ text: String) throws {
    guard let f = fopen(path, "w") else { throw LoadError("cannot write \(path): \(errnoText())") }
    defer { fclose(f) }
    guard fputs(text, f) >= 0 else { throw LoadError("cannot write \(path): \(errnoText())") }
}

func output(_ records: [Record], seconds: Double) -> String {
    var s = "{\"cycles\": \(records.count), \"seconds\": \(seconds), \"per_second\": \(Double(records.count) / seconds),\n\"records\": ["
    s.reserveCapacity(records.count * 260)
    for (n, r) in records.enumerated() {
        s += n == 0 ? "\n" : ",\n"
        s += "{\"id\": \(jsonString(r.id)), \"host\": \(r.host.map(jsonString) ?? "null"), "
        s += "\"start\": \(r.start), \"end\": \(r.end), \"post\": \(r.post), \"to_active\": \(r.toActive), "
        s += "\"delete\": \(r.delete), \"cycle\": \(r.cycle), \"polls\": \(r.polls), \"get_mean\": \(r.getMean)}"
    }
    return s + "\n]}\n"
}

@main
struct ComputeLoad {
    static func main() {
        let options: Options
        do {
            options = try Options.parse(Array(CommandLine.arguments.dropFirst()))
        } catch {
            printError("ComputeLoad: \(error)")
            exit(2)
        }
        do {
            try run(options)
        } catch {
            printError("ComputeLoad: \(error)")
            try? writeFile(options.output, "{\"error\": \(jsonString("\(error)"))}\n")
            exit(1)
        }
    }

    static func run(_ o: Options) throws {
        let load = try Load(o, endpoint: Endpoint(base: o.base))
        let seconds = load.run()
        if let first = load.errors.first {
            let more = load.errors.count - 1
            throw LoadError(first + (more > 0 ? " (and \(more) more failure\(more == 1 ? "" : "s"))" : ""))
        }
        try writeFile(o.output, output(load.records, seconds: seconds))
    }
}
