import Foundation
import XCTest

@testable import Image

final class DiskFormatInspectorTests: XCTestCase {

    // MARK: - Helpers

    /// Feeds `bytes` in chunks of `chunk` bytes (0 = one call with everything).
    private func inspect(_ bytes: [UInt8], chunk: Int = 0) -> FormatReport {
        var inspector = DiskFormatInspector()
        if chunk <= 0 {
            inspector.feed(bytes)
        } else {
            var offset = 0
            while offset < bytes.count {
                let end = min(bytes.count, offset + chunk)
                bytes[offset ..< end].withUnsafeBytes { inspector.feed($0) }
                offset = end
            }
        }
        return inspector.finish()
    }

    /// Feeds with a deterministic mix of chunk sizes between 1 byte and ~96 KiB.
    private func inspectIrregularly(_ bytes: [UInt8]) -> FormatReport {
        var inspector = DiskFormatInspector()
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var offset = 0
        while offset < bytes.count {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let size = [1, 3, 511, 512, 513, 4096, 65536, 98_317][Int(state >> 61)]
            let end = min(bytes.count, offset + size)
            inspector.feed(Array(bytes[offset ..< end]))
            offset = end
        }
        return inspector.finish()
    }

    /// Asserts that every chunking strategy yields the same report, and returns it.
    @discardableResult
    private func assertChunkingInvariant(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> FormatReport {
        let whole = inspect(bytes)
        var sizes = [7, 4093, 65536, 3 << 20]
        if bytes.count <= 4 << 20 { sizes.insert(1, at: 0) }
        for size in sizes {
            XCTAssertEqual(inspect(bytes, chunk: size), whole, "chunk size \(size)", file: file, line: line)
        }
        XCTAssertEqual(inspectIrregularly(bytes), whole, "irregular chunks", file: file, line: line)
        return whole
    }

    private func putBE<T: FixedWidthInteger>(_ value: T, into bytes: inout [UInt8], at offset: Int) {
        withUnsafeBytes(of: value.bigEndian) { raw in
            for (i, b) in raw.enumerated() { bytes[offset + i] = b }
        }
    }

    private func putLE<T: FixedWidthInteger>(_ value: T, into bytes: inout [UInt8], at offset: Int) {
        withUnsafeBytes(of: value.littleEndian) { raw in
            for (i, b) in raw.enumerated() { bytes[offset + i] = b }
        }
    }

    private func put(_ text: String, into bytes: inout [UInt8], at offset: Int) {
        for (i, b) in text.utf8.enumerated() { bytes[offset + i] = b }
    }

    private func qcow2Header(version: UInt32, size: UInt64, backingOffset: UInt64 = 0,
                             incompatible: UInt64 = 0, length: Int = 512) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: length)
        bytes[0 ..< 4] = [0x51, 0x46, 0x49, 0xFB]
        putBE(version, into: &bytes, at: 4)
        putBE(backingOffset, into: &bytes, at: 8)
        if backingOffset != 0 {
            putBE(UInt32(8), into: &bytes, at: 16)
        }
        putBE(UInt32(16), into: &bytes, at: 20)  // cluster_bits
        putBE(size, into: &bytes, at: 24)
        if version >= 3 && length >= 104 {
            putBE(incompatible, into: &bytes, at: 72)
            putBE(UInt32(4), into: &bytes, at: 96)   // refcount_order
            putBE(UInt32(104), into: &bytes, at: 100) // header_length
        }
        return bytes
    }

    private func vmdkSparse(capacitySectors: UInt64, descriptor: String) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 64 * 1024)
        put("KDMV", into: &bytes, at: 0)
        putLE(UInt32(1), into: &bytes, at: 4)
        putLE(UInt32(3), into: &bytes, at: 8)
        putLE(capacitySectors, into: &bytes, at: 12)
        putLE(UInt64(128), into: &bytes, at: 20)  // grain size
        putLE(UInt64(1), into: &bytes, at: 28)    // descriptor offset (sectors)
        putLE(UInt64(20), into: &bytes, at: 36)   // descriptor size (sectors)
        put(descriptor, into: &bytes, at: 512)
        return bytes
    }

    private func vhdFooter(currentSize: UInt64, diskType: UInt32) -> [UInt8] {
        var footer = [UInt8](repeating: 0, count: 512)
        put("conectix", into: &footer, at: 0)
        putBE(UInt32(2), into: &footer, at: 8)
        putBE(UInt32(0x0001_0000), into: &footer, at: 12)
        putBE(diskType == 2 ? UInt64.max : UInt64(512), into: &footer, at: 16)
        putBE(currentSize, into: &footer, at: 40)
        putBE(currentSize, into: &footer, at: 48)
        putBE(diskType, into: &footer, at: 60)
        return footer
    }

    /// Minimal VHDX: file identifier, region table at 192 KiB, metadata region at `metadataOffset`
    /// holding the virtual disk size (and optionally a parent locator entry).
    private func vhdx(virtualSize: UInt64, metadataOffset: Int = 2 << 20, withParent: Bool = false) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: metadataOffset + (1 << 20))
        put("vhdxfile", into: &bytes, at: 0)
        put("head", into: &bytes, at: 0x10000)
        put("head", into: &bytes, at: 0x20000)
        for table in [0x30000, 0x40000] {
            put("regi", into: &bytes, at: table)
            putLE(UInt32(1), into: &bytes, at: table + 8)
            let metadataGUID: [UInt8] = [0x06, 0xA2, 0x7C, 0x8B, 0x90, 0x47, 0x9A, 0x4B,
                                         0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E]
            bytes.replaceSubrange(table + 16 ..< table + 32, with: metadataGUID)
            putLE(UInt64(metadataOffset), into: &bytes, at: table + 32)
            putLE(UInt32(1 << 20), into: &bytes, at: table + 40)
            putLE(UInt32(1), into: &bytes, at: table + 44)
        }
        put("metadata", into: &bytes, at: metadataOffset)
        putLE(UInt16(withParent ? 2 : 1), into: &bytes, at: metadataOffset + 10)
        let sizeGUID: [UInt8] = [0x24, 0x42, 0xA5, 0x2F, 0x1B, 0xCD, 0x76, 0x48,
                                 0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8]
        let entry = metadataOffset + 32
        bytes.replaceSubrange(entry ..< entry + 16, with: sizeGUID)
        putLE(UInt32(0x10000), into: &bytes, at: entry + 16)
        putLE(UInt32(8), into: &bytes, at: entry + 20)
        putLE(virtualSize, into: &bytes, at: metadataOffset + 0x10000)
        if withParent {
            let parentGUID: [UInt8] = [0x2D, 0x5F, 0xD3, 0xA8, 0x0B, 0xB3, 0x4D, 0x45,
                                       0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C]
            let second = entry + 32
            bytes.replaceSubrange(second ..< second + 16, with: parentGUID)
            putLE(UInt32(0x10008), into: &bytes, at: second + 16)
            putLE(UInt32(64), into: &bytes, at: second + 20)
        }
        return bytes
    }

    // MARK: - Hand-crafted qcow2

    func testQCOW2Version2Header() {
        let report = assertChunkingInvariant(qcow2Header(version: 2, size: 1 << 30))
        XCTAssertEqual(report, FormatReport(detected: .qcow2, virtualSize: 1 << 30, problems: []))
    }

    func testQCOW2Version3HeaderWithKnownFeatureBits() {
        // dirty, corrupt, compression type and extended L2 are known bits and not safety problems.
        let report = assertChunkingInvariant(qcow2Header(version: 3, size: 5 << 20, incompatible: 0b11011))
        XCTAssertEqual(report, FormatReport(detected: .qcow2, virtualSize: 5 << 20, problems: []))
    }

    func testQCOW2BackingFileIsAProblem() {
        var bytes = qcow2Header(version: 3, size: 1 << 20, backingOffset: 0x1D0)
        put("base.img", into: &bytes, at: 0x1D0)
        let report = assertChunkingInvariant(bytes)
        XCTAssertEqual(report.detected, .qcow2)
        XCTAssertEqual(report.problems, ["qcow2 image has a backing file"])
    }

    func testQCOW2ExternalDataFileIsAProblem() {
        let report = assertChunkingInvariant(qcow2Header(version: 3, size: 1 << 20, incompatible: 1 << 2))
        XCTAssertEqual(report.detected, .qcow2)
        XCTAssertEqual(report.problems, ["qcow2 image uses an external data file"])
    }

    func testQCOW2DataFileHeaderExtensionIsAProblem() {
        var bytes = qcow2Header(version: 3, size: 1 << 20)
        putBE(UInt32(0x4441_5441), into: &bytes, at: 104)
        putBE(UInt32(8), into: &bytes, at: 108)
        put("ext.data", into: &bytes, at: 112)
        XCTAssertEqual(inspect(bytes).problems, ["qcow2 image uses an external data file"])
    }

    func testQCOW2UnknownIncompatibleFeatureIsAProblem() {
        let report = inspect(qcow2Header(version: 3, size: 1 << 20, incompatible: 1 << 5))
        XCTAssertEqual(report.detected, .qcow2)
        XCTAssertEqual(report.problems.count, 1)
        XCTAssertTrue(report.problems[0].hasPrefix("qcow2 image has unknown incompatible features"))
    }

    func testQCOW2IncompatibleFeaturesIgnoredForVersion2() {
        // Version 2 headers end at byte 72; whatever follows is not a feature field.
        var bytes = qcow2Header(version: 2, size: 1 << 20)
        putBE(UInt64.max, into: &bytes, at: 72)
        XCTAssertEqual(inspect(bytes).problems, [])
    }

    func testQCOW2UnsupportedVersionIsNotRaw() {
        let report = inspect(qcow2Header(version: 1, size: 1 << 20))
        XCTAssertEqual(report.detected, .qcow2)
        XCTAssertEqual(report.problems, ["qcow2 image has unsupported version 1"])
        XCTAssertFalse(declaredFormatMatches(.raw, report))
    }

    func testTruncatedQCOW2HeaderIsRawButFlagged() {
        let report = assertChunkingInvariant(qcow2Header(version: 3, size: 1 << 20, length: 200))
        XCTAssertEqual(report.detected, .raw)
        XCTAssertEqual(report.virtualSize, 200)
        XCTAssertEqual(report.problems.count, 1)
        XCTAssertTrue(report.problems[0].contains("too short"))
    }

    func testQCOW2DeclaredRawDoesNotMatch() {
        let report = inspect(qcow2Header(version: 3, size: 1 << 20))
        XCTAssertFalse(declaredFormatMatches(.raw, report))
        XCTAssertFalse(declaredFormatMatches(.ami, report))
        XCTAssertTrue(declaredFormatMatches(.qcow2, report))
    }

    // MARK: - Raw, MBR/GPT, ISO

    func testEmptyAndTinyStreamsAreRaw() {
        XCTAssertEqual(DiskFormatInspector().finish(), FormatReport(detected: .raw, virtualSize: 0, problems: []))
        XCTAssertEqual(inspect([1, 2, 3]), FormatReport(detected: .raw, virtualSize: 3, problems: []))
        XCTAssertEqual(inspect([0x51, 0x46, 0x49]), FormatReport(detected: .raw, virtualSize: 3, problems: []))
    }

    func testRawBytes() {
        var state: UInt32 = 12345
        let bytes = (0 ..< 300_000).map { _ -> UInt8 in
            state = state &* 1_103_515_245 &+ 12345
            return UInt8(truncatingIfNeeded: state >> 16)
        }
        let report = assertChunkingInvariant(bytes)
        XCTAssertEqual(report, FormatReport(detected: .raw, virtualSize: 300_000, problems: []))
        XCTAssertTrue(declaredFormatMatches(.raw, report))
        XCTAssertTrue(declaredFormatMatches(.ami, report))
        XCTAssertTrue(declaredFormatMatches(.ari, report))
        XCTAssertTrue(declaredFormatMatches(.aki, report))
        XCTAssertFalse(declaredFormatMatches(.qcow2, report))
        XCTAssertFalse(declaredFormatMatches(.iso, report))
    }

    func testMBRAndGPTDisksAreRaw() {
        var bytes = [UInt8](repeating: 0, count: 64 * 1024)
        bytes[510] = 0x55
        bytes[511] = 0xAA
        bytes[446 + 4] = 0xEE  // protective MBR partition
        put("EFI PART", into: &bytes, at: 512)
        let report = assertChunkingInvariant(bytes)
        XCTAssertEqual(report, FormatReport(detected: .raw, virtualSize: 64 * 1024, problems: []))
    }

    func testISO9660() {
        var bytes = [UInt8](repeating: 0, count: 0x9000 + 4096)
        bytes[0x8000] = 1
        put("CD001", into: &bytes, at: 0x8001)
        let report = assertChunkingInvariant(bytes)
        XCTAssertEqual(report, FormatReport(detected: .iso, virtualSize: Int64(bytes.count), problems: []))
        XCTAssertTrue(declaredFormatMatches(.iso, report))
        XCTAssertFalse(declaredFormatMatches(.raw, report))
        XCTAssertFalse(declaredFormatMatches(.qcow2, report))
    }

    func testISOSignatureInLaterVolumeDescriptor() {
        var bytes = [UInt8](repeating: 0, count: 0xA000)
        put("BEA01", into: &bytes, at: 0x8001)
        put("NSR02", into: &bytes, at: 0x8801)
        put("TEA01", into: &bytes, at: 0x9001)
        XCTAssertEqual(inspect(bytes).detected, .iso)
    }

    func testQCOW2WithISOSignatureIsAmbiguous() {
        var bytes = qcow2Header(version: 3, size: 1 << 20, length: 0x9000)
        put("CD001", into: &bytes, at: 0x8001)
        let report = inspect(bytes)
        XCTAssertEqual(report.detected, .qcow2)
        XCTAssertEqual(report.problems, ["image matches multiple formats: qcow2, iso"])
    }

    // MARK: - Hand-crafted VMDK, VHD, VHDX, VDI, ploop

    func testVMDKMonolithicSparse() {
        let descriptor = "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\n\n# Extent description\nRW 204800 SPARSE \"disk.vmdk\"\n"
        let report = assertChunkingInvariant(vmdkSparse(capacitySectors: 204_800, descriptor: descriptor))
        XCTAssertEqual(report, FormatReport(detected: .vmdk, virtualSize: 204_800 * 512, problems: []))
        XCTAssertTrue(declaredFormatMatches(.vmdk, report))
        XCTAssertFalse(declaredFormatMatches(.raw, report))
    }

    func testVMDKSparseWithFlatExtentsInEmbeddedDescriptor() {
        let descriptor = "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicSparse\"\nRW 2048 SPARSE \"disk.vmdk\"\nRW 2048 FLAT \"/etc/shadow\" 0\n"
        let report = inspect(vmdkSparse(capacitySectors: 4096, descriptor: descriptor))
        XCTAssertEqual(report.detected, .vmdk)
        XCTAssertEqual(report.problems, ["vmdk descriptor references external extents"])
    }

    func testVMDKSparseWithZeroCapacityAndForeignCreateType() {
        let descriptor = "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"/dev/sda\" 0\n"
        let report = inspect(vmdkSparse(capacitySectors: 0, descriptor: descriptor))
        XCTAssertEqual(report.detected, .vmdk)
        XCTAssertEqual(Set(report.problems), [
            "vmdk sparse header has zero capacity",
            "vmdk descriptor has unsupported createType \"monolithicFlat\"",
            "vmdk descriptor references external extents",
        ])
    }

    func testVMDKSparseWithParentIsAProblem() {
        let descriptor = "# Disk DescriptorFile\nversion=1\nparentCID=abcdef01\ncreateType=\"monolithicSparse\"\nparentFileNameHint=\"/var/lib/base.vmdk\"\nRW 2048 SPARSE \"child.vmdk\"\n"
        let report = inspect(vmdkSparse(capacitySectors: 2048, descriptor: descriptor))
        XCTAssertEqual(report.problems, ["vmdk image references a parent disk"])
    }

    /// A descriptor offset just under `Int64.max / 512` sectors put the end of the region to
    /// capture past `Int64.max`: the sum trapped (issue #12). Now the region is never captured,
    /// and the header alone decides.
    func testVMDKDescriptorOffsetNearInt64MaxIsIgnored() {
        var bytes = vmdkSparse(capacitySectors: 2048, descriptor: "")
        putLE(UInt64(Int64.max / 512 - 1), into: &bytes, at: 28)
        putLE(UInt64(0), into: &bytes, at: 36)  // no size: the inspector asks for its largest region
        let report = assertChunkingInvariant(bytes)
        XCTAssertEqual(report.detected, .vmdk)
        XCTAssertEqual(report.virtualSize, 2048 * 512)
    }

    func testVMDKFlatDescriptorIsUnsafe() {
        let text = "# Disk DescriptorFile\nversion=1\nCID=9330205b\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n# Extent description\nRW 6144 FLAT \"flat-flat.vmdk\" 0\n"
        let report = assertChunkingInvariant(Array(text.utf8))
        XCTAssertEqual(report.detected, .vmdk)
        XCTAssertEqual(report.virtualSize, 6144 * 512)
        XCTAssertTrue(report.problems.contains("vmdk descriptor references external extents"))
        XCTAssertFalse(declaredFormatMatches(.raw, report))
    }

    func testVMDKDescriptorWithoutBannerIsStillVMDK() {
        let text = "\n# a comment\nversion=1\ncreateType=\"vmfs\"\nRW 100 VMFS \"/dev/sdb\"\n"
        let report = inspect(Array(text.utf8))
        XCTAssertEqual(report.detected, .vmdk)
        XCTAssertTrue(report.problems.contains("vmdk descriptor references external extents"))
    }

    func testVHDFixedFooterAtEnd() {
        let size = 3 << 20  // beyond the 1 MiB prefix, so only the trailing window can see the footer
        let bytes = [UInt8](repeating: 0, count: size) + vhdFooter(currentSize: UInt64(size), diskType: 2)
        let report = assertChunkingInvariant(bytes)
        XCTAssertEqual(report, FormatReport(detected: .vhd, virtualSize: Int64(size), problems: []))
        XCTAssertTrue(declaredFormatMatches(.vhd, report))
        XCTAssertFalse(declaredFormatMatches(.raw, report))
        XCTAssertFalse(declaredFormatMatches(.vhdx, report))
    }

    func testVHDDynamicAndDifferencing() {
        let footer = vhdFooter(currentSize: 10 << 20, diskType: 3)
        var bytes = footer + [UInt8](repeating: 0, count: 2048) + footer
        put("cxsparse", into: &bytes, at: 512)
        XCTAssertEqual(assertChunkingInvariant(bytes), FormatReport(detected: .vhd, virtualSize: 10 << 20, problems: []))

        let diff = vhdFooter(currentSize: 10 << 20, diskType: 4)
        let report = inspect(diff + [UInt8](repeating: 0, count: 2048) + diff)
        XCTAssertEqual(report.detected, .vhd)
        XCTAssertEqual(report.problems, ["vhd image is a differencing disk (references a parent)"])
    }

    func testVHDXWithMetadataBeyondPrefix() {
        let report = assertChunkingInvariant(vhdx(virtualSize: 40 << 20))
        XCTAssertEqual(report, FormatReport(detected: .vhdx, virtualSize: 40 << 20, problems: []))
        XCTAssertTrue(declaredFormatMatches(.vhdx, report))
        XCTAssertFalse(declaredFormatMatches(.vhd, report))
    }

    func testVHDXDifferencingIsAProblem() {
        let report = inspect(vhdx(virtualSize: 1 << 30, metadataOffset: 1 << 20, withParent: true), chunk: 65536)
        XCTAssertEqual(report.detected, .vhdx)
        XCTAssertEqual(report.virtualSize, 1 << 30)
        XCTAssertEqual(report.problems, ["vhdx image is a differencing disk (references a parent)"])
    }

    func testVHDXTruncatedBeforeMetadataHasNoSize() {
        let bytes = Array(vhdx(virtualSize: 1 << 30).prefix(1 << 20))
        XCTAssertEqual(inspect(bytes), FormatReport(detected: .vhdx, virtualSize: nil, problems: []))
    }

    func testVDI() {
        var bytes = [UInt8](repeating: 0, count: 4096)
        put("<<< Oracle VM VirtualBox Disk Image >>>\n", into: &bytes, at: 0)
        putLE(UInt32(0xBEDA_107F), into: &bytes, at: 0x40)
        putLE(UInt32(0x0001_0001), into: &bytes, at: 0x44)
        putLE(UInt32(0x190), into: &bytes, at: 0x48)
        putLE(UInt32(1), into: &bytes, at: 0x4C)
        putLE(UInt64(12 << 20), into: &bytes, at: 0x170)
        let report = assertChunkingInvariant(bytes)
        XCTAssertEqual(report, FormatReport(detected: .vdi, virtualSize: 12 << 20, problems: []))
        XCTAssertTrue(declaredFormatMatches(.vdi, report))

        putLE(UInt32(4), into: &bytes, at: 0x4C)
        bytes[0x1A8] = 0x42
        XCTAssertEqual(inspect(bytes).problems.count, 2)
    }

    func testPloop() {
        var bytes = [UInt8](repeating: 0, count: 4096)
        put("WithouFreSpacExt", into: &bytes, at: 0)
        putLE(UInt32(2), into: &bytes, at: 16)
        putLE(UInt64(18432), into: &bytes, at: 36)
        let report = assertChunkingInvariant(bytes)
        XCTAssertEqual(report, FormatReport(detected: .ploop, virtualSize: 18432 * 512, problems: []))
        XCTAssertTrue(declaredFormatMatches(.ploop, report))
    }

    func testQEDHeaderIsFlagged() {
        var bytes = [UInt8](repeating: 0, count: 4096)
        bytes[0 ..< 4] = [0x51, 0x45, 0x44, 0x00]
        let report = inspect(bytes)
        XCTAssertEqual(report.detected, .raw)
        XCTAssertEqual(report.problems.count, 1)
    }

    func testVMDKCOWDIsFlagged() {
        var bytes = [UInt8](repeating: 0, count: 4096)
        put("COWD", into: &bytes, at: 0)
        putLE(UInt32(1), into: &bytes, at: 4)
        putLE(UInt32(2048), into: &bytes, at: 12)
        let report = inspect(bytes)
        XCTAssertEqual(report, FormatReport(detected: .vmdk, virtualSize: 2048 * 512,
                                            problems: ["vmdk COWD (vmfsSparse) images are not supported"]))
    }

    func testDeclaredFormatMatrix() {
        for detected in DiskFormat.allCases {
            let report = FormatReport(detected: detected, virtualSize: nil, problems: [])
            for declared in DiskFormat.allCases {
                let expected: Bool
                switch declared {
                case .raw, .ami, .ari, .aki: expected = detected == .raw
                default: expected = detected == declared
                }
                XCTAssertEqual(declaredFormatMatches(declared, report), expected, "declared \(declared) detected \(detected)")
            }
        }
    }

    func testLargeRawStreamStaysFast() {
        var inspector = DiskFormatInspector()
        let chunk = [UInt8](repeating: 0xAB, count: 4 << 20)
        for _ in 0 ..< 64 { inspector.feed(chunk) }  // 256 MiB
        XCTAssertEqual(inspector.finish(), FormatReport(detected: .raw, virtualSize: 256 << 20, problems: []))
    }

    // MARK: - Images produced by qemu-img

    private static func qemuImgPath() -> String? {
        var candidates = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/qemu-img" }
        candidates += ["/usr/bin/qemu-img", "/usr/local/bin/qemu-img", "/opt/homebrew/bin/qemu-img"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    private final class Scratch {
        let directory: URL
        let qemuImg: String

        init(qemuImg: String) throws {
            self.qemuImg = qemuImg
            directory = FileManager.default.temporaryDirectory
                .appendingPathComponent("nimbus-inspector-\(UUID().uuidString)", isDirectory: true)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }

        deinit { try? FileManager.default.removeItem(at: directory) }

        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

        @discardableResult
        func run(_ arguments: [String]) throws -> Data {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: qemuImg)
            process.arguments = arguments
            process.currentDirectoryURL = directory
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw NSError(domain: "qemu-img", code: Int(process.terminationStatus), userInfo: [
                    NSLocalizedDescriptionKey: "qemu-img \(arguments.joined(separator: " ")): \(String(decoding: data, as: UTF8.self))",
                ])
            }
            return data
        }

        /// `qemu-img create` then return the file's bytes.
        func create(_ name: String, _ options: [String], size: String) throws -> [UInt8] {
            try run(["create"] + options + [path(name), size])
            return try bytes(name)
        }

        func bytes(_ name: String) throws -> [UInt8] {
            [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(name))))
        }

        /// Virtual size according to `qemu-img info` (optionally forcing the format).
        func virtualSize(_ name: String, format: String? = nil) throws -> Int64 {
            var arguments = ["info", "--output=json"]
            if let format { arguments += ["-f", format] }
            let data = try run(arguments + [path(name)])
            let json = try JSONSerialization.jsonObject(with: data) as? [String: Any]
            guard let size = (json?["virtual-size"] as? NSNumber)?.int64Value else {
                throw NSError(domain: "qemu-img", code: -1)
            }
            return size
        }
    }

    private func scratch() throws -> Scratch {
        guard let qemuImg = Self.qemuImgPath() else {
            throw XCTSkip("qemu-img is not installed")
        }
        return try Scratch(qemuImg: qemuImg)
    }

    func testQemuQCOW2Variants() throws {
        let s = try scratch()

        let v2 = try s.create("v2.qcow2", ["-f", "qcow2", "-o", "compat=0.10"], size: "10M")
        XCTAssertEqual(Array(v2[4 ..< 8]), [0, 0, 0, 2])
        XCTAssertEqual(assertChunkingInvariant(v2),
                       FormatReport(detected: .qcow2, virtualSize: try s.virtualSize("v2.qcow2"), problems: []))

        let v3 = try s.create("base.qcow2", ["-f", "qcow2", "-o", "compat=1.1"], size: "20M")
        XCTAssertEqual(Array(v3[4 ..< 8]), [0, 0, 0, 3])
        let v3Report = assertChunkingInvariant(v3)
        XCTAssertEqual(v3Report, FormatReport(detected: .qcow2, virtualSize: 20 << 20, problems: []))
        XCTAssertFalse(declaredFormatMatches(.raw, v3Report))
        XCTAssertTrue(declaredFormatMatches(.qcow2, v3Report))

        let overlay = try s.create("over.qcow2", ["-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2"], size: "20M")
        let overlayReport = assertChunkingInvariant(overlay)
        XCTAssertEqual(overlayReport.detected, .qcow2)
        XCTAssertEqual(overlayReport.virtualSize, try s.virtualSize("over.qcow2"))
        XCTAssertEqual(overlayReport.problems, ["qcow2 image has a backing file"])

        let withData = try s.create("data.qcow2", ["-f", "qcow2", "-o", "data_file=\(s.path("ext.data"))"], size: "5M")
        let dataReport = assertChunkingInvariant(withData)
        XCTAssertEqual(dataReport.detected, .qcow2)
        XCTAssertEqual(dataReport.virtualSize, 5 << 20)
        XCTAssertEqual(dataReport.problems, ["qcow2 image uses an external data file"])

        // The external data file itself is plain raw.
        XCTAssertEqual(inspect(try s.bytes("ext.data"), chunk: 1 << 20),
                       FormatReport(detected: .raw, virtualSize: 5 << 20, problems: []))
    }

    func testQemuVMDK() throws {
        let s = try scratch()

        let sparse = try s.create("sparse.vmdk", ["-f", "vmdk", "-o", "subformat=monolithicSparse"], size: "30M")
        XCTAssertEqual(assertChunkingInvariant(sparse),
                       FormatReport(detected: .vmdk, virtualSize: try s.virtualSize("sparse.vmdk"), problems: []))

        let stream = try s.create("stream.vmdk", ["-f", "vmdk", "-o", "subformat=streamOptimized"], size: "7M")
        XCTAssertEqual(assertChunkingInvariant(stream),
                       FormatReport(detected: .vmdk, virtualSize: try s.virtualSize("stream.vmdk"), problems: []))

        let flat = try s.create("flat.vmdk", ["-f", "vmdk", "-o", "subformat=monolithicFlat"], size: "3M")
        let flatReport = assertChunkingInvariant(flat)
        XCTAssertEqual(flatReport.detected, .vmdk)
        XCTAssertEqual(flatReport.virtualSize, try s.virtualSize("flat.vmdk"))
        XCTAssertTrue(flatReport.problems.contains("vmdk descriptor references external extents"))
        XCTAssertFalse(declaredFormatMatches(.raw, flatReport))

        // The flat extent is raw data.
        XCTAssertEqual(inspect(try s.bytes("flat-flat.vmdk")).detected, .raw)

        _ = try s.create("split.vmdk", ["-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse"], size: "5M")
        XCTAssertTrue(inspect(try s.bytes("split.vmdk")).problems.contains("vmdk descriptor references external extents"))
        // Its extent file is a bare KDMV sparse extent (no embedded descriptor text).
        let extent = inspect(try s.bytes("split-s001.vmdk"))
        XCTAssertEqual(extent.detected, .vmdk)
        XCTAssertEqual(extent.virtualSize, 5 << 20)
    }

    func testQemuVHD() throws {
        let s = try scratch()

        let fixed = try s.create("fixed.vhd", ["-f", "vpc", "-o", "subformat=fixed"], size: "3M")
        XCTAssertEqual(assertChunkingInvariant(fixed),
                       FormatReport(detected: .vhd, virtualSize: try s.virtualSize("fixed.vhd", format: "vpc"), problems: []))

        let dynamic = try s.create("dynamic.vhd", ["-f", "vpc", "-o", "subformat=dynamic"], size: "10M")
        let dynamicReport = assertChunkingInvariant(dynamic)
        XCTAssertEqual(dynamicReport,
                       FormatReport(detected: .vhd, virtualSize: try s.virtualSize("dynamic.vhd"), problems: []))
        XCTAssertTrue(declaredFormatMatches(.vhd, dynamicReport))
        XCTAssertFalse(declaredFormatMatches(.raw, dynamicReport))
    }

    func testQemuVHDX() throws {
        let s = try scratch()
        let image = try s.create("disk.vhdx", ["-f", "vhdx"], size: "40M")
        let report = assertChunkingInvariant(image)
        XCTAssertEqual(report, FormatReport(detected: .vhdx, virtualSize: try s.virtualSize("disk.vhdx"), problems: []))
        XCTAssertTrue(declaredFormatMatches(.vhdx, report))
    }

    func testQemuVDI() throws {
        let s = try scratch()
        let dynamic = try s.create("dynamic.vdi", ["-f", "vdi"], size: "12M")
        XCTAssertEqual(assertChunkingInvariant(dynamic),
                       FormatReport(detected: .vdi, virtualSize: try s.virtualSize("dynamic.vdi"), problems: []))
        let fixed = try s.create("static.vdi", ["-f", "vdi", "-o", "static=on"], size: "3M")
        XCTAssertEqual(assertChunkingInvariant(fixed),
                       FormatReport(detected: .vdi, virtualSize: try s.virtualSize("static.vdi"), problems: []))
    }

    func testQemuParallels() throws {
        let s = try scratch()
        let image = try s.create("disk.ploop", ["-f", "parallels"], size: "9M")
        XCTAssertEqual(assertChunkingInvariant(image),
                       FormatReport(detected: .ploop, virtualSize: try s.virtualSize("disk.ploop"), problems: []))
    }

    func testQemuRaw() throws {
        let s = try scratch()
        let image = try s.create("disk.raw", ["-f", "raw"], size: "2M")
        let report = assertChunkingInvariant(image)
        XCTAssertEqual(report, FormatReport(detected: .raw, virtualSize: try s.virtualSize("disk.raw"), problems: []))
        XCTAssertTrue(declaredFormatMatches(.raw, report))
    }
}
