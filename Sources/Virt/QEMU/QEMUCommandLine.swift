import Foundation

/// Everything that decides a guest's QEMU command line.
public struct QEMULaunch: Sendable, Equatable {
    public var guest: GuestSpec
    public var paths: GuestPaths
    public var acceleration: Acceleration
    /// TCG's translation cache in MiB (`tb-size`); QEMU's default is far larger than a small
    /// guest needs and shows up in every guest's resident memory.
    public var tcgTranslationCacheMB: Int
    /// Cached kernel and ramdisk when the image names them (UEC-style boot).
    public var kernel: String?
    public var ramdisk: String?
    /// Start by loading this saved state (resume from suspend) instead of booting.
    public var incomingState: String?
    /// Start waiting for a live migration's stream (`-incoming defer`): where it listens is set
    /// over QMP (`migrate-incoming`) once the ports are chosen.
    public var deferredIncoming: Bool
    /// Rescue mode: boot from this disk, with the guest's own root disk as the second disk
    /// (no ephemeral or swap disk).
    public var rescueDisk: String?
    /// The host address the guest's VNC server listens on (`[vnc] server_listen`); QEMU takes
    /// the first free port from 5900 up.
    public var vncListen: String

    public init(guest: GuestSpec, paths: GuestPaths, acceleration: Acceleration, tcgTranslationCacheMB: Int = 32,
                kernel: String? = nil, ramdisk: String? = nil, incomingState: String? = nil, deferredIncoming: Bool = false,
                rescueDisk: String? = nil, vncListen: String = "127.0.0.1") {
        (self.guest, self.paths, self.acceleration, self.tcgTranslationCacheMB) = (guest, paths, acceleration, tcgTranslationCacheMB)
        (self.kernel, self.ramdisk, self.incomingState, self.rescueDisk, self.vncListen) = (kernel, ramdisk, incomingState, rescueDisk, vncListen)
        self.deferredIncoming = deferredIncoming
    }
}

/// Builds a guest's `qemu-system-x86_64` arguments. Pure: no file or process is touched, so it
/// is tested without QEMU. Choices (see docs/qemu-driver.md):
/// - `q35` unless the image's `hw_machine_type` says otherwise: PCIe and an AHCI controller for
///   the CD-ROM, the machine libvirt and current Nova default to for new x86 guests.
/// - `-daemonize -pidfile`: QEMU outlives the agent, as under libvirt.
/// - `-nodefaults -no-user-config`: only the devices listed here, whatever the host's config.
/// - disks through `-drive if=none` + `-device`, so the bus comes from `hw_disk_bus`.
/// - the serial console on a unix socket a console proxy can attach to, with `logfile=` so
///   the log is complete whether or not anyone reads the socket (an attached client that does
///   not read would stall the guest's UART; an absent one does not).
/// - VNC on TCP at the host's `[vnc] server_listen` address, on the first free port of libvirt's
///   range (`to=`): the controller's console proxy connects to it, also from another machine,
///   and QEMU, not the driver, settles which port is free (`query-vnc` says which it took).
public enum QEMUCommandLine {
    /// VNC displays are ports from 5900 (display 0); libvirt's autoport range ends at 65535.
    static let vncPorts = 5900...65535
    /// The bus for the root, ephemeral and swap disks (`hw_disk_bus`).
    enum DiskBus: String { case virtio, scsi, sata, ide }

    public static func arguments(_ launch: QEMULaunch) throws -> [String] {
        let guest = launch.guest
        let paths = launch.paths
        let properties = guest.image.properties
        let machine = properties["hw_machine_type"] ?? "q35"
        let isQ35 = machine.contains("q35")
        guard let bus = DiskBus(rawValue: properties["hw_disk_bus"] ?? "virtio") else {
            throw VirtError.failed("unsupported hw_disk_bus \(properties["hw_disk_bus"] ?? "")")
        }
        let nicModel = properties["hw_vif_model"] ?? "virtio"
        guard nicModel == "virtio" || nicModel == "e1000" else { throw VirtError.failed("unsupported hw_vif_model \(nicModel)") }

        var args = [
            "-name", "guest=\(guest.uuid),debug-threads=on",
            "-uuid", guest.uuid,
            "-machine", "\(machine),usb=off",
        ]
        args += accelerationArguments(launch.acceleration, tcgTranslationCacheMB: launch.tcgTranslationCacheMB)
        args += [
            "-m", "\(guest.memoryMB)",
            "-smp", "\(guest.vcpus)",
            "-nodefaults", "-no-user-config",
            // What cloud-init reads to recognise an OpenStack guest.
            "-smbios", "type=1,manufacturer=Nimbus,product=OpenStack Nova,serial=\(guest.uuid),uuid=\(guest.uuid)",
            "-rtc", "base=utc",
            "-boot", "strict=on",
            "-msg", "timestamp=on",
        ]

        // Disks. AHCI (q35) has one bus per port, ide.0…ide.5; PIIX (pc) has two buses of two units.
        var idePort = 0
        func ideAddress() -> String {
            defer { idePort += 1 }
            return isQ35 ? "bus=ide.\(idePort)" : "bus=ide.\(idePort / 2),unit=\(idePort % 2)"
        }
        var scsiController = false
        func disk(_ id: String, file: String, format: String, boot: Bool) {
            args += ["-drive", "file=\(escaped(file)),format=\(format),if=none,id=\(id),discard=unmap"]
            let bootIndex = boot ? ",bootindex=1" : ""
            switch bus {
            case .virtio:
                args += ["-device", "virtio-blk-pci,drive=\(id),id=\(id)-dev\(bootIndex)"]
            case .scsi:
                if !scsiController { args += ["-device", "virtio-scsi-pci,id=scsi0"]; scsiController = true }
                args += ["-device", "scsi-hd,bus=scsi0.0,drive=\(id),id=\(id)-dev\(bootIndex)"]
            case .sata, .ide:
                args += ["-device", "ide-hd,\(ideAddress()),drive=\(id),id=\(id)-dev\(bootIndex)"]
            }
        }
        if let rescueDisk = launch.rescueDisk {
            disk("root", file: rescueDisk, format: "qcow2", boot: launch.kernel == nil)
            disk("rescued", file: paths.rootDisk, format: "qcow2", boot: false)
        } else {
            disk("root", file: paths.rootDisk, format: "qcow2", boot: launch.kernel == nil)
            if guest.ephemeralGB > 0 { disk("eph0", file: paths.ephemeralDisk, format: "qcow2", boot: false) }
            if guest.swapMB > 0 { disk("swap", file: paths.swapDisk, format: "qcow2", boot: false) }
        }
        if guest.configDrive {
            args += ["-drive", "file=\(escaped(paths.configDrive)),format=raw,if=none,id=config,readonly=on",
                     "-device", "ide-cd,\(ideAddress()),drive=config,id=config-dev"]
        }

        if let kernel = launch.kernel {
            args += ["-kernel", kernel]
            if let ramdisk = launch.ramdisk { args += ["-initrd", ramdisk] }
            args += ["-append", properties["os_command_line"] ?? "root=/dev/vda console=tty0 console=ttyS0"]
        }

        guard guest.nics.count <= NICSlots.count else { throw VirtError.failed("a guest takes at most \(NICSlots.count) NICs") }
        if isQ35 { args += NICSlots.rootPorts.flatMap { ["-device", $0] } }
        for (slot, vif) in guest.nics.enumerated() {
            args += ["-netdev", NICSlots.commandLine(NICSlots.netdev(vif))]
            args += ["-device", NICSlots.commandLine(NICSlots.device(vif, model: nicModel, slot: slot, q35: isQ35))]
        }

        args += [
            "-chardev", "socket,id=serial0,path=\(escaped(paths.consoleSocket)),server=on,wait=off,logfile=\(escaped(paths.consoleLog)),logappend=on",
            "-device", "isa-serial,chardev=serial0",
            "-device", "VGA",
            "-display", "none",
            "-vnc", "\(vncHost(launch.vncListen)):0,to=\(vncPorts.upperBound - vncPorts.lowerBound)",
            "-qmp", "unix:\(escaped(paths.qmpSocket)),server=on,wait=off",
            "-pidfile", paths.pidFile,
            "-daemonize",
        ]
        if let state = launch.incomingState {
            args += ["-incoming", "exec:cat \(shellQuoted(state))"]
        } else if launch.deferredIncoming {
            args += ["-incoming", "defer"]
        }
        return args
    }

    /// The accelerator and CPU model: the host's CPU under KVM (`host`, as libvirt's
    /// host-passthrough), `qemu64` under TCG. The KVM probe boots with these same arguments.
    static func accelerationArguments(_ acceleration: Acceleration, tcgTranslationCacheMB: Int) -> [String] {
        switch acceleration {
        case .kvm: return ["-accel", "kvm", "-cpu", "host"]
        case .tcg: return ["-accel", "tcg,tb-size=\(tcgTranslationCacheMB)", "-cpu", "qemu64"]
        }
    }

    /// An address as QEMU's `-vnc` reads it: IPv6 literals in brackets.
    static func vncHost(_ address: String) -> String { address.contains(":") && !address.hasPrefix("[") ? "[\(address)]" : address }

    /// A value inside a QEMU option list: commas are doubled so they are not separators.
    static func escaped(_ value: String) -> String { value.replacingOccurrences(of: ",", with: ",,") }

    /// A path for `exec:` migration URIs, which QEMU runs through `/bin/sh -c`.
    static func shellQuoted(_ value: String) -> String { "'" + value.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}

/// Where a guest's NICs go, so that any of them can be unplugged and more plugged in while it
/// runs (`QEMUDriver+Interfaces.swift`): NIC slot k is a PCIe root port at address 0x10 + k of
/// `pcie.0` on q35 (whose root bus takes no hot-plug; libvirt adds root ports too), and the
/// address 0x10 + k of `pci.0` on pc. Every slot exists from the start, at fixed addresses, so
/// a guest started from its record with a hot-plugged NIC has the same PCI layout as the one
/// that plugged it in (a live migration needs the same layout at both ends). The n NICs of a
/// starting guest take slots 0…n−1; a hot-plugged one takes the first free slot.
enum NICSlots {
    static let count = 8

    static func address(_ slot: Int) -> String { "0x" + String(0x10 + slot, radix: 16) }

    static var rootPorts: [String] {
        (0..<count).map { "pcie-root-port,id=\(rootPort($0)),bus=pcie.0,addr=\(address($0)),chassis=\($0 + 1)" }
    }

    static func rootPort(_ slot: Int) -> String { "nicport\(slot)" }

    /// QEMU's ids for the port's backend and device: named after the port, so an unplug finds
    /// them whatever the NIC's position.
    static func netdevID(_ vif: VIF) -> String { "net-\(vif.tapName)" }
    static func deviceID(_ vif: VIF) -> String { "nic-\(vif.tapName)" }

    /// The tap backend's options, in order (`-netdev` and `netdev_add` alike).
    static func netdev(_ vif: VIF) -> [(String, String)] {
        [("type", "tap"), ("id", netdevID(vif)), ("ifname", vif.tapName), ("script", "no"), ("downscript", "no")]
    }

    /// Options as the command line takes them: the first (the type or driver) bare.
    static func commandLine(_ options: [(String, String)]) -> String {
        options.enumerated().map { $0.offset == 0 ? $0.element.1 : "\($0.element.0)=\($0.element.1)" }.joined(separator: ",")
    }

    /// The NIC's device options, in order, with its model's driver first.
    static func device(_ vif: VIF, model: String, slot: Int, q35: Bool) -> [(String, String)] {
        var options: [(String, String)] = [("driver", model == "virtio" ? "virtio-net-pci" : "e1000"), ("netdev", netdevID(vif)), ("id", deviceID(vif)),
                                           ("mac", vif.macAddress)]
        if model == "virtio" { options.append(("host_mtu", String(vif.mtu))) }
        options += q35 ? [("bus", rootPort(slot))] : [("bus", "pci.0"), ("addr", address(slot))]
        return options
    }
}
