import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

/// The Placement API through the real router, on SQLite and PostgreSQL.
final class PlacementAPITests: XCTestCase {
    func testVersionDocumentAndMicroversionNegotiation() async throws {
        try await onEachEngine { cloud, api in
            for path in ["/placement", "/placement/"] {
                let root = try await api.call(.get, path)
                XCTAssertEqual(root.status, 200, root.text)
                let version = root.json["versions"]?.arrayValue?.first
                XCTAssertEqual(version?["max_version"]?.stringValue, "1.39")
                XCTAssertEqual(version?["min_version"]?.stringValue, "1.0")
                XCTAssertEqual(version?["id"]?.stringValue, "v1.0")
                XCTAssertEqual(version?["status"]?.stringValue, "CURRENT")
                XCTAssertEqual(root.headers[HTTPField.Name("OpenStack-API-Version")!], "placement 1.0")
            }
            // osc-placement's negotiation: 1.29 is accepted as is.
            let negotiated = try await api.placement(.get, "/", token: nil, version: "1.29", headers: ["Accept": "application/json"])
            XCTAssertEqual(negotiated.status, 200)
            XCTAssertEqual(negotiated.headers[HTTPField.Name("OpenStack-API-Version")!], "placement 1.29")
            XCTAssertEqual(negotiated.headers[.vary], "openstack-api-version")
            let tooNew = try await api.placement(.get, "/", token: nil, version: "1.40")
            assertPlacementError(tooNew, 406, message: "Unacceptable version header: 1.40")
            XCTAssertEqual(tooNew.json["errors"]?[0]?["max_version"]?.stringValue, "1.39")
            XCTAssertEqual(tooNew.json["errors"]?[0]?["min_version"]?.stringValue, "1.0")
            let garbage = try await api.placement(.get, "/", token: nil, version: "abc")
            assertPlacementError(garbage, 400, message: "invalid version string: abc")

            let admin = try await api.adminToken(cloud)
            let latest = try await api.placement(.get, "/resource_providers", token: admin, headers: ["OpenStack-API-Version": "compute 2.1, placement latest"])
            XCTAssertEqual(latest.headers[HTTPField.Name("OpenStack-API-Version")!], "placement 1.39")
            XCTAssertEqual(latest.headers[.cacheControl], "no-cache")
            XCTAssertNotNil(latest.headers[.lastModified])
            // No header is 1.0: POST answers 201 without a body and an absolute Location.
            let created = try await api.placement(.post, "/resource_providers", token: admin, version: nil, body: ["name": "old-client"])
            XCTAssertEqual(created.status, 201, created.text)
            XCTAssertEqual(created.text, "")
            XCTAssertEqual(created.headers[HTTPField.Name("OpenStack-API-Version")!], "placement 1.0")
            let location = try XCTUnwrap(created.headers[.location])
            XCTAssertTrue(location.hasPrefix("http://") && location.contains("/placement/resource_providers/"), location)
            let shown = try await api.placement(.get, "/resource_providers/\(location.split(separator: "/").last!)", token: admin, version: nil)
            XCTAssertEqual(shown.json["name"]?.stringValue, "old-client")
            XCTAssertNil(shown.json["root_provider_uuid"], "1.0 has no tree fields")
            // Below 1.23 errors carry no code.
            let missing = try await api.placement(.get, "/resource_providers/\(newUUID())", token: admin, version: "1.22")
            assertPlacementError(missing, 404)
            XCTAssertNil(missing.json["errors"]?[0]?["code"])

            let unauthenticated = try await api.placement(.get, "/resource_providers", token: nil)
            XCTAssertEqual(unauthenticated.status, 401)
            let catalog = try await api.call(.get, "/identity/v3/auth/catalog", token: admin)
            let entry = catalog.json["catalog"]?.arrayValue?.first { $0["type"]?.stringValue == "placement" }
            XCTAssertEqual(entry?["name"]?.stringValue, "placement")
            XCTAssertTrue(entry?["endpoints"]?.arrayValue?.first?["url"]?.stringValue?.hasSuffix("/placement") ?? false, catalog.text)
        }
    }

    func testRoutingVersionGatesAndMalformedInput() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let rp = try await api.createProvider("gates", token: admin)
            let unknown = try await api.placement(.get, "/nothing-here", token: admin)
            assertPlacementError(unknown, 404, code: "placement.undefined_code")
            let wrongMethod = try await api.placement(.patch, "/resource_providers", token: admin)
            assertPlacementError(wrongMethod, 405)
            XCTAssertEqual(wrongMethod.headers[.allow], "GET, POST")
            // Routes that do not exist yet at the request's version are 404, except DELETE of
            // all inventories, which is 405 below 1.5.
            let traitsAtOld = try await api.placement(.get, "/traits", token: admin, version: "1.5")
            XCTAssertEqual(traitsAtOld.status, 404)
            let deleteAllOld = try await api.placement(.delete, "/resource_providers/\(rp)/inventories", token: admin, version: "1.4")
            XCTAssertEqual(deleteAllOld.status, 405)
            let candidatesOld = try await api.placement(.get, "/allocation_candidates?resources=VCPU:1", token: admin, version: "1.9")
            XCTAssertEqual(candidatesOld.status, 404)

            let malformed = try await api.placement(.post, "/resource_providers", token: admin, raw: "{\"name\": ")
            assertPlacementError(malformed, 400, message: "Malformed JSON")
            let notObject = try await api.placement(.post, "/resource_providers", token: admin, raw: "[1]")
            assertPlacementError(notObject, 400, message: "JSON does not validate")
            let extraKey = try await api.placement(.post, "/resource_providers", token: admin, body: ["name": "x", "color": "red"])
            assertPlacementError(extraKey, 400, message: "'color' was unexpected")
            let noName = try await api.placement(.post, "/resource_providers", token: admin, body: ["uuid": .string(newUUID())])
            assertPlacementError(noName, 400, message: "'name' is a required property")
            let badUUID = try await api.placement(.post, "/resource_providers", token: admin, body: ["name": "x", "uuid": "not-a-uuid"])
            assertPlacementError(badUUID, 400)
            let wrongType = try await api.placement(.put, "/resource_providers/\(rp)", token: admin, body: ["name": 5])
            assertPlacementError(wrongType, 400)
            let uuidInBody = try await api.placement(.put, "/resource_providers/\(rp)", token: admin, body: ["name": "y", "uuid": .string(rp)])
            assertPlacementError(uuidInBody, 400)
            let textBody = try await api.placement(.post, "/resource_providers", token: admin, raw: "name=x", headers: ["Content-Type": "text/plain"])
            assertPlacementError(textBody, 415, message: "text/plain is not supported")
            let unknownParam = try await api.placement(.get, "/resource_providers?colour=blue", token: admin)
            assertPlacementError(unknownParam, 400, message: "Invalid query string parameters")
            let tooEarlyParam = try await api.placement(.get, "/resource_providers?resources=VCPU:1", token: admin, version: "1.3")
            assertPlacementError(tooEarlyParam, 400)
            let badResources = try await api.placement(.get, "/resource_providers?resources=VCPU", token: admin)
            assertPlacementError(badResources, 400)
            let badAmount = try await api.placement(.get, "/allocation_candidates?resources=VCPU:0", token: admin)
            assertPlacementError(badAmount, 400)
            let badInventory = try await api.placement(.put, "/resource_providers/\(rp)/inventories", token: admin,
                                                       body: ["resource_provider_generation": 0, "inventories": ["VCPU": ["total": "eight"]]])
            assertPlacementError(badInventory, 400)
            let badAllocation = try await api.placement(.put, "/allocations/\(newUUID())", token: admin, version: "1.28",
                                                        body: ["allocations": [rp: ["resources": ["VCPU": -1]]], "project_id": "p", "user_id": "u",
                                                               "consumer_generation": nil])
            assertPlacementError(badAllocation, 400)
            let badConsumer = try await api.placement(.put, "/allocations/not-a-uuid", token: admin, version: "1.28",
                                                      body: ["allocations": [:], "project_id": "p", "user_id": "u", "consumer_generation": nil])
            assertPlacementError(badConsumer, 400)
            let acceptXML = try await api.placement(.get, "/resource_providers", token: admin, headers: ["Accept": "application/xml"])
            assertPlacementError(acceptXML, 406)
        }
    }

    func testProviderCRUDTreesAndGenerationConflicts() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let given = newUUID()
            let created = try await api.placement(.post, "/resource_providers", token: admin, body: ["name": "cn1", "uuid": .string(given)])
            XCTAssertEqual(created.status, 200, created.text)
            XCTAssertEqual(created.json["generation"]?.intValue, 0)
            XCTAssertEqual(created.json["root_provider_uuid"]?.stringValue, given)
            XCTAssertEqual(created.json["parent_provider_uuid"], .null)
            XCTAssertEqual(created.json["links"]?.arrayValue?.count, 6)
            let cn1 = given

            let duplicateName = try await api.placement(.post, "/resource_providers", token: admin, body: ["name": "cn1"])
            assertPlacementError(duplicateName, 409, code: "placement.duplicate_name", message: "Conflicting resource provider name: cn1 already exists.")
            let duplicateUUID = try await api.placement(.post, "/resource_providers", token: admin, body: ["name": "other", "uuid": .string(cn1)])
            assertPlacementError(duplicateUUID, 409, code: "placement.duplicate_name", message: "Conflicting resource provider uuid")
            let orphan = try await api.placement(.post, "/resource_providers", token: admin, body: ["name": "orphan", "parent_provider_uuid": .string(newUUID())])
            assertPlacementError(orphan, 400, message: "parent provider UUID does not exist")

            let child = try await api.createProvider("cn1-numa0", token: admin, parent: cn1)
            let grandchild = try await api.createProvider("cn1-numa0-gpu", token: admin, parent: child)
            let cn2 = try await api.createProvider("cn2", token: admin)
            let shownChild = try await api.placement(.get, "/resource_providers/\(grandchild)", token: admin)
            XCTAssertEqual(shownChild.json["root_provider_uuid"]?.stringValue, cn1)
            XCTAssertEqual(shownChild.json["parent_provider_uuid"]?.stringValue, child)

            let all = try await api.placement(.get, "/resource_providers", token: admin)
            XCTAssertEqual(all.json["resource_providers"]?.arrayValue?.count, 4)
            let tree = try await api.placement(.get, "/resource_providers?in_tree=\(child)", token: admin)
            XCTAssertEqual(Set(tree.json["resource_providers"]?.arrayValue?.compactMap { $0["uuid"]?.stringValue } ?? []), [cn1, child, grandchild])
            let noTree = try await api.placement(.get, "/resource_providers?in_tree=\(newUUID())", token: admin)
            XCTAssertEqual(noTree.json["resource_providers"]?.arrayValue?.count, 0)
            let byName = try await api.placement(.get, "/resource_providers?name=cn2", token: admin)
            XCTAssertEqual(byName.json["resource_providers"]?.arrayValue?.first?["uuid"]?.stringValue, cn2)
            let byUUID = try await api.placement(.get, "/resource_providers?uuid=\(cn2)", token: admin)
            XCTAssertEqual(byUUID.json["resource_providers"]?.arrayValue?.count, 1)

            // Rename (the generation does not move); re-parenting needs 1.37.
            let renamed = try await api.placement(.put, "/resource_providers/\(cn2)", token: admin, body: ["name": "cn2-renamed"])
            XCTAssertEqual(renamed.json["name"]?.stringValue, "cn2-renamed")
            XCTAssertEqual(renamed.json["generation"]?.intValue, 0)
            let clash = try await api.placement(.put, "/resource_providers/\(cn2)", token: admin, body: ["name": "cn1"])
            assertPlacementError(clash, 409, code: "placement.duplicate_name")
            let reparentOld = try await api.placement(.put, "/resource_providers/\(grandchild)", token: admin, version: "1.36",
                                                      body: ["name": "cn1-numa0-gpu", "parent_provider_uuid": .string(cn1)])
            assertPlacementError(reparentOld, 400)
            let loop = try await api.placement(.put, "/resource_providers/\(child)", token: admin,
                                               body: ["name": "cn1-numa0", "parent_provider_uuid": .string(grandchild)])
            assertPlacementError(loop, 400)
            let moved = try await api.placement(.put, "/resource_providers/\(child)", token: admin,
                                                body: ["name": "cn1-numa0", "parent_provider_uuid": .string(cn2)])
            XCTAssertEqual(moved.status, 200, moved.text)
            XCTAssertEqual(moved.json["root_provider_uuid"]?.stringValue, cn2)
            let movedGrandchild = try await api.placement(.get, "/resource_providers/\(grandchild)", token: admin)
            XCTAssertEqual(movedGrandchild.json["root_provider_uuid"]?.stringValue, cn2, "the subtree moves with it")

            // Generation conflicts on inventories, traits and aggregates.
            try await api.setInventory(cn1, ["VCPU": ["total": 8]], token: admin)
            let staleInventory = try await api.placement(.put, "/resource_providers/\(cn1)/inventories", token: admin,
                                                         body: ["resource_provider_generation": 0, "inventories": ["VCPU": ["total": 4]]])
            assertPlacementError(staleInventory, 409, code: "placement.concurrent_update")
            let staleTraits = try await api.placement(.put, "/resource_providers/\(cn1)/traits", token: admin,
                                                      body: ["resource_provider_generation": 0, "traits": ["COMPUTE_NODE"]])
            assertPlacementError(staleTraits, 409, code: "placement.concurrent_update")
            let aggregate = newUUID()
            let staleAggregates = try await api.placement(.put, "/resource_providers/\(cn1)/aggregates", token: admin,
                                                          body: ["resource_provider_generation": 0, "aggregates": [.string(aggregate)]])
            assertPlacementError(staleAggregates, 409, code: "placement.concurrent_update")
            let aggregates = try await api.placement(.put, "/resource_providers/\(cn1)/aggregates", token: admin, version: "1.19",
                                                     body: ["resource_provider_generation": 1, "aggregates": [.string(aggregate)]])
            XCTAssertEqual(aggregates.json["resource_provider_generation"]?.intValue, 2, aggregates.text)
            // Below 1.19 the body is a bare list and the generation does not move.
            let oldAggregates = try await api.placement(.put, "/resource_providers/\(cn2)/aggregates", token: admin, version: "1.18",
                                                        body: [.string(aggregate)])
            XCTAssertEqual(oldAggregates.status, 200, oldAggregates.text)
            XCTAssertNil(oldAggregates.json["resource_provider_generation"])
            let cn2Generation = try await api.placement(.get, "/resource_providers/\(cn2)", token: admin).json["generation"]?.intValue
            XCTAssertEqual(cn2Generation, 0)
            let members = try await api.placement(.get, "/resource_providers?member_of=in:\(aggregate),\(newUUID())", token: admin)
            XCTAssertEqual(Set(members.json["resource_providers"]?.arrayValue?.compactMap { $0["uuid"]?.stringValue } ?? []), [cn1, cn2])
            let notMembers = try await api.placement(.get, "/resource_providers?member_of=!\(aggregate)", token: admin)
            XCTAssertEqual(notMembers.json["resource_providers"]?.arrayValue?.count, 2)
            let commaWithoutIn = try await api.placement(.get, "/resource_providers?member_of=\(aggregate),\(aggregate)", token: admin)
            assertPlacementError(commaWithoutIn, 400)

            try await api.setTraits(cn1, ["COMPUTE_NODE", "HW_CPU_X86_AVX2"], token: admin)
            let withTrait = try await api.placement(.get, "/resource_providers?required=HW_CPU_X86_AVX2", token: admin)
            XCTAssertEqual(withTrait.json["resource_providers"]?.arrayValue?.map { $0["uuid"]?.stringValue }, [cn1])
            let anyTrait = try await api.placement(.get, "/resource_providers?required=in:HW_CPU_X86_AVX2,STORAGE_DISK_SSD", token: admin)
            XCTAssertEqual(anyTrait.json["resource_providers"]?.arrayValue?.count, 1)
            let unknownTrait = try await api.placement(.get, "/resource_providers?required=NOT_A_TRAIT", token: admin)
            assertPlacementError(unknownTrait, 400)
            let withResources = try await api.placement(.get, "/resource_providers?resources=VCPU:8", token: admin)
            XCTAssertEqual(withResources.json["resource_providers"]?.arrayValue?.map { $0["uuid"]?.stringValue }, [cn1])
            let tooMuch = try await api.placement(.get, "/resource_providers?resources=VCPU:9", token: admin)
            XCTAssertEqual(tooMuch.json["resource_providers"]?.arrayValue?.count, 0)

            let parentDelete = try await api.placement(.delete, "/resource_providers/\(cn2)", token: admin)
            assertPlacementError(parentDelete, 409, code: "placement.resource_provider.cannot_delete_parent")
            for uuid in [grandchild, child, cn2] {
                let deleted = try await api.placement(.delete, "/resource_providers/\(uuid)", token: admin)
                XCTAssertEqual(deleted.status, 204, deleted.text)
            }
            let gone = try await api.placement(.get, "/resource_providers/\(cn2)", token: admin)
            assertPlacementError(gone, 404)
            let goneAgain = try await api.placement(.delete, "/resource_providers/\(cn2)", token: admin)
            assertPlacementError(goneAgain, 404)
        }
    }

    func testInventoryRules() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let rp = try await api.createProvider("inv", token: admin)
            let set = try await api.placement(.put, "/resource_providers/\(rp)/inventories", token: admin,
                                              body: ["resource_provider_generation": 0,
                                                     "inventories": ["VCPU": ["total": 8, "allocation_ratio": 16], "MEMORY_MB": ["total": 8192, "reserved": 512]]])
            XCTAssertEqual(set.status, 200, set.text)
            XCTAssertEqual(set.json["resource_provider_generation"]?.intValue, 1)
            let vcpu = set.json["inventories"]?["VCPU"]
            XCTAssertEqual(vcpu?["max_unit"]?.intValue, 2147483647)
            XCTAssertEqual(vcpu?["min_unit"]?.intValue, 1)
            XCTAssertEqual(vcpu?["step_size"]?.intValue, 1)
            XCTAssertEqual(vcpu?["reserved"]?.intValue, 0)
            XCTAssertTrue(set.text.contains("\"allocation_ratio\": 16.0"), set.text)
            XCTAssertTrue(set.text.contains("\"allocation_ratio\": 1.0"), set.text)

            let usages = try await api.placement(.get, "/resource_providers/\(rp)/usages", token: admin)
            XCTAssertEqual(usages.json["usages"], ["VCPU": 0, "MEMORY_MB": 0])

            // reserved == total is refused before 1.26 and allowed from it; reserved > total never.
            let equalOld = try await api.placement(.put, "/resource_providers/\(rp)/inventories", token: admin, version: "1.25",
                                                   body: ["resource_provider_generation": 1, "inventories": ["VCPU": ["total": 8, "reserved": 8]]])
            assertPlacementError(equalOld, 400)
            let equalNew = try await api.placement(.put, "/resource_providers/\(rp)/inventories", token: admin, version: "1.26",
                                                   body: ["resource_provider_generation": 1, "inventories": ["VCPU": ["total": 8, "reserved": 8]]])
            XCTAssertEqual(equalNew.status, 200, equalNew.text)
            let above = try await api.placement(.put, "/resource_providers/\(rp)/inventories", token: admin,
                                                body: ["resource_provider_generation": 2, "inventories": ["VCPU": ["total": 8, "reserved": 9]]])
            assertPlacementError(above, 400)
            let unknownClass = try await api.placement(.put, "/resource_providers/\(rp)/inventories", token: admin,
                                                       body: ["resource_provider_generation": 2, "inventories": ["CUSTOM_NOPE": ["total": 1]]])
            assertPlacementError(unknownClass, 400)

            // One class: PUT only updates, POST adds, DELETE removes.
            let putMissing = try await api.placement(.put, "/resource_providers/\(rp)/inventories/DISK_GB", token: admin,
                                                     body: ["resource_provider_generation": 2, "total": 100])
            assertPlacementError(putMissing, 400)
            let post = try await api.placement(.post, "/resource_providers/\(rp)/inventories", token: admin, body: ["resource_class": "DISK_GB", "total": 100])
            XCTAssertEqual(post.status, 201, post.text)
            XCTAssertTrue(post.headers[.location]?.hasSuffix("/placement/resource_providers/\(rp)/inventories/DISK_GB") ?? false)
            let postAgain = try await api.placement(.post, "/resource_providers/\(rp)/inventories", token: admin, body: ["resource_class": "DISK_GB", "total": 100])
            assertPlacementError(postAgain, 409)
            let putOne = try await api.placement(.put, "/resource_providers/\(rp)/inventories/DISK_GB", token: admin,
                                                 body: ["resource_provider_generation": 3, "total": 200, "max_unit": 50])
            XCTAssertEqual(putOne.status, 200, putOne.text)
            XCTAssertEqual(putOne.json["resource_provider_generation"]?.intValue, 4)
            let showOne = try await api.placement(.get, "/resource_providers/\(rp)/inventories/DISK_GB", token: admin)
            XCTAssertEqual(showOne.json["total"]?.intValue, 200)
            XCTAssertEqual(showOne.json["max_unit"]?.intValue, 50)
            let missingOne = try await api.placement(.get, "/resource_providers/\(rp)/inventories/PCPU", token: admin)
            assertPlacementError(missingOne, 404)

            // Allocations pin classes: shrinking under usage is fine, removing is not.
            try await api.setInventory(rp, ["VCPU": ["total": 8], "MEMORY_MB": ["total": 4096], "DISK_GB": ["total": 200]], token: admin)
            let consumer = newUUID()
            let claimed = try await api.allocate(consumer, [rp: ["VCPU": 4, "MEMORY_MB": 2048]], token: admin)
            XCTAssertEqual(claimed.status, 204, claimed.text)
            let generation = try await api.placement(.get, "/resource_providers/\(rp)", token: admin).json["generation"]?.intValue ?? -1
            let shrink = try await api.placement(.put, "/resource_providers/\(rp)/inventories", token: admin,
                                                 body: ["resource_provider_generation": .int(generation),
                                                        "inventories": ["VCPU": ["total": 2], "MEMORY_MB": ["total": 4096], "DISK_GB": ["total": 200]]])
            XCTAssertEqual(shrink.status, 200, shrink.text)
            let remove = try await api.placement(.put, "/resource_providers/\(rp)/inventories", token: admin,
                                                 body: ["resource_provider_generation": .int(generation + 1), "inventories": ["DISK_GB": ["total": 200]]])
            assertPlacementError(remove, 409, code: "placement.inventory.inuse", message: "in use")
            let deleteInUse = try await api.placement(.delete, "/resource_providers/\(rp)/inventories/VCPU", token: admin)
            assertPlacementError(deleteInUse, 409)
            let deleteAll = try await api.placement(.delete, "/resource_providers/\(rp)/inventories", token: admin)
            assertPlacementError(deleteAll, 409, code: "placement.inventory.inuse")
            let deleteFree = try await api.placement(.delete, "/resource_providers/\(rp)/inventories/DISK_GB", token: admin)
            XCTAssertEqual(deleteFree.status, 204)
            // An over-capacity provider takes no more, but keeps what it has.
            let more = try await api.allocate(newUUID(), [rp: ["VCPU": 1]], token: admin)
            assertPlacementError(more, 409, code: "placement.undefined_code", message: "would exceed the capacity")
            let inUseDelete = try await api.placement(.delete, "/resource_providers/\(rp)", token: admin)
            assertPlacementError(inUseDelete, 409, code: "placement.resource_provider.inuse")
            let released = try await api.placement(.delete, "/allocations/\(consumer)", token: admin)
            XCTAssertEqual(released.status, 204)
            let emptied = try await api.placement(.delete, "/resource_providers/\(rp)/inventories", token: admin)
            XCTAssertEqual(emptied.status, 204, emptied.text)
            let none = try await api.placement(.get, "/resource_providers/\(rp)/inventories", token: admin)
            XCTAssertEqual(none.json["inventories"], [:])
        }
    }

    func testAllocationsCapacityAndConsumerGenerations() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let rp = try await api.createProvider("alloc", token: admin)
            let rp2 = try await api.createProvider("alloc2", token: admin)
            try await api.setInventory(rp, ["VCPU": ["total": 4, "allocation_ratio": .double(2.0), "max_unit": 4], "MEMORY_MB": ["total": 2048, "step_size": 256]],
                                       token: admin)
            try await api.setInventory(rp2, ["VCPU": ["total": 4]], token: admin)

            let overCapacity = try await api.allocate(newUUID(), [rp: ["VCPU": 9]], token: admin)
            assertPlacementError(overCapacity, 409, code: "placement.undefined_code")
            let overMaxUnit = try await api.allocate(newUUID(), [rp: ["VCPU": 5]], token: admin)
            assertPlacementError(overMaxUnit, 409, message: "would violate inventory constraints")
            let badStep = try await api.allocate(newUUID(), [rp: ["MEMORY_MB": 100]], token: admin)
            assertPlacementError(badStep, 409, message: "would violate inventory constraints")
            let noInventory = try await api.allocate(newUUID(), [rp: ["DISK_GB": 1]], token: admin)
            assertPlacementError(noInventory, 409, message: "Inventory for 'DISK_GB' on resource provider")
            let unknownProvider = try await api.allocate(newUUID(), [newUUID(): ["VCPU": 1]], token: admin)
            assertPlacementError(unknownProvider, 400, message: "that does not exist")
            let unknownClass = try await api.allocate(newUUID(), [rp: ["CUSTOM_NOPE": 1]], token: admin)
            assertPlacementError(unknownClass, 400, message: "No such resource class CUSTOM_NOPE")

            let instance = newUUID()
            let first = try await api.allocate(instance, [rp: ["VCPU": 4, "MEMORY_MB": 512]], token: admin, project: "proj", user: "alice")
            XCTAssertEqual(first.status, 204, first.text)
            let shown = try await api.placement(.get, "/allocations/\(instance)", token: admin, version: "1.38")
            XCTAssertEqual(shown.json["consumer_generation"]?.intValue, 1)
            XCTAssertEqual(shown.json["project_id"]?.stringValue, "proj")
            XCTAssertEqual(shown.json["user_id"]?.stringValue, "alice")
            XCTAssertEqual(shown.json["consumer_type"]?.stringValue, "unknown")
            XCTAssertEqual(shown.json["allocations"]?[rp]?["resources"], ["VCPU": 4, "MEMORY_MB": 512])
            XCTAssertEqual(shown.json["allocations"]?[rp]?["generation"]?.intValue, 2)

            // Consumer generations: null for a new consumer, then the current value.
            let stale = try await api.allocate(instance, [rp: ["VCPU": 2]], token: admin, project: "proj", user: "alice")
            assertPlacementError(stale, 409, code: "placement.concurrent_update", message: "consumer generation conflict - expected 1 but got None")
            let notNew = try await api.allocate(newUUID(), [rp: ["VCPU": 1]], token: admin, generation: 3)
            assertPlacementError(notNew, 409, code: "placement.concurrent_update", message: "consumer generation conflict - expected null but got 3")
            let second = try await api.allocate(instance, [rp: ["VCPU": 2], rp2: ["VCPU": 1]], token: admin, project: "proj", user: "alice", generation: 1)
            XCTAssertEqual(second.status, 204, second.text)
            let providerView = try await api.placement(.get, "/resource_providers/\(rp2)/allocations", token: admin, version: "1.28")
            XCTAssertEqual(providerView.json["allocations"]?[instance]?["resources"], ["VCPU": 1])
            XCTAssertEqual(providerView.json["allocations"]?[instance]?["consumer_generation"]?.intValue, 2)

            // Capacity counts every consumer: 8 VCPU (4 × 2.0) on rp, 2 used.
            let fits = try await api.allocate(newUUID(), [rp: ["VCPU": 4]], token: admin, project: "proj", user: "bob")
            XCTAssertEqual(fits.status, 204, fits.text)
            let full = try await api.allocate(newUUID(), [rp: ["VCPU": 3]], token: admin)
            assertPlacementError(full, 409, message: "would exceed the capacity")

            let projectUsage = try await api.placement(.get, "/usages?project_id=proj", token: admin, version: "1.9")
            XCTAssertEqual(projectUsage.json["usages"], ["VCPU": 7])
            let userUsage = try await api.placement(.get, "/usages?project_id=proj&user_id=bob", token: admin, version: "1.9")
            XCTAssertEqual(userUsage.json["usages"], ["VCPU": 4])
            let typed = try await api.placement(.get, "/usages?project_id=proj", token: admin, version: "1.38")
            XCTAssertEqual(typed.json["usages"]?["unknown"]?["consumer_count"]?.intValue, 2, typed.text)
            let noProject = try await api.placement(.get, "/usages", token: admin, version: "1.9")
            assertPlacementError(noProject, 400)

            // POST /allocations moves an instance's allocation to a migration consumer atomically.
            let migration = newUUID()
            let move = try await api.placement(.post, "/allocations", token: admin, version: "1.28", body: [
                instance: ["allocations": [:], "project_id": "proj", "user_id": "alice", "consumer_generation": 2],
                migration: ["allocations": [rp: ["resources": ["VCPU": 2]], rp2: ["resources": ["VCPU": 1]]], "project_id": "proj",
                            "user_id": "alice", "consumer_generation": nil],
            ])
            XCTAssertEqual(move.status, 204, move.text)
            let instanceAfter = try await api.placement(.get, "/allocations/\(instance)", token: admin, version: "1.28")
            XCTAssertEqual(instanceAfter.json, ["allocations": [:]])
            let migrationAfter = try await api.placement(.get, "/allocations/\(migration)", token: admin, version: "1.28")
            XCTAssertEqual(migrationAfter.json["consumer_generation"]?.intValue, 1)
            // The emptied consumer is gone: its next write starts from null again.
            let again = try await api.allocate(instance, [rp2: ["VCPU": 1]], token: admin, project: "proj", user: "alice")
            XCTAssertEqual(again.status, 204, again.text)

            // Below 1.28 generations are ignored; 1.0 takes the list form without project/user.
            let listForm = try await api.placement(.put, "/allocations/\(newUUID())", token: admin, version: nil,
                                                   body: ["allocations": [["resource_provider": ["uuid": .string(rp2)], "resources": ["VCPU": 1]]]])
            XCTAssertEqual(listForm.status, 204, listForm.text)
            let dictOld = try await api.placement(.put, "/allocations/\(instance)", token: admin, version: "1.27",
                                                  body: ["allocations": [rp2: ["resources": ["VCPU": 2]]], "project_id": "proj", "user_id": "alice"])
            XCTAssertEqual(dictOld.status, 204, dictOld.text)
            let emptyOld = try await api.placement(.put, "/allocations/\(instance)", token: admin, version: "1.27",
                                                   body: ["allocations": [:], "project_id": "proj", "user_id": "alice"])
            assertPlacementError(emptyOld, 400)

            let deleted = try await api.placement(.delete, "/allocations/\(instance)", token: admin)
            XCTAssertEqual(deleted.status, 204)
            let deletedAgain = try await api.placement(.delete, "/allocations/\(instance)", token: admin)
            assertPlacementError(deletedAgain, 404, message: "No allocations for consumer")
        }
    }

    func testResourceClassesAndTraits() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let classes = try await api.placement(.get, "/resource_classes", token: admin)
            let names = classes.json["resource_classes"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
            XCTAssertEqual(names.prefix(3), ["VCPU", "MEMORY_MB", "DISK_GB"])
            XCTAssertEqual(names.count, 21)
            let created = try await api.placement(.post, "/resource_classes", token: admin, body: ["name": "CUSTOM_GOLD"])
            XCTAssertEqual(created.status, 201, created.text)
            XCTAssertTrue(created.headers[.location]?.hasPrefix("http") ?? false)
            let duplicate = try await api.placement(.post, "/resource_classes", token: admin, body: ["name": "CUSTOM_GOLD"])
            assertPlacementError(duplicate, 409)
            let notCustom = try await api.placement(.post, "/resource_classes", token: admin, body: ["name": "GOLD"])
            assertPlacementError(notCustom, 400)
            let ensured = try await api.placement(.put, "/resource_classes/CUSTOM_SILVER", token: admin, version: "1.7")
            XCTAssertEqual(ensured.status, 201)
            let ensuredAgain = try await api.placement(.put, "/resource_classes/CUSTOM_SILVER", token: admin, version: "1.7")
            XCTAssertEqual(ensuredAgain.status, 204)
            let renamed = try await api.placement(.put, "/resource_classes/CUSTOM_SILVER", token: admin, version: "1.6", body: ["name": "CUSTOM_BRONZE"])
            XCTAssertEqual(renamed.json["name"]?.stringValue, "CUSTOM_BRONZE", renamed.text)
            let show = try await api.placement(.get, "/resource_classes/CUSTOM_BRONZE", token: admin)
            XCTAssertEqual(show.json["name"]?.stringValue, "CUSTOM_BRONZE")
            let deleteStandard = try await api.placement(.delete, "/resource_classes/VCPU", token: admin)
            assertPlacementError(deleteStandard, 400)
            let rp = try await api.createProvider("rc-user", token: admin)
            try await api.setInventory(rp, ["CUSTOM_GOLD": ["total": 3]], token: admin)
            let inUse = try await api.placement(.delete, "/resource_classes/CUSTOM_GOLD", token: admin)
            assertPlacementError(inUse, 409)
            let deleted = try await api.placement(.delete, "/resource_classes/CUSTOM_BRONZE", token: admin)
            XCTAssertEqual(deleted.status, 204)
            let missing = try await api.placement(.get, "/resource_classes/CUSTOM_BRONZE", token: admin)
            assertPlacementError(missing, 404)

            let traits = try await api.placement(.get, "/traits", token: admin)
            let traitNames = traits.json["traits"]?.arrayValue?.compactMap(\.stringValue) ?? []
            XCTAssertEqual(traitNames.count, 377)
            XCTAssertTrue(traitNames.contains("COMPUTE_STATUS_DISABLED") && traitNames.contains("HW_CPU_X86_AVX2") && traitNames.contains("STORAGE_DISK_SSD"))
            let putTrait = try await api.placement(.put, "/traits/CUSTOM_FAST", token: admin)
            XCTAssertEqual(putTrait.status, 201)
            XCTAssertEqual(putTrait.headers[.contentType], nil)
            let putTraitAgain = try await api.placement(.put, "/traits/CUSTOM_FAST", token: admin)
            XCTAssertEqual(putTraitAgain.status, 204)
            let putStandard = try await api.placement(.put, "/traits/FAST", token: admin)
            assertPlacementError(putStandard, 400)
            let showTrait = try await api.placement(.get, "/traits/CUSTOM_FAST", token: admin)
            XCTAssertEqual(showTrait.status, 204)
            let showMissing = try await api.placement(.get, "/traits/CUSTOM_SLOW", token: admin)
            assertPlacementError(showMissing, 404)
            let custom = try await api.placement(.get, "/traits?name=startswith:CUSTOM_", token: admin)
            XCTAssertEqual(custom.json["traits"], ["CUSTOM_FAST"])
            let some = try await api.placement(.get, "/traits?name=in:CUSTOM_FAST,COMPUTE_NODE,CUSTOM_NONE", token: admin)
            XCTAssertEqual(some.json["traits"], ["COMPUTE_NODE", "CUSTOM_FAST"])
            let badName = try await api.placement(.get, "/traits?name=CUSTOM_FAST", token: admin)
            assertPlacementError(badName, 400)

            try await api.setTraits(rp, ["CUSTOM_FAST", "COMPUTE_NODE"], token: admin)
            let associated = try await api.placement(.get, "/traits?associated=True", token: admin)
            XCTAssertEqual(associated.json["traits"], ["COMPUTE_NODE", "CUSTOM_FAST"])
            let badAssociated = try await api.placement(.get, "/traits?associated=maybe", token: admin)
            assertPlacementError(badAssociated, 400)
            let unknownTrait = try await api.placement(.put, "/resource_providers/\(rp)/traits", token: admin,
                                                       body: ["resource_provider_generation": 2, "traits": ["CUSTOM_NOPE"]])
            assertPlacementError(unknownTrait, 400)
            let providerTraits = try await api.placement(.get, "/resource_providers/\(rp)/traits", token: admin)
            XCTAssertEqual(providerTraits.json, ["traits": ["COMPUTE_NODE", "CUSTOM_FAST"], "resource_provider_generation": 2])
            let traitInUse = try await api.placement(.delete, "/traits/CUSTOM_FAST", token: admin)
            assertPlacementError(traitInUse, 409)
            let standardDelete = try await api.placement(.delete, "/traits/COMPUTE_NODE", token: admin)
            assertPlacementError(standardDelete, 400)
            let cleared = try await api.placement(.delete, "/resource_providers/\(rp)/traits", token: admin)
            XCTAssertEqual(cleared.status, 204)
            let after = try await api.placement(.get, "/resource_providers/\(rp)/traits", token: admin)
            XCTAssertEqual(after.json, ["traits": [], "resource_provider_generation": 3])
            let traitDeleted = try await api.placement(.delete, "/traits/CUSTOM_FAST", token: admin)
            XCTAssertEqual(traitDeleted.status, 204)
        }
    }

    func testPolicy() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let member = try await api.projectUser(admin: admin, name: "placement-member")
            let reader = try await api.projectUser(admin: admin, name: "placement-reader", role: "reader")
            let list = try await api.placement(.get, "/resource_providers", token: member.token)
            assertPlacementError(list, 403, code: "placement.undefined_code", message: "Policy does not allow placement:resource_providers:list to be performed.")
            let create = try await api.placement(.post, "/resource_providers", token: member.token, body: ["name": "nope"])
            assertPlacementError(create, 403)
            let candidates = try await api.placement(.get, "/allocation_candidates?resources=VCPU:1", token: reader.token)
            assertPlacementError(candidates, 403)
            let ownUsage = try await api.placement(.get, "/usages?project_id=\(reader.project)", token: reader.token)
            XCTAssertEqual(ownUsage.status, 200, ownUsage.text)
            XCTAssertEqual(ownUsage.json, ["usages": [:]])
            let otherUsage = try await api.placement(.get, "/usages?project_id=\(member.project)", token: reader.token)
            assertPlacementError(otherUsage, 403)

            // The service role is enough for everything (Nova's and Neutron's service users).
            let service = try await api.projectUser(admin: admin, name: "placement-service", role: "service")
            let created = try await api.placement(.post, "/resource_providers", token: service.token, body: ["name": "by-service"])
            XCTAssertEqual(created.status, 200, created.text)
        }
    }

    func testReshaperMovesInventoryAndAllocationsAtOnce() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let root = try await api.createProvider("reshape-root", token: admin)
            let child = try await api.createProvider("reshape-child", token: admin, parent: root)
            try await api.setInventory(root, ["VCPU": ["total": 8], "VGPU": ["total": 2]], token: admin)
            let consumer = newUUID()
            let claimed = try await api.allocate(consumer, [root: ["VCPU": 1, "VGPU": 1]], token: admin)
            XCTAssertEqual(claimed.status, 204, claimed.text)
            let rootGeneration = try await api.placement(.get, "/resource_providers/\(root)", token: admin).json["generation"] ?? 0
            // Moving VGPU to the child without moving its allocation is refused as a whole.
            let orphaning = try await api.placement(.post, "/reshaper", token: admin, body: [
                "inventories": [root: ["inventories": ["VCPU": ["total": 8]], "resource_provider_generation": rootGeneration],
                                child: ["inventories": ["VGPU": ["total": 2]], "resource_provider_generation": 0]],
                "allocations": [:],
            ])
            assertPlacementError(orphaning, 409, code: "placement.inventory.inuse")
            let reshaped = try await api.placement(.post, "/reshaper", token: admin, version: "1.30", body: [
                "inventories": [root: ["inventories": ["VCPU": ["total": 8]], "resource_provider_generation": rootGeneration],
                                child: ["inventories": ["VGPU": ["total": 2]], "resource_provider_generation": 0]],
                "allocations": [consumer: ["allocations": [root: ["resources": ["VCPU": 1]], child: ["resources": ["VGPU": 1]]],
                                           "project_id": "p1", "user_id": "u1", "consumer_generation": 1]],
            ])
            XCTAssertEqual(reshaped.status, 204, reshaped.text)
            let childUsage = try await api.placement(.get, "/resource_providers/\(child)/usages", token: admin)
            XCTAssertEqual(childUsage.json["usages"], ["VGPU": 1])
            let rootInventory = try await api.placement(.get, "/resource_providers/\(root)/inventories", token: admin)
            XCTAssertEqual(rootInventory.json["inventories"]?.objectValue?.keys.sorted(), ["VCPU"])
            let unknown = try await api.placement(.post, "/reshaper", token: admin, body: [
                "inventories": [newUUID(): ["inventories": [:], "resource_provider_generation": 0]], "allocations": [:],
            ])
            assertPlacementError(unknown, 400, code: "placement.resource_provider.not_found")
            let tooOld = try await api.placement(.post, "/reshaper", token: admin, version: "1.29", body: ["inventories": [:], "allocations": [:]])
            XCTAssertEqual(tooOld.status, 404)
        }
    }
}
