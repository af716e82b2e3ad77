import Foundation

/// Builds Nimbus's own test image, the part CirrOS plays for OpenStack: a small qcow2 that
/// SeaBIOS boots from virtio-blk, made only from Debian packages (the kernel, busybox-static,
/// dropbear and its libraries) fetched with the host's apt. The root filesystem is an initramfs
/// and never leaves RAM; its /init is `GuestFiles.initScript`.
///
/// The disk is a FAT "superfloppy" (no partition table) holding vmlinuz, initrd.gz and
/// syslinux.cfg, made bootable by `syslinux --install`, which works on the image file through
/// mtools, so building needs no loop device, mount or root (except to install missing tools).
public struct TestImageBuilder: Sendable {
    public struct Options: Sendable {
        /// Where the qcow2 goes. The kernel and initrd, when written, go beside it with the
        /// extensions .vmlinuz and .initrd.
        public var output: String
        /// Downloaded .debs and what was unpacked from them; reused by later builds.
        public var cacheDirectory: String
        /// Also write the kernel and initrd as files, for images that boot with
        /// kernel_id/ramdisk_id (QEMU's -kernel/-initrd) instead of the bootloader.
        public var writeKernelAndInitrd = true
        /// Install missing host tools with apt-get (as root); otherwise fail naming them.
        public var installMissingTools = true

        public init(output: String, cacheDirectory: String) {
            self.output = output
            self.cacheDirectory = cacheDirectory
        }
    }

    public struct Result: Sendable {
        public let image: String
        public let imageBytes: Int64
        public let kernel: String?
        public let initrd: String?
        /// The guest kernel's release, e.g. "6.1.0-57-amd64".
        public let kernelRelease: String
        /// "name version" of every Debian package the image was made from.
        public let packages: [String]
    }

    /// The user whose authorized_keys get the instance's public keys.
    public static let loginUser = "nimbus"
    /// The kernel command line the bootloader passes, and the one to pass with -kernel/-initrd.
    /// The last console= is /dev/console, where init prints; `quiet` keeps the kernel's own
    /// messages off the slow emulated UART.
    public static let kernelCommandLine = "console=tty0 console=ttyS0,115200n8 quiet"
    /// Image properties to upload the image with (see docs/test-image.md).
    public static let imageProperties: [(key: String, value: String)] = [
        ("os_type", "linux"),
        ("os_distro", "nimbus-test"),
        ("hw_disk_bus", "virtio"),
        ("hw_qemu_guest_agent", "no"),
        ("image_ssh_user", loginUser),
    ]

    /// The guest's kernel modules, loaded by /init in this order (their dependencies are added
    /// ahead of them): virtio PCI (both transports' helpers), virtio-net with its failover
    /// helpers, virtio-blk, ISO 9660 for the config drive, the cdrom paths a config drive takes
    /// when attached the way Nova does (IDE on a `pc` machine, AHCI/SATA on `q35`, which the
    /// QEMU driver uses), and button/evdev for the ACPI power button.
    public static let modules = [
        "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_ring", "virtio", "virtio_pci",
        "failover", "net_failover", "virtio_net",
        "virtio_blk",
        "cdrom", "isofs",
        "scsi_common", "scsi_mod", "libata", "ata_piix", "libahci", "ahci", "sr_mod",
        "button", "evdev",
    ]

    /// Host commands the build runs, and their packages. (`syslinux --install` carries its
    /// ldlinux.sys and ldlinux.c32 inside the binary, so syslinux-common is not needed.)
    public static let hostTools = [
        HostTool("apt-get", package: "apt"), HostTool("dpkg-deb", package: "dpkg"),
        HostTool("gzip", package: "gzip"), HostTool("xz", package: "xz-utils"),
        HostTool("qemu-img", package: "qemu-utils"), HostTool("mkfs.fat", package: "dosfstools"),
        HostTool("mcopy", package: "mtools"), HostTool("syslinux", package: "syslinux"),
    ]

    /// Every file in the image gets this modification time, so two builds from the same
    /// packages give the same initrd (2024-01-01T00:00:00Z).
    static let fixedTime = 1_704_067_200

    public let options: Options
    let log: @Sendable (String) -> Void

    public init(options: Options, log: @escaping @Sendable (String) -> Void = { print($0) }) {
        self.options = options
        self.log = log
    }

    public func build() throws -> Result {
        let started = Date()
        try HostTools.ensure(Self.hostTools, install: options.installMissingTools, log: log)
        let fm = FileManager.default
        try fm.createDirectory(atPath: options.cacheDirectory, withIntermediateDirectories: true)
        let work = "\(options.cacheDirectory)/work-\(getpid())-\(UUID().uuidString.prefix(8))"
        try fm.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: work) }

        // 1. Packages: the kernel linux-image-amd64 currently points at, busybox, dropbear and
        //    everything dropbear depends on. The kernel's own dependencies (kmod,
        //    initramfs-tools, …) serve an installed system, not this image, so they are not
        //    followed. Each round of the walk is one apt-cache call, the slow part of a build.
        var apt = DebianPackages(cacheDirectory: options.cacheDirectory, log: log)
        let resolved = try apt.closure(["linux-image-amd64", "busybox-static", "dropbear-bin"]) { package in
            !package.name.hasPrefix("linux-image-") || package.name == "linux-image-amd64"
        }
        guard let meta = resolved.first(where: { $0.name == "linux-image-amd64" }),
              let kernelPackage = meta.depends.first(where: { $0.hasPrefix("linux-image-") }),
              let kernel = resolved.first(where: { $0.name == kernelPackage }) else {
            throw TestImageError("linux-image-amd64 names no linux-image-* package")
        }
        let kernelRelease = String(kernelPackage.dropFirst("linux-image-".count))
        let userland = resolved.filter { !$0.name.hasPrefix("linux-image-") }
        let packages = [kernel] + userland
        let debs = try apt.fetch(packages)

        var archive = NewcArchive()

        // 2. Kernel and modules.
        let (vmlinuz, moduleOrder) = try addKernel(release: kernelRelease, deb: debs[kernelPackage]!, apt: apt, to: &archive)

        // 3. busybox (static) and dropbear with the shared libraries it needs.
        let busyboxRoot = try apt.extract(debs["busybox-static"]!)
        archive.add("bin/busybox", mode: 0o755, .file(try Self.read("\(busyboxRoot)/bin/busybox")))
        archive.add("bin/sh", mode: 0o777, .symlink("busybox"))
        let libraryRoots = try userland.filter { $0.name != "busybox-static" }.map { try apt.extract(debs[$0.name]!) }
        let dropbearRoot = try apt.extract(debs["dropbear-bin"]!)
        try addDynamicPrograms(["usr/sbin/dropbear", "usr/bin/dropbearkey", "usr/bin/dbclient"],
                               from: dropbearRoot, libraryRoots: libraryRoots, to: &archive)

        // 4. Nimbus's own files.
        archive.add("init", mode: 0o755, .file(Data(GuestFiles.initScript.utf8)))
        archive.add("etc/nimbus/json.awk", mode: 0o644, .file(Data(GuestFiles.jsonAWK.utf8)))
        archive.add("etc/nimbus/udhcpc.sh", mode: 0o755, .file(Data(GuestFiles.udhcpcScript.utf8)))
        archive.add("usr/bin/curl", mode: 0o755, .file(Data(GuestFiles.curl.utf8)))
        archive.add("usr/bin/sudo", mode: 0o755, .file(Data(GuestFiles.sudo.utf8)))
        archive.add("etc/nimbus/modules", mode: 0o644, .file(Data((moduleOrder.joined(separator: "\n") + "\n").utf8)))
        archive.add("etc/acpi/PWRF/00000080", mode: 0o755, .file(Data(GuestFiles.powerButton.utf8)))
        archive.add("etc/passwd", mode: 0o644, .file(Data(GuestFiles.passwd.utf8)))
        archive.add("etc/group", mode: 0o644, .file(Data(GuestFiles.group.utf8)))
        archive.add("etc/shells", mode: 0o644, .file(Data(GuestFiles.shells.utf8)))
        archive.add("etc/hosts", mode: 0o644, .file(Data(GuestFiles.hosts.utf8)))
        archive.add("etc/profile", mode: 0o644, .file(Data(GuestFiles.profile.utf8)))
        for dir in ["dev", "proc", "sys", "run", "tmp", "mnt", "root", "home/nimbus", "sbin", "usr/bin", "usr/sbin", "var"] {
            archive.add(dir, mode: dir == "tmp" ? 0o1777 : (dir == "root" ? 0o700 : 0o755), .directory)
        }
        // As on Debian (Tempest looks for udhcpc's pid file under /var/run).
        archive.add("var/run", mode: 0o777, .symlink("../run"))
        // The kernel opens /dev/console for init before anything mounts devtmpfs.
        archive.add("dev/console", mode: 0o600, .characterDevice(major: 5, minor: 1))

        // 5. initrd: the archive, gzip'd (-n: no name or time in the header).
        let initrd = "\(work)/initrd.gz"
        try archive.serialized(mtime: Self.fixedTime).write(to: URL(fileURLWithPath: "\(work)/initrd"))
        try HostCommand.run(["gzip", "-n", "-9", "\(work)/initrd"])

        // 6. The bootable FAT disk, then qcow2.
        let raw = "\(work)/disk.raw"
        try makeBootDisk(raw, kernel: vmlinuz, initrd: initrd, work: work)
        let outputDir = (options.output as NSString).deletingLastPathComponent
        if !outputDir.isEmpty { try fm.createDirectory(atPath: outputDir, withIntermediateDirectories: true) }
        // Named for this build: two clouds starting at once may build into one cache.
        let partial = "\(options.output).partial-\(getpid())-\(UUID().uuidString.prefix(8))"
        try? fm.removeItem(atPath: partial)
        // -c: compressed clusters, which halve the file; overlays on it work as usual.
        try HostCommand.run(["qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", raw, partial])
        try? fm.removeItem(atPath: options.output)
        try fm.moveItem(atPath: partial, toPath: options.output)

        var kernelOut: String?, initrdOut: String?
        if options.writeKernelAndInitrd {
            let stem = options.output.hasSuffix(".qcow2") ? String(options.output.dropLast(6)) : options.output
            kernelOut = "\(stem).vmlinuz"
            initrdOut = "\(stem).initrd"
            for (from, to) in [(vmlinuz, kernelOut!), (initrd, initrdOut!)] {
                try? fm.removeItem(atPath: to)
                try fm.copyItem(atPath: from, toPath: to)
            }
        }
        let size = (try fm.attributesOfItem(atPath: options.output)[.size] as? NSNumber)?.int64Value ?? 0
        log(String(format: "Built %@ (%.1f MiB, kernel %@) in %.1f s", options.output, Double(size) / 1_048_576,
                   kernelRelease, Date().timeIntervalSince(started)))
        return Result(image: options.output, imageBytes: size, kernel: kernelOut, initrd: initrdOut,
                      kernelRelease: kernelRelease, packages: packages.map { "\($0.name) \($0.version)" })
    }
}
