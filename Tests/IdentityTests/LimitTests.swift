import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

/// Keystone's unified limits (`/v3/registered_limits`, `/v3/limits`) and the in-process lookup
/// other services use.
final class LimitTests: XCTestCase {
    func testRegisteredLimitLifecycle() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let image = try await api.imageService(admin: admin)
            let created = try await api.call(.post, "/identity/v3/registered_limits", token: admin, body: ["registered_limits": [
                ["service_id": .string(image), "resource_name": "image_count_total", "default_limit": 10],
                ["service_id": .string(image), "region_id": "RegionOne", "resource_name": "image_size_total", "default_limit": 1000,
                 "description": "MiB of image data"],
            ]])
            XCTAssertEqual(created.status, 201, created.text)
            XCTAssertNil(created.json["links"], "a batch create answers with the created list only")
            let items = try XCTUnwrap(created.json["registered_limits"]?.arrayValue)
            XCTAssertEqual(items.count, 2)
            let first = items[0]
            XCTAssertEqual(first["service_id"]?.stringValue, image)
            XCTAssertEqual(first["region_id"], .null)
            XCTAssertEqual(first["resource_name"]?.stringValue, "image_count_total")
            XCTAssertEqual(first["default_limit"]?.intValue, 10)
            XCTAssertEqual(first["description"], .null)
            let countID = try XCTUnwrap(first["id"]?.stringValue)
            XCTAssertEqual(first["links"]?["self"]?.stringValue, "http://localhost/identity/v3/registered_limits/\(countID)")
            XCTAssertEqual(items[1]["region_id"]?.stringValue, "RegionOne")
            XCTAssertEqual(items[1]["description"]?.stringValue, "MiB of image data")
            let sizeID = try XCTUnwrap(items[1]["id"]?.stringValue)

            let shown = try await api.call(.get, "/identity/v3/registered_limits/\(countID)", token: admin)
            XCTAssertEqual(shown.json["registered_limit"]?["default_limit"]?.intValue, 10, shown.text)
            assertKeystoneError(try await api.call(.get, "/identity/v3/registered_limits/nope", token: admin), 404)

            let all = try await api.call(.get, "/identity/v3/registered_limits", token: admin)
            XCTAssertEqual(count(all, "registered_limits"), 2, all.text)
            XCTAssertNotNil(all.json["links"]?["self"]?.stringValue)
            let byService = try await api.call(.get, "/identity/v3/registered_limits?service_id=\(image)", token: admin)
            XCTAssertEqual(count(byService, "registered_limits"), 2)
            let byRegion = try await api.call(.get, "/identity/v3/registered_limits?region_id=RegionOne", token: admin)
            XCTAssertEqual(byRegion.json["registered_limits"]?.arrayValue?.map { $0["id"]?.stringValue }, [sizeID])
            let byName = try await api.call(.get, "/identity/v3/registered_limits?resource_name=image_count_total", token: admin)
            XCTAssertEqual(byName.json["registered_limits"]?.arrayValue?.map { $0["id"]?.stringValue }, [countID])
            let byOther = try await api.call(.get, "/identity/v3/registered_limits?service_id=other", token: admin)
            XCTAssertEqual(count(byOther, "registered_limits"), 0)

            // Same service, region and resource: 409, and a batch holding a duplicate creates nothing.
            assertKeystoneError(try await api.call(.post, "/identity/v3/registered_limits", token: admin, body: ["registered_limits": [
                ["service_id": .string(image), "resource_name": "image_count_total", "default_limit": 3]]]), 409)
            assertKeystoneError(try await api.call(.post, "/identity/v3/registered_limits", token: admin, body: ["registered_limits": [
                ["service_id": .string(image), "resource_name": "image_stage_total", "default_limit": 3],
                ["service_id": .string(image), "resource_name": "image_stage_total", "default_limit": 4]]]), 409)
            let afterConflicts = try await api.call(.get, "/identity/v3/registered_limits", token: admin)
            XCTAssertEqual(count(afterConflicts, "registered_limits"), 2, afterConflicts.text)
            // The same resource in a region is a different registered limit.
            let regional = try await api.register([["service_id": .string(image), "region_id": "RegionOne",
                                                      "resource_name": "image_count_total", "default_limit": 20]], token: admin)

            let patched = try await api.call(.patch, "/identity/v3/registered_limits/\(countID)", token: admin,
                                             body: ["registered_limit": ["default_limit": 15, "description": "images"]])
            XCTAssertEqual(patched.status, 200, patched.text)
            XCTAssertEqual(patched.json["registered_limit"]?["default_limit"]?.intValue, 15)
            XCTAssertEqual(patched.json["registered_limit"]?["description"]?.stringValue, "images")
            // Moving the regional one out of its region would duplicate the region-less one.
            assertKeystoneError(try await api.call(.patch, "/identity/v3/registered_limits/\(regional[0])", token: admin,
                                                   body: ["registered_limit": ["region_id": nil]]), 409)
            let unregioned = try await api.call(.patch, "/identity/v3/registered_limits/\(sizeID)", token: admin,
                                                body: ["registered_limit": ["region_id": nil, "description": nil]])
            XCTAssertEqual(unregioned.json["registered_limit"]?["region_id"], .null, unregioned.text)
            XCTAssertEqual(unregioned.json["registered_limit"]?["description"], .null, unregioned.text)
            assertKeystoneError(try await api.call(.patch, "/identity/v3/registered_limits/nope", token: admin,
                                                   body: ["registered_limit": ["default_limit": 1]]), 404)

            let deleted = try await api.call(.delete, "/identity/v3/registered_limits/\(countID)", token: admin)
            XCTAssertEqual(deleted.status, 204, deleted.text)
            assertKeystoneError(try await api.call(.get, "/identity/v3/registered_limits/\(countID)", token: admin), 404)
            assertKeystoneError(try await api.call(.delete, "/identity/v3/registered_limits/\(countID)", token: admin), 404)

            // A service or region that registered limits name cannot be deleted from under them.
            assertKeystoneError(try await api.call(.delete, "/identity/v3/services/\(image)", token: admin), 403)
            let region = try await api.call(.put, "/identity/v3/regions/Elsewhere", token: admin, body: ["region": [:]])
            XCTAssertEqual(region.status, 201, region.text)
            let elsewhere = try await api.register([["service_id": .string(image), "region_id": "Elsewhere", "resource_name": "image_count_total",
                                                      "default_limit": 1]], token: admin)
            assertKeystoneError(try await api.call(.delete, "/identity/v3/regions/Elsewhere", token: admin), 403)
            let unregistered = try await api.call(.delete, "/identity/v3/registered_limits/\(elsewhere[0])", token: admin)
            XCTAssertEqual(unregistered.status, 204, unregistered.text)
            let regionDeleted = try await api.call(.delete, "/identity/v3/regions/Elsewhere", token: admin)
            XCTAssertEqual(regionDeleted.status, 204, regionDeleted.text)
        }
    }

    func testLimitLifecycle() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let image = try await api.imageService(admin: admin)
            let registered = try await api.register([["service_id": .string(image), "resource_name": "image_count_total", "default_limit": 10]],
                                                token: admin)[0]
            let project = try await api.create("projects", "project", ["name": "limited"], token: admin)

            let created = try await api.call(.post, "/identity/v3/limits", token: admin, body: ["limits": [
                ["service_id": .string(image), "project_id": .string(project), "resource_name": "image_count_total", "resource_limit": 5,
                 "description": "five"]]])
            XCTAssertEqual(created.status, 201, created.text)
            let limit = try XCTUnwrap(created.json["limits"]?.arrayValue?.first)
            let id = try XCTUnwrap(limit["id"]?.stringValue)
            XCTAssertEqual(limit["project_id"]?.stringValue, project)
            XCTAssertEqual(limit["domain_id"], .null)
            XCTAssertEqual(limit["service_id"]?.stringValue, image)
            XCTAssertEqual(limit["region_id"], .null)
            XCTAssertEqual(limit["resource_name"]?.stringValue, "image_count_total")
            XCTAssertEqual(limit["resource_limit"]?.intValue, 5)
            XCTAssertEqual(limit["description"]?.stringValue, "five")
            XCTAssertEqual(limit["links"]?["self"]?.stringValue, "http://localhost/identity/v3/limits/\(id)")

            // The same project and resource again: 409. A resource nobody registered: 403.
            assertKeystoneError(try await api.call(.post, "/identity/v3/limits", token: admin, body: ["limits": [
                ["service_id": .string(image), "project_id": .string(project), "resource_name": "image_count_total", "resource_limit": 6]]]), 409)
            let unregistered = try await api.call(.post, "/identity/v3/limits", token: admin, body: ["limits": [
                ["service_id": .string(image), "project_id": .string(project), "resource_name": "image_size_total", "resource_limit": 6]]])
            assertKeystoneError(unregistered, 403)
            XCTAssertEqual(unregistered.json["error"]?["message"]?.stringValue,
                           "Unable to create a limit that has no corresponding registered limit.")
            // A limit in a region needs a registered limit in that region.
            assertKeystoneError(try await api.call(.post, "/identity/v3/limits", token: admin, body: ["limits": [
                ["service_id": .string(image), "region_id": "RegionOne", "project_id": .string(project), "resource_name": "image_count_total",
                 "resource_limit": 6]]]), 403)

            // A domain's limit.
            let domainLimit = try await api.call(.post, "/identity/v3/limits", token: admin, body: ["limits": [
                ["service_id": .string(image), "domain_id": "default", "resource_name": "image_count_total", "resource_limit": 50]]])
            XCTAssertEqual(domainLimit.status, 201, domainLimit.text)
            XCTAssertEqual(domainLimit.json["limits"]?.arrayValue?.first?["domain_id"]?.stringValue, "default")
            XCTAssertEqual(domainLimit.json["limits"]?.arrayValue?.first?["project_id"], .null)

            let shown = try await api.call(.get, "/identity/v3/limits/\(id)", token: admin)
            XCTAssertEqual(shown.json["limit"]?["resource_limit"]?.intValue, 5, shown.text)
            assertKeystoneError(try await api.call(.get, "/identity/v3/limits/nope", token: admin), 404)
            let model = try await api.call(.get, "/identity/v3/limits/model", token: admin)
            XCTAssertEqual(model.status, 200, model.text)
            XCTAssertEqual(model.json["model"]?["name"]?.stringValue, "flat")
            XCTAssertNotNil(model.json["model"]?["description"]?.stringValue)

            let all = try await api.call(.get, "/identity/v3/limits", token: admin)
            XCTAssertEqual(count(all, "limits"), 2, all.text)
            XCTAssertNotNil(all.json["links"]?["self"]?.stringValue)
            for (query, expected) in [("project_id=\(project)", 1), ("domain_id=default", 1), ("service_id=\(image)", 2),
                                      ("resource_name=image_count_total", 2), ("resource_name=other", 0), ("region_id=RegionOne", 0)] {
                let filtered = try await api.call(.get, "/identity/v3/limits?\(query)", token: admin)
                XCTAssertEqual(count(filtered, "limits"), expected, "\(query): \(filtered.text)")
            }

            // Only the value and the description change; 0 is a value like any other.
            let patched = try await api.call(.patch, "/identity/v3/limits/\(id)", token: admin,
                                             body: ["limit": ["resource_limit": 0, "description": "none"]])
            XCTAssertEqual(patched.status, 200, patched.text)
            XCTAssertEqual(patched.json["limit"]?["resource_limit"]?.intValue, 0)
            XCTAssertEqual(patched.json["limit"]?["description"]?.stringValue, "none")
            assertKeystoneError(try await api.call(.patch, "/identity/v3/limits/\(id)", token: admin,
                                                   body: ["limit": ["resource_name": "image_size_total"]]), 400)
            assertKeystoneError(try await api.call(.patch, "/identity/v3/limits/nope", token: admin, body: ["limit": ["resource_limit": 1]]), 404)

            // The registered limit cannot be re-targeted or deleted while limits hang on it; its
            // default can still change.
            assertKeystoneError(try await api.call(.delete, "/identity/v3/registered_limits/\(registered)", token: admin), 403)
            assertKeystoneError(try await api.call(.patch, "/identity/v3/registered_limits/\(registered)", token: admin,
                                                   body: ["registered_limit": ["resource_name": "image_stage_total"]]), 403)
            let newDefault = try await api.call(.patch, "/identity/v3/registered_limits/\(registered)", token: admin,
                                                body: ["registered_limit": ["default_limit": 12]])
            XCTAssertEqual(newDefault.status, 200, newDefault.text)

            let deleted = try await api.call(.delete, "/identity/v3/limits/\(id)", token: admin)
            XCTAssertEqual(deleted.status, 204, deleted.text)
            assertKeystoneError(try await api.call(.get, "/identity/v3/limits/\(id)", token: admin), 404)
            assertKeystoneError(try await api.call(.delete, "/identity/v3/limits/\(id)", token: admin), 404)

            // Deleting a project deletes its limits.
            let doomed = try await api.create("projects", "project", ["name": "doomed"], token: admin)
            _ = try await api.limit(["service_id": .string(image), "project_id": .string(doomed), "resource_name": "image_count_total",
                                           "resource_limit": 1], token: admin)
            let projectDeleted = try await api.call(.delete, "/identity/v3/projects/\(doomed)", token: admin)
            XCTAssertEqual(projectDeleted.status, 204, projectDeleted.text)
            let remaining = try await api.call(.get, "/identity/v3/limits?project_id=\(doomed)", token: admin)
            XCTAssertEqual(count(remaining, "limits"), 0, remaining.text)
        }
    }

    func testBadInputIsRejectedWith400() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let image = try await api.imageService(admin: admin)
            let project = try await api.create("projects", "project", ["name": "inputs"], token: admin)
            let good: [String: JSON] = ["service_id": .string(image), "resource_name": "image_count_total", "default_limit": 10]
            func with(_ changes: [String: JSON]) -> JSON {
                var item = good
                for (k, v) in changes { item[k] = v }
                return .object(item)
            }
            let badRegistered: [JSON] = [
                with(["default_limit": "10"]), with(["default_limit": .double(1.5)]), with(["default_limit": true]), with(["default_limit": -2]),
                with(["default_limit": .int(Int64(Int32.max) + 1)]), with(["default_limit": .double(1e30)]), with(["default_limit": [10]]),
                with(["service_id": 7]), with(["service_id": "no-such-service"]), with(["region_id": "Nowhere"]), with(["region_id": ""]),
                with(["resource_name": ""]), with(["resource_name": 12]), with(["resource_name": .string(String(repeating: "r", count: 256))]),
                with(["description": 5]), with(["colour": "blue"]), with(["id": "chosen"]),
                ["resource_name": "x", "default_limit": 1], ["service_id": .string(image), "resource_name": "x"], "a string", 5,
            ]
            for item in badRegistered {
                let reply = try await api.call(.post, "/identity/v3/registered_limits", token: admin, body: ["registered_limits": [item]])
                assertKeystoneError(reply, 400)
            }
            for body: JSON in [["registered_limits": []], ["registered_limits": .object(good)], ["registered_limit": .object(good)], [.object(good)]] {
                assertKeystoneError(try await api.call(.post, "/identity/v3/registered_limits", token: admin, body: body), 400)
            }
            assertKeystoneError(try await api.call(.post, "/identity/v3/registered_limits", token: admin, raw: "{not json"), 400)
            assertKeystoneError(try await api.call(.post, "/identity/v3/registered_limits", token: admin, raw: ""), 400)
            let nothingCreated = try await api.call(.get, "/identity/v3/registered_limits", token: admin)
            XCTAssertEqual(count(nothingCreated, "registered_limits"), 0, nothingCreated.text)

            // -1 is Keystone's "unlimited", and the largest 32-bit value is allowed.
            let ids = try await api.register([with(["default_limit": -1]),
                                               with(["resource_name": "image_size_total", "default_limit": .int(Int64(Int32.max))])], token: admin)
            XCTAssertEqual(ids.count, 2)
            for body: JSON in [["registered_limit": ["default_limit": -5]], ["registered_limit": ["default_limit": "1"]],
                               ["registered_limit": ["service_id": "no-such-service"]], ["registered_limit": ["region_id": "Nowhere"]],
                               ["registered_limit": ["links": [:]]], ["registered_limit": "x"], ["default_limit": 1]] {
                assertKeystoneError(try await api.call(.patch, "/identity/v3/registered_limits/\(ids[0])", token: admin, body: body), 400)
            }

            let limit: [String: JSON] = ["service_id": .string(image), "project_id": .string(project), "resource_name": "image_count_total",
                                         "resource_limit": 5]
            func limitWith(_ changes: [String: JSON]) -> JSON {
                var item = limit
                for (k, v) in changes { item[k] = v }
                return .object(item)
            }
            let badLimits: [JSON] = [
                limitWith(["resource_limit": "5"]), limitWith(["resource_limit": -2]), limitWith(["resource_limit": .double(2.5)]),
                limitWith(["resource_limit": nil]), limitWith(["project_id": nil]), limitWith(["domain_id": "default"]),
                limitWith(["project_id": "no-such-project"]), limitWith(["project_id": nil, "domain_id": "no-such-domain"]),
                limitWith(["service_id": "no-such-service"]), limitWith(["region_id": "Nowhere"]), limitWith(["default_limit": 5]),
            ]
            for item in badLimits {
                assertKeystoneError(try await api.call(.post, "/identity/v3/limits", token: admin, body: ["limits": [item]]), 400)
            }
            assertKeystoneError(try await api.call(.post, "/identity/v3/limits", token: admin, body: ["limits": []]), 400)
            let id = try await api.limit(.object(limit), token: admin)
            for body: JSON in [["limit": ["resource_limit": -3]], ["limit": ["resource_limit": "3"]], ["limit": ["description": 3]],
                               ["limit": ["project_id": "x"]], ["limit": [1]]] {
                assertKeystoneError(try await api.call(.patch, "/identity/v3/limits/\(id)", token: admin, body: body), 400)
            }
        }
    }

    func testMembersReadRegisteredLimitsButOnlyTheirOwnLimits() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let image = try await api.imageService(admin: admin)
            let registered = try await api.register([["service_id": .string(image), "resource_name": "image_count_total", "default_limit": 10]],
                                                token: admin)[0]
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")
            let item: (String) -> JSON = { project in
                ["service_id": .string(image), "project_id": .string(project), "resource_name": "image_count_total", "resource_limit": 3]
            }
            let aliceLimit = try await api.limit(item(alice.project), token: admin)
            let bobLimit = try await api.limit(item(bob.project), token: admin)

            // Writes need an administrator.
            assertKeystoneError(try await api.call(.post, "/identity/v3/registered_limits", token: alice.token, body: ["registered_limits": [
                ["service_id": .string(image), "resource_name": "image_size_total", "default_limit": 10]]]), 403)
            assertKeystoneError(try await api.call(.patch, "/identity/v3/registered_limits/\(registered)", token: alice.token,
                                                   body: ["registered_limit": ["default_limit": 99]]), 403)
            assertKeystoneError(try await api.call(.delete, "/identity/v3/registered_limits/\(registered)", token: alice.token), 403)
            assertKeystoneError(try await api.call(.post, "/identity/v3/limits", token: alice.token, body: ["limits": [item(alice.project)]]), 403)
            assertKeystoneError(try await api.call(.patch, "/identity/v3/limits/\(aliceLimit)", token: alice.token,
                                                   body: ["limit": ["resource_limit": 99]]), 403)
            assertKeystoneError(try await api.call(.delete, "/identity/v3/limits/\(aliceLimit)", token: alice.token), 403)

            // Registered limits and the model are for everyone.
            let registeredList = try await api.call(.get, "/identity/v3/registered_limits", token: alice.token)
            XCTAssertEqual(count(registeredList, "registered_limits"), 1, registeredList.text)
            let registeredShown = try await api.call(.get, "/identity/v3/registered_limits/\(registered)", token: alice.token)
            XCTAssertEqual(registeredShown.status, 200, registeredShown.text)
            let model = try await api.call(.get, "/identity/v3/limits/model", token: alice.token)
            XCTAssertEqual(model.status, 200, model.text)

            // Limits: only the caller's project's, whatever the filter asks for.
            let own = try await api.call(.get, "/identity/v3/limits", token: alice.token)
            XCTAssertEqual(own.json["limits"]?.arrayValue?.map { $0["id"]?.stringValue }, [aliceLimit], own.text)
            let asked = try await api.call(.get, "/identity/v3/limits?project_id=\(bob.project)", token: alice.token)
            XCTAssertEqual(count(asked, "limits"), 0, asked.text)
            let shown = try await api.call(.get, "/identity/v3/limits/\(aliceLimit)", token: alice.token)
            XCTAssertEqual(shown.status, 200, shown.text)
            assertKeystoneError(try await api.call(.get, "/identity/v3/limits/\(bobLimit)", token: alice.token), 403)
            // A missing limit is 403 too, so ids cannot be probed.
            assertKeystoneError(try await api.call(.get, "/identity/v3/limits/nope", token: alice.token), 403)
            let everything = try await api.call(.get, "/identity/v3/limits", token: admin)
            XCTAssertEqual(count(everything, "limits"), 2, everything.text)
            assertKeystoneError(try await api.call(.get, "/identity/v3/limits"), 401)
        }
    }

    func testLookupPrefersTheProjectLimitThenTheDefault() async throws {
        try await onEachEngine { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let image = try await api.imageService(admin: admin)
            let lookup: any ProjectLimitLookup = plane.identity
            let project = try await api.create("projects", "project", ["name": "looked-up"], token: admin)
            let other = try await api.create("projects", "project", ["name": "not-limited"], token: admin)

            // Nothing registered: no limit.
            var value = try await lookup.limit(serviceType: "image", resource: "image_count_total", projectID: project)
            XCTAssertNil(value)
            let registered = try await api.register([["service_id": .string(image), "resource_name": "image_count_total", "default_limit": 10]],
                                                token: admin)[0]
            // Writes take effect at once, cached or not.
            value = try await lookup.limit(serviceType: "image", resource: "image_count_total", projectID: project)
            XCTAssertEqual(value, 10)
            let limit = try await api.limit(["service_id": .string(image), "project_id": .string(project),
                                                   "resource_name": "image_count_total", "resource_limit": 5], token: admin)
            value = try await lookup.limit(serviceType: "image", resource: "image_count_total", projectID: project)
            XCTAssertEqual(value, 5)
            value = try await lookup.limit(serviceType: "image", resource: "image_count_total", projectID: other)
            XCTAssertEqual(value, 10)
            value = try await lookup.limit(serviceType: "image", resource: "image_size_total", projectID: project)
            XCTAssertNil(value)
            value = try await lookup.limit(serviceType: "compute", resource: "image_count_total", projectID: project)
            XCTAssertNil(value)

            // A domain's limit is not its projects' limit (flat model).
            _ = try await api.limit(["service_id": .string(image), "domain_id": "default", "resource_name": "image_count_total",
                                           "resource_limit": 1], token: admin)
            value = try await lookup.limit(serviceType: "image", resource: "image_count_total", projectID: other)
            XCTAssertEqual(value, 10)

            let patched = try await api.call(.patch, "/identity/v3/limits/\(limit)", token: admin, body: ["limit": ["resource_limit": -1]])
            XCTAssertEqual(patched.status, 200, patched.text)
            value = try await lookup.limit(serviceType: "image", resource: "image_count_total", projectID: project)
            XCTAssertEqual(value, -1, "-1 is unlimited and is passed through")
            let newDefault = try await api.call(.patch, "/identity/v3/registered_limits/\(registered)", token: admin,
                                                body: ["registered_limit": ["default_limit": 7]])
            XCTAssertEqual(newDefault.status, 200, newDefault.text)
            value = try await lookup.limit(serviceType: "image", resource: "image_count_total", projectID: other)
            XCTAssertEqual(value, 7)

            // A registered limit for this region wins over the region-less one.
            _ = try await api.register([["service_id": .string(image), "region_id": "RegionOne", "resource_name": "image_count_total",
                                          "default_limit": 8]], token: admin)
            value = try await lookup.limit(serviceType: "image", resource: "image_count_total", projectID: other)
            XCTAssertEqual(value, 8)

            let deleted = try await api.call(.delete, "/identity/v3/limits/\(limit)", token: admin)
            XCTAssertEqual(deleted.status, 204, deleted.text)
            value = try await lookup.limit(serviceType: "image", resource: "image_count_total", projectID: project)
            XCTAssertEqual(value, 8)
        }
    }
}

extension API {
    /// The id of the image service bootstrap put in the catalog.
    func imageService(admin: String) async throws -> String {
        let reply = try await call(.get, "/identity/v3/services?type=image", token: admin)
        return try XCTUnwrap(reply.json["services"]?.arrayValue?.first?["id"]?.stringValue, reply.text)
    }

    /// Creates registered limits, failing the test on anything but 201; returns their ids.
    func register(_ items: [JSON], token: String, file: StaticString = #filePath, line: UInt = #line) async throws -> [String] {
        let reply = try await call(.post, "/identity/v3/registered_limits", token: token, body: ["registered_limits": .array(items)])
        XCTAssertEqual(reply.status, 201, reply.text, file: file, line: line)
        return reply.json["registered_limits"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
    }

    /// Creates one limit, failing the test on anything but 201; returns its id.
    func limit(_ item: JSON, token: String, file: StaticString = #filePath, line: UInt = #line) async throws -> String {
        let reply = try await call(.post, "/identity/v3/limits", token: token, body: ["limits": [item]])
        XCTAssertEqual(reply.status, 201, reply.text, file: file, line: line)
        return try XCTUnwrap(reply.json["limits"]?.arrayValue?.first?["id"]?.stringValue, reply.text, file: file, line: line)
    }
}

/// How many items a list reply holds under `key`.
func count(_ reply: API.Reply, _ key: String) -> Int? { reply.json[key]?.arrayValue?.count }
