import Foundation

/// Debian packages fetched with the host's apt (its configured mirrors, nothing else) and kept
/// as .deb files in a cache directory. Nothing is installed: the image builder unpacks what it
/// needs with dpkg-deb, so the host's /boot and libraries are never touched.
struct DebianPackages {
    struct Package: Equatable {
        var name: String
        var version: String
        var architecture: String
        var sha256: String
        var depends: [String]  // first alternative of each Depends/Pre-Depends entry, names only
        /// The file name `apt-get download` gives it (an epoch's colon is written %3a).
        var debFileName: String {
            "\(name)_\(version.replacingOccurrences(of: ":", with: "%3a"))_\(architecture).deb"
        }
    }

    let cacheDirectory: String
    let log: @Sendable (String) -> Void
    private var updatedLists = false

    init(cacheDirectory: String, log: @escaping @Sendable (String) -> Void) {
        self.cacheDirectory = cacheDirectory
        self.log = log
    }

    /// The candidate version of each package, as `apt-cache show --no-all-versions` reports it.
    /// An empty package list (a fresh container) gets one `apt-get update` first.
    mutating func describe(_ names: [String]) throws -> [String: Package] {
        var output = try HostCommand.capture(["apt-cache", "show", "--no-all-versions"] + names)
        if output.status != 0 && !updatedLists && Self.isRoot {
            log("apt-cache does not know \(names.joined(separator: ", ")): running apt-get update")
            try HostCommand.run(["apt-get", "update"])
            updatedLists = true
            output = try HostCommand.capture(["apt-cache", "show", "--no-all-versions"] + names)
        }
        guard output.status == 0 else {
            throw TestImageError("apt-cache cannot find the Debian package(s) \(names.joined(separator: ", ")) "
                + "(is this Debian with bookworm in its apt sources, and has `apt-get update` run?): \(output.stderrText)")
        }
        var found: [String: Package] = [:]
        for stanza in Self.stanzas(output.stdoutText) {
            guard let name = stanza["Package"], let version = stanza["Version"], let arch = stanza["Architecture"] else { continue }
            let depends = [stanza["Pre-Depends"], stanza["Depends"]].compactMap { $0 }.flatMap(Self.firstAlternatives)
            found[name] = Package(name: name, version: version, architecture: arch, sha256: stanza["SHA256"] ?? "", depends: depends)
        }
        for name in names where found[name] == nil {
            throw TestImageError("apt-cache shows no candidate for the Debian package \(name)")
        }
        return found
    }

    /// `names` and their Depends/Pre-Depends, recursively (first alternative of each), except
    /// the dependencies of packages for which `follow` is false.
    mutating func closure(_ names: [String], follow: (Package) -> Bool = { _ in true }) throws -> [Package] {
        var result: [String: Package] = [:]
        var pending = names
        while !pending.isEmpty {
            let batch = Array(Set(pending.filter { result[$0] == nil })).sorted()
            pending = []
            guard !batch.isEmpty else { break }
            for (name, package) in try describe(batch) {
                result[name] = package
                if follow(package) { pending += package.depends.filter { result[$0] == nil } }
            }
        }
        return result.values.sorted { $0.name < $1.name }
    }

    /// The .deb of each package in the cache, downloaded with `apt-get download` when missing or
    /// when its checksum does not match what apt expects.
    func fetch(_ packages: [Package]) throws -> [String: String] {
        let debs = "\(cacheDirectory)/debs"
        try FileManager.default.createDirectory(atPath: debs, withIntermediateDirectories: true)
        var paths: [String: String] = [:]
        var missing: [Package] = []
        for package in packages {
            let path = "\(debs)/\(package.debFileName)"
            paths[package.name] = path
            if FileManager.default.fileExists(atPath: path), try Self.sha256(of: path) == package.sha256 || package.sha256.isEmpty {
                continue
            }
            try? FileManager.default.removeItem(atPath: path)
            missing.append(package)
        }
        if !missing.isEmpty {
            log("Downloading Debian packages with apt-get into \(debs): \(missing.map { "\($0.name) \($0.version)" }.joined(separator: ", "))")
            // As root, apt drops to the _apt user for downloads, which cannot write into a
            // directory root owns; downloading as root avoids that (apt only warns otherwise).
            let sandbox = Self.isRoot ? ["-o", "APT::Sandbox::User=root"] : []
            try HostCommand.run(["apt-get", "download", "-q"] + sandbox + missing.map { "\($0.name)=\($0.version)" }, directory: debs)
            for package in missing {
                let path = "\(debs)/\(package.debFileName)"
                guard FileManager.default.fileExists(atPath: path) else {
                    throw TestImageError("apt-get download did not produce \(path)")
                }
                if !package.sha256.isEmpty, try Self.sha256(of: path) != package.sha256 {
                    throw TestImageError("\(path) does not have the SHA-256 apt expects (\(package.sha256))")
                }
            }
        }
        return paths
    }

    /// Unpacks a .deb's files (all of them, or only those matching the tar wildcards given) into
    /// a directory of the cache named after the .deb, and reuses it on later builds.
    func extract(_ deb: String, only patterns: [String] = []) throws -> String {
        let name = (deb as NSString).lastPathComponent
        let key = patterns.isEmpty ? "all" : String(UInt32(truncatingIfNeeded: Self.fnv1a(patterns.joined(separator: "\n"))), radix: 16)
        let root = "\(cacheDirectory)/unpacked/\(name)-\(key)"
        let stamp = "\(root)/.nimbus-unpacked"
        if FileManager.default.fileExists(atPath: stamp) { return root }
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        if patterns.isEmpty {
            try HostCommand.run(["dpkg-deb", "-x", deb, root])
        } else {
            // Only the wanted members: a kernel package unpacks to hundreds of MiB of modules.
            // tar's status is not checked, since a pattern that matches nothing makes it exit 2;
            // the caller checks for the files it needs.
            let script = #"dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards "${@:3}"; exit ${PIPESTATUS[0]}"#
            try HostCommand.run(["bash", "-c", script, "extract", deb, root] + patterns)
        }
        _ = FileManager.default.createFile(atPath: stamp, contents: Data())
        return root
    }

    // MARK: Helpers

    static var isRoot: Bool { getuid() == 0 }

    static func sha256(of path: String) throws -> String {
        let out = try HostCommand.run(["sha256sum", path]).stdoutText
        return String(out.prefix { !$0.isWhitespace })
    }

    /// RFC 822-style stanzas of `apt-cache show`, continuation lines folded into their field.
    static func stanzas(_ text: String) -> [[String: String]] {
        var result: [[String: String]] = []
        var current: [String: String] = [:]
        var lastKey: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.trimmingCharacters(in: .whitespaces).isEmpty {
                if !current.isEmpty { result.append(current) }
                current = [:]
                lastKey = nil
            } else if line.first == " " || line.first == "\t" {
                if let lastKey { current[lastKey, default: ""] += "\n" + line.trimmingCharacters(in: .whitespaces) }
            } else if let colon = line.firstIndex(of: ":") {
                let key = String(line[..<colon])
                current[key] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                lastKey = key
            }
        }
        if !current.isEmpty { result.append(current) }
        return result
    }

    /// "libc6 (>= 2.34), foo | bar, baz:any" → ["libc6", "foo", "baz"].
    static func firstAlternatives(_ field: String) -> [String] {
        field.split(separator: ",").compactMap { entry in
            let first = entry.split(separator: "|").first.map(String.init) ?? ""
            let name = first.trimmingCharacters(in: .whitespaces).prefix { !$0.isWhitespace && $0 != "(" }
            let bare = name.split(separator: ":").first.map(String.init) ?? ""
            return bare.isEmpty ? nil : bare
        }
    }

    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }
}
