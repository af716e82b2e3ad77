import Foundation
import Logging
import NimbusCore
import NimbusStore
import XCTest

/// Shared parsing that request input reaches, fed values that once trapped (issue #12).
final class BadInputTests: XCTestCase {
    /// A year past `Int32` trapped in `Int32(_:)`; a `.5e300` fraction made an infinite date
    /// whose formatting trapped; signs and exponents passed as digits. Each is refused now,
    /// as Python's `datetime` (years 1–9999) refuses them in the OpenStack services.
    func testTimestampsOutOfRange() {
        for text in ["99999999999-01-01T00:00:00", "2026-01-01T00:00:00.5e300", "2026-01-01T00:00:00.", "2026-01-01T00:00:99999999999",
                     "2026-01-01T00:00:60", "0000-01-01T00:00:00", "10000-01-01T00:00:00", "+2026-01-01T00:00:00", "2026-01-01T00:00:00+99:00",
                     "2026-01-01T00:00:00+-1:00", "2026-01-01T00:00:00.-5"] {
            XCTAssertNil(Timestamps.parse(text), text)
        }
        XCTAssertEqual(Timestamps.parse("9999-12-31T23:59:59")?.timeIntervalSince1970, 253_402_300_799)
        XCTAssertEqual(Timestamps.parse("0001-01-01T00:00:00")?.timeIntervalSince1970, -62_135_596_800)
        XCTAssertEqual(Timestamps.parse("2027-01-15T08:00:00.25")?.timeIntervalSince1970, 1_800_000_000.25)
        XCTAssertEqual(Timestamps.parse("2027-01-15 10:00-02:00")?.timeIntervalSince1970, 1_800_014_400)
        // What is parsed can be printed back without trapping.
        let latest = Timestamps.parse("9999-12-31T23:59:59Z")
        XCTAssertEqual(latest.map(Timestamps.keystone), "9999-12-31T23:59:59.000000Z")
    }

    /// An integer column read back as a REAL (SQLite's overflowing sum, PostgreSQL's numeric
    /// SUM past Int64) trapped in `Int64(_:)`; it is clamped now.
    func testRowIntegerFromAnOutOfRangeReal() {
        let row = Row(columns: ["big", "small", "nan", "fine"], values: [.real(1.8e19), .real(-1e300), .real(.nan), .real(42.9)])
        XCTAssertEqual(row.int("big"), Int64.max)
        XCTAssertEqual(row.int("small"), Int64.min)
        XCTAssertNil(row.optionalInt("nan"))
        XCTAssertEqual(row.int("fine"), 42)
    }
}
