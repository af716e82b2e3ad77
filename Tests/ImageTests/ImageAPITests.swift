import Crypto
import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

/// Glance v2 through the real router, on SQLite and PostgreSQL.
final class ImageAPITests: XCTestCase {
    static func hex<D: Digest>(_ d: D) -> String { d.map { String(format: "%02x", $0) }.joined() }

    /// A qcow2 v3 header (512 bytes) with the given virtual size and, optionally, a backing file.
    static func qcow2(virtualSize: UInt64, backingFile: Bool = false) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 512)
        func put(_ value: UInt64, at offset: Int, width: Int) {
            for i in 0..<width { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> UInt64(8 * (width - 1 - i))) }
        }
        bytes[0...3] = [0x51, 0x46, 0x49, 0xFB]
        put(3, at: 4, width: 4)
        if backingFile {
            put(400, at: 8, width: 8)
            put(8, at: 16, width: 4)
            bytes[400..<408] = ArraySlice("base.img".utf8)
        }
        put(16, at: 20, width: 4)  // cluster bits
        put(virtualSize, at: 24, width: 8)
        put(104, at: 100, width: 4)  // header length
        return bytes
    }

    /// Every file under the image stores and the staging area.
    static func storedFiles(_ cloud: TestCloud) throws -> [String] {
        let root = "\(cloud.dataDir)/images"
        return (FileManager.default.subpaths(atPath: root) ?? []).filter { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: "\(root)/\(path)", isDirectory: &isDirectory) && !isDirectory.boolValue
        }.sorted()
    }

    static func createImage(_ api: API, token: String, _ fields: JSON = [:]) async throws -> String {
        var body = fields.objectValue ?? [:]
        if body["disk_format"] == nil { body["disk_format"] = "raw" }
        if body["container_format"] == nil { body["container_format"] = "bare" }
        let reply = try await api.call(.post, "/image/v2/images", token: token, body: .object(body))
        XCTAssertEqual(reply.status, 201, reply.text)
        return try XCTUnwrap(reply.json["id"]?.stringValue, reply.text)
    }

    func testDiscoveryNeedsNoTokenAndImageIsInTheCatalog() async throws {
        try await onEachEngine { cloud, api in
            let root = try await api.call(.get, "/image")
            XCTAssertEqual(root.status, 300)
            XCTAssertEqual(root.json["versions"]?.arrayValue?.first?["status"]?.stringValue, "CURRENT")
            let value1 = try await api.call(.get, "/image/versions").status
            XCTAssertEqual(value1, 200)
            let token = try await api.adminToken(cloud)
            let catalog = try await api.call(.get, "/identity/v3/auth/catalog", token: token)
            XCTAssertTrue(catalog.json["catalog"]?.arrayValue?.contains { $0["type"]?.stringValue == "image" } ?? false)
            let stores = try await api.call(.get, "/image/v2/info/stores", token: token)
            XCTAssertEqual(stores.json["stores"]?.arrayValue?.first?["id"]?.stringValue, "local")
            XCTAssertEqual(stores.json["stores"]?.arrayValue?.first?["default"]?.stringValue, "true")
            let schema = try await api.call(.get, "/image/v2/schemas/image", token: token)
            XCTAssertEqual(schema.json["name"]?.stringValue, "image")
            let unauthenticated = try await api.call(.get, "/image/v2/images")
            XCTAssertEqual(unauthenticated.status, 401)
        }
    }

    func testUploadAndDownloadRoundTrip() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let id = try await Self.createImage(api, token: admin, ["name": "cirros", "hw_disk_bus": "scsi", "tags": ["a"]])
            let queued = try await api.call(.get, "/image/v2/images/\(id)", token: admin)
            XCTAssertEqual(queued.json["status"]?.stringValue, "queued")
            XCTAssertEqual(queued.json["size"], .null)
            XCTAssertEqual(queued.json["visibility"]?.stringValue, "shared")
            XCTAssertEqual(queued.json["hw_disk_bus"]?.stringValue, "scsi")
            let value2 = try await api.call(.get, "/image/v2/images/\(id)/file", token: admin).status
            XCTAssertEqual(value2, 204)

            let data = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
            let upload = try await api.call(.put, "/image/v2/images/\(id)/file", token: admin, bytes: data)
            XCTAssertEqual(upload.status, 204, upload.text)
            let active = try await api.call(.get, "/image/v2/images/\(id)", token: admin).json
            XCTAssertEqual(active["status"]?.stringValue, "active")
            XCTAssertEqual(active["size"]?.intValue, Int64(data.count))
            XCTAssertEqual(active["checksum"]?.stringValue, Self.hex(Insecure.MD5.hash(data: data)))
            XCTAssertEqual(active["os_hash_algo"]?.stringValue, "sha512")
            XCTAssertEqual(active["os_hash_value"]?.stringValue, Self.hex(SHA512.hash(data: data)))

            let download = try await api.call(.get, "/image/v2/images/\(id)/file", token: admin)
            XCTAssertEqual(download.status, 200)
            XCTAssertEqual(download.bytes, data)
            XCTAssertEqual(download.headers[HTTPField.Name("Content-MD5")!], active["checksum"]?.stringValue)
            let range = try await api.call(.get, "/image/v2/images/\(id)/file", token: admin, headers: ["Range": "bytes=10-19"])
            XCTAssertEqual(range.status, 206)
            XCTAssertEqual(range.bytes, Array(data[10...19]))

            let again = try await api.call(.put, "/image/v2/images/\(id)/file", token: admin, bytes: [1, 2, 3])
            XCTAssertEqual(again.status, 409, "an active image takes no new data")
            let deleted = try await api.call(.delete, "/image/v2/images/\(id)", token: admin)
            XCTAssertEqual(deleted.status, 204)
            let value3 = try await api.call(.get, "/image/v2/images/\(id)", token: admin).status
            XCTAssertEqual(value3, 404)
            XCTAssertEqual(try Self.storedFiles(cloud), [], "deleting the image removes its data")
        }
    }

    func testUnsafeOrMislabelledDataIsRejectedAndLeavesTheImageQueued() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let backed = try await Self.createImage(api, token: admin, ["disk_format": "qcow2"])
            let rejected = try await api.call(.put, "/image/v2/images/\(backed)/file", token: admin, bytes: Self.qcow2(virtualSize: 1 << 30, backingFile: true))
            XCTAssertEqual(rejected.status, 415, rejected.text)
            XCTAssertTrue(rejected.text.contains("backing file"), rejected.text)
            let value4 = try await api.call(.get, "/image/v2/images/\(backed)", token: admin).json["status"]?.stringValue
            XCTAssertEqual(value4, "queued")

            let mislabelled = try await Self.createImage(api, token: admin, ["disk_format": "raw"])
            let mismatch = try await api.call(.put, "/image/v2/images/\(mislabelled)/file", token: admin, bytes: Self.qcow2(virtualSize: 1 << 20))
            XCTAssertEqual(mismatch.status, 415, mismatch.text)

            let good = try await Self.createImage(api, token: admin, ["disk_format": "qcow2"])
            let accepted = try await api.call(.put, "/image/v2/images/\(good)/file", token: admin, bytes: Self.qcow2(virtualSize: 1 << 30))
            XCTAssertEqual(accepted.status, 204, accepted.text)
            let value5 = try await api.call(.get, "/image/v2/images/\(good)", token: admin).json["virtual_size"]?.intValue
            XCTAssertEqual(value5, 1 << 30)

            let summed = try await Self.createImage(api, token: admin)
            let badSum = try await api.call(.put, "/image/v2/images/\(summed)/file", token: admin, bytes: [1, 2, 3],
                                            headers: ["Content-MD5": "00000000000000000000000000000000"])
            XCTAssertEqual(badSum.status, 400, badSum.text)
            let wrongType = try await api.call(.put, "/image/v2/images/\(summed)/file", token: admin, raw: "{}")
            XCTAssertEqual(wrongType.status, 415)
            let value6 = try await api.call(.get, "/image/v2/images/\(summed)", token: admin).json["status"]?.stringValue
            XCTAssertEqual(value6, "queued")
            let partials = try ImageAPITests.storedFiles(cloud).filter { $0.hasSuffix(".partial") }
            XCTAssertEqual(partials, [], "no stray data from rejected uploads")
        }
    }

    func testVisibilityMembersAndRoles() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")
            let reader = try await api.projectUser(admin: admin, name: "rita", role: "reader")

            let privateImage = try await Self.createImage(api, token: alice.token, ["visibility": "private", "name": "mine"])
            let value7 = try await api.call(.get, "/image/v2/images/\(privateImage)", token: bob.token).status
            XCTAssertEqual(value7, 404)
            let value8 = try await api.call(.post, "/image/v2/images", token: alice.token, body: ["name": "pub", "visibility": "public"]).status
            XCTAssertEqual(value8, 403, "only admins publicize")
            let value9 = try await api.call(.post, "/image/v2/images", token: reader.token, body: ["name": "r"]).status
            XCTAssertEqual(value9, 403)

            let shared = try await Self.createImage(api, token: alice.token, ["name": "shared-one"])
            let added = try await api.call(.post, "/image/v2/images/\(shared)/members", token: alice.token, body: ["member": .string(bob.project)])
            XCTAssertEqual(added.status, 200, added.text)
            XCTAssertEqual(added.json["status"]?.stringValue, "pending")
            let value10 = try await api.call(.get, "/image/v2/images/\(shared)", token: bob.token).status
            XCTAssertEqual(value10, 200)
            func bobSees() async throws -> [String] {
                try await api.call(.get, "/image/v2/images", token: bob.token).json["images"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
            }
            let value11 = try await bobSees().contains(shared)
            XCTAssertFalse(value11, "pending shares are not listed")
            let value12 = try await api.call(.put, "/image/v2/images/\(shared)/members/\(bob.project)", token: alice.token, body: ["status": "accepted"]).status
            XCTAssertEqual(value12, 403, "the owner cannot accept for the member")
            let value13 = try await api.call(.put, "/image/v2/images/\(shared)/members/\(bob.project)", token: bob.token, body: ["status": "maybe"]).status
            XCTAssertEqual(value13, 400)
            let value14 = try await api.call(.put, "/image/v2/images/\(shared)/members/\(bob.project)", token: bob.token, body: ["status": "accepted"]).status
            XCTAssertEqual(value14, 200)
            let value15 = try await bobSees().contains(shared)
            XCTAssertTrue(value15)
            let value16 = try await api.call(.patch, "/image/v2/images/\(shared)", token: bob.token, body: [["op": "replace", "path": "/name", "value": "x"]], headers: ["Content-Type": "application/openstack-images-v2.1-json-patch"]).status
            XCTAssertEqual(value16, 403)
            let value17 = try await api.call(.post, "/image/v2/images/\(privateImage)/members", token: alice.token, body: ["member": .string(bob.project)]).status
            XCTAssertEqual(value17, 403, "private images have no members")
            // Someone who is neither owner nor member sees none of it.
            let carol = try await api.projectUser(admin: admin, name: "carol")
            let carolMembers = try await api.call(.get, "/image/v2/images/\(shared)/members", token: carol.token)
            XCTAssertEqual(carolMembers.status, 404)
            let carolAccepts = try await api.call(.put, "/image/v2/images/\(shared)/members/\(carol.project)", token: carol.token, body: ["status": "accepted"])
            XCTAssertEqual(carolAccepts.status, 404)
            let carolAdds = try await api.call(.post, "/image/v2/images/\(shared)/members", token: carol.token, body: ["member": .string(carol.project)])
            XCTAssertEqual(carolAdds.status, 404)
            let bobAdds = try await api.call(.post, "/image/v2/images/\(shared)/members", token: bob.token, body: ["member": .string(carol.project)])
            XCTAssertEqual(bobAdds.status, 403, "a member cannot share further")
            let value18 = try await api.call(.delete, "/image/v2/images/\(shared)/members/\(bob.project)", token: alice.token).status
            XCTAssertEqual(value18, 204)
            let value19 = try await api.call(.get, "/image/v2/images/\(shared)", token: bob.token).status
            XCTAssertEqual(value19, 404)
        }
    }

    func testPatchTagsProtectionAndDeactivation() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let id = try await Self.createImage(api, token: alice.token, ["name": "p"])
            func patch(_ ops: JSON, _ type: String = "application/openstack-images-v2.1-json-patch") async throws -> API.Reply {
                try await api.call(.patch, "/image/v2/images/\(id)", token: alice.token, body: ops, headers: ["Content-Type": type])
            }
            let added = try await patch([["op": "add", "path": "/os_distro", "value": "cirros"], ["op": "add", "path": "/name", "value": "renamed"]])
            XCTAssertEqual(added.status, 200, added.text)
            XCTAssertEqual(added.json["os_distro"]?.stringValue, "cirros")
            XCTAssertEqual(added.json["name"]?.stringValue, "renamed")
            let value20 = try await patch([["op": "add", "path": "/os_distro", "value": "again"]]).status
            XCTAssertEqual(value20, 200, "v2.1 add overwrites")
            let value21 = try await patch([["add": "/os_distro", "value": "again"]], "application/openstack-images-v2.0-json-patch").status
            XCTAssertEqual(value21, 409)
            let value22 = try await patch([["op": "replace", "path": "/missing", "value": "x"]]).status
            XCTAssertEqual(value22, 409)
            let value23 = try await patch([["op": "remove", "path": "/missing"]]).status
            XCTAssertEqual(value23, 409)
            let value24 = try await patch([["op": "replace", "path": "/size", "value": 5]]).status
            XCTAssertEqual(value24, 403)
            let value25 = try await patch([["op": "remove", "path": "/name"]]).status
            XCTAssertEqual(value25, 403)
            let value26 = try await patch([["op": "add", "path": "/os_glance_x", "value": "x"]]).status
            XCTAssertEqual(value26, 403)
            let value27 = try await patch([["op": "add", "path": "/n", "value": 5]]).status
            XCTAssertEqual(value27, 400, "custom values are strings")
            let value28 = try await patch([["op": "add", "path": "/visibility", "value": "public"]]).status
            XCTAssertEqual(value28, 403)
            let value29 = try await patch([["op": "remove", "path": "/os_distro"]]).status
            XCTAssertEqual(value29, 200)
            let value30 = try await patch([["op": "add", "path": "/name", "value": "x"]], "application/json").status
            XCTAssertEqual(value30, 415)
            // One bad operation leaves everything unchanged.
            let value31 = try await patch([["op": "add", "path": "/name", "value": "half"], ["op": "remove", "path": "/nope"]]).status
            XCTAssertEqual(value31, 409)
            let value32 = try await api.call(.get, "/image/v2/images/\(id)", token: alice.token).json["name"]?.stringValue
            XCTAssertEqual(value32, "renamed")

            let value33 = try await api.call(.put, "/image/v2/images/\(id)/tags/blue", token: alice.token).status
            XCTAssertEqual(value33, 204)
            let value34 = try await api.call(.get, "/image/v2/images/\(id)", token: alice.token).json["tags"]
            XCTAssertEqual(value34, ["blue"])
            let value35 = try await api.call(.delete, "/image/v2/images/\(id)/tags/red", token: alice.token).status
            XCTAssertEqual(value35, 404)
            let value36 = try await api.call(.delete, "/image/v2/images/\(id)/tags/blue", token: alice.token).status
            XCTAssertEqual(value36, 204)

            let value37 = try await patch([["op": "replace", "path": "/protected", "value": true]]).status
            XCTAssertEqual(value37, 200)
            let value38 = try await api.call(.delete, "/image/v2/images/\(id)", token: alice.token).status
            XCTAssertEqual(value38, 403)
            let value39 = try await patch([["op": "replace", "path": "/protected", "value": false]]).status
            XCTAssertEqual(value39, 200)

            let value40 = try await api.call(.put, "/image/v2/images/\(id)/file", token: alice.token, bytes: [9, 9, 9]).status
            XCTAssertEqual(value40, 204)
            let bob = try await api.projectUser(admin: admin, name: "bob")
            let byOther = try await api.call(.post, "/image/v2/images/\(id)/actions/deactivate", token: bob.token)
            XCTAssertEqual(byOther.status, 404, "another project cannot even see the image")
            let value42 = try await api.call(.post, "/image/v2/images/\(id)/actions/deactivate", token: alice.token).status
            XCTAssertEqual(value42, 204)
            let value43 = try await api.call(.get, "/image/v2/images/\(id)/file", token: alice.token).status
            XCTAssertEqual(value43, 403)
            let value44 = try await api.call(.post, "/image/v2/images/\(id)/actions/reactivate", token: alice.token).status
            XCTAssertEqual(value44, 204)
            let value45 = try await api.call(.get, "/image/v2/images/\(id)/file", token: alice.token).bytes
            XCTAssertEqual(value45, [9, 9, 9])
        }
    }

    func testListPaginationFiltersAndErrorShapes() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            for i in 0..<5 { _ = try await Self.createImage(api, token: admin, ["name": .string("img-\(i)"), "tags": i % 2 == 0 ? ["even"] : ["odd"]]) }
            let first = try await api.call(.get, "/image/v2/images?limit=2&sort=name:asc", token: admin)
            XCTAssertEqual(first.json["images"]?.arrayValue?.compactMap { $0["name"]?.stringValue }, ["img-0", "img-1"])
            let next = try XCTUnwrap(first.json["next"]?.stringValue)
            XCTAssertTrue(next.hasPrefix("/v2/images?"), next)
            let second = try await api.call(.get, "/image" + next, token: admin)
            XCTAssertEqual(second.json["images"]?.arrayValue?.compactMap { $0["name"]?.stringValue }, ["img-2", "img-3"])
            let value46 = try await api.call(.get, "/image/v2/images?tag=even", token: admin).json["images"]?.arrayValue?.count
            XCTAssertEqual(value46, 3)
            let value47 = try await api.call(.get, "/image/v2/images?name=img-4", token: admin).json["images"]?.arrayValue?.count
            XCTAssertEqual(value47, 1)
            let value48 = try await api.call(.get, "/image/v2/images?limit=x", token: admin).status
            XCTAssertEqual(value48, 400)
            let value49 = try await api.call(.get, "/image/v2/images?sort_key=colour", token: admin).status
            XCTAssertEqual(value49, 400)
            // A sort item with nothing around its colon once trapped (Tests/Fuzz/Regressions/glance-list-query).
            for sort in [":", "name:asc,:", "::"] {
                let reply = try await api.call(.get, "/image/v2/images?sort=\(sort)", token: admin, headers: ["Accept": "application/json"])
                XCTAssertEqual(reply.status, 400, sort)
                XCTAssertEqual(reply.json["message"]?.stringValue?.hasPrefix("Invalid sort key: ."), true, reply.text)
            }

            let missing = "/image/v2/images/00000000-0000-0000-0000-000000000000"
            let json = try await api.call(.get, missing, token: admin, headers: ["Accept": "application/json"])
            XCTAssertEqual(json.status, 404)
            XCTAssertEqual(json.json["code"]?.stringValue, "404 Not Found")
            let html = try await api.call(.get, missing, token: admin, headers: ["Accept": "*/*"])
            XCTAssertTrue(html.headers[.contentType]?.hasPrefix("text/html") ?? false)
            XCTAssertTrue(html.text.contains("<h1>404 Not Found</h1>"))
            let plain = try await api.call(.get, missing, token: admin)
            XCTAssertTrue(plain.headers[.contentType]?.hasPrefix("text/plain") ?? false, "\(plain.headers)")
        }
    }

    /// Glance's filter operators, as `openstack server list` uses them to name servers' images
    /// (`id=in:a,b`): `in:` on five attributes with the API working group's quoting, and
    /// comparisons on the two timestamps.
    func testListFilterOperators() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let a = try await Self.createImage(api, token: admin, ["name": "alpha"])
            let b = try await Self.createImage(api, token: admin, ["name": "beta,comma", "disk_format": "qcow2"])
            let c = try await Self.createImage(api, token: admin, ["name": "gamma", "container_format": "ova"])
            func ids(_ query: String) async throws -> Set<String> {
                let reply = try await api.call(.get, "/image/v2/images?\(query)", token: admin)
                XCTAssertEqual(reply.status, 200, "\(query): \(reply.text)")
                return Set(reply.json["images"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? [])
            }
            let all = [a, b, c].joined(separator: ",")
            let missing = "00000000-0000-0000-0000-000000000000"
            var value = try await ids("id=in:\(a),\(c),\(missing)")
            XCTAssertEqual(value, [a, c])
            value = try await ids("id=in:\(all)&name=in:alpha,gamma")
            XCTAssertEqual(value, [a, c])
            value = try await ids("id=eq:\(b)")
            XCTAssertEqual(value, [b])
            // A quoted value keeps its comma; unquoted, the comma splits it.
            value = try await ids("name=in:%22beta,comma%22,alpha")
            XCTAssertEqual(value, [a, b])
            value = try await ids("name=in:beta,comma")
            XCTAssertEqual(value, [])
            // Empty items, a trailing comma and a quoted empty value name nothing more.
            value = try await ids("name=in:,alpha,&id=in:\(all)")
            XCTAssertEqual(value, [a])
            value = try await ids("name=in:%22%22,%22gamma%22")
            XCTAssertEqual(value, [c])
            value = try await ids("disk_format=in:qcow2,vmdk")
            XCTAssertEqual(value, [b])
            value = try await ids("container_format=in:ova&id=in:\(all)")
            XCTAssertEqual(value, [c])
            value = try await ids("status=in:queued,active&id=in:\(all)")
            XCTAssertEqual(value, [a, b, c])
            value = try await ids("status=in:active,killed")
            XCTAssertEqual(value, [])

            // Times compare as shown (whole seconds).
            let shownImage = try await api.call(.get, "/image/v2/images/\(b)", token: admin).json
            let shown = try XCTUnwrap(shownImage["created_at"]?.stringValue)
            let created = try XCTUnwrap(Timestamps.parse(shown))
            func iso(_ offset: TimeInterval) -> String { Timestamps.iso8601(created.addingTimeInterval(offset)) }
            value = try await ids("created_at=eq:\(shown)&id=in:\(all)")
            XCTAssertTrue(value.contains(b), "\(value)")
            value = try await ids("created_at=\(shown)&id=eq:\(b)")
            XCTAssertEqual(value, [b], "a bare time is eq")
            value = try await ids("created_at=gte:\(iso(-60))&id=in:\(all)")
            XCTAssertEqual(value, [a, b, c])
            value = try await ids("created_at=gt:\(iso(60))")
            XCTAssertEqual(value, [])
            value = try await ids("updated_at=lt:\(iso(60))&id=in:\(all)")
            XCTAssertEqual(value, [a, b, c])
            value = try await ids("updated_at=lte:2000-01-01")
            XCTAssertEqual(value, [])
            value = try await ids("created_at=neq:\(shown)&id=eq:\(b)")
            XCTAssertEqual(value, [])
            // A zone offset is honoured: the same instant two hours east.
            let east = Timestamps.iso8601(created.addingTimeInterval(7200)).dropLast() + "+02:00"
            value = try await ids("created_at=eq:\(east.replacingOccurrences(of: "+", with: "%2B"))&id=eq:\(b)")
            XCTAssertEqual(value, [b])

            for (query, message) in [
                ("created_at=gt:yesterday", "Bad \"created_at\" query filter format. Use ISO 8601 DateTime notation."),
                ("updated_at=2026-13-01T00:00:00Z", "Bad \"updated_at\" query filter format. Use ISO 8601 DateTime notation."),
                ("created_at=after:2026-01-01T00:00:00Z", "Unable to filter on a unknown operator."),
                ("name=like:alpha", "Unable to filter by unknown operator 'like'."),
                ("id=gt:\(a)", "Unable to filter by unknown operator 'gt'."),
                ("name=in:%22alpha", "Invalid filter value \"alpha. The quote is not closed."),
                ("name=in:a%22b%22", "Invalid filter value a\"b\". There is no comma before opening quotation mark."),
                ("name=in:%22a%22b", "Invalid filter value \"a\"b. There is no comma after closing quotation mark."),
            ] {
                let reply = try await api.call(.get, "/image/v2/images?\(query)", token: admin, headers: ["Accept": "application/json"])
                XCTAssertEqual(reply.status, 400, "\(query): \(reply.text)")
                XCTAssertEqual(reply.json["code"]?.stringValue, "400 Bad Request", reply.text)
                // webob's JSON body: the explanation, then its HTML line breaks.
                XCTAssertEqual(reply.json["message"]?.stringValue?.hasPrefix(message + "<br />"), true, "\(query): \(reply.text)")
            }
        }
    }
}
