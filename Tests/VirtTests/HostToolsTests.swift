import Foundation
import XCTest

@testable import Virt

final class HostToolsTests: XCTestCase {
    /// Without permission to install, a missing tool is an error naming its package.
    func testMissingToolNamesItsPackage() {
        let tools = [HostTool("sh", package: "dash"), HostTool("nimbus-no-such-tool", package: "nimbus-no-such-package")]
        XCTAssertThrowsError(try HostTools.ensure(tools, install: false, log: { _ in })) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("nimbus-no-such-tool"), text)
            XCTAssertTrue(text.contains("apt-get install nimbus-no-such-package"), text)
            XCTAssertFalse(text.contains("dash"), text)
        }
    }

    func testFailedCommandNamesItselfAndItsStderr() {
        XCTAssertThrowsError(try HostCommand.run(["sh", "-c", "echo broken >&2; exit 3"])) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("`sh -c"), text)
            XCTAssertTrue(text.contains("status 3"), text)
            XCTAssertTrue(text.contains("broken"), text)
        }
    }
}
