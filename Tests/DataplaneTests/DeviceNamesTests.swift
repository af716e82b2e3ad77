import XCTest
@testable import Dataplane

final class DeviceNamesTests: XCTestCase {
    func testNamesFitTheKernelsLimitAndFollowNeutron() {
        let id = "3f2a9c1e-7b4d-4e21-9a0b-55c6d7e8f901"
        XCTAssertEqual(DeviceNames.bridge(network: id), "brq3f2a9c1e-7b")
        XCTAssertEqual(DeviceNames.tap(port: id), "tap3f2a9c1e-7b")
        XCTAssertEqual(DeviceNames.dhcpInterface(port: id), "ns-3f2a9c1e-7b")
        XCTAssertEqual(DeviceNames.routerInterface(port: id), "qr-3f2a9c1e-7b")
        XCTAssertEqual(DeviceNames.routerGateway(port: id), "qg-3f2a9c1e-7b")
        XCTAssertEqual(DeviceNames.vxlan(vni: 16777215), "vxlan-16777215")
        for name in [DeviceNames.bridge(network: id), DeviceNames.tap(port: id), DeviceNames.vxlan(vni: 16777215)] {
            XCTAssertLessThanOrEqual(name.count, 15, name)
        }
        XCTAssertEqual(DeviceNames.dhcpNamespace(network: id), "qdhcp-" + id)
    }
}
