import Foundation

/// Writes a cpio archive in the "newc" format the kernel unpacks as an initramfs. Built here
/// rather than with cpio(1) so the archive is byte-for-byte reproducible (fixed owners, times
/// and inode numbers) and can hold /dev/console without root's mknod.
struct NewcArchive {
    enum Content {
        case directory
        case file(Data)
        case symlink(String)
        case characterDevice(major: Int, minor: Int)
    }

    struct Entry {
        var path: String  // relative, no leading slash: "bin/busybox"
        var mode: Int     // permission bits only
        var content: Content
    }

    private(set) var entries: [String: Entry] = [:]

    /// Adds an entry and its missing parent directories (mode 0755).
    mutating func add(_ path: String, mode: Int, _ content: Content) {
        let path = path.split(separator: "/").joined(separator: "/")
        var parent = ""
        for component in path.split(separator: "/").dropLast() {
            parent = parent.isEmpty ? String(component) : "\(parent)/\(component)"
            if entries[parent] == nil { entries[parent] = Entry(path: parent, mode: 0o755, content: .directory) }
        }
        entries[path] = Entry(path: path, mode: mode, content: content)
    }

    func contains(_ path: String) -> Bool { entries[path.split(separator: "/").joined(separator: "/")] != nil }

    /// The archive, entries in path order so a parent always precedes its children.
    func serialized(mtime: Int) -> Data {
        var out = Data()
        var inode = 1
        for entry in entries.values.sorted(by: { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }) {
            let (type, body, rdev): (Int, Data, (Int, Int)) = switch entry.content {
            case .directory: (0o040000, Data(), (0, 0))
            case .file(let data): (0o100000, data, (0, 0))
            case .symlink(let target): (0o120000, Data(target.utf8), (0, 0))
            case .characterDevice(let major, let minor): (0o020000, Data(), (major, minor))
            }
            let nlink = if case .directory = entry.content { 2 } else { 1 }
            append(to: &out, name: entry.path, inode: inode, mode: type | entry.mode, nlink: nlink,
                   mtime: mtime, body: body, rdev: rdev)
            inode += 1
        }
        append(to: &out, name: "TRAILER!!!", inode: 0, mode: 0, nlink: 1, mtime: 0, body: Data(), rdev: (0, 0))
        return out
    }

    private func append(to out: inout Data, name: String, inode: Int, mode: Int, nlink: Int, mtime: Int,
                        body: Data, rdev: (Int, Int)) {
        let nameBytes = Data(name.utf8) + [0]
        // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
        // rdevminor, namesize, check: 13 eight-digit hex fields after the magic.
        let fields = [inode, mode, 0, 0, nlink, mtime, body.count, 0, 0, rdev.0, rdev.1, nameBytes.count, 0]
        var header = "070701"
        for field in fields {
            let hex = String(field, radix: 16, uppercase: true)
            header += String(repeating: "0", count: 8 - hex.count) + hex
        }
        out.append(contentsOf: header.utf8)
        out.append(nameBytes)
        Self.pad(&out)
        out.append(body)
        Self.pad(&out)
    }

    /// newc aligns the name (after the 110-byte header) and the data to 4 bytes.
    private static func pad(_ out: inout Data) {
        while out.count % 4 != 0 { out.append(0) }
    }
}
