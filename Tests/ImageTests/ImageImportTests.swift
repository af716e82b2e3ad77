import Crypto
import Foundation
import HTTPTypes
import Logging
import NimbusCore
import NimbusStore
import NimbusTestSupport
import XCTest

/// The interoperable import API (glance-direct and copy-image), multiple stores, tasks, usage,
/// and recovery of work a crash interrupted.
final class ImageImportTests: XCTestCase {
    static let twoStores = ["glance_store": ["enabled_backends": "fast:file, slow:file"]]

    /// Polls the image, as clients do, until no import holds it.
    static func waitForImport(_ api: API, _ id: String, token: String) async throws -> JSON {
        for _ in 0..<500 {
            let image = try await api.call(.get, "/image/v2/images/\(id)", token: token).json
            if image["os_glance_import_task"] == nil && image["status"]?.stringValue != "importing" { return image }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        XCTFail("import of \(id) did not finish")
        return .null
    }

    static func data(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 11) } }

    /// `GET /v2/tasks` and `GET /v2/tasks/{id}`: admin-only, as Glance's default policy; the
    /// import API's tasks in Glance's stub shape, filtered, sorted and paged.
    func testTasksAPIListsImportTasks() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let member = try await api.projectUser(admin: admin, name: "tasker")
            let empty = try await api.call(.get, "/image/v2/tasks", token: admin)
            XCTAssertEqual(empty.status, 200, empty.text)
            XCTAssertEqual(empty.json["tasks"], [])
            XCTAssertEqual(empty.json["first"]?.stringValue, "/v2/tasks")
            XCTAssertEqual(empty.json["schema"]?.stringValue, "/v2/schemas/tasks")
            XCTAssertNil(empty.json["next"])
            let unknown = try await api.call(.get, "/image/v2/tasks/00000000-0000-0000-0000-000000000000", token: admin)
            XCTAssertEqual(unknown.status, 404)
            let schema = try await api.call(.get, "/image/v2/schemas/tasks", token: admin)
            XCTAssertEqual(schema.json["name"]?.stringValue, "tasks")

            // Two imports by the member's project, each recorded as a task.
            var taskIDs: [String] = []
            for name in ["one", "two"] {
                let id = try await ImageAPITests.createImage(api, token: member.token, ["name": .string(name)])
                let staged = try await api.call(.put, "/image/v2/images/\(id)/stage", token: member.token, bytes: Self.data(4096))
                XCTAssertEqual(staged.status, 204, staged.text)
                let started = try await api.call(.post, "/image/v2/images/\(id)/import", token: member.token, body: ["method": ["name": "glance-direct"]])
                XCTAssertEqual(started.status, 202, started.text)
                _ = try await Self.waitForImport(api, id, token: member.token)
                let tasks = try await api.call(.get, "/image/v2/images/\(id)/tasks", token: member.token).json["tasks"]?.arrayValue ?? []
                taskIDs.append(try XCTUnwrap(tasks.first?["id"]?.stringValue))
            }

            let list = try await api.call(.get, "/image/v2/tasks?sort_dir=asc", token: admin)
            XCTAssertEqual(list.status, 200, list.text)
            let listed = list.json["tasks"]?.arrayValue ?? []
            XCTAssertEqual(listed.compactMap { $0["id"]?.stringValue }, taskIDs)
            let stub = try XCTUnwrap(listed.first?.objectValue)
            XCTAssertEqual(Set(stub.keys), ["id", "type", "status", "owner", "created_at", "updated_at", "expires_at", "self", "schema"])
            XCTAssertEqual(stub["type"]?.stringValue, "api_image_import")
            XCTAssertEqual(stub["status"]?.stringValue, "success")
            XCTAssertEqual(stub["owner"]?.stringValue, member.project)
            XCTAssertEqual(stub["self"]?.stringValue, "/v2/tasks/\(taskIDs[0])")
            XCTAssertEqual(list.json["first"]?.stringValue, "/v2/tasks?sort_dir=asc")

            let page = try await api.call(.get, "/image/v2/tasks?limit=1&sort_dir=asc", token: admin)
            XCTAssertEqual(page.json["tasks"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [taskIDs[0]])
            let next = try XCTUnwrap(page.json["next"]?.stringValue)
            let second = try await api.call(.get, "/image" + next, token: admin)
            XCTAssertEqual(second.json["tasks"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [taskIDs[1]])
            let newestFirst = try await api.call(.get, "/image/v2/tasks", token: admin)
            XCTAssertEqual(newestFirst.json["tasks"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, taskIDs.reversed())
            let byStatus = try await api.call(.get, "/image/v2/tasks?status=failure", token: admin)
            XCTAssertEqual(byStatus.json["tasks"], [])
            let byOwner = try await api.call(.get, "/image/v2/tasks?owner=\(member.project)", token: admin)
            XCTAssertEqual(byOwner.json["tasks"]?.arrayValue?.count, 2)

            let shown = try await api.call(.get, "/image/v2/tasks/\(taskIDs[0])", token: admin)
            XCTAssertEqual(shown.status, 200)
            XCTAssertEqual(shown.json["input"]?["import_req"]?["method"]?["name"]?.stringValue, "glance-direct", shown.text)

            for query in ["status=done", "type=api_image_import", "sort_dir=up", "marker=nope", "limit=-1", "limit=x", "sort_key=colour",
                          "marker=00000000-0000-0000-0000-000000000000"] {
                let reply = try await api.call(.get, "/image/v2/tasks?\(query)", token: admin, headers: ["Accept": "application/json"])
                XCTAssertEqual(reply.status, 400, "\(query): \(reply.text)")
                XCTAssertEqual(reply.json["code"]?.stringValue, "400 Bad Request", reply.text)
            }
            // The tasks API is the admin's, even for the project's own tasks.
            let refusedList = try await api.call(.get, "/image/v2/tasks", token: member.token)
            XCTAssertEqual(refusedList.status, 403, refusedList.text)
            let refusedShow = try await api.call(.get, "/image/v2/tasks/\(taskIDs[0])", token: member.token)
            XCTAssertEqual(refusedShow.status, 403, refusedShow.text)
        }
    }

    func testGlanceDirectStagesThenImportsAndRecordsATask() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let info = try await api.call(.get, "/image/v2/info/import", token: admin)
            XCTAssertEqual(info.json["import-methods"]?["value"], ["glance-direct", "copy-image"])
            let created = try await api.call(.post, "/image/v2/images", token: admin, body: ["name": "staged", "disk_format": "raw", "container_format": "bare"])
            XCTAssertEqual(created.headers[HTTPField.Name("OpenStack-image-import-methods")!], "glance-direct,copy-image")
            let id = try XCTUnwrap(created.json["id"]?.stringValue)

            let early = try await api.call(.post, "/image/v2/images/\(id)/import", token: admin, body: ["method": ["name": "glance-direct"]])
            XCTAssertEqual(early.status, 409, "nothing staged yet")
            let bytes = Self.data(2 << 20)
            let staged = try await api.call(.put, "/image/v2/images/\(id)/stage", token: admin, bytes: bytes)
            XCTAssertEqual(staged.status, 204, staged.text)
            let uploading = try await api.call(.get, "/image/v2/images/\(id)", token: admin).json
            XCTAssertEqual(uploading["status"]?.stringValue, "uploading")
            XCTAssertEqual(uploading["size"]?.intValue, Int64(bytes.count))
            let twice = try await api.call(.put, "/image/v2/images/\(id)/stage", token: admin, bytes: [1])
            XCTAssertEqual(twice.status, 409)

            // Tempest sends all_stores; with one store it is the default store.
            let started = try await api.call(.post, "/image/v2/images/\(id)/import", token: admin,
                                             body: ["method": ["name": "glance-direct"], "all_stores": true])
            XCTAssertEqual(started.status, 202, started.text)
            let active = try await Self.waitForImport(api, id, token: admin)
            XCTAssertEqual(active["status"]?.stringValue, "active", active.serialized())
            XCTAssertEqual(active["stores"]?.stringValue, "local")
            XCTAssertEqual(active["os_glance_failed_import"]?.stringValue, "")
            XCTAssertEqual(active["os_glance_importing_to_stores"]?.stringValue, "", "left empty, as clients wait for")
            XCTAssertEqual(active["checksum"]?.stringValue, ImageAPITests.hex(Insecure.MD5.hash(data: bytes)))
            let download = try await api.call(.get, "/image/v2/images/\(id)/file", token: admin)
            XCTAssertEqual(download.bytes, bytes)
            XCTAssertEqual(try ImageAPITests.storedFiles(cloud).filter { $0.hasPrefix("staging/") }, [], "staged data is removed")

            let tasks = try await api.call(.get, "/image/v2/images/\(id)/tasks", token: admin).json["tasks"]?.arrayValue ?? []
            XCTAssertEqual(tasks.count, 1)
            XCTAssertEqual(tasks.first?["status"]?.stringValue, "success")
            XCTAssertEqual(tasks.first?["type"]?.stringValue, "api_image_import")
            XCTAssertEqual(tasks.first?["request_id"]?.stringValue, started.headers[HTTPField.Name("x-openstack-request-id")!])
            let task = try await api.call(.get, "/image/v2/tasks/\(tasks.first?["id"]?.stringValue ?? "")", token: admin)
            XCTAssertEqual(task.status, 200)
            let again = try await api.call(.post, "/image/v2/images/\(id)/import", token: admin, body: ["method": ["name": "glance-direct"]])
            XCTAssertEqual(again.status, 409, "an active image is no import target")
            // copy-image to all stores skips those holding the image: with one store, nothing to do.
            let copyAll = try await api.call(.post, "/image/v2/images/\(id)/import", token: admin,
                                             body: ["method": ["name": "copy-image"], "all_stores": true, "all_stores_must_succeed": false])
            XCTAssertEqual(copyAll.status, 202, copyAll.text)
            let unchanged = try await Self.waitForImport(api, id, token: admin)
            XCTAssertEqual(unchanged["stores"]?.stringValue, "local")
            XCTAssertEqual(unchanged["os_glance_failed_import"]?.stringValue, "")
        }
    }

    func testBadImportRequestsAndAFailedImport() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let id = try await ImageAPITests.createImage(api, token: admin, ["disk_format": "qcow2"])
            for (body, status) in [(JSON.object([:]), 400), (["method": [:]], 400), (["method": ["name": "web-download"]], 400),
                                   (["method": ["name": "glance-direct"], "all_stores": "yes"], 400),
                                   (["method": ["name": "glance-direct"], "stores": ["nowhere"]], 400)] as [(JSON, Int)] {
                let reply = try await api.call(.post, "/image/v2/images/\(id)/import", token: admin, body: body)
                XCTAssertEqual(reply.status, status, "\(body.serialized()): \(reply.text)")
            }
            let wrongType = try await api.call(.put, "/image/v2/images/\(id)/stage", token: admin, raw: "{}")
            XCTAssertEqual(wrongType.status, 415)

            // Declared qcow2, staged raw bytes: the import's format check fails, the image goes
            // back to queued with the failure recorded, and nothing stays behind.
            let staged = try await api.call(.put, "/image/v2/images/\(id)/stage", token: admin, bytes: Self.data(4096))
            XCTAssertEqual(staged.status, 204)
            let started = try await api.call(.post, "/image/v2/images/\(id)/import", token: admin, body: ["method": ["name": "glance-direct"]])
            XCTAssertEqual(started.status, 202)
            let failed = try await Self.waitForImport(api, id, token: admin)
            XCTAssertEqual(failed["status"]?.stringValue, "queued")
            XCTAssertEqual(failed["os_glance_failed_import"]?.stringValue, "local")
            XCTAssertEqual(failed["size"], .null)
            // The task's own record is finished just after the image's: wait for it too.
            var tasks: [JSON] = []
            for _ in 0..<500 {
                tasks = try await api.call(.get, "/image/v2/images/\(id)/tasks", token: admin).json["tasks"]?.arrayValue ?? []
                if tasks.first?["status"]?.stringValue != "processing" { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            XCTAssertEqual(tasks.first?["status"]?.stringValue, "failure")
            XCTAssertTrue(tasks.first?["message"]?.stringValue?.contains("disk_format qcow2") ?? false, tasks.description)
            XCTAssertEqual(try ImageAPITests.storedFiles(cloud), [])
            let usage = try await api.call(.get, "/image/v2/info/usage", token: admin).json["usage"]
            XCTAssertEqual(usage?["image_stage_total"]?["usage"]?.intValue, 0)
            XCTAssertEqual(usage?["image_size_total"]?["usage"]?.intValue, 0)

            let reader = try await api.projectUser(admin: admin, name: "rita", role: "reader")
            let mine = try await ImageAPITests.createImage(api, token: admin, ["visibility": "public"])
            let readerStages = try await api.call(.put, "/image/v2/images/\(mine)/stage", token: reader.token, bytes: [1])
            XCTAssertEqual(readerStages.status, 403, "a reader cannot stage into someone else's image")
        }
    }

    func testCopyImageBetweenStoresIsAdminOnlyAndCountedPerCopy() async throws {
        try await onEachEngine(settings: Self.twoStores) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let stores = try await api.call(.get, "/image/v2/info/stores", token: admin).json["stores"]?.arrayValue ?? []
            XCTAssertEqual(stores.compactMap { $0["id"]?.stringValue }, ["fast", "slow"])
            XCTAssertEqual(stores.first?["default"]?.stringValue, "true")

            let alice = try await api.projectUser(admin: admin, name: "alice")
            let id = try await ImageAPITests.createImage(api, token: alice.token)
            let bytes = Self.data(3 << 20)
            let upload = try await api.call(.put, "/image/v2/images/\(id)/file", token: alice.token, bytes: bytes)
            XCTAssertEqual(upload.status, 204, upload.text)
            let uploaded = try await api.call(.get, "/image/v2/images/\(id)", token: alice.token).json
            XCTAssertEqual(uploaded["stores"]?.stringValue, "fast")

            let byMember = try await api.call(.post, "/image/v2/images/\(id)/import", token: alice.token,
                                              body: ["method": ["name": "copy-image"], "stores": ["slow"]])
            XCTAssertEqual(byMember.status, 403, "copy-image is admin-only by default")
            let already = try await api.call(.post, "/image/v2/images/\(id)/import", token: admin,
                                             body: ["method": ["name": "copy-image"], "stores": ["fast"]])
            XCTAssertEqual(already.status, 409)
            let copy = try await api.call(.post, "/image/v2/images/\(id)/import", token: admin,
                                          body: ["method": ["name": "copy-image"], "all_stores": true])
            XCTAssertEqual(copy.status, 202, copy.text)
            let copied = try await Self.waitForImport(api, id, token: admin)
            XCTAssertEqual(copied["stores"]?.stringValue, "fast,slow")
            XCTAssertEqual(copied["status"]?.stringValue, "active")
            let usage = try await api.call(.get, "/image/v2/info/usage", token: alice.token).json["usage"]
            XCTAssertEqual(usage?["image_size_total"]?["usage"]?.intValue, 6, "each copy counts, in MiB")

            let fromSlow = try await api.call(.delete, "/image/v2/stores/slow/\(id)", token: admin)
            XCTAssertEqual(fromSlow.status, 204, fromSlow.text)
            let lastCopy = try await api.call(.delete, "/image/v2/stores/fast/\(id)", token: admin)
            XCTAssertEqual(lastCopy.status, 403, "the only copy cannot be removed")
            let download = try await api.call(.get, "/image/v2/images/\(id)/file", token: alice.token)
            XCTAssertEqual(download.bytes, bytes)

            // An upload may name its store.
            let other = try await ImageAPITests.createImage(api, token: alice.token)
            let toSlow = try await api.call(.put, "/image/v2/images/\(other)/file", token: alice.token, bytes: [0, 1, 2],
                                            headers: ["X-Image-Meta-Store": "slow"])
            XCTAssertEqual(toSlow.status, 204, toSlow.text)
            let otherImage = try await api.call(.get, "/image/v2/images/\(other)", token: alice.token).json
            XCTAssertEqual(otherImage["stores"]?.stringValue, "slow")
        }
    }

    func testStagingQuotaAndUploadingCount() async throws {
        try await onEachEngine(settings: ["image_quota": ["image_stage_total": "1", "image_count_uploading": "1"]]) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let big = try await ImageAPITests.createImage(api, token: admin)
            let tooBig = try await api.call(.put, "/image/v2/images/\(big)/stage", token: admin, bytes: Self.data(3 << 20))
            XCTAssertEqual(tooBig.status, 413, tooBig.text)
            let reverted = try await api.call(.get, "/image/v2/images/\(big)", token: admin).json
            XCTAssertEqual(reverted["status"]?.stringValue, "queued")
            let small = try await api.call(.put, "/image/v2/images/\(big)/stage", token: admin, bytes: Self.data(1000))
            XCTAssertEqual(small.status, 204)
            let second = try await ImageAPITests.createImage(api, token: admin)
            let overCount = try await api.call(.put, "/image/v2/images/\(second)/stage", token: admin, bytes: [1])
            XCTAssertEqual(overCount.status, 413, "one image is already staged: \(overCount.text)")
        }
    }

    /// A crash leaves an upload `saving` and an import `importing`, with usage that counts
    /// bytes no image holds; the next start puts each back in a state the user can act on.
    func testRestartRecoversInterruptedUploadsAndImports() async throws {
        for engine in TestCloud.engines {
            let cloud = try await TestCloud.make(engine)
            let ids = CreatedIDs()
            try await cloud.run { api in
                let admin = try await api.adminToken(cloud)
                ids.saving = try await ImageAPITests.createImage(api, token: admin)
                ids.importing = try await ImageAPITests.createImage(api, token: admin)
                let staged = try await api.call(.put, "/image/v2/images/\(ids.importing)/stage", token: admin, bytes: [1, 2, 3])
                XCTAssertEqual(staged.status, 204)
                ids.project = try await api.call(.get, "/image/v2/images/\(ids.saving)", token: admin).json["owner"]?.stringValue ?? ""
            }
            let (saving, importing, project) = (ids.saving, ids.importing, ids.project)
            let db = try await DatabaseFactory.open(url: cloud.databaseURL, logger: Logger(label: "test"))
            try await db.execute("UPDATE image_image SET status = 'saving' WHERE id = ?", [.text(saving)])
            try await db.execute("UPDATE image_image SET status = 'importing', properties = ? WHERE id = ?",
                                 [.text(#"{"os_glance_import_task":"t1","os_glance_importing_to_stores":"local"}"#), .text(importing)])
            try await db.execute("UPDATE image_usage SET bytes = 12345678 WHERE project_id = ?", [.text(project)])
            await db.close()

            try await cloud.run { api in
                let admin = try await api.adminToken(cloud)
                let wasSaving = try await api.call(.get, "/image/v2/images/\(saving)", token: admin).json
                XCTAssertEqual(wasSaving["status"]?.stringValue, "queued")
                let wasImporting = try await api.call(.get, "/image/v2/images/\(importing)", token: admin).json
                XCTAssertEqual(wasImporting["status"]?.stringValue, "queued")
                XCTAssertNil(wasImporting["os_glance_import_task"])
                XCTAssertEqual(wasImporting["os_glance_failed_import"]?.stringValue, "local")
                let usage = try await api.call(.get, "/image/v2/info/usage", token: admin).json["usage"]
                XCTAssertEqual(usage?["image_size_total"]?["usage"]?.intValue, 0)
                XCTAssertEqual(usage?["image_count_total"]?["usage"]?.intValue, 2)
                XCTAssertEqual(try ImageAPITests.storedFiles(cloud), [])
            }
        }
    }
}

/// Ids a first run of a cloud hands to the checks after its restart (written before they read).
private final class CreatedIDs: @unchecked Sendable {
    var saving = "", importing = "", project = ""
}
