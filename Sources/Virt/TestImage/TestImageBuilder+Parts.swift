import Foundation

extension TestImageBuilder {
    /// Unpacks the kernel and the wanted modules (with everything they depend on) from the kernel
    /// package, adds the modules and a modules.dep for them to the archive, and returns the
    /// kernel's path and the modules' load order.
    func addKernel(release: String, deb: String, apt: DebianPackages, to archive: inout NewcArchive) throws
        -> (vmlinuz: String, order: [String])
    {
        var wanted = Set(Self.modules)
        // Usually one pass: the list above already holds its dependencies. A module that needs
        // one more (a newer kernel) costs another pass over the package.
        for _ in 0..<4 {
            let patterns = ["./boot/vmlinuz-\(release)"] + wanted.sorted().flatMap { ["*/\($0).ko", "*/\($0).ko.xz"] }
            let root = try apt.extract(deb, only: patterns)
            let vmlinuz = "\(root)/boot/vmlinuz-\(release)"
            guard FileManager.default.fileExists(atPath: vmlinuz) else {
                throw TestImageError("\((deb as NSString).lastPathComponent) holds no boot/vmlinuz-\(release)")
            }
            let moduleDir = "\(root)/lib/modules/\(release)"
            // canonical module name → path under lib/modules/<release>
            var files: [String: String] = [:]
            if let walker = FileManager.default.enumerator(atPath: moduleDir) {
                for case let path as String in walker where path.hasSuffix(".ko") || path.hasSuffix(".ko.xz") {
                    let base = (path as NSString).lastPathComponent
                    files[KernelModules.canonical(String(base.prefix(while: { $0 != "." })))] = path
                }
            }
            var contents: [String: Data] = [:]
            var depends: [String: [String]] = [:]
            var absent = Set<String>()
            func load(_ module: String) throws -> [String] {
                if let known = depends[module] { return known }
                guard let path = files[module] else {
                    absent.insert(module)
                    return []
                }
                var data = try Self.read("\(moduleDir)/\(path)")
                if path.hasSuffix(".xz") {
                    data = try HostCommand.run(["xz", "-dc"], input: data).stdout
                }
                contents[module] = data
                let deps = KernelModules.dependencies(ofModule: data).map(KernelModules.canonical)
                depends[module] = deps
                return deps
            }
            let order = try KernelModules.loadOrder(Self.modules, depends: load)
            if !absent.isEmpty {
                if absent.isSubset(of: wanted) {
                    throw TestImageError("the kernel package has no module(s) \(absent.sorted().joined(separator: ", "))")
                }
                wanted.formUnion(absent)
                continue
            }
            // Uncompressed in the image: busybox modprobe then needs no xz support.
            var paths: [String: String] = [:]
            for module in order {
                var path = files[module]!
                if path.hasSuffix(".xz") { path = String(path.dropLast(3)) }
                paths[module] = path
                archive.add("lib/modules/\(release)/\(path)", mode: 0o644, .file(contents[module]!))
            }
            let dep = KernelModules.modulesDep(order: order, paths: paths, depends: depends)
            archive.add("lib/modules/\(release)/modules.dep", mode: 0o644, .file(Data(dep.utf8)))
            return (vmlinuz, order)
        }
        throw TestImageError("kernel module dependencies did not settle after 4 passes")
    }

    /// Adds dynamically linked programs from an unpacked package and every shared library they
    /// need (DT_NEEDED, transitively), found in the unpacked library packages. Libraries go to
    /// /lib/x86_64-linux-gnu, which the dynamic loader searches without an ld.so.cache.
    func addDynamicPrograms(_ programs: [String], from root: String, libraryRoots: [String],
                            to archive: inout NewcArchive) throws
    {
        let libDir = "lib/x86_64-linux-gnu"
        var queue: [(name: String, path: String)] = []
        var interpreters = Set<String>()
        for program in programs {
            let path = "\(root)/\(program)"
            archive.add(program, mode: 0o755, .file(try Self.read(path)))
            queue.append((program, path))
        }
        var copied = Set<String>()
        while !queue.isEmpty {
            let (name, path) = queue.removeFirst()
            let elf = try ELFInfo(contentsOf: path)
            if let interpreter = elf.interpreter { interpreters.insert(interpreter) }
            for soname in elf.needed where !copied.contains(soname) {
                guard let found = Self.findLibrary(soname, in: libraryRoots) else {
                    throw TestImageError("\(name) needs \(soname), which none of the unpacked packages holds")
                }
                archive.add("\(libDir)/\(soname)", mode: 0o755, .file(try Self.read(found)))
                copied.insert(soname)
                queue.append((soname, found))
            }
        }
        for interpreter in interpreters {
            let base = (interpreter as NSString).lastPathComponent
            if copied.contains(base) {
                if "/\(libDir)/\(base)" != interpreter { archive.add(interpreter, mode: 0o777, .symlink("/\(libDir)/\(base)")) }
            } else {
                guard let found = Self.findLibrary(base, in: libraryRoots) else {
                    throw TestImageError("no unpacked package holds the program interpreter \(interpreter)")
                }
                archive.add(interpreter, mode: 0o755, .file(try Self.read(found)))
            }
        }
    }

    /// The real file behind `soname` in one of the unpacked package roots. Symlinks are followed
    /// inside that root: an absolute target means the root's path, never the host's.
    static func findLibrary(_ soname: String, in roots: [String]) -> String? {
        let fm = FileManager.default
        for root in roots {
            for dir in ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "lib", "usr/lib"] {
                var path = "\(root)/\(dir)/\(soname)"
                var hops = 0
                while hops < 10, let target = try? fm.destinationOfSymbolicLink(atPath: path) {
                    path = target.hasPrefix("/") ? "\(root)\(target)" : "\((path as NSString).deletingLastPathComponent)/\(target)"
                    hops += 1
                }
                var isDir: ObjCBool = false
                if fm.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue { return path }
            }
        }
        return nil
    }

    /// A FAT superfloppy with the kernel, initrd and syslinux.cfg, bootable by syslinux.
    func makeBootDisk(_ raw: String, kernel: String, initrd: String, work: String) throws {
        let fm = FileManager.default
        let config = """
            DEFAULT nimbus
            PROMPT 0
            TIMEOUT 0
            LABEL nimbus
              KERNEL vmlinuz
              INITRD initrd.gz
              APPEND \(Self.kernelCommandLine)

            """
        let staged = "\(work)/fat"
        try fm.createDirectory(atPath: staged, withIntermediateDirectories: true)
        try fm.copyItem(atPath: kernel, toPath: "\(staged)/vmlinuz")
        try fm.copyItem(atPath: initrd, toPath: "\(staged)/initrd.gz")
        try Data(config.utf8).write(to: URL(fileURLWithPath: "\(staged)/syslinux.cfg"))
        var bytes: Int64 = 0
        for name in ["vmlinuz", "initrd.gz", "syslinux.cfg"] {
            let path = "\(staged)/\(name)"
            try fm.setAttributes([.modificationDate: Date(timeIntervalSince1970: TimeInterval(Self.fixedTime))], ofItemAtPath: path)
            bytes += (try fm.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0
        }
        // Room for the files, FAT overhead and syslinux's ldlinux; 16 MiB at least, as measured
        // on this machine kind (HOST-FACTS "Disk variant").
        let mib = max(16, Int((bytes + 1_048_575) / 1_048_576) + 4)
        // --invariant: a fixed volume id and no timestamps of its own.
        try HostCommand.run(["mkfs.fat", "--invariant", "-n", "NIMBUS", "-C", raw, String(mib * 1024)])
        // SOURCE_DATE_EPOCH: mtools (and so syslinux, which writes ldlinux.* through it) use it
        // for the directory entries' times, keeping the disk the same from build to build.
        let env = ["MTOOLS_SKIP_CHECK": "1", "SOURCE_DATE_EPOCH": String(Self.fixedTime)]
        for name in ["vmlinuz", "initrd.gz", "syslinux.cfg"] {
            // -m keeps the (fixed) modification time; -o overwrites without asking.
            try HostCommand.run(["mcopy", "-m", "-o", "-i", raw, "\(staged)/\(name)", "::\(name)"], environment: env)
        }
        try HostCommand.run(["syslinux", "--install", raw], environment: env)
    }

    static func read(_ path: String) throws -> Data {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TestImageError("cannot read \(path)")
        }
        return data
    }
}
