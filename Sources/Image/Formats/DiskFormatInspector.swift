import Foundation

// Streaming disk-image format inspection for the image service.
//
// The inspector is fed an upload chunk by chunk. It keeps:
//   * the first `prefixLimit` bytes (1 MiB) of the stream,
//   * the last 512 bytes (ring buffer; VHD footers live at the end of the file),
//   * a few bounded regions further into the file that a header points at
//     (the VHDX metadata table and two 8-byte metadata items, a VMDK embedded
//     descriptor located past the prefix), each at most 1 MiB.
// Nothing else is retained, so memory use is bounded regardless of image size.
//
// Layout facts used below come from the public format specifications:
// QEMU's qcow2 specification (docs/interop/qcow2.txt), VMware's "Virtual Disk
// Format 1.1" (VMDK), Microsoft's "Virtual Hard Disk Image Format Specification"
// (VHD) and "[MS-VHDX]", ECMA-119 (ISO 9660) / ECMA-167 (UDF), the VirtualBox
// VDI header layout and the Parallels (ploop) image header layout.

/// Disk formats understood by the image service (Glance `disk_format` values).
public enum DiskFormat: String, Sendable, CaseIterable {
    case raw, qcow2, vmdk, vhd, vhdx, iso, ami, ari, aki, vdi, ploop
}

/// Result of inspecting an image stream.
public struct FormatReport: Sendable, Equatable {
    /// What the bytes are. `raw` when nothing else matches. `ami`, `ari` and `aki` are never
    /// detected (they are raw content); see `declaredFormatMatches`.
    public var detected: DiskFormat
    /// Virtual disk size from the header when the format records one (qcow2, vmdk, vhd, vhdx, vdi,
    /// ploop); for raw and iso the total number of bytes fed. `nil` when it could not be determined.
    public var virtualSize: Int64?
    /// Safety findings, human readable. Empty means the image is considered safe to hand to a hypervisor.
    public var problems: [String]

    public init(detected: DiskFormat, virtualSize: Int64?, problems: [String]) {
        self.detected = detected
        self.virtualSize = virtualSize
        self.problems = problems
    }
}

/// Whether a declared `disk_format` is acceptable for what was detected (Glance semantics).
///
/// * `raw`, `ami`, `ari`, `aki` accept only raw content (kernel, ramdisk and machine images are raw bytes);
///   anything with a recognised container header (qcow2, vmdk, vhd, ...) or an ISO 9660/UDF
///   signature does not match.
/// * Every other format (qcow2, vmdk, vhd, vhdx, vdi, iso, ploop) must be detected as exactly that format.
///
/// This only compares formats; callers must additionally reject reports with non-empty `problems`.
public func declaredFormatMatches(_ declared: DiskFormat, _ report: FormatReport) -> Bool {
    switch declared {
    case .raw, .ami, .ari, .aki:
        return report.detected == .raw
    case .qcow2, .vmdk, .vhd, .vhdx, .iso, .vdi, .ploop:
        return report.detected == declared
    }
}

/// Incremental disk image format inspector. Feed consecutive chunks (any size), then call `finish()`.
public struct DiskFormatInspector: Sendable {
    /// Bytes kept from the beginning of the stream.
    static let prefixLimit = 1 << 20
    /// Bytes needed before header-directed captures are scheduled (and the minimum size of a binary header).
    static let headerSize = 512
    /// Size of the trailing window (VHD footer).
    static let footerSize = 512
    /// Upper bound for any single captured region.
    static let maxRegionLength = 1 << 20

    private var prefix: [UInt8] = []
    private var total: Int64 = 0
    private var tail = [UInt8](repeating: 0, count: DiskFormatInspector.footerSize)
    private var tailNext = 0
    private var headerScheduled = false
    private var pending: [InspectorRegionCapture] = []

    // Results of completed captures.
    private var vmdkDescriptor: [UInt8]?
    private var vhdxVirtualSize: UInt64?
    private var vhdxHasParentLocator = false
    private var vhdxFileParameterFlags: UInt32?

    public init() {}

    public mutating func feed(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { feed($0) }
    }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        let count = bytes.count
        while offset < count {
            // Split the chunk at every point where a decision must be taken before more bytes
            // stream past: the end of the header, and the end of every pending capture (whose
            // handler may schedule a capture that starts right after it).
            var step = count - offset
            if !headerScheduled {
                step = min(step, Self.headerSize - Int(total))
            }
            for capture in pending where capture.end > total {
                step = min(step, Int(capture.end - total))
            }
            consume(UnsafeRawBufferPointer(rebasing: bytes[offset ..< offset + step]))
            offset += step
            if !headerScheduled && total >= Int64(Self.headerSize) {
                headerScheduled = true
                scheduleHeaderCaptures()
            }
            resolveCompletedCaptures()
        }
    }

    public func finish() -> FormatReport {
        var problems: [String] = []
        var matched: [DiskFormat] = []
        var sizes: [DiskFormat: Int64] = [:]
        let header = InspectorBytes(prefix)
        let start = InspectorSignature.classify(header)

        func note(_ problem: String) {
            if !problems.contains(problem) { problems.append(problem) }
        }
        func record(_ format: DiskFormat, _ size: Int64?) {
            if !matched.contains(format) { matched.append(format) }
            if let size, sizes[format] == nil { sizes[format] = size }
        }
        func tooShort(_ name: String) {
            note("image starts with a \(name) signature but is too short (\(total) bytes) to be a valid \(name) image")
        }

        let headerComplete = total >= Int64(Self.headerSize)
        switch start {
        case .none:
            break
        case .qcow2:
            if headerComplete {
                record(.qcow2, inspectQCOW2(header, note: note))
            } else {
                tooShort("qcow2")
            }
        case .qed:
            note("image has a QED header (unsupported format that can reference backing files)")
        case .vmdkSparse:
            if headerComplete {
                record(.vmdk, inspectVMDKSparse(header, note: note))
            } else {
                tooShort("vmdk")
            }
        case .vmdkCOWD:
            if headerComplete {
                note("vmdk COWD (vmfsSparse) images are not supported")
                let sectors = header.u32le(12).map { Int64($0) * 512 }
                record(.vmdk, sectors)
            } else {
                tooShort("vmdk")
            }
        case .vmdkText:
            record(.vmdk, inspectVMDKTextDescriptor(header, note: note))
        case .vhd:
            if headerComplete {
                record(.vhd, inspectVHDFooter(InspectorBytes(Array(prefix[0 ..< Self.footerSize])), note: note))
            } else {
                tooShort("vhd")
            }
        case .vhdx:
            if headerComplete {
                if vhdxHasParentLocator || ((vhdxFileParameterFlags ?? 0) & 0x2) != 0 {
                    note("vhdx image is a differencing disk (references a parent)")
                }
                record(.vhdx, vhdxVirtualSize.flatMap { checkedSize($0, "vhdx", note: note) })
            } else {
                tooShort("vhdx")
            }
        case .vdi:
            if headerComplete {
                record(.vdi, inspectVDI(header, note: note))
            } else {
                tooShort("vdi")
            }
        case .ploop:
            if headerComplete {
                record(.ploop, inspectPloop(header, note: note))
            } else {
                tooShort("ploop")
            }
        }

        // Fixed VHDs carry their only footer in the last 512 bytes.
        if headerComplete && start != .vhd {
            let footer = InspectorBytes(trailingBytes())
            if footer.matches("conectix", at: 0) {
                record(.vhd, inspectVHDFooter(footer, note: note))
            }
        }

        if InspectorSignature.hasOpticalDiscSignature(header) {
            record(.iso, total)
        }

        if matched.count > 1 {
            note("image matches multiple formats: \(matched.map(\.rawValue).joined(separator: ", "))")
        }

        guard let detected = matched.first else {
            return FormatReport(detected: .raw, virtualSize: total, problems: problems)
        }
        return FormatReport(detected: detected, virtualSize: sizes[detected], problems: problems)
    }

    // MARK: - Streaming

    private mutating func consume(_ chunk: UnsafeRawBufferPointer) {
        let n = chunk.count
        guard n > 0 else { return }

        if prefix.count < Self.prefixLimit {
            let take = min(n, Self.prefixLimit - prefix.count)
            prefix.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[0 ..< take]))
        }

        let footer = Self.footerSize
        let writeAt = tailNext
        tail.withUnsafeMutableBytes { ring in
            if n >= footer {
                ring.copyMemory(from: UnsafeRawBufferPointer(rebasing: chunk[(n - footer) ..< n]))
            } else {
                let first = min(n, footer - writeAt)
                UnsafeMutableRawBufferPointer(rebasing: ring[writeAt ..< writeAt + first])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: chunk[0 ..< first]))
                if first < n {
                    UnsafeMutableRawBufferPointer(rebasing: ring[0 ..< (n - first)])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: chunk[first ..< n]))
                }
            }
        }
        tailNext = n >= footer ? 0 : (writeAt + n) % footer

        let chunkStart = total
        let chunkEnd = total + Int64(n)
        for index in pending.indices {
            let next = pending[index].nextOffset
            let end = pending[index].end
            guard next < end, next >= chunkStart, next < chunkEnd else { continue }
            let from = Int(next - chunkStart)
            let upTo = Int(min(end, chunkEnd) - chunkStart)
            pending[index].data.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[from ..< upTo]))
        }
        total = chunkEnd
    }

    /// The last (up to) 512 bytes seen, oldest first.
    private func trailingBytes() -> [UInt8] {
        if total < Int64(Self.footerSize) {
            return prefix
        }
        return Array(tail[tailNext...] + tail[..<tailNext])
    }

    /// Schedules a capture of `length` bytes at `offset`. Bytes already held in the prefix are
    /// copied immediately; a region whose start has streamed past outside the prefix is dropped,
    /// and so is one a header places so near `Int64.max` that its end (`offset + length`) would
    /// overflow: no stream reaches it, and the overflow would trap the whole process.
    private mutating func request(_ purpose: InspectorRegionPurpose, offset: Int64, length: Int) {
        guard offset >= 0, length > 0, offset <= Int64.max - Int64(Self.maxRegionLength) else { return }
        let length = min(length, Self.maxRegionLength)
        var data: [UInt8] = []
        if offset < Int64(prefix.count) {
            let from = Int(offset)
            let upTo = min(prefix.count, from + length)
            data.append(contentsOf: prefix[from ..< upTo])
        }
        let capture = InspectorRegionCapture(purpose: purpose, offset: offset, length: length, data: data)
        if !capture.isComplete && capture.nextOffset < total {
            return  // already streamed past; cannot be recovered
        }
        pending.append(capture)
    }

    private mutating func resolveCompletedCaptures() {
        while let index = pending.firstIndex(where: { $0.isComplete }) {
            let capture = pending.remove(at: index)
            handle(capture)
        }
    }

    private mutating func scheduleHeaderCaptures() {
        let header = InspectorBytes(prefix)
        switch InspectorSignature.classify(header) {
        case .vmdkSparse:
            guard let descriptorSector = header.u64le(28), let descriptorSectors = header.u64le(36),
                  descriptorSector > 0, descriptorSector < UInt64(Int64.max / 512) else { return }
            let length = descriptorSectors == 0 || descriptorSectors > UInt64(Self.maxRegionLength / 512)
                ? Self.maxRegionLength
                : Int(descriptorSectors) * 512
            request(.vmdkDescriptor, offset: Int64(descriptorSector) * 512, length: length)
        case .vhdx:
            // The region table lives at 192 KiB and is 64 KiB long.
            request(.vhdxRegionTable, offset: 0x30000, length: 0x10000)
        default:
            break
        }
        resolveCompletedCaptures()
    }

    private mutating func handle(_ capture: InspectorRegionCapture) {
        let bytes = InspectorBytes(capture.data)
        switch capture.purpose {
        case .vmdkDescriptor:
            vmdkDescriptor = capture.data
        case .vhdxRegionTable:
            guard bytes.matches("regi", at: 0), let count = bytes.u32le(8) else { return }
            for entry in 0 ..< Int(min(count, 2047)) {
                let base = 16 + entry * 32
                guard bytes.matches(VHDXGUID.metadataRegion, at: base),
                      let fileOffset = bytes.u64le(base + 16), let length = bytes.u32le(base + 24),
                      fileOffset < UInt64(Int64.max / 2) else { continue }
                request(.vhdxMetadataTable(region: Int64(fileOffset)), offset: Int64(fileOffset),
                        length: Int(min(length, 0x10000)))
                break  // only the first metadata region; keeps captured memory bounded
            }
        case .vhdxMetadataTable(let region):
            guard bytes.matches("metadata", at: 0), let count = bytes.u16le(10) else { return }
            var sizeRequested = false
            var parametersRequested = false
            for entry in 0 ..< Int(min(count, 2047)) {
                let base = 32 + entry * 32
                guard let itemOffset = bytes.u32le(base + 16) else { break }
                if bytes.matches(VHDXGUID.virtualDiskSize, at: base) {
                    guard !sizeRequested else { continue }
                    sizeRequested = true
                    request(.vhdxVirtualDiskSize, offset: region + Int64(itemOffset), length: 8)
                } else if bytes.matches(VHDXGUID.fileParameters, at: base) {
                    guard !parametersRequested else { continue }
                    parametersRequested = true
                    request(.vhdxFileParameters, offset: region + Int64(itemOffset), length: 8)
                } else if bytes.matches(VHDXGUID.parentLocator, at: base) {
                    vhdxHasParentLocator = true
                }
            }
        case .vhdxVirtualDiskSize:
            vhdxVirtualSize = bytes.u64le(0)
        case .vhdxFileParameters:
            vhdxFileParameterFlags = bytes.u32le(4)
        }
    }

    // MARK: - Per-format inspection (pure)

    /// qcow2 header (big-endian): version @4, backing_file_offset @8, size @24; v3: incompatible_features @72,
    /// header_length @100; header extensions follow the header (type/length pairs, 8-byte aligned).
    private func inspectQCOW2(_ h: InspectorBytes, note: (String) -> Void) -> Int64? {
        let version = h.u32be(4) ?? 0
        if version != 2 && version != 3 {
            note("qcow2 image has unsupported version \(version)")
        }
        if let backing = h.u64be(8), backing != 0 {
            note("qcow2 image has a backing file")
        }
        var extensionsStart = 72
        if version >= 3 {
            let incompatible = h.u64be(72) ?? 0
            if incompatible & (1 << 2) != 0 {
                note("qcow2 image uses an external data file")
            }
            let unknown = incompatible & ~UInt64(0x1F)
            if unknown != 0 {
                note("qcow2 image has unknown incompatible features: 0x\(String(unknown, radix: 16))")
            }
            if let headerLength = h.u32be(100), headerLength >= 104 {
                extensionsStart = Int(min(headerLength, UInt32(Self.prefixLimit)))
            } else {
                extensionsStart = 104
            }
        }
        // Header extensions: 0x44415441 ("DATA") names an external data file.
        var cursor = extensionsStart
        var seen = 0
        while seen < 1024, let type = h.u32be(cursor), let length = h.u32be(cursor + 4), type != 0 {
            if type == 0x4441_5441 {
                note("qcow2 image uses an external data file")
            }
            let padded = (Int(length) + 7) & ~7
            guard padded <= Self.prefixLimit else { break }
            cursor += 8 + padded
            seen += 1
        }
        return h.u64be(24).flatMap { checkedSize($0, "qcow2", note: note) }
    }

    /// VMDK hosted sparse extent header (little-endian): capacity (sectors) @12, descriptorOffset @28,
    /// descriptorSize @36 (sectors).
    private func inspectVMDKSparse(_ h: InspectorBytes, note: (String) -> Void) -> Int64? {
        let capacity = h.u64le(12) ?? 0
        if capacity == 0 {
            // With a zero capacity QEMU takes the disk layout from the embedded descriptor's extents.
            note("vmdk sparse header has zero capacity")
        }
        var descriptors: [VMDKDescriptor] = []
        if let data = vmdkDescriptor ?? pending.first(where: { $0.purpose == .vmdkDescriptor })?.data {
            descriptors.append(VMDKDescriptor(data))
        }
        // QEMU also looks for parentFileNameHint in the fixed window right after the header.
        let window = Array(prefix[Self.headerSize ..< min(prefix.count, Self.headerSize + 20 * 512)])
        let fixedWindow = VMDKDescriptor(window)
        if fixedWindow.parentFileNameHint != nil {
            descriptors.append(fixedWindow)
        }
        for descriptor in descriptors {
            if let createType = descriptor.createType,
               !VMDKDescriptor.allowedCreateTypes.contains(createType) {
                note("vmdk descriptor has unsupported createType \"\(createType)\"")
            }
            let dataExtents = descriptor.extents.filter { $0.type != "ZERO" }
            if dataExtents.count > 1 || dataExtents.contains(where: { $0.type != "SPARSE" }) {
                note("vmdk descriptor references external extents")
            }
            if descriptor.parentFileNameHint != nil {
                note("vmdk image references a parent disk")
            }
        }
        if capacity == 0 {
            return descriptors.first.flatMap { extentBytes($0, note: note) }
        }
        let (bytes, overflow) = capacity.multipliedReportingOverflow(by: 512)
        if overflow {
            note("vmdk virtual size is out of range")
            return nil
        }
        return checkedSize(bytes, "vmdk", note: note)
    }

    /// A text-only VMDK descriptor: every data extent it lists lives in another file.
    private func inspectVMDKTextDescriptor(_ h: InspectorBytes, note: (String) -> Void) -> Int64? {
        let descriptor = VMDKDescriptor(h.bytes)
        if let createType = descriptor.createType {
            if !VMDKDescriptor.allowedCreateTypes.contains(createType) {
                note("vmdk descriptor has unsupported createType \"\(createType)\"")
            }
        } else {
            note("vmdk descriptor has no createType")
        }
        if descriptor.extents.contains(where: { $0.type != "ZERO" }) {
            note("vmdk descriptor references external extents")
        }
        if descriptor.parentFileNameHint != nil {
            note("vmdk image references a parent disk")
        }
        return extentBytes(descriptor, note: note)
    }

    /// Total size of the extents a descriptor lists (what QEMU reports when it follows the descriptor).
    private func extentBytes(_ descriptor: VMDKDescriptor, note: (String) -> Void) -> Int64? {
        var sectors: UInt64 = 0
        for extent in descriptor.extents {
            let (sum, overflow) = sectors.addingReportingOverflow(extent.sectors)
            if overflow { return nil }
            sectors = sum
        }
        let (bytes, overflow) = sectors.multipliedReportingOverflow(by: 512)
        return overflow ? nil : checkedSize(bytes, "vmdk", note: note)
    }

    /// VHD footer (big-endian): current size @48, disk type @60 (2 fixed, 3 dynamic, 4 differencing).
    private func inspectVHDFooter(_ f: InspectorBytes, note: (String) -> Void) -> Int64? {
        switch f.u32be(60) ?? 0 {
        case 2, 3:
            break
        case 4:
            note("vhd image is a differencing disk (references a parent)")
        case let other:
            note("vhd image has unsupported disk type \(other)")
        }
        return f.u64be(48).flatMap { checkedSize($0, "vhd", note: note) }
    }

    /// VDI header (little-endian): signature 0xbeda107f @0x40, image type @0x4c (1 normal, 2 fixed,
    /// 3 undo, 4 differencing), disk size @0x170, parent ("link") UUID @0x1a8.
    private func inspectVDI(_ h: InspectorBytes, note: (String) -> Void) -> Int64? {
        let type = h.u32le(0x4C) ?? 0
        if type != 1 && type != 2 {
            note("vdi image type \(type) is not supported (only normal and fixed images are)")
        }
        if (0x1A8 ..< 0x1B8).contains(where: { (h.u8($0) ?? 0) != 0 }) {
            note("vdi image references a parent disk")
        }
        return h.u64le(0x170).flatMap { checkedSize($0, "vdi", note: note) }
    }

    /// Parallels/ploop header (little-endian): version @16, nb_sectors @36.
    private func inspectPloop(_ h: InspectorBytes, note: (String) -> Void) -> Int64? {
        guard var sectors = h.u64le(36) else { return nil }
        if h.matches("WithoutFreeSpace", at: 0) {
            sectors &= 0xFFFF_FFFF  // the original format only has a 32-bit sector count
        }
        let (bytes, overflow) = sectors.multipliedReportingOverflow(by: 512)
        if overflow {
            note("ploop virtual size is out of range")
            return nil
        }
        return checkedSize(bytes, "ploop", note: note)
    }

    private func checkedSize(_ value: UInt64, _ name: String, note: (String) -> Void) -> Int64? {
        guard value <= UInt64(Int64.max) else {
            note("\(name) virtual size is out of range")
            return nil
        }
        return Int64(value)
    }
}

// MARK: - Support types

fileprivate enum InspectorRegionPurpose: Equatable, Sendable {
    case vmdkDescriptor
    case vhdxRegionTable
    case vhdxMetadataTable(region: Int64)
    case vhdxVirtualDiskSize
    case vhdxFileParameters
}

fileprivate struct InspectorRegionCapture: Sendable {
    var purpose: InspectorRegionPurpose
    var offset: Int64
    var length: Int
    var data: [UInt8]

    var end: Int64 { offset + Int64(length) }
    var nextOffset: Int64 { offset + Int64(data.count) }
    var isComplete: Bool { data.count >= length }
}

/// Bounds-checked reads over a byte array.
fileprivate struct InspectorBytes {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var count: Int { bytes.count }

    func u8(_ at: Int) -> UInt8? {
        at >= 0 && at < bytes.count ? bytes[at] : nil
    }

    private func read(_ at: Int, _ width: Int, bigEndian: Bool) -> UInt64? {
        guard at >= 0, width <= bytes.count, at <= bytes.count - width else { return nil }
        var value: UInt64 = 0
        for i in 0 ..< width {
            let byte = UInt64(bytes[bigEndian ? at + i : at + width - 1 - i])
            value = (value << 8) | byte
        }
        return value
    }

    func u16le(_ at: Int) -> UInt16? { read(at, 2, bigEndian: false).map { UInt16($0) } }
    func u32le(_ at: Int) -> UInt32? { read(at, 4, bigEndian: false).map { UInt32($0) } }
    func u64le(_ at: Int) -> UInt64? { read(at, 8, bigEndian: false) }
    func u32be(_ at: Int) -> UInt32? { read(at, 4, bigEndian: true).map { UInt32($0) } }
    func u64be(_ at: Int) -> UInt64? { read(at, 8, bigEndian: true) }

    func matches(_ pattern: [UInt8], at: Int) -> Bool {
        guard at >= 0, pattern.count <= bytes.count, at <= bytes.count - pattern.count else { return false }
        for (i, byte) in pattern.enumerated() where bytes[at + i] != byte { return false }
        return true
    }

    func matches(_ ascii: String, at: Int) -> Bool {
        matches(Array(ascii.utf8), at: at)
    }
}

/// What the first bytes of the stream look like.
fileprivate enum InspectorSignature: Equatable {
    case none, qcow2, qed, vmdkSparse, vmdkCOWD, vmdkText, vhd, vhdx, vdi, ploop

    static func classify(_ h: InspectorBytes) -> InspectorSignature {
        if h.matches([0x51, 0x46, 0x49, 0xFB], at: 0) { return .qcow2 }      // "QFI\xfb"
        if h.matches([0x51, 0x45, 0x44, 0x00], at: 0) { return .qed }        // "QED\0"
        if h.matches("KDMV", at: 0) { return .vmdkSparse }
        if h.matches("COWD", at: 0) { return .vmdkCOWD }
        if h.matches("conectix", at: 0) { return .vhd }
        if h.matches("vhdxfile", at: 0) { return .vhdx }
        if h.matches("WithoutFreeSpace", at: 0) || h.matches("WithouFreSpacExt", at: 0) { return .ploop }
        if h.u32le(0x40) == 0xBEDA_107F { return .vdi }
        if looksLikeVMDKDescriptor(h.bytes) { return .vmdkText }
        return .none
    }

    /// "# Disk DescriptorFile" header, or (as QEMU probes) a first non-comment line of `version=1|2|3`.
    static func looksLikeVMDKDescriptor(_ bytes: [UInt8]) -> Bool {
        let head = InspectorBytes(bytes)
        if head.matches("# Disk DescriptorFile", at: 0) { return true }
        var index = 0
        let limit = min(bytes.count, 64 * 1024)
        while index < limit {
            var lineEnd = index
            while lineEnd < limit && bytes[lineEnd] != 0x0A { lineEnd += 1 }
            guard lineEnd < limit || lineEnd == bytes.count else { return false }
            let line = bytes[index ..< lineEnd]
            index = lineEnd + 1
            let trimmed = line.drop(while: { $0 == 0x20 || $0 == 0x09 })
            if trimmed.isEmpty || trimmed == [0x0D] || trimmed.first == 0x23 { continue }  // blank or '#'
            var text = trimmed
            if text.last == 0x0D { text = text.dropLast() }
            return text.elementsEqual("version=1".utf8) || text.elementsEqual("version=2".utf8)
                || text.elementsEqual("version=3".utf8)
        }
        return false
    }

    /// ISO 9660 ("CD001") or UDF ("NSR02"/"NSR03") volume descriptors start at 32 KiB, one per 2 KiB sector;
    /// the identifier is at byte 1 of each descriptor.
    static func hasOpticalDiscSignature(_ h: InspectorBytes) -> Bool {
        for sector in 0 ..< 16 {
            let at = 0x8001 + sector * 0x800
            if h.matches("CD001", at: at) || h.matches("NSR02", at: at) || h.matches("NSR03", at: at) {
                return true
            }
        }
        return false
    }
}

/// GUIDs used by VHDX, in on-disk byte order (first three fields little-endian).
fileprivate enum VHDXGUID {
    /// 8B7CA206-4790-4B9A-B8FE-575F050F886E
    static let metadataRegion: [UInt8] = [0x06, 0xA2, 0x7C, 0x8B, 0x90, 0x47, 0x9A, 0x4B,
                                          0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E]
    /// 2FA54224-CD1B-4876-B211-5DBED83BF4B8
    static let virtualDiskSize: [UInt8] = [0x24, 0x42, 0xA5, 0x2F, 0x1B, 0xCD, 0x76, 0x48,
                                           0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8]
    /// CAA16737-FA36-4D43-B3B6-33F0AA44E76B
    static let fileParameters: [UInt8] = [0x37, 0x67, 0xA1, 0xCA, 0x36, 0xFA, 0x43, 0x4D,
                                          0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B]
    /// A8D35F2D-B30B-454D-ABF7-D3D84834AB0C
    static let parentLocator: [UInt8] = [0x2D, 0x5F, 0xD3, 0xA8, 0x0B, 0xB3, 0x4D, 0x45,
                                         0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C]
}

/// The parts of a VMDK text descriptor that matter for safety.
fileprivate struct VMDKDescriptor {
    struct Extent {
        var access: String
        var sectors: UInt64
        var type: String
        var fileName: String?
    }

    static let allowedCreateTypes: Set<String> = ["monolithicSparse", "streamOptimized"]

    var createType: String?
    var parentFileNameHint: String?
    var extents: [Extent] = []

    init(_ raw: [UInt8]) {
        let textBytes = raw.prefix(while: { $0 != 0 })
        let text = String(decoding: textBytes, as: UTF8.self)
        for rawLine in text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if let access = fields.first, ["RW", "RDONLY", "NOACCESS"].contains(access.uppercased()), fields.count >= 3 {
                var fileName: String?
                if let open = line.firstIndex(of: "\"") {
                    let rest = line[line.index(after: open)...]
                    fileName = String(rest.prefix(while: { $0 != "\"" }))
                }
                extents.append(Extent(access: String(access), sectors: UInt64(fields[1]) ?? 0,
                                      type: fields[2].uppercased(), fileName: fileName))
                continue
            }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("\"") { value.removeFirst() }
            if value.hasSuffix("\"") { value.removeLast() }
            switch key {
            case "createtype":
                createType = value
            case "parentfilenamehint":
                if !value.isEmpty { parentFileNameHint = value }
            default:
                break
            }
        }
    }
}
