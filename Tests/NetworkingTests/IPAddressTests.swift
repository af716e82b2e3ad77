@testable import Networking
import NimbusCore
import XCTest

final class IPAddressTests: XCTestCase {
    func testParsingCanonicalFormsAndArithmetic() throws {
        XCTAssertEqual(IPAddress("10.0.0.1")?.description, "10.0.0.1")
        XCTAssertEqual(IPAddress("2001:0db8:0000::0001")?.description, "2001:db8::1")
        XCTAssertNil(IPAddress("10.0.0.256"))
        XCTAssertNil(IPAddress("fe80::1::2"))

        let v4 = try XCTUnwrap(IPNetwork("10.0.0.0/28", strict: true))
        XCTAssertEqual(v4.last.description, "10.0.0.15")
        XCTAssertEqual(v4.size, 16)
        XCTAssertNil(IPNetwork("10.0.0.1/28", strict: true), "host bits are refused when strict")
        XCTAssertEqual(IPNetwork("10.0.0.1/28")?.description, "10.0.0.0/28")
        XCTAssertTrue(v4.overlaps(try XCTUnwrap(IPNetwork("10.0.0.8/29"))))
        XCTAssertFalse(v4.overlaps(try XCTUnwrap(IPNetwork("10.0.0.16/28"))))
        XCTAssertFalse(v4.contains(try XCTUnwrap(IPAddress("::a00:1"))), "versions never mix")

        let top = try XCTUnwrap(IPNetwork("ffff:ffff:ffff:ffff::/64"))
        XCTAssertEqual(top.last.value, .max)
        XCTAssertEqual(NetworkService.usable(top)?.end.value, .max)
        XCTAssertEqual(NetworkService.usable(v4).map { "\($0.start)-\($0.end)" }, "10.0.0.1-10.0.0.14")
    }

    func testSLAACAddressIsThePrefixAndModifiedEUI64() throws {
        let prefix = try XCTUnwrap(IPNetwork("2001:db8::/64"))
        XCTAssertEqual(NetworkService.eui64(prefix, mac: "fa:16:3e:12:34:56")?.description, "2001:db8::f816:3eff:fe12:3456")
        XCTAssertNil(NetworkService.eui64(try XCTUnwrap(IPNetwork("2001:db8::/80")), mac: "fa:16:3e:12:34:56"))
    }
}
