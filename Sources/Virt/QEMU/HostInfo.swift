import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What the host has, read from the kernel (/proc, statvfs) and from QEMU itself.
enum HostInfo {
    /// Online logical CPUs.
    static func cpuCount() -> Int64 { Int64(ProcessInfo.processInfo.activeProcessorCount) }

    /// `MemTotal` from /proc/meminfo, in MiB.
    static func memoryMB() -> Int64 {
        let meminfo = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
        for line in meminfo.split(separator: "\n") where line.hasPrefix("MemTotal:") {
            let kib = line.split(separator: " ").dropFirst().first.flatMap { Int64($0) } ?? 0
            return kib / 1024
        }
        return 0
    }

    /// Size of the filesystem holding `path`, in GiB (rounded down).
    static func diskGB(at path: String) -> Int64 {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else { return 0 }
        return (Int64(stats.f_blocks) * Int64(stats.f_frsize)) >> 30
    }

    /// Nova's integer version from `qemu-system-x86_64 --version` ("QEMU emulator version
    /// 7.2.0 …" → 7002000), or nil if the text has no version.
    static func parseVersion(_ text: String) -> Int64? {
        guard let range = text.range(of: #"version (\d+)\.(\d+)(?:\.(\d+))?"#, options: .regularExpression) else { return nil }
        let parts = text[range].dropFirst("version ".count).split(separator: ".").compactMap { Int64($0) }
        guard parts.count >= 2 else { return nil }
        return parts[0] * 1_000_000 + parts[1] * 1_000 + (parts.count > 2 ? parts[2] : 0)
    }

    /// Nova-style `cpu_info`: arch, model, vendor and topology, from uname and /proc/cpuinfo.
    static func cpuInfo() -> [String: String] {
        var name = utsname()
        uname(&name)
        let arch = withUnsafeBytes(of: &name.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        var fields: [String: String] = [:]
        var sockets = Set<String>()
        for line in cpuinfo.split(separator: "\n") {
            let pair = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2 else { continue }
            if pair[0] == "physical id" { sockets.insert(pair[1]) }
            if fields[pair[0]] == nil { fields[pair[0]] = pair[1] }
        }
        let logical = Int(cpuCount())
        let socketCount = max(sockets.count, 1)
        let coresPerSocket = Int(fields["cpu cores"] ?? "") ?? max(logical / socketCount, 1)
        let threads = max(logical / max(socketCount * coresPerSocket, 1), 1)
        return [
            "arch": arch,
            "model": fields["model name"] ?? "unknown",
            "vendor": fields["vendor_id"] ?? "unknown",
            "topology.sockets": String(socketCount),
            "topology.cores": String(coresPerSocket),
            "topology.threads": String(threads),
        ]
    }
}
