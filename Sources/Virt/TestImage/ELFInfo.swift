import Foundation

/// What the image builder needs from a dynamically linked x86-64 program or library: the
/// shared libraries it names (DT_NEEDED) and its program interpreter (PT_INTERP). Reading the
/// file itself works on binaries extracted from packages, where `ldd` would look at the host's
/// libraries instead.
struct ELFInfo: Equatable {
    var needed: [String]
    var interpreter: String?

    struct FormatError: Error, CustomStringConvertible {
        let description: String
    }

    init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FormatError(description: "cannot read \(path)")
        }
        try self.init(data: data, name: path)
    }

    init(data: Data, name: String) throws {
        let bytes = [UInt8](data)
        func fail(_ why: String) -> FormatError { FormatError(description: "\(name): \(why)") }
        // ELF64, little-endian: what Debian's amd64 packages hold.
        guard bytes.count >= 64, bytes[0] == 0x7F, bytes[1] == 0x45, bytes[2] == 0x4C, bytes[3] == 0x46 else {
            throw fail("not an ELF file")
        }
        guard bytes[4] == 2, bytes[5] == 1 else { throw fail("not a 64-bit little-endian ELF file") }

        func u16(_ at: Int) throws -> Int {
            guard at >= 0, at + 2 <= bytes.count else { throw fail("truncated") }
            return Int(bytes[at]) | Int(bytes[at + 1]) << 8
        }
        func u32(_ at: Int) throws -> Int {
            let low = try u16(at), high = try u16(at + 2)
            return low | high << 16
        }
        func u64(_ at: Int) throws -> UInt64 {
            let low = try u32(at), high = try u32(at + 4)
            return UInt64(low) | UInt64(high) << 32
        }
        func cString(_ at: Int) throws -> String {
            guard at >= 0, at < bytes.count, let end = bytes[at...].firstIndex(of: 0) else { throw fail("bad string offset") }
            return String(decoding: bytes[at..<end], as: UTF8.self)
        }

        let phoff = Int(try u64(0x20)), phentsize = try u16(0x36), phnum = try u16(0x38)
        struct Segment { let type: Int; let offset: UInt64; let vaddr: UInt64; let filesz: UInt64 }
        var segments: [Segment] = []
        for i in 0..<phnum {
            let at = phoff + i * phentsize
            segments.append(Segment(type: try u32(at), offset: try u64(at + 8), vaddr: try u64(at + 16), filesz: try u64(at + 32)))
        }
        let ptLoad = 1, ptDynamic = 2, ptInterp = 3

        interpreter = try segments.first { $0.type == ptInterp }.map { try cString(Int($0.offset)) }

        needed = []
        guard let dynamic = segments.first(where: { $0.type == ptDynamic }) else { return }  // static
        // DT_STRTAB is a virtual address: map it back to a file offset through the PT_LOAD segments.
        func fileOffset(_ vaddr: UInt64) throws -> Int {
            guard let load = segments.first(where: { $0.type == ptLoad && vaddr >= $0.vaddr && vaddr < $0.vaddr + $0.filesz }) else {
                throw fail("address \(vaddr) is in no loaded segment")
            }
            return Int(load.offset + (vaddr - load.vaddr))
        }
        let dtNull: UInt64 = 0, dtNeeded: UInt64 = 1, dtStrtab: UInt64 = 5
        var neededOffsets: [UInt64] = []
        var strtab: UInt64?
        var at = Int(dynamic.offset)
        while at + 16 <= Int(dynamic.offset + dynamic.filesz) {
            let tag = try u64(at), value = try u64(at + 8)
            if tag == dtNull { break }
            if tag == dtNeeded { neededOffsets.append(value) }
            if tag == dtStrtab { strtab = value }
            at += 16
        }
        guard !neededOffsets.isEmpty else { return }
        guard let strtab else { throw fail("DT_NEEDED without DT_STRTAB") }
        let base = try fileOffset(strtab)
        needed = try neededOffsets.map { try cString(base + Int($0)) }
    }
}
