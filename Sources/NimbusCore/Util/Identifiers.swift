import Foundation

/// Identifier and timestamp formats the OpenStack clients expect.
public enum Identifiers {
    /// Keystone-style id: 32 lower-case hex digits (a UUID without dashes).
    public static func hexID() -> String { Hex.encode(randomUUIDBytes()) }

    /// Standard dashed UUID, as Nova, Glance and Neutron use.
    public static func uuid() -> String {
        let hex = Array(hexID().utf8)
        var out: [UInt8] = []
        out.reserveCapacity(36)
        for (index, digit) in hex.enumerated() {
            if index == 8 || index == 12 || index == 16 || index == 20 { out.append(UInt8(ascii: "-")) }
            out.append(digit)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A random (version 4) UUID's bytes, from the system generator: Foundation's `UUID()`
    /// opens /dev/urandom on every call here, a file open per request for request ids alone.
    static func randomUUIDBytes() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var bytes = withUnsafeBytes(of: (generator.next() as UInt64, generator.next() as UInt64)) { Array($0) }
        bytes[6] = (bytes[6] & 0x0f) | 0x40
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        return bytes
    }

    /// A random password of letters and digits (Nova's generated `adminPass`).
    public static func password(length: Int) -> String {
        let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<length).map { _ in alphabet.randomElement(using: &generator)! })
    }
}

public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    /// Lower-case hex digits of `bytes`, with `separator` between bytes (`aa:bb:…` for key
    /// fingerprints). By hand: `String(format:)` per byte cost more than the hash it printed.
    public static func encode<D: Sequence<UInt8>>(_ bytes: D, separator: String = "") -> String {
        let separatorBytes = Array(separator.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * (2 + separatorBytes.count))
        for byte in bytes {
            if !out.isEmpty { out.append(contentsOf: separatorBytes) }
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

public enum Timestamps {
    /// `2026-11-26T03:00:00.000000Z`: Keystone's token timestamp format (microseconds, Z).
    public static func keystone(_ date: Date) -> String {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down))
        let seconds = micros / 1_000_000
        return iso8601Seconds(Date(timeIntervalSince1970: TimeInterval(seconds))) + "." + padded(Int(micros % 1_000_000), 6) + "Z"
    }

    /// `2026-11-26T03:00:00.000000`: naive UTC with microseconds, how Keystone echoes
    /// user-supplied times such as an application credential's `expires_at`.
    public static func naiveMicroseconds(_ date: Date) -> String {
        String(keystone(date).dropLast())
    }

    /// `2026-11-26T03:00:00Z`.
    public static func iso8601(_ date: Date) -> String { iso8601Seconds(date) + "Z" }

    /// `2026-11-26T03:00:00` in UTC, without zone designator.
    static func iso8601Seconds(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&t, &parts)
        // Hand-formatted: String(format:) was a visible cost in token responses.
        return padded(Int(parts.tm_year) + 1900, 4) + "-" + padded(Int(parts.tm_mon) + 1, 2) + "-" + padded(Int(parts.tm_mday), 2)
            + "T" + padded(Int(parts.tm_hour), 2) + ":" + padded(Int(parts.tm_min), 2) + ":" + padded(Int(parts.tm_sec), 2)
    }

    static func padded(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    /// Parses the ISO 8601 forms clients send (`2026-11-26T03:00:00`, with optional fraction and
    /// `Z` or `±hh:mm`). A string without zone is UTC, as in Keystone.
    ///
    /// Every field must be plain digits within the range Python's `datetime` has (years 1 to
    /// 9999), as the OpenStack services parse these: a longer year once reached `Int32(_:)` and
    /// a fraction such as `.5e300` an infinite date, both of which trapped the process later.
    public static func parse(_ text: String) -> Date? {
        func digits(_ s: Substring) -> Int? {
            guard !s.isEmpty, s.count <= 9, s.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
            return Int(s)
        }
        var s = Substring(text.trimmingCharacters(in: .whitespaces))
        var offset: TimeInterval = 0
        if s.hasSuffix("Z") || s.hasSuffix("z") {
            s.removeLast()
        } else if s.count > 6, let sign = s.dropLast(5).last, sign == "+" || sign == "-", s.dropLast(2).last == ":" {
            let tz = s.suffix(5)
            guard let h = digits(tz.prefix(2)), let m = digits(tz.suffix(2)), h < 24, m < 60 else { return nil }
            offset = TimeInterval(h * 3600 + m * 60) * (sign == "+" ? 1 : -1)
            s.removeLast(6)
        }
        var fraction: TimeInterval = 0
        if let dot = s.firstIndex(of: ".") {
            let decimals = s[s.index(after: dot)...]
            guard !decimals.isEmpty, decimals.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
                  let f = Double("0." + decimals) else { return nil }
            fraction = f
            s = s[..<dot]
        }
        let fields = s.split(whereSeparator: { $0 == "-" || $0 == "T" || $0 == ":" || $0 == " " }).map(digits)
        guard fields.count == 6 || fields.count == 5 else { return nil }
        let v = fields.compactMap { $0 }
        guard v.count == fields.count, (1...9999).contains(v[0]), (1...12).contains(v[1]), (1...31).contains(v[2]), (0...23).contains(v[3]),
              (0...59).contains(v[4]), v.count == 5 || (0...59).contains(v[5]) else { return nil }
        var parts = tm()
        parts.tm_year = Int32(v[0] - 1900)
        parts.tm_mon = Int32(v[1] - 1)
        parts.tm_mday = Int32(v[2])
        parts.tm_hour = Int32(v[3])
        parts.tm_min = Int32(v[4])
        parts.tm_sec = Int32(v.count == 6 ? v[5] : 0)
        let epoch = timegm(&parts)
        return Date(timeIntervalSince1970: TimeInterval(epoch) + fraction - offset)
    }
}
