import Foundation

/// How QEMU executes guest code.
public enum Acceleration: String, Sendable, Equatable, Codable {
    /// Hardware virtualization through /dev/kvm.
    case kvm
    /// QEMU's software translator: slower, works everywhere.
    case tcg
}

/// Decides once, at driver start, whether KVM really runs guests here.
///
/// `/dev/kvm` existing (or `query-kvm` saying enabled) is not enough: on some hosts (nested,
/// PVM-style kernels) QEMU aborts setting up the host CPU model, or a guest hangs. So the probe
/// boots a real guest with the same accelerator and CPU arguments guests get: a 512-byte boot
/// sector that enters 64-bit long mode, runs code above 1 MiB and prints a line on the serial
/// port. If that line arrives within the timeout, KVM is used; otherwise TCG.
///
/// Limits: the probe proves that QEMU, the firmware, the CPU model and long mode work under
/// KVM, not that every guest kernel boots. On this project's development machines `-cpu host`
/// makes QEMU abort (an MSR assertion), which the probe catches; a standard Linux kernel also
/// hangs there with the default CPU model, which a boot sector would not show.
enum AccelerationProbe {
    /// The line the probe guest prints once it runs 64-bit code.
    static let banner = "NIMBUS-PROBE long mode"

    /// The probe's boot sector (source: contrib/qemu-boot-sectors/probe.S): real mode →
    /// identity-mapped page tables → long mode → copies its printing tail to 1 MiB and jumps
    /// there → prints `banner` on COM1 → halts.
    static let bootCode: [UInt8] = hexBytes("""
        fa31c08ed88ec08ed0bc007cbf0010b90018f3ab66c70600100320000066c70600200330000066c70600308300000066
        0f0116b87c0f20e06683c8200f22e066b8001000000f22d866b9800000c00f32660d000100000f300f20c0660d010000
        800f22c066ea6c7c00000800488d351900000048c7c70000100048c7c14b000000f3a448c7c000001000ffe0488d352b
        00000066baf803ac84c07403eeebf8faf4ebfc8d742600900000000000000000ffff0000009aaf000f00a87c00004e49
        4d4255532d50524f4245206c6f6e67206d6f64650d0a
        """)

    /// Boots the probe under KVM and returns `.kvm` if it reaches long mode within `timeout`,
    /// else `.tcg` (also when /dev/kvm is missing). Leaves no process or file behind.
    static func run(qemu: String, scratchDirectory: String, timeout: Duration) async -> Acceleration {
        guard FileManager.default.fileExists(atPath: "/dev/kvm") else { return .tcg }
        let directory = (scratchDirectory as NSString).appendingPathComponent("_probe-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let disk = (directory as NSString).appendingPathComponent("probe.img")
            let console = (directory as NSString).appendingPathComponent("console.log")
            let pidFile = (directory as NSString).appendingPathComponent("qemu.pid")
            try Data(bootDisk(bootCode)).write(to: URL(fileURLWithPath: disk))
            let arguments = ["-name", "nimbus-kvm-probe", "-machine", "q35"]
                + QEMUCommandLine.accelerationArguments(.kvm, tcgTranslationCacheMB: 0)
                + ["-m", "32", "-nodefaults", "-no-user-config",
                             "-display", "none", "-drive", "file=\(disk),format=raw,if=none,id=probe,readonly=on",
                             "-device", "virtio-blk-pci,drive=probe,bootindex=1",
                             "-chardev", "file,id=serial0,path=\(console)", "-device", "isa-serial,chardev=serial0",
                             "-daemonize", "-pidfile", pidFile]
            guard try await ProcessCommand.run(qemu, arguments).status == 0 else { return .tcg }
            // Killed by pid only while that pid is still the probe (its pidfile is an argument).
            defer {
                if let pid = GuestProcess.readPID(pidFile), GuestProcess.isQEMU(pid: pid, argument: pidFile) { kill(pid, SIGKILL) }
            }
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if let log = try? String(contentsOfFile: console, encoding: .utf8), log.contains(banner) { return .kvm }
                try await Task.sleep(for: .milliseconds(100))
            }
            return .tcg
        } catch {
            return .tcg
        }
    }

    /// A 1 MiB raw disk whose first sector is `code` with the boot signature (SeaBIOS does not
    /// boot from a disk smaller than that reliably: it reports the disk unreadable).
    static func bootDisk(_ code: [UInt8]) -> [UInt8] {
        precondition(code.count <= 510, "boot code must fit in one sector")
        var disk = code + [UInt8](repeating: 0, count: 510 - code.count) + [0x55, 0xAA]
        disk += [UInt8](repeating: 0, count: 1 << 20 - disk.count)
        return disk
    }
}

/// Bytes from a hex string (whitespace ignored); for the boot sectors embedded above.
func hexBytes(_ hex: String) -> [UInt8] {
    let digits = hex.unicodeScalars.compactMap { UInt8(String($0), radix: 16) }
    return stride(from: 0, to: digits.count - 1, by: 2).map { digits[$0] << 4 | digits[$0 + 1] }
}
