import Compute
import Foundation
import NimbusCore
import NimbusServer
import NimbusTestSupport
import XCTest

/// Quotas, capacity and server-group policies hold under concurrent requests.
final class ComputeRaceTests: XCTestCase {
    func testInstanceQuotaHoldsUnder200ConcurrentCreates() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(4, extra: ["quota": ["instances": "10", "cores": "1000", "ram": "1000000"]])) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let statuses = try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for i in 0..<200 {
                    group.addTask {
                        let reply = try await Compute.boot(api, token: admin, image: image, flavor: flavor, name: "q\(i)")
                        return (reply.status, reply.json["forbidden"]?["message"]?.stringValue ?? "")
                    }
                }
                return try await group.reduce(into: [(Int, String)]()) { $0.append($1) }
            }
            XCTAssertEqual(statuses.filter { $0.0 == 202 }.count, 10)
            let refused = statuses.filter { $0.0 == 403 }
            XCTAssertEqual(refused.count, 190)
            XCTAssertTrue(refused.allSatisfy { $0.1.hasPrefix("Quota exceeded for instances") }, "\(refused.first.map { $0.1 } ?? "")")
            let servers = try await Compute.call(api, .get, "/servers", token: admin).json["servers"]?.arrayValue ?? []
            XCTAssertEqual(servers.count, 10)
        }
    }

    /// min_count/max_count create as many as the quota allows, and count each exactly once.
    func testMultiCreateTakesWhatTheQuotaAllows() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1, extra: ["quota": ["cores": "4"]])) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let many = try await Compute.boot(api, token: admin, image: image, flavor: flavor, name: "multi", extra: ["min_count": 1, "max_count": 6])
            XCTAssertEqual(many.status, 202, many.text)
            let names = try await Compute.call(api, .get, "/servers", token: admin).json["servers"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
            XCTAssertEqual(Set(names), ["multi-1", "multi-2", "multi-3", "multi-4"], "cores allow 4 of the 6")
            let limits = try await Compute.call(api, .get, "/limits", token: admin, version: "2.1").json["limits"]?["absolute"]
            XCTAssertEqual(limits?["totalInstancesUsed"]?.intValue, 4)
            XCTAssertEqual(limits?["totalCoresUsed"]?.intValue, 4)
            let none = try await Compute.boot(api, token: admin, image: image, flavor: flavor, name: "more", extra: ["min_count": 1])
            XCTAssertEqual(none.status, 403, none.text)
        }
    }

    /// 4 hosts of 8 vCPUs (allocation ratio 1.0) and 100 concurrent 1-vCPU boots: exactly 32
    /// become ACTIVE, the rest ERROR with No valid host, and no host holds more than it has.
    func testCapacityClaimsNeverOvercommit() async throws {
        let settings = Compute.fakeHosts(4, vcpus: 8, cpuRatio: "1.0", extra: ["quota": ["instances": "-1", "cores": "-1", "ram": "-1"]])
        try await onEachEngine(settings: settings) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let (image, flavor) = try await Compute.bootables(api, admin: admin, vcpus: 1, ram: 256)
            let ids = try await withThrowingTaskGroup(of: String?.self) { group in
                for i in 0..<100 {
                    group.addTask {
                        let reply = try await Compute.boot(api, token: admin, image: image, flavor: flavor, name: "c\(i)")
                        return reply.json["server"]?["id"]?.stringValue
                    }
                }
                return try await group.reduce(into: [String]()) { if let id = $1 { $0.append(id) } }
            }
            XCTAssertEqual(ids.count, 100)
            var final: [String: JSON] = [:]
            let deadline = Date().addingTimeInterval(120)
            while Date() < deadline {
                let servers = try await Compute.call(api, .get, "/servers/detail", token: admin).json["servers"]?.arrayValue ?? []
                final = Dictionary(uniqueKeysWithValues: servers.compactMap { s in s["id"]?.stringValue.map { ($0, s) } })
                if final.values.allSatisfy({ ["ACTIVE", "ERROR"].contains($0["status"]?.stringValue ?? "") && $0["OS-EXT-STS:task_state"] == .null }) { break }
                try await Task.sleep(nanoseconds: 20_000_000)
            }
            let active = final.values.filter { $0["status"]?.stringValue == "ACTIVE" }
            let errors = final.values.filter { $0["status"]?.stringValue == "ERROR" }
            XCTAssertEqual(active.count, 32)
            XCTAssertEqual(errors.count, 68)
            XCTAssertTrue(errors.allSatisfy { $0["fault"]?["message"]?.stringValue?.hasPrefix("No valid host was found.") ?? false },
                          errors.first?.serialized() ?? "")
            var perHost: [String: Int] = [:]
            for server in active { perHost[server["OS-EXT-SRV-ATTR:host"]?.stringValue ?? "", default: 0] += 1 }
            XCTAssertEqual(perHost.count, 4)
            XCTAssertTrue(perHost.values.allSatisfy { $0 <= 8 }, "\(perHost)")
            // Placement agrees: usage per provider never exceeds its inventory.
            let providers = try await api.call(.get, "/placement/resource_providers", token: admin,
                                               headers: ["OpenStack-API-Version": "placement 1.29"]).json["resource_providers"]?.arrayValue ?? []
            for provider in providers {
                let uuid = provider["uuid"]?.stringValue ?? ""
                let usages = try await api.call(.get, "/placement/resource_providers/\(uuid)/usages", token: admin,
                                                headers: ["OpenStack-API-Version": "placement 1.29"])
                XCTAssertLessThanOrEqual(usages.json["usages"]?["VCPU"]?.intValue ?? 0, 8, usages.text)
            }
        }
    }

    func testAntiAffinityMembersNeverShareAHost() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(4)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let group = try await Compute.call(api, .post, "/os-server-groups", token: admin,
                                               body: ["server_group": ["name": "spread", "policy": "anti-affinity"]], version: "2.64")
            XCTAssertEqual(group.status, 200, group.text)
            let groupID = try XCTUnwrap(group.json["server_group"]?["id"]?.stringValue)
            let ids = try await withThrowingTaskGroup(of: String?.self) { tasks in
                for i in 0..<5 {
                    tasks.addTask {
                        try await Compute.boot(api, token: admin, image: image, flavor: flavor, name: "g\(i)",
                                               hints: ["group": .string(groupID)]).json["server"]?["id"]?.stringValue
                    }
                }
                return try await tasks.reduce(into: [String]()) { if let id = $1 { $0.append(id) } }
            }
            XCTAssertEqual(ids.count, 5)
            var hosts: [String] = []
            var errors = 0
            for id in ids {
                var server: JSON = .null
                let deadline = Date().addingTimeInterval(60)
                while Date() < deadline {
                    server = try await Compute.call(api, .get, "/servers/\(id)", token: admin).json["server"] ?? .null
                    if ["ACTIVE", "ERROR"].contains(server["status"]?.stringValue ?? "") { break }
                    try await Task.sleep(nanoseconds: 10_000_000)
                }
                if server["status"]?.stringValue == "ACTIVE" { hosts.append(server["OS-EXT-SRV-ATTR:host"]?.stringValue ?? "") } else { errors += 1 }
            }
            XCTAssertEqual(hosts.count, 4, "one member per host")
            XCTAssertEqual(Set(hosts).count, hosts.count, "members never share a host: \(hosts)")
            XCTAssertEqual(errors, 1, "the fifth member has no host left")
        }
    }

    /// A snapshot, backup or shelve that races another action on the same server leaves no
    /// image behind: the rival action (a rescue, whose state none of them accepts) arrives while
    /// the image is being made (a test hook runs it then), and afterwards the server's images are exactly those the API answered with.
    func testASnapshotRacingAnotherActionLeavesNoImageBehind() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let (id, _) = try await Compute.activeServer(api, admin: admin)
            let hooks = plane.compute.conductor.hooks
            func imagesOfServer() async throws -> Set<String> {
                let list = try await api.call(.get, "/image/v2/images?instance_uuid=\(id)", token: admin)
                return Set((list.json["images"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue })
            }
            var expected: Set<String> = []
            let actions: [JSON] = [["createImage": ["name": "snap"]], ["createBackup": ["name": "b", "backup_type": "daily", "rotation": 5]],
                                   ["shelve": .null]]
            for body in actions {
                let rival = RivalOutcome()
                hooks.onImageCreating {
                    await rival.record(try await Compute.action(api, id, token: admin, ["rescue": [:]]).status)
                }
                let reply = try await Compute.action(api, id, token: admin, body)
                hooks.onImageCreating(nil)
                let rivalStatus = await rival.status
                XCTAssertEqual([reply.status, rivalStatus ?? 0].filter { (200..<300).contains($0) }.count, 1,
                               "\(body.serialized()): one of the two wins (\(reply.status), \(rivalStatus ?? 0)): \(reply.text)")
                if reply.status == 202, let image = reply.json["image_id"]?.stringValue { expected.insert(image) }
                // Back to ACTIVE for the next round.
                let settled = try await AgentMessagingTests.eventually {
                    try await Compute.call(api, .get, "/servers/\(id)", token: admin).json["server"]?["OS-EXT-STS:task_state"] == .null
                }
                let server = try await Compute.call(api, .get, "/servers/\(id)", token: admin).json["server"] ?? .null
                XCTAssertTrue(settled, server.serialized())
                switch server["status"]?.stringValue {
                case "RESCUE": _ = try await Compute.action(api, id, token: admin, ["unrescue": .null])
                case "SHELVED_OFFLOADED", "SHELVED": _ = try await Compute.action(api, id, token: admin, ["unshelve": .null])
                default: break
                }
                _ = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
                let left = try await imagesOfServer()
                XCTAssertEqual(left, expected, "\(body.serialized()): images left behind: \(left.subtracting(expected))")
            }
        }
    }
}

/// What a rival action answered, recorded from inside a test hook.
actor RivalOutcome {
    private(set) var status: Int?
    func record(_ status: Int) { self.status = status }
}
