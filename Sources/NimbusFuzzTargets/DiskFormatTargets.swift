import Image

enum DiskFormatTargets {
    /// The input is the start of an upload (or a whole small one). It is inspected twice: fed
    /// in chunks of varying size (1 byte, around the 512-byte header, up to 1 MiB; chosen by a
    /// generator seeded from the input, so a run replays exactly) and fed at once. The
    /// inspector promises the same report however the stream is cut, so they must agree.
    static func stream(_ data: [UInt8]) {
        inspectBothWays(data, seed: fnv1a(data))
    }

    /// Records `offset (u32, little-endian, modulo 4 MiB) | length (u16, little-endian) |
    /// bytes`: the image is zeros up to the furthest record's end with each record's bytes at
    /// its offset (later records win; the last may be cut short by the end of the input). This
    /// reaches what a plain input of a few KB cannot: the VHDX region table at 192 KiB, its
    /// metadata region wherever the table points, VMDK descriptors, ISO 9660 descriptors at
    /// 32 KiB, footers after long runs of zeros. Then as `stream`.
    static func sparse(_ data: [UInt8]) {
        inspectBothWays(sparseImage(data), seed: fnv1a(data))
    }

    static let sparseLimit = 4 << 20

    static func sparseImage(_ data: [UInt8]) -> [UInt8] {
        var image: [UInt8] = []
        var i = 0
        while i + 6 <= data.count {
            let offset = Int(UInt32(data[i]) | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2]) << 16 | UInt32(data[i + 3]) << 24) % sparseLimit
            let length = Int(UInt16(data[i + 4]) | UInt16(data[i + 5]) << 8)
            i += 6
            let bytes = data[i ..< min(data.count, i + length)]
            i += bytes.count
            let end = min(offset + bytes.count, sparseLimit)
            if image.count < end { image.append(contentsOf: repeatElement(0, count: end - image.count)) }
            image.replaceSubrange(offset ..< end, with: bytes.prefix(end - offset))
        }
        return image
    }

    static func inspectBothWays(_ image: [UInt8], seed: UInt64) {
        var whole = DiskFormatInspector()
        whole.feed(image)
        let expected = whole.finish()

        var chunked = DiskFormatInspector()
        var random = SplitMix64(seed)
        image.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = min(bytes.count - offset, chunkSize(&random))
                chunked.feed(UnsafeRawBufferPointer(rebasing: bytes[offset ..< offset + n]))
                offset += n
            }
        }
        chunked.feed([])
        let report = chunked.finish()

        guard report == expected else {
            fatalError("chunked feed reported \(report), a single feed \(expected)")
        }
        if let size = report.virtualSize, size < 0 {
            fatalError("negative virtual size \(size) for \(report.detected)")
        }
        _ = declaredFormatMatches(report.detected, report)
    }

    /// Sizes that straddle the header and footer boundaries most often, and larger ones so a
    /// 4 MiB sparse image takes tens of calls rather than millions.
    static func chunkSize(_ random: inout SplitMix64) -> Int {
        let r = random.next()
        switch r % 8 {
        case 0: return 1
        case 1: return 511
        case 2: return 512
        case 3: return 513
        case 4: return Int((r >> 8) % 64) + 1
        case 5: return Int((r >> 8) % 4096) + 1
        case 6: return 65536
        default: return Int((r >> 8) % (1 << 20)) + 1
        }
    }

    static func fnv1a(_ data: [UInt8]) -> UInt64 {
        data.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    }
}

/// A small deterministic generator (SplitMix64), so the chunking depends only on the input.
struct SplitMix64 {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
