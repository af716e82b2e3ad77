import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

/// Nova's API through the real router with fake-driver hosts, on SQLite and PostgreSQL.
final class ComputeAPITests: XCTestCase {
    func testVersionsAndMicroversionNegotiation() async throws {
        try await onEachEngine { cloud, api in
            let root = try await api.call(.get, "/compute")
            XCTAssertEqual(root.status, 200)
            XCTAssertEqual(root.json["versions"]?.arrayValue?.last?["version"]?.stringValue, "2.100")
            let v21 = try await api.call(.get, "/compute/v2.1")
            XCTAssertEqual(v21.json["version"]?["min_version"]?.stringValue, "2.1")
            let admin = try await api.adminToken(cloud)
            let none = try await api.call(.get, "/compute/v2.1/flavors", token: admin)
            XCTAssertEqual(none.headers[HTTPField.Name("OpenStack-API-Version")!], "compute 2.1")
            let latest = try await api.call(.get, "/compute/v2.1/flavors", token: admin, headers: ["OpenStack-API-Version": "compute latest"])
            XCTAssertEqual(latest.headers[HTTPField.Name("X-OpenStack-Nova-API-Version")!], "2.100")
            let legacy = try await api.call(.get, "/compute/v2.1/flavors", token: admin, headers: ["X-OpenStack-Nova-API-Version": "2.55"])
            XCTAssertEqual(legacy.headers[HTTPField.Name("OpenStack-API-Version")!], "compute 2.55")
            let tooHigh = try await api.call(.get, "/compute/v2.1/flavors", token: admin, headers: ["OpenStack-API-Version": "compute 2.101"])
            XCTAssertEqual(tooHigh.status, 406)
            XCTAssertEqual(tooHigh.json["computeFault"]?["code"]?.intValue, 406, tooHigh.text)
            let malformed = try await api.call(.get, "/compute/v2.1/flavors", token: admin, headers: ["OpenStack-API-Version": "compute 2.01x"])
            XCTAssertEqual(malformed.status, 400)
            let noToken = try await api.call(.get, "/compute/v2.1/servers")
            XCTAssertEqual(noToken.status, 401)
        }
    }

    func testFlavorsExtraSpecsAccessAndKeypairs() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let created = try await Compute.call(api, .post, "/flavors", token: admin,
                                                 body: ["flavor": ["name": "m1.tiny", "ram": 512, "vcpus": 1, "disk": 1, "id": .null]])
            XCTAssertEqual(created.status, 200, created.text)
            let id = try XCTUnwrap(created.json["flavor"]?["id"]?.stringValue)
            XCTAssertEqual(created.json["flavor"]?["rxtx_factor"], .double(1.0))
            let duplicate = try await Compute.call(api, .post, "/flavors", token: admin, body: ["flavor": ["name": "m1.tiny", "ram": 1, "vcpus": 1, "disk": 0]])
            XCTAssertEqual(duplicate.status, 409)
            XCTAssertNotNil(duplicate.json["conflictingRequest"], duplicate.text)
            let byMember = try await Compute.call(api, .post, "/flavors", token: alice.token, body: ["flavor": ["name": "x", "ram": 1, "vcpus": 1, "disk": 0]])
            XCTAssertEqual(byMember.status, 403)
            let badRAM = try await Compute.call(api, .post, "/flavors", token: admin, body: ["flavor": ["name": "y", "ram": "lots", "vcpus": 1, "disk": 0]])
            XCTAssertEqual(badRAM.status, 400)
            XCTAssertNotNil(badRAM.json["badRequest"], badRAM.text)
            let specs = try await Compute.call(api, .post, "/flavors/\(id)/os-extra_specs", token: admin, body: ["extra_specs": ["hw:cpu_policy": "shared"]])
            XCTAssertEqual(specs.json["extra_specs"]?["hw:cpu_policy"]?.stringValue, "shared")
            let shown = try await Compute.call(api, .get, "/flavors/\(id)", token: alice.token)
            XCTAssertEqual(shown.json["flavor"]?["extra_specs"]?["hw:cpu_policy"]?.stringValue, "shared")

            let privateFlavor = try await Compute.call(api, .post, "/flavors", token: admin,
                                                       body: ["flavor": ["name": "private", "ram": 64, "vcpus": 1, "disk": 0, "os-flavor-access:is_public": false]])
            let privateID = try XCTUnwrap(privateFlavor.json["flavor"]?["id"]?.stringValue)
            let hidden = try await Compute.call(api, .get, "/flavors", token: alice.token).json["flavors"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
            XCTAssertFalse(hidden.contains(privateID))
            let granted = try await Compute.call(api, .post, "/flavors/\(privateID)/action", token: admin, body: ["addTenantAccess": ["tenant": .string(alice.project)]])
            XCTAssertEqual(granted.status, 200, granted.text)
            let visible = try await Compute.call(api, .get, "/flavors", token: alice.token).json["flavors"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
            XCTAssertTrue(visible.contains(privateID))

            let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGbdLLNv4eRqIjYgG1Uvvr0fMBE/gwUTJSEsTS+qlt3f alice@example"
            let keypair = try await Compute.call(api, .post, "/os-keypairs", token: alice.token, body: ["keypair": ["name": "k1", "public_key": .string(key)]],
                                                 version: "2.10")
            XCTAssertEqual(keypair.status, 201, keypair.text)
            XCTAssertEqual(keypair.json["keypair"]?["fingerprint"]?.stringValue?.split(separator: ":").count, 16)
            let again = try await Compute.call(api, .post, "/os-keypairs", token: alice.token, body: ["keypair": ["name": "k1", "public_key": .string(key)]])
            XCTAssertEqual(again.status, 409)
            let garbage = try await Compute.call(api, .post, "/os-keypairs", token: alice.token, body: ["keypair": ["name": "k2", "public_key": "not a key"]])
            XCTAssertEqual(garbage.status, 400)
            let adminList = try await Compute.call(api, .get, "/os-keypairs", token: admin).json["keypairs"]?.arrayValue ?? []
            XCTAssertTrue(adminList.isEmpty, "keypairs belong to their user")
            let deleted = try await Compute.call(api, .delete, "/os-keypairs/k1", token: alice.token, version: "2.10")
            XCTAssertEqual(deleted.status, 204)
        }
    }

    func testBootLandsOnAHostAndEveryActionDrivesTheStateMachine() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(2)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let (_, bigger) = try await Compute.bootables(api, admin: admin, vcpus: 2, ram: 1024)
            let alice = try await api.projectUser(admin: admin, name: "alice")

            let created = try await Compute.boot(api, token: alice.token, image: image, flavor: flavor, extra: ["metadata": ["a": "b"]])
            XCTAssertEqual(created.status, 202, created.text)
            XCTAssertNotNil(created.json["server"]?["adminPass"]?.stringValue)
            let id = try XCTUnwrap(created.json["server"]?["id"]?.stringValue)
            var server = try await Compute.waitFor(api, id, token: alice.token, status: "ACTIVE")
            XCTAssertEqual(server["OS-EXT-STS:power_state"]?.intValue, 1)
            XCTAssertNil(server["OS-EXT-SRV-ATTR:host"], "non-admins do not see the host")
            XCTAssertEqual(server["flavor"]?["original_name"]?.stringValue, "f1-512")
            let asAdmin = try await Compute.call(api, .get, "/servers/\(id)", token: admin).json["server"]
            let host = try XCTUnwrap(asAdmin?["OS-EXT-SRV-ATTR:host"]?.stringValue)
            XCTAssertTrue(host.hasPrefix("fake-"))

            // Each action, and a refused one in the wrong state.
            let start = try await Compute.action(api, id, token: alice.token, ["os-start": .null])
            XCTAssertEqual(start.status, 409, "an active server cannot be started")
            XCTAssertTrue(start.json["conflictingRequest"]?["message"]?.stringValue?.contains("vm_state active") ?? false, start.text)
            for (body, status) in [(["os-stop": JSON.null], "SHUTOFF"), (["os-start": .null], "ACTIVE"), (["reboot": ["type": "HARD"]], "ACTIVE"),
                                   (["pause": .null], "PAUSED"), (["unpause": .null], "ACTIVE"), (["suspend": .null], "SUSPENDED"),
                                   (["resume": .null], "ACTIVE"), (["rescue": [:]], "RESCUE"), (["unrescue": .null], "ACTIVE")] as [(JSON, String)] {
                let reply = try await Compute.action(api, id, token: alice.token, body)
                XCTAssertTrue([200, 202].contains(reply.status), "\(body.serialized()): \(reply.text)")
                try await Compute.waitFor(api, id, token: alice.token, status: status)
            }
            let locked = try await Compute.action(api, id, token: alice.token, ["lock": ["locked_reason": "maintenance"]])
            XCTAssertEqual(locked.status, 202)
            let refused = try await Compute.action(api, id, token: alice.token, ["os-stop": .null])
            XCTAssertEqual(refused.status, 409, "a locked server refuses its owner")
            server = try await Compute.call(api, .get, "/servers/\(id)", token: alice.token).json["server"] ?? .null
            XCTAssertEqual(server["locked_reason"]?.stringValue, "maintenance")
            _ = try await Compute.action(api, id, token: alice.token, ["unlock": .null])

            // Resize and revert, resize and confirm.
            let resize = try await Compute.action(api, id, token: alice.token, ["resize": ["flavorRef": .string(bigger)]])
            XCTAssertEqual(resize.status, 202, resize.text)
            server = try await Compute.waitFor(api, id, token: alice.token, status: "VERIFY_RESIZE")
            XCTAssertEqual(server["flavor"]?["vcpus"]?.intValue, 2)
            _ = try await Compute.action(api, id, token: alice.token, ["revertResize": .null])
            server = try await Compute.waitFor(api, id, token: alice.token, status: "ACTIVE")
            XCTAssertEqual(server["flavor"]?["vcpus"]?.intValue, 1)
            _ = try await Compute.action(api, id, token: alice.token, ["resize": ["flavorRef": .string(bigger)]])
            try await Compute.waitFor(api, id, token: alice.token, status: "VERIFY_RESIZE")
            let confirm = try await Compute.action(api, id, token: alice.token, ["confirmResize": .null])
            XCTAssertEqual(confirm.status, 204, confirm.text)
            server = try await Compute.waitFor(api, id, token: alice.token, status: "ACTIVE")
            XCTAssertEqual(server["flavor"]?["vcpus"]?.intValue, 2)

            // Cold and live migration move it to the other host.
            let before = try await Compute.call(api, .get, "/servers/\(id)", token: admin).json["server"]?["OS-EXT-SRV-ATTR:host"]?.stringValue
            _ = try await Compute.action(api, id, token: admin, ["migrate": .null])
            try await Compute.waitFor(api, id, token: admin, status: "VERIFY_RESIZE")
            _ = try await Compute.action(api, id, token: admin, ["confirmResize": .null])
            let migrated = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
            XCTAssertNotEqual(migrated["OS-EXT-SRV-ATTR:host"]?.stringValue, before)
            let live = try await Compute.action(api, id, token: admin, ["os-migrateLive": ["host": .null, "block_migration": "auto"]])
            XCTAssertEqual(live.status, 202, live.text)
            let back = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
            XCTAssertEqual(back["OS-EXT-SRV-ATTR:host"]?.stringValue, before)

            // Snapshot, shelve/unshelve, rebuild, console.
            let snapshot = try await Compute.action(api, id, token: alice.token, ["createImage": ["name": "snap"]])
            XCTAssertEqual(snapshot.status, 202, snapshot.text)
            let snapshotID = try XCTUnwrap(snapshot.json["image_id"]?.stringValue)
            try await Compute.waitFor(api, id, token: alice.token, status: "ACTIVE")
            let snapshotImage = try await api.call(.get, "/image/v2/images/\(snapshotID)", token: alice.token).json
            XCTAssertEqual(snapshotImage["status"]?.stringValue, "active", snapshotImage.serialized())
            _ = try await Compute.action(api, id, token: alice.token, ["shelve": .null])
            server = try await Compute.waitFor(api, id, token: alice.token, status: "SHELVED_OFFLOADED")
            _ = try await Compute.action(api, id, token: alice.token, ["unshelve": .null])
            try await Compute.waitFor(api, id, token: alice.token, status: "ACTIVE")
            let rebuild = try await Compute.action(api, id, token: alice.token, ["rebuild": ["imageRef": .string(snapshotID)]])
            XCTAssertEqual(rebuild.status, 202, rebuild.text)
            XCTAssertEqual(rebuild.json["server"]?["image"]?["id"]?.stringValue, snapshotID)
            try await Compute.waitFor(api, id, token: alice.token, status: "ACTIVE")
            let console = try await Compute.action(api, id, token: alice.token, ["os-getConsoleOutput": ["length": 2]])
            XCTAssertEqual(console.status, 200, console.text)
            XCTAssertEqual(console.json["output"]?.stringValue?.split(separator: "\n").count, 2)

            // Every request is an instance action with its events.
            let actions = try await Compute.call(api, .get, "/servers/\(id)/os-instance-actions", token: alice.token, version: "2.84")
            let names = actions.json["instanceActions"]?.arrayValue?.compactMap { $0["action"]?.stringValue } ?? []
            for expected in ["create", "stop", "start", "reboot", "pause", "resize", "confirmResize", "revertResize", "migrate", "live-migration",
                             "shelve", "unshelve", "rebuild", "createImage", "lock", "unlock"] {
                XCTAssertTrue(names.contains(expected), "\(expected) missing from \(names)")
            }
            let createAction = try XCTUnwrap(actions.json["instanceActions"]?.arrayValue?.last)
            let detail = try await Compute.call(api, .get, "/servers/\(id)/os-instance-actions/\(createAction["request_id"]?.stringValue ?? "")",
                                                token: alice.token, version: "2.84")
            XCTAssertEqual(detail.json["instanceAction"]?["events"]?.arrayValue?.first?["result"]?.stringValue, "Success", detail.text)

            // Every move left a migration record, newest first, in the status it ended in.
            let migrations = try await Compute.call(api, .get, "/os-migrations?instance_uuid=\(id)", token: admin)
            XCTAssertEqual(migrations.status, 200, migrations.text)
            let records = migrations.json["migrations"]?.arrayValue ?? []
            XCTAssertEqual(records.map { $0["migration_type"]?.stringValue ?? "" }, ["live-migration", "migration", "resize", "resize"], migrations.text)
            XCTAssertEqual(records.map { $0["status"]?.stringValue ?? "" }, ["completed", "confirmed", "confirmed", "reverted"], migrations.text)
            XCTAssertNotNil(records.first?["dest_compute"]?.stringValue)
            XCTAssertNotEqual(records.first?["dest_compute"], records.first?["source_compute"])
            let paged = try await Compute.call(api, .get, "/os-migrations?instance_uuid=\(id)&limit=1", token: admin, version: "2.59")
            XCTAssertEqual(paged.json["migrations"]?.arrayValue?.count, 1, paged.text)
            XCTAssertNotNil(paged.json["migrations"]?.arrayValue?.first?["uuid"]?.stringValue)
            XCTAssertNotNil(paged.json["migrations_links"], paged.text)
            let liveOnly = try await Compute.call(api, .get, "/os-migrations?migration_type=live-migration&instance_uuid=\(id)", token: admin, version: "2.1")
            XCTAssertEqual(liveOnly.json["migrations"]?.arrayValue?.count, 1)
            XCTAssertNil(liveOnly.json["migrations"]?.arrayValue?.first?["migration_type"], "2.23 added migration_type")
            let inProgress = try await Compute.call(api, .get, "/servers/\(id)/migrations", token: admin)
            XCTAssertEqual(inProgress.json["migrations"], [], inProgress.text)
            let forbidden = try await Compute.call(api, .get, "/os-migrations", token: alice.token)
            XCTAssertEqual(forbidden.status, 403, forbidden.text)

            let deleted = try await Compute.call(api, .delete, "/servers/\(id)", token: alice.token)
            XCTAssertEqual(deleted.status, 204)
            let gone = try await Compute.call(api, .get, "/servers/\(id)", token: alice.token)
            XCTAssertEqual(gone.status, 404)
            XCTAssertNotNil(gone.json["itemNotFound"], gone.text)
            let limits = try await Compute.call(api, .get, "/limits", token: alice.token, version: "2.1")
            XCTAssertEqual(limits.json["limits"]?["absolute"]?["totalInstancesUsed"]?.intValue, 0, "delete gives the quota back")
        }
    }

    /// Shapes older microversions keep, as Tempest's schemas check them.
    func testOlderMicroversionShapes() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let project = try await api.call(.get, "/identity/v3/auth/tokens", token: admin, headers: ["X-Subject-Token": admin])
                .json["token"]?["project"]?["id"]?.stringValue ?? ""
            let flavor = try await Compute.call(api, .post, "/flavors", token: admin,
                                                body: ["flavor": ["name": "numbered", "ram": "64", "vcpus": 1, "disk": 0, "id": 4242, "os-flavor-access:is_public": "True"]],
                                                version: "2.1")
            XCTAssertEqual(flavor.status, 200, flavor.text)
            XCTAssertEqual(flavor.json["flavor"]?["id"]?.stringValue, "4242")
            XCTAssertEqual(flavor.json["flavor"]?["swap"]?.stringValue, "", "swap is \"\" before 2.75")
            let quota21 = try await Compute.call(api, .get, "/os-quota-sets/\(project)", token: admin, version: "2.1").json["quota_set"]
            XCTAssertEqual(quota21?["floating_ips"]?.intValue, 10)
            let quota257 = try await Compute.call(api, .get, "/os-quota-sets/\(project)", token: admin, version: "2.57").json["quota_set"]
            XCTAssertNil(quota257?["floating_ips"])
            XCTAssertNil(quota257?["injected_files"])
            let limits = try await Compute.call(api, .get, "/limits", token: admin, version: "2.1").json["limits"]?["absolute"]
            XCTAssertNotNil(limits?["maxImageMeta"])
            let aggregate = try await Compute.call(api, .post, "/os-aggregates", token: admin, body: ["aggregate": ["name": "old"]], version: "2.1")
            XCTAssertNil(aggregate.json["aggregate"]?["uuid"], "uuid arrives in 2.41")

            let (image, small) = try await Compute.bootables(api, admin: admin)
            let created = try await Compute.boot(api, token: admin, image: image, flavor: small,
                                                 extra: ["accessIPv6": "0000:0000:0000:0000:0000:babe:220.12.22.2"])
            let id = try XCTUnwrap(created.json["server"]?["id"]?.stringValue)
            let active = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
            XCTAssertEqual(active["accessIPv6"]?.stringValue, "::babe:dc0c:1602")
            let renamed = try await Compute.call(api, .put, "/servers/\(id)", token: admin, body: ["server": ["name": "renamed"]], version: "2.1")
            XCTAssertEqual(renamed.json["server"]?["name"]?.stringValue, "renamed")
            XCTAssertNil(renamed.json["server"]?["OS-EXT-STS:vm_state"], "PUT answers the restricted view before 2.75")
            let rebuilt = try await Compute.action(api, id, token: admin, ["rebuild": ["imageRef": .string(image)]], version: "2.57")
            XCTAssertEqual(rebuilt.status, 202, rebuilt.text)
            XCTAssertEqual(rebuilt.json["server"]?["user_data"], .null)
            XCTAssertNotNil(rebuilt.json["server"]?["key_name"])
        }
    }

    func testEvacuateNeedsTheHostDown() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(2)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let created = try await Compute.boot(api, token: admin, image: image, flavor: flavor)
            let id = try XCTUnwrap(created.json["server"]?["id"]?.stringValue)
            let active = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
            let host = try XCTUnwrap(active["OS-EXT-SRV-ATTR:host"]?.stringValue)
            let early = try await Compute.action(api, id, token: admin, ["evacuate": [:]])
            XCTAssertEqual(early.status, 400, "the host is up: \(early.text)")
            let services = try await Compute.call(api, .get, "/os-services?binary=nova-compute&host=\(host)", token: admin, version: "2.53")
            let serviceID = try XCTUnwrap(services.json["services"]?.arrayValue?.first?["id"]?.stringValue)
            let down = try await Compute.call(api, .put, "/os-services/\(serviceID)", token: admin, body: ["forced_down": true], version: "2.53")
            XCTAssertEqual(down.status, 200, down.text)
            let evacuated = try await Compute.action(api, id, token: admin, ["evacuate": [:]])
            XCTAssertEqual(evacuated.status, 200, evacuated.text)
            let moved = try await Compute.waitFor(api, id, token: admin, status: "SHUTOFF")
            XCTAssertNotEqual(moved["OS-EXT-SRV-ATTR:host"]?.stringValue, host)
            let actions = try await Compute.call(api, .get, "/servers/\(id)/os-instance-actions", token: admin).json["instanceActions"]?.arrayValue ?? []
            XCTAssertTrue(actions.contains { $0["action"]?.stringValue == "evacuate" })
            let records = try await Compute.call(api, .get, "/os-migrations?migration_type=evacuation", token: admin)
            XCTAssertEqual(records.json["migrations"]?.arrayValue?.first?["status"], "done", records.text)
            XCTAssertEqual(records.json["migrations"]?.arrayValue?.first?["source_compute"]?.stringValue, host)
        }
    }

    func testServicesHypervisorsZonesAggregatesAndForcedHost() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(2)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            var computes: [JSON] = []
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                computes = (try await Compute.call(api, .get, "/os-services?binary=nova-compute", token: admin, version: "2.69")).json["services"]?.arrayValue ?? []
                if computes.count == 2 { break }
                try await Task.sleep(nanoseconds: 10_000_000)
            }
            XCTAssertEqual(computes.compactMap { $0["state"]?.stringValue }, ["up", "up"])
            let hypervisors = try await Compute.call(api, .get, "/os-hypervisors/detail", token: admin, version: "2.88")
            XCTAssertEqual(hypervisors.json["hypervisors"]?.arrayValue?.first?["hypervisor_type"]?.stringValue, "fake")
            // The legacy hypervisor views, and their removal by later microversions.
            let statistics = try await Compute.call(api, .get, "/os-hypervisors/statistics", token: admin, version: "2.87")
            XCTAssertEqual(statistics.json["hypervisor_statistics"]?["count"]?.intValue, 2, statistics.text)
            let gone = try await Compute.call(api, .get, "/os-hypervisors/statistics", token: admin, version: "2.88")
            XCTAssertEqual(gone.status, 404)
            let uptime = try await Compute.call(api, .get, "/os-hypervisors/1/uptime", token: admin, version: "2.1")
            XCTAssertTrue(uptime.json["hypervisor"]?["uptime"]?.stringValue?.contains("load average") ?? false, uptime.text)
            let search = try await Compute.call(api, .get, "/os-hypervisors/fake-2/search", token: admin, version: "2.1")
            XCTAssertEqual(search.json["hypervisors"]?.arrayValue?.compactMap { $0["hypervisor_hostname"]?.stringValue }, ["fake-2"], search.text)
            let unmatched = try await Compute.call(api, .get, "/os-hypervisors/nothing-like-it/servers", token: admin, version: "2.1")
            XCTAssertEqual(unmatched.status, 404)
            let zones = try await Compute.call(api, .get, "/os-availability-zone", token: admin, version: "2.1")
            XCTAssertEqual(zones.json["availabilityZoneInfo"]?.arrayValue?.compactMap { $0["zoneName"]?.stringValue }, ["nova"])
            let hosts = try await Compute.call(api, .get, "/os-hosts", token: admin, version: "2.1")
            XCTAssertTrue(hosts.json["hosts"]?.arrayValue?.contains { $0["host_name"]?.stringValue == "fake-1" } ?? false, hosts.text)

            let aggregate = try await Compute.call(api, .post, "/os-aggregates", token: admin, body: ["aggregate": ["name": "agg", "availability_zone": "az1"]])
            XCTAssertEqual(aggregate.status, 200, aggregate.text)
            let aggregateID = try XCTUnwrap(aggregate.json["aggregate"]?["id"]?.intValue)
            let added = try await Compute.call(api, .post, "/os-aggregates/\(aggregateID)/action", token: admin, body: ["add_host": ["host": "fake-2"]])
            XCTAssertEqual(added.status, 200, added.text)
            let zonesNow = try await Compute.call(api, .get, "/os-availability-zone", token: admin, version: "2.1")
            XCTAssertEqual(Set(zonesNow.json["availabilityZoneInfo"]?.arrayValue?.compactMap { $0["zoneName"]?.stringValue } ?? []), ["nova", "az1"])

            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let inZone = try await Compute.boot(api, token: admin, image: image, flavor: flavor, extra: ["availability_zone": "az1"])
            let zoned = try await Compute.waitFor(api, try XCTUnwrap(inZone.json["server"]?["id"]?.stringValue), token: admin, status: "ACTIVE")
            XCTAssertEqual(zoned["OS-EXT-SRV-ATTR:host"]?.stringValue, "fake-2")
            XCTAssertEqual(zoned["OS-EXT-AZ:availability_zone"]?.stringValue, "az1")
            let forced = try await Compute.boot(api, token: admin, image: image, flavor: flavor, extra: ["availability_zone": "nova:fake-1"])
            let onHost = try await Compute.waitFor(api, try XCTUnwrap(forced.json["server"]?["id"]?.stringValue), token: admin, status: "ACTIVE")
            XCTAssertEqual(onHost["OS-EXT-SRV-ATTR:host"]?.stringValue, "fake-1")

            // Usage: the running servers count from their launch, per project.
            let project = try XCTUnwrap(onHost["tenant_id"]?.stringValue)
            let usages = try await Compute.call(api, .get, "/os-simple-tenant-usage?detailed=1&start=2020-01-01T00:00:00", token: admin, version: "2.1")
            let mine = usages.json["tenant_usages"]?.arrayValue?.first { $0["tenant_id"]?.stringValue == project }
            XCTAssertEqual(mine?["server_usages"]?.arrayValue?.count, 2, usages.text)
            XCTAssertGreaterThan(mine?["total_hours"]?.doubleValue ?? 0, 0, usages.text)
            let shown = try await Compute.call(api, .get, "/os-simple-tenant-usage/\(project)?start=2020-01-01T00:00:00", token: admin, version: "2.40")
            XCTAssertEqual(shown.json["tenant_usage"]?["server_usages"]?.arrayValue?.first?["state"]?.stringValue, "active", shown.text)
            let backwards = try await Compute.call(api, .get, "/os-simple-tenant-usage?start=2030-01-01T00:00:00&end=2020-01-01T00:00:00", token: admin)
            XCTAssertEqual(backwards.status, 400, backwards.text)
            let outsider = try await api.projectUser(admin: admin, name: "usage-outsider")
            let denied = try await Compute.call(api, .get, "/os-simple-tenant-usage/\(project)", token: outsider.token)
            XCTAssertEqual(denied.status, 403, denied.text)

            // A disabled host gets no new servers.
            let fake1 = try XCTUnwrap(computes.first { $0["host"]?.stringValue == "fake-1" }?["id"]?.stringValue)
            let disabled = try await Compute.call(api, .put, "/os-services/\(fake1)", token: admin, body: ["status": "disabled", "disabled_reason": "test"],
                                                  version: "2.53")
            XCTAssertEqual(disabled.json["service"]?["status"]?.stringValue, "disabled", disabled.text)
            for _ in 0..<3 {
                let reply = try await Compute.boot(api, token: admin, image: image, flavor: flavor)
                let server = try await Compute.waitFor(api, try XCTUnwrap(reply.json["server"]?["id"]?.stringValue), token: admin, status: "ACTIVE")
                XCTAssertEqual(server["OS-EXT-SRV-ATTR:host"]?.stringValue, "fake-2")
            }
        }
    }

    func testLegacyHostUpdateAndPowerActions() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let member = try await api.projectUser(admin: admin, name: "hosts-member")
            let disabled = try await Compute.call(api, .put, "/os-hosts/fake-1", token: admin, body: ["status": "disable"], version: "2.42")
            XCTAssertEqual(disabled.status, 200, disabled.text)
            XCTAssertEqual(disabled.json["status"], "disabled")
            let services = try await Compute.call(api, .get, "/os-services?binary=nova-compute", token: admin)
            XCTAssertEqual(services.json["services"]?.arrayValue?.first?["status"], "disabled", services.text)
            let enabled = try await Compute.call(api, .put, "/os-hosts/fake-1", token: admin, body: ["status": "enable"], version: "2.42")
            XCTAssertEqual(enabled.json["status"], "enabled", enabled.text)
            for (body, status) in [(JSON.object([:]), 400), (["status": "sideways"], 400), (["status": "enable", "maintenance_mode": "invalid"], 400),
                                   (["maintenance_mode": "enable"], 501)] {
                let reply = try await Compute.call(api, .put, "/os-hosts/fake-1", token: admin, body: body, version: "2.42")
                XCTAssertEqual(reply.status, status, reply.text)
            }
            let missing = try await Compute.call(api, .put, "/os-hosts/no-such-host", token: admin, body: ["status": "enable"], version: "2.42")
            XCTAssertEqual(missing.status, 404, missing.text)
            let notAdmin = try await Compute.call(api, .put, "/os-hosts/fake-1", token: member.token, body: ["status": "enable"], version: "2.42")
            XCTAssertEqual(notAdmin.status, 403, notAdmin.text)
            let reboot = try await Compute.call(api, .get, "/os-hosts/fake-1/reboot", token: member.token, version: "2.42")
            XCTAssertEqual(reboot.status, 403, reboot.text)
            let refused = try await Compute.call(api, .get, "/os-hosts/fake-1/startup", token: admin, version: "2.42")
            XCTAssertEqual(refused.status, 501, refused.text)
        }
    }

    func testCreateBackupRotates() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let (id, _) = try await Compute.activeServer(api, admin: admin)
            func backups() async throws -> [String] {
                let listed = try await api.call(.get, "/image/v2/images?instance_uuid=\(id)&image_type=backup&sort_key=created_at&sort_dir=asc", token: admin)
                return listed.json["images"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
            }
            var made: [String] = []
            for index in 0..<3 {
                let backup = try await Compute.action(api, id, token: admin, ["createBackup": ["name": .string("daily-\(index)"), "backup_type": "daily", "rotation": 2]])
                XCTAssertEqual(backup.status, 202, backup.text)
                made.append(try XCTUnwrap(backup.json["image_id"]?.stringValue, backup.text))
                _ = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
                var deadline = Date().addingTimeInterval(10)
                while try await Compute.call(api, .get, "/servers/\(id)", token: admin).json["server"]?["OS-EXT-STS:task_state"] != .null && Date() < deadline {
                    try await Task.sleep(nanoseconds: 20_000_000)
                }
                deadline = Date().addingTimeInterval(10)
                while try await backups().count != min(index + 1, 2) && Date() < deadline { try await Task.sleep(nanoseconds: 20_000_000) }
            }
            let kept = try await backups()
            XCTAssertEqual(kept, Array(made.suffix(2)), "the oldest backup was rotated out")
            let shown = try await api.call(.get, "/image/v2/images/\(made[2])", token: admin)
            XCTAssertEqual(shown.json["backup_type"], "daily", shown.text)
            let bad = try await Compute.action(api, id, token: admin, ["createBackup": ["name": "x", "backup_type": "daily", "rotation": -1]])
            XCTAssertEqual(bad.status, 400, bad.text)
            let none = try await Compute.action(api, id, token: admin, ["createBackup": ["name": "x", "backup_type": "daily", "rotation": 0]])
            XCTAssertEqual(none.status, 202, none.text)
            let left = try await backups()
            XCTAssertEqual(left, [])
        }
    }

    func testDiagnosticsComeFromTheHostsDriver() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let member = try await api.projectUser(admin: admin, name: "diag-member")
            let (id, _) = try await Compute.activeServer(api, admin: admin)
            let standard = try await Compute.call(api, .get, "/servers/\(id)/diagnostics", token: admin, version: "2.48")
            XCTAssertEqual(standard.status, 200, standard.text)
            XCTAssertEqual(standard.json["state"], "running")
            XCTAssertEqual(standard.json["num_cpus"], 1)
            XCTAssertEqual(standard.json["memory_details"]?["maximum"], 512)
            XCTAssertEqual(standard.json["config_drive"], true, "config drives are forced by default")
            XCTAssertEqual(standard.json["disk_details"]?.arrayValue?.count, 1)
            let legacy = try await Compute.call(api, .get, "/servers/\(id)/diagnostics", token: admin, version: "2.1")
            XCTAssertNotNil(legacy.json["cpu0_time"], legacy.text)
            XCTAssertNotNil(legacy.json["vda_read"], legacy.text)
            let forbidden = try await Compute.call(api, .get, "/servers/\(id)/diagnostics", token: member.token)
            XCTAssertTrue([403, 404].contains(forbidden.status), forbidden.text)
        }
    }

    func testImageProxy() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let booted = try await Compute.boot(api, token: admin, image: image, flavor: flavor)
            let id = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)
            _ = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
            let snapshot = try await Compute.action(api, id, token: admin, ["createImage": ["name": "snap", "metadata": ["k": "v"]]], version: "2.1")
            XCTAssertEqual(snapshot.status, 202, snapshot.text)
            let location = try XCTUnwrap(snapshot.headers[.location], "before 2.45 the image is the Location")
            let imageID = String(location.split(separator: "/").last ?? "")
            var status = ""
            let deadline = Date().addingTimeInterval(10)
            while status != "ACTIVE" && Date() < deadline {
                status = try await Compute.call(api, .get, "/images/\(imageID)", token: admin, version: "2.1").json["image"]?["status"]?.stringValue ?? ""
                if status != "ACTIVE" { try await Task.sleep(nanoseconds: 20_000_000) }
            }
            XCTAssertEqual(status, "ACTIVE")
            let shown = try await Compute.call(api, .get, "/images/\(imageID)", token: admin, version: "2.1")
            XCTAssertEqual(shown.json["image"]?["server"]?["id"]?.stringValue, id, shown.text)
            XCTAssertEqual(shown.json["image"]?["metadata"]?["k"], "v")
            XCTAssertEqual(shown.json["image"]?["progress"], 100)
            let list = try await Compute.call(api, .get, "/images", token: admin, version: "2.1")
            XCTAssertEqual(Set(list.json["images"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []), [image, imageID], list.text)
            XCTAssertNil(list.json["images"]?.arrayValue?.first?["status"], "the short list has ids, names and links")
            let byServer = try await Compute.call(api, .get, "/images/detail?server=\(id)&type=snapshot", token: admin, version: "2.1")
            XCTAssertEqual(byServer.json["images"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [imageID], byServer.text)
            let limited = try await Compute.call(api, .get, "/images/detail?limit=1", token: admin, version: "2.1")
            XCTAssertEqual(limited.json["images"]?.arrayValue?.count, 1)

            let merged = try await Compute.call(api, .post, "/images/\(imageID)/metadata", token: admin, body: ["metadata": ["a": "1"]], version: "2.1")
            XCTAssertEqual(merged.json["metadata"]?["a"], "1", merged.text)
            XCTAssertEqual(merged.json["metadata"]?["k"], "v")
            let replaced = try await Compute.call(api, .put, "/images/\(imageID)/metadata", token: admin, body: ["metadata": ["b": "2"]], version: "2.1")
            XCTAssertNil(replaced.json["metadata"]?["a"], replaced.text)
            XCTAssertEqual(replaced.json["metadata"]?["b"], "2")
            let one = try await Compute.call(api, .put, "/images/\(imageID)/metadata/c", token: admin, body: ["meta": ["c": "3"]], version: "2.1")
            XCTAssertEqual(one.json["meta"], ["c": "3"], one.text)
            let mismatch = try await Compute.call(api, .put, "/images/\(imageID)/metadata/c", token: admin, body: ["meta": ["d": "3"]], version: "2.1")
            XCTAssertEqual(mismatch.status, 400)
            let removed = try await Compute.call(api, .delete, "/images/\(imageID)/metadata/c", token: admin, version: "2.1")
            XCTAssertEqual(removed.status, 204, removed.text)
            let missing = try await Compute.call(api, .get, "/images/\(imageID)/metadata/c", token: admin, version: "2.1")
            XCTAssertEqual(missing.status, 404)

            let gone = try await Compute.call(api, .get, "/images", token: admin, version: "2.36")
            XCTAssertEqual(gone.status, 404, "the proxy ends at 2.36")
            let deleted = try await Compute.call(api, .delete, "/images/\(imageID)", token: admin, version: "2.1")
            XCTAssertEqual(deleted.status, 204, deleted.text)
            let after = try await Compute.call(api, .get, "/images/\(imageID)", token: admin, version: "2.1")
            XCTAssertEqual(after.status, 404)
        }
    }

    func testLegacyExtensionsAuditLogAndEmptyUsageProject() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let list = try await Compute.call(api, .get, "/extensions", token: admin)
            XCTAssertTrue(list.json["extensions"]?.arrayValue?.contains { $0["name"] == "Hosts" } ?? false, list.text)
            let one = try await Compute.call(api, .get, "/extensions/os-consoles", token: admin)
            XCTAssertEqual(one.json["extension"]?["alias"], "os-consoles", one.text)
            let missing = try await Compute.call(api, .get, "/extensions/os-nothing", token: admin)
            XCTAssertEqual(missing.status, 404)
            let empty = try await Compute.call(api, .get, "/os-simple-tenant-usage/", token: admin)
            XCTAssertEqual(empty.status, 404, empty.text)
            let usage = try await Compute.call(api, .get, "/os-simple-tenant-usage", token: admin)
            XCTAssertEqual(usage.status, 200, usage.text)
            let audit = try await Compute.call(api, .get, "/os-instance_usage_audit_log/2026-03-15%2010:00:00", token: admin)
            XCTAssertEqual(audit.json["instance_usage_audit_log"]?["period_beginning"], "2026-02-01 00:00:00", audit.text)
            XCTAssertEqual(audit.json["instance_usage_audit_log"]?["period_ending"], "2026-03-01 00:00:00")
            let invalid = try await Compute.call(api, .get, "/os-instance_usage_audit_log/not-a-date", token: admin)
            XCTAssertEqual(invalid.status, 400, invalid.text)
            let all = try await Compute.call(api, .get, "/os-instance_usage_audit_log", token: admin)
            XCTAssertNotNil(all.json["instance_usage_audit_logs"]?["hosts_not_run"]?.arrayValue, all.text)
        }
    }
}
