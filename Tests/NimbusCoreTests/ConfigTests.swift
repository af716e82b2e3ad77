import Foundation
@testable import NimbusCore
import XCTest

final class ConfigTests: XCTestCase {
    func testParsesSectionsCommentsAndDefaults() throws {
        let config = try NimbusConfig(text: """
            # comment
            [DEFAULT]
            listen = 0.0.0.0:9000
            [token]
            Expiration=7200
            ; other comment
            """)
        XCTAssertEqual(config.string("DEFAULT", "listen"), "0.0.0.0:9000")
        XCTAssertEqual(try config.int("token", "expiration"), 7200)
        XCTAssertEqual(try config.int("identity", "password_hash_rounds"), 12, "declared default")
        XCTAssertThrowsError(try NimbusConfig(text: "[broken\n"))
        XCTAssertThrowsError(try NimbusConfig(text: "just words\n"))
        var bad = NimbusConfig()
        bad.set("token", "expiration", "soon")
        XCTAssertThrowsError(try bad.int("token", "expiration"))
    }

    func testSampleRoundTripsAndEveryOptionIsDocumented() throws {
        let sample = try NimbusConfig(text: NimbusConfig.sampleText())
        XCTAssertTrue(sample.values.isEmpty, "the sample only has comments")
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/configuration.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        for option in NimbusConfig.options {
            XCTAssertTrue(text.contains("## [\(option.section)]") && text.contains("`\(option.name)`"), "\(option.section).\(option.name) missing from docs/configuration.md")
        }
    }

    func testTimestamps() {
        let date = Date(timeIntervalSince1970: 1_800_000_000.25)
        XCTAssertEqual(Timestamps.keystone(date), "2027-01-15T08:00:00.250000Z")
        XCTAssertEqual(Timestamps.parse("2027-01-15T08:00:00.250000Z")?.timeIntervalSince1970, 1_800_000_000.25)
        XCTAssertEqual(Timestamps.parse("2027-01-15T10:00:00+02:00")?.timeIntervalSince1970, 1_800_000_000)
        XCTAssertNil(Timestamps.parse("tomorrow"))
    }

    func testJSONParserRejectsDeepNestingAndTrailingData() {
        XCTAssertThrowsError(try JSON.parse(String(repeating: "[", count: 100) + String(repeating: "]", count: 100)))
        XCTAssertThrowsError(try JSON.parse("{} x"))
        XCTAssertEqual(try JSON.parse("{\"a\": [1, 2.5, \"\\u00e9\", null, true]}"), ["a": [1, .double(2.5), "é", nil, true]])
        let tricky: JSON = ["k\"ey": ["quote \" back \\ nl \n tab \t ctl \u{1} é 🚀", ""]]
        XCTAssertEqual(try JSON.parse(tricky.serialized()), tricky)
        XCTAssertEqual(JSON.string("a\u{1}b").serialized(), "\"a\\u0001b\"")
    }
}
