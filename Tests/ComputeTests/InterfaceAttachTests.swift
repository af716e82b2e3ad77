import Compute
import Foundation
import HostAgent
import HostAPI
import Logging
import NimbusCore
import NimbusServer
import NimbusTestSupport
import Virt
import XCTest

/// `os-interface` attach and detach, and `changePassword`, as Nova answers them: ports made or
/// taken over, bound to the server's host and plugged into its guest; detached ports deleted
/// (compute's) or unbound (the user's); every failure undone.
final class InterfaceAttachTests: XCTestCase {
    struct Setup {
        var token: String
        /// `binding:host_id` is shown to administrators only.
        var admin: String
        var project: String
        var serverID: String
        var host: String
        var networkID: String
        var subnetID: String
        var driver: FakeDriver
    }

    /// A project member's server on the member's own network (one port, 10.40.0.5, tagged
    /// `boot-nic`), on one fake
    /// host whose driver the test holds.
    static func setUp(_ cloud: TestCloud, _ plane: NimbusControlPlane, _ api: API, name: String) async throws -> (Setup, Task<Void, Never>) {
        let driver = FakeDriver()
        let agent = try await PowerSyncTests.startAgent(plane, host: "if-\(name)", driver: driver, syncEvery: .seconds(3600))
        let admin = try await api.adminToken(cloud)
        let (image, flavor) = try await Compute.bootables(api, admin: admin)
        let member = try await api.projectUser(admin: admin, name: name)
        let network = try await api.call(.post, "/networking/v2.0/networks", token: member.token, body: ["network": ["name": .string("net-\(name)")]])
        let networkID = try XCTUnwrap(network.json["network"]?["id"]?.stringValue, network.text)
        let subnet = try await api.call(.post, "/networking/v2.0/subnets", token: member.token,
                                        body: ["subnet": ["network_id": .string(networkID), "cidr": "10.40.0.0/24", "ip_version": 4]])
        let subnetID = try XCTUnwrap(subnet.json["subnet"]?["id"]?.stringValue, subnet.text)
        let booted = try await Compute.boot(api, token: member.token, image: image, flavor: flavor, name: "if-\(name)",
                                            extra: ["networks": [["uuid": .string(networkID), "fixed_ip": "10.40.0.5", "tag": "boot-nic"]]])
        let serverID = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)
        try await Compute.waitFor(api, serverID, token: member.token, status: "ACTIVE")
        let host = "if-\(name)"  // the only host
        return (Setup(token: member.token, admin: admin, project: member.project, serverID: serverID, host: host, networkID: networkID, subnetID: subnetID,
                      driver: driver), agent)
    }

    static func attach(_ api: API, _ s: Setup, _ attachment: JSON, version: String = "2.100") async throws -> API.Reply {
        try await Compute.call(api, .post, "/servers/\(s.serverID)/os-interface", token: s.token, body: ["interfaceAttachment": attachment], version: version)
    }

    static func ports(_ api: API, _ s: Setup) async throws -> [String] {
        try await Compute.call(api, .get, "/servers/\(s.serverID)/os-interface", token: s.token)
            .json["interfaceAttachments"]?.arrayValue?.compactMap { $0["port_id"]?.stringValue } ?? []
    }

    /// Polls until the server lists `count` interfaces (a detach is asynchronous).
    static func waitForInterfaces(_ api: API, _ s: Setup, count: Int) async throws -> [String] {
        let deadline = Date().addingTimeInterval(20)
        var listed = try await ports(api, s)
        while listed.count != count && Date() < deadline {
            try await Task.sleep(nanoseconds: 20_000_000)
            listed = try await ports(api, s)
        }
        return listed
    }

    /// The events of the server's newest action named `action`, once it has finished.
    static func finishedEvents(_ api: API, _ s: Setup, action: String) async throws -> [JSON] {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let actions = try await Compute.call(api, .get, "/servers/\(s.serverID)/os-instance-actions", token: s.token).json["instanceActions"]?.arrayValue ?? []
            if let request = actions.first(where: { $0["action"]?.stringValue == action })?["request_id"]?.stringValue {
                let shown = try await Compute.call(api, .get, "/servers/\(s.serverID)/os-instance-actions/\(request)", token: s.token)
                let events = shown.json["instanceAction"]?["events"]?.arrayValue ?? []
                if !events.isEmpty, events.allSatisfy({ $0["finish_time"] != .null }) { return events }
            }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        XCTFail("no finished \(action) action on \(s.serverID)")
        return []
    }

    func testAttachAndDetachNetworksAndPortsAsNovaDoes() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(0)) { cloud, plane, api in
            let (s, agent) = try await Self.setUp(cloud, plane, api, name: "ifmain")
            defer { agent.cancel() }
            let booted = try await Self.ports(api, s)
            XCTAssertEqual(booted.count, 1)

            // A network with a fixed address: a port is made, bound to the host, and plugged in.
            let onNet = try await Self.attach(api, s, ["net_id": .string(s.networkID), "fixed_ips": [["ip_address": "10.40.0.77"]]])
            XCTAssertEqual(onNet.status, 200, onNet.text)
            let made = try XCTUnwrap(onNet.json["interfaceAttachment"]?["port_id"]?.stringValue, onNet.text)
            XCTAssertEqual(onNet.json["interfaceAttachment"]?["net_id"]?.stringValue, s.networkID)
            XCTAssertEqual(onNet.json["interfaceAttachment"]?["fixed_ips"], [["ip_address": "10.40.0.77", "subnet_id": .string(s.subnetID)]])
            let madePort = try await api.call(.get, "/networking/v2.0/ports/\(made)", token: s.admin).json["port"]
            XCTAssertEqual(madePort?["device_id"]?.stringValue, s.serverID)
            XCTAssertEqual(madePort?["binding:host_id"]?.stringValue, s.host)
            XCTAssertTrue(madePort?["device_owner"]?.stringValue?.hasPrefix("compute:") == true, madePort?.serialized() ?? "")
            XCTAssertEqual(s.driver.spec(of: s.serverID)?.nics.map(\.portID).contains(made), true)
            XCTAssertEqual(s.driver.spec(of: s.serverID)?.nics.first { $0.portID == made }?.macAddress, madePort?["mac_address"]?.stringValue)
            let server = try await Compute.call(api, .get, "/servers/\(s.serverID)", token: s.token).json["server"]
            let addresses = server?["addresses"]?["net-ifmain"]?.arrayValue?.compactMap { $0["addr"]?.stringValue } ?? []
            XCTAssertEqual(Set(addresses), ["10.40.0.5", "10.40.0.77"], server?.serialized() ?? "")
            let attachEvents = try await Self.finishedEvents(api, s, action: "attach_interface")
            XCTAssertEqual(attachEvents.first?["event"]?.stringValue, "compute_attach_interface")
            XCTAssertEqual(attachEvents.first?["result"]?.stringValue, "Success")

            // The user's own port: taken over, and a second attach of it is Nova's 409.
            let port = try await api.call(.post, "/networking/v2.0/ports", token: s.token, body: ["port": ["network_id": .string(s.networkID)]])
            let portID = try XCTUnwrap(port.json["port"]?["id"]?.stringValue, port.text)
            let onPort = try await Self.attach(api, s, ["port_id": .string(portID), "tag": "second"])
            XCTAssertEqual(onPort.status, 200, onPort.text)
            XCTAssertEqual(onPort.json["interfaceAttachment"]?["port_id"]?.stringValue, portID)
            XCTAssertEqual(onPort.json["interfaceAttachment"]?["port_state"]?.stringValue, "ACTIVE")
            // From 2.70 each attachment shows its tag.
            XCTAssertEqual(onPort.json["interfaceAttachment"]?["tag"]?.stringValue, "second", onPort.text)
            let tagged = try await Compute.call(api, .get, "/servers/\(s.serverID)/os-interface", token: s.token).json["interfaceAttachments"]?.arrayValue ?? []
            XCTAssertEqual(tagged.first { $0["port_id"]?.stringValue == portID }?["tag"]?.stringValue, "second")
            XCTAssertEqual(tagged.first { $0["port_id"]?.stringValue == made }?["tag"], .null)
            XCTAssertEqual(tagged.first { $0["port_id"]?.stringValue == booted[0] }?["tag"]?.stringValue, "boot-nic")
            let untagged = try await Compute.call(api, .get, "/servers/\(s.serverID)/os-interface/\(portID)", token: s.token, version: "2.69")
            XCTAssertEqual(untagged.status, 200, untagged.text)
            XCTAssertNil(untagged.json["interfaceAttachment"]?["tag"], untagged.text)
            let again = try await Self.attach(api, s, ["port_id": .string(portID)])
            XCTAssertEqual(again.status, 409, again.text)
            XCTAssertNotNil(again.json["conflictingRequest"], again.text)
            let attachedNow = try await Self.ports(api, s)
            XCTAssertEqual(Set(attachedNow), Set(booted + [made, portID]))

            // Detach is accepted and then done: the user's port stays, unbound and free; the one
            // compute made goes.
            let removePort = try await Compute.call(api, .delete, "/servers/\(s.serverID)/os-interface/\(portID)", token: s.token)
            XCTAssertEqual(removePort.status, 202, removePort.text)
            let removeMade = try await Compute.call(api, .delete, "/servers/\(s.serverID)/os-interface/\(made)", token: s.token)
            XCTAssertEqual(removeMade.status, 202, removeMade.text)
            let afterDetach = try await Self.waitForInterfaces(api, s, count: 1)
            XCTAssertEqual(afterDetach, booted)
            let detachEvents = try await Self.finishedEvents(api, s, action: "detach_interface")
            XCTAssertEqual(detachEvents.first?["event"]?.stringValue, "compute_detach_interface")
            var kept = try await api.call(.get, "/networking/v2.0/ports/\(portID)", token: s.admin).json["port"]
            let settled = Date().addingTimeInterval(10)
            while kept?["device_id"]?.stringValue != "" && Date() < settled {
                try await Task.sleep(nanoseconds: 20_000_000)
                kept = try await api.call(.get, "/networking/v2.0/ports/\(portID)", token: s.admin).json["port"]
            }
            XCTAssertEqual(kept?["device_id"]?.stringValue, "", kept?.serialized() ?? "")
            XCTAssertEqual(kept?["binding:host_id"]?.stringValue, "", kept?.serialized() ?? "")
            let gone = try await api.call(.get, "/networking/v2.0/ports/\(made)", token: s.token)
            XCTAssertEqual(gone.status, 404, gone.text)
            XCTAssertEqual(s.driver.spec(of: s.serverID)?.nics.map(\.portID), booted)
            let addressesAfter = try await Compute.call(api, .get, "/servers/\(s.serverID)", token: s.token).json["server"]?["addresses"]
            XCTAssertEqual(addressesAfter?["net-ifmain"]?.arrayValue?.compactMap { $0["addr"]?.stringValue }, ["10.40.0.5"])

            // The freed port can be attached again; with neither port nor network the project's
            // only network is used.
            let reattached = try await Self.attach(api, s, ["port_id": .string(portID)])
            XCTAssertEqual(reattached.status, 200, reattached.text)
            let anyNetwork = try await Compute.call(api, .post, "/servers/\(s.serverID)/os-interface", token: s.token, body: [:])
            XCTAssertEqual(anyNetwork.status, 200, anyNetwork.text)
            XCTAssertEqual(anyNetwork.json["interfaceAttachment"]?["net_id"]?.stringValue, s.networkID)
            let withBoth = try await Self.ports(api, s)
            XCTAssertEqual(withBoth.count, 3)

            // Deleting the server frees the user's port and deletes the ones compute made.
            let anyPort = try XCTUnwrap(anyNetwork.json["interfaceAttachment"]?["port_id"]?.stringValue)
            let deleted = try await Compute.call(api, .delete, "/servers/\(s.serverID)", token: s.token)
            XCTAssertEqual(deleted.status, 204, deleted.text)
            let freed = Date().addingTimeInterval(10)
            var left = try await api.call(.get, "/networking/v2.0/ports?device_id=\(s.serverID)", token: s.token).json["ports"]?.arrayValue ?? []
            while !left.isEmpty && Date() < freed {
                try await Task.sleep(nanoseconds: 20_000_000)
                left = try await api.call(.get, "/networking/v2.0/ports?device_id=\(s.serverID)", token: s.token).json["ports"]?.arrayValue ?? []
            }
            XCTAssertEqual(left.count, 0)
            let userPort = try await api.call(.get, "/networking/v2.0/ports/\(portID)", token: s.token)
            XCTAssertEqual(userPort.status, 200)
            let madePortAfterDelete = try await api.call(.get, "/networking/v2.0/ports/\(anyPort)", token: s.token)
            XCTAssertEqual(madePortAfterDelete.status, 404)
        }
    }

    func testBadRequestsAndWrongStatesAreRefusedWithNovasAnswers() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(0)) { cloud, plane, api in
            let (s, agent) = try await Self.setUp(cloud, plane, api, name: "ifbad")
            defer { agent.cancel() }
            let unknown = Identifiers.uuid()
            let cases: [(JSON, String, Int)] = [
                (["port_id": .string(unknown)], "2.100", 404),
                (["net_id": .string(unknown)], "2.100", 404),
                (["port_id": .string(unknown), "net_id": .string(s.networkID)], "2.100", 400),
                (["fixed_ips": [["ip_address": "10.40.0.9"]]], "2.100", 400),
                (["net_id": "not-a-uuid"], "2.100", 400),
                (["net_id": .string(s.networkID), "fixed_ips": [["ip_address": "10.40.0.300"]]], "2.100", 400),
                (["net_id": .string(s.networkID), "fixed_ips": [["ip_address": "10.40.0.9"], ["ip_address": "10.40.0.10"]]], "2.100", 400),
                (["net_id": .string(s.networkID), "tag": "t"], "2.48", 400),
                (["net_id": .string(s.networkID), "colour": "red"], "2.100", 400),
                // An address another port holds, one outside the network's subnets.
                (["net_id": .string(s.networkID), "fixed_ips": [["ip_address": "10.40.0.5"]]], "2.100", 409),
                (["net_id": .string(s.networkID), "fixed_ips": [["ip_address": "10.99.0.5"]]], "2.100", 400),
            ]
            for (attachment, version, status) in cases {
                let reply = try await Self.attach(api, s, attachment, version: version)
                XCTAssertEqual(reply.status, status, "\(attachment.serialized()): \(reply.text)")
            }
            let notAttached = try await Compute.call(api, .delete, "/servers/\(s.serverID)/os-interface/\(unknown)", token: s.token)
            XCTAssertEqual(notAttached.status, 404, notAttached.text)
            // Nothing was left behind by the refusals.
            let ports = try await api.call(.get, "/networking/v2.0/ports?network_id=\(s.networkID)", token: s.token)
            let afterRefusals = try await Self.ports(api, s)
            XCTAssertEqual(afterRefusals.count, 1)
            XCTAssertEqual(ports.json["ports"]?.arrayValue?.count, 1, ports.text)

            // The port quota: Nova's 403, and no port made.
            let admin = try await api.adminToken(cloud)
            let quota = try await api.call(.put, "/networking/v2.0/quotas/\(s.project)", token: admin, body: ["quota": ["port": 1]])
            XCTAssertEqual(quota.status, 200, quota.text)
            let over = try await Self.attach(api, s, ["net_id": .string(s.networkID)])
            XCTAssertEqual(over.status, 403, over.text)
            XCTAssertEqual(over.json["forbidden"]?["message"]?.stringValue, "Maximum number of ports exceeded", over.text)
            _ = try await api.call(.put, "/networking/v2.0/quotas/\(s.project)", token: admin, body: ["quota": ["port": 50]])

            // A locked server (for its owner), a server in a task: 409.
            let locked = try await Compute.action(api, s.serverID, token: admin, ["lock": .null])
            XCTAssertEqual(locked.status, 202, locked.text)
            let whileLocked = try await Self.attach(api, s, ["net_id": .string(s.networkID)])
            XCTAssertEqual(whileLocked.status, 409, whileLocked.text)
            _ = try await Compute.action(api, s.serverID, token: admin, ["unlock": .null])
            s.driver.slowDown("powerOff", by: .seconds(2))
            let stop = try await Compute.action(api, s.serverID, token: s.token, ["os-stop": .null])
            XCTAssertEqual(stop.status, 202, stop.text)
            let inTask = try await Self.attach(api, s, ["net_id": .string(s.networkID)])
            XCTAssertEqual(inTask.status, 409, inTask.text)
            XCTAssertTrue(inTask.text.contains("task_state powering-off"), inTask.text)
            // A stopped server takes interfaces (its guest has them when it starts).
            try await Compute.waitFor(api, s.serverID, token: s.token, status: "SHUTOFF")
            let whileStopped = try await Self.attach(api, s, ["net_id": .string(s.networkID)])
            XCTAssertEqual(whileStopped.status, 200, whileStopped.text)

            // Another project sees no server.
            let outsider = try await api.projectUser(admin: admin, name: "ifbad-outsider")
            let hidden = try await Compute.call(api, .post, "/servers/\(s.serverID)/os-interface", token: outsider.token,
                                                body: ["interfaceAttachment": ["net_id": .string(s.networkID)]])
            XCTAssertEqual(hidden.status, 404, hidden.text)
        }
    }

    func testAFailedAttachOrDetachIsUndone() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(0)) { cloud, plane, api in
            let (s, agent) = try await Self.setUp(cloud, plane, api, name: "iffail")
            defer { agent.cancel() }
            let booted = try await Self.ports(api, s)

            // The host cannot plug a port in: Nova's 500, and the port compute made is gone.
            s.driver.failInterfaces(s.networkID)
            let failed = try await Self.attach(api, s, ["net_id": .string(s.networkID), "fixed_ips": [["ip_address": "10.40.0.88"]]])
            XCTAssertEqual(failed.status, 500, failed.text)
            XCTAssertEqual(failed.json["computeFault"]?["message"]?.stringValue, "Failed to attach network adapter device to \(s.serverID)", failed.text)
            let onNetwork = try await api.call(.get, "/networking/v2.0/ports?network_id=\(s.networkID)", token: s.token).json["ports"]?.arrayValue ?? []
            XCTAssertEqual(onNetwork.compactMap { $0["id"]?.stringValue }, booted, "only the boot port is left")
            let afterFailedAttach = try await Self.ports(api, s)
            XCTAssertEqual(afterFailedAttach, booted)
            XCTAssertEqual(s.driver.spec(of: s.serverID)?.nics.map(\.portID), booted)
            let events = try await Self.finishedEvents(api, s, action: "attach_interface")
            XCTAssertEqual(events.first?["result"]?.stringValue, "Error")
            // The address is free again.
            let port = try await api.call(.post, "/networking/v2.0/ports", token: s.token,
                                          body: ["port": ["network_id": .string(s.networkID), "fixed_ips": [["ip_address": "10.40.0.88"]]]])
            XCTAssertEqual(port.status, 201, port.text)
            let portID = try XCTUnwrap(port.json["port"]?["id"]?.stringValue)

            // A user's port whose attach fails is unbound and given back, not deleted.
            s.driver.failInterfaces(portID)
            let failedPort = try await Self.attach(api, s, ["port_id": .string(portID)])
            XCTAssertEqual(failedPort.status, 500, failedPort.text)
            let back = try await api.call(.get, "/networking/v2.0/ports/\(portID)", token: s.admin).json["port"]
            XCTAssertEqual(back?["device_id"]?.stringValue, "", back?.serialized() ?? "")
            XCTAssertEqual(back?["binding:host_id"]?.stringValue, "", back?.serialized() ?? "")

            // A detach the host cannot do leaves the port attached, with the action's error.
            s.driver.failInterfaces(booted[0])
            let detach = try await Compute.call(api, .delete, "/servers/\(s.serverID)/os-interface/\(booted[0])", token: s.token)
            XCTAssertEqual(detach.status, 202, detach.text)
            let detachEvents = try await Self.finishedEvents(api, s, action: "detach_interface")
            XCTAssertEqual(detachEvents.first?["result"]?.stringValue, "Error")
            let afterFailedDetach = try await Self.ports(api, s)
            XCTAssertEqual(afterFailedDetach, booted)
            let stillBound = try await api.call(.get, "/networking/v2.0/ports/\(booted[0])", token: s.token)
            XCTAssertEqual(stillBound.json["port"]?["device_id"]?.stringValue,
                           s.serverID)
        }
    }

    func testChangePasswordReachesTheGuestOrIsRefusedAsNovaDoes() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(0)) { cloud, plane, api in
            let (s, agent) = try await Self.setUp(cloud, plane, api, name: "ifpass")
            defer { agent.cancel() }
            let changed = try await Compute.action(api, s.serverID, token: s.token, ["changePassword": ["adminPass": "n3w-Secret"]])
            XCTAssertEqual(changed.status, 202, changed.text)
            XCTAssertEqual(s.driver.adminPassword(of: s.serverID), "n3w-Secret")
            let events = try await Self.finishedEvents(api, s, action: "changePassword")
            XCTAssertEqual(events.first?["result"]?.stringValue, "Success")
            let server = try await Compute.waitFor(api, s.serverID, token: s.token, status: "ACTIVE")
            XCTAssertEqual(server["OS-EXT-STS:task_state"], .null)

            let bad: [JSON] = [["changePassword": [:]], ["changePassword": ["adminPass": 5]], ["changePassword": ["adminPass": "x", "other": "y"]]]
            for bad in bad {
                let reply = try await Compute.action(api, s.serverID, token: s.token, bad)
                XCTAssertEqual(reply.status, 400, "\(bad.serialized()): \(reply.text)")
            }
            let stop = try await Compute.action(api, s.serverID, token: s.token, ["os-stop": .null])
            XCTAssertEqual(stop.status, 202, stop.text)
            try await Compute.waitFor(api, s.serverID, token: s.token, status: "SHUTOFF")
            let stopped = try await Compute.action(api, s.serverID, token: s.token, ["changePassword": ["adminPass": "again"]])
            XCTAssertEqual(stopped.status, 409, stopped.text)
        }
    }

    /// A QEMU host without a guest-agent channel: `changePassword` is Nova's libvirt answer for
    /// an image without the QEMU guest agent, before any action is recorded.
    func testChangePasswordOnAQEMUHostIsNovasGuestAgentConflict() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(0)) { cloud, plane, api in
            let agent = ComputeAgent(host: "qemu-like", driver: QEMULikeDriver(), link: LocalAgentLink(conductor: plane.compute.conductor),
                                     images: NoImages(), heartbeatInterval: .seconds(1), logger: .init(label: "qemu-like"))
            let running = Task { await agent.run() }
            defer { running.cancel() }
            let admin = try await api.adminToken(cloud)
            let (id, _) = try await Compute.activeServer(api, admin: admin)
            let password = try await Compute.action(api, id, token: admin, ["changePassword": ["adminPass": "pw"]])
            XCTAssertEqual(password.status, 409, password.text)
            XCTAssertEqual(password.json["conflictingRequest"]?["message"]?.stringValue, "QEMU guest agent is not enabled", password.text)
            let actions = try await Compute.call(api, .get, "/servers/\(id)/os-instance-actions", token: admin).json["instanceActions"]?.arrayValue ?? []
            XCTAssertFalse(actions.contains { $0["action"]?.stringValue == "changePassword" })
        }
    }

    /// A host whose driver cannot plug interfaces or set passwords: refused before anything changes.
    func testAHostThatCannotRefusesBeforeAnythingChanges() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(0)) { cloud, plane, api in
            let agent = ComputeAgent(host: "basic-if", driver: BasicFakeDriver(), link: LocalAgentLink(conductor: plane.compute.conductor),
                                     images: NoImages(), heartbeatInterval: .seconds(1), logger: .init(label: "basic-if"))
            let running = Task { await agent.run() }
            defer { running.cancel() }
            let admin = try await api.adminToken(cloud)
            let (id, _) = try await Compute.activeServer(api, admin: admin)
            let network = try await api.call(.post, "/networking/v2.0/networks", token: admin, body: ["network": ["name": "net-basic"]])
            let networkID = try XCTUnwrap(network.json["network"]?["id"]?.stringValue, network.text)
            let attach = try await Compute.call(api, .post, "/servers/\(id)/os-interface", token: admin,
                                                body: ["interfaceAttachment": ["net_id": .string(networkID)]])
            XCTAssertEqual(attach.status, 400, attach.text)
            let password = try await Compute.action(api, id, token: admin, ["changePassword": ["adminPass": "pw"]])
            XCTAssertEqual(password.status, 409, password.text)
            XCTAssertEqual(password.json["conflictingRequest"]?["message"]?.stringValue, "Set admin password is not supported", password.text)
            let ports = try await api.call(.get, "/networking/v2.0/ports?device_id=\(id)", token: admin).json["ports"]?.arrayValue ?? []
            XCTAssertEqual(ports.count, 0)
        }
    }
}

/// The base driver's abilities only, reporting itself as QEMU does (`hypervisor_type` QEMU).
final class QEMULikeDriver: VirtDriver {
    let inner = BasicFakeDriver()
    let name = "qemu"
    func hostResources() async throws -> HostResources {
        var resources = try await inner.hostResources()
        resources.hypervisorType = "QEMU"
        return resources
    }
    func listGuests() async throws -> [String: PowerState] { try await inner.listGuests() }
    func powerState(of uuid: String) async throws -> PowerState { try await inner.powerState(of: uuid) }
    func spawn(_ guest: GuestSpec) async throws { try await inner.spawn(guest) }
    func destroy(_ uuid: String) async throws { try await inner.destroy(uuid) }
    func powerOff(_ uuid: String, timeout: Duration) async throws { try await inner.powerOff(uuid, timeout: timeout) }
    func powerOn(_ uuid: String) async throws { try await inner.powerOn(uuid) }
    func reboot(_ uuid: String, hard: Bool) async throws { try await inner.reboot(uuid, hard: hard) }
    func consoleOutput(_ uuid: String, lines: Int?) async throws -> String { try await inner.consoleOutput(uuid, lines: lines) }
}
