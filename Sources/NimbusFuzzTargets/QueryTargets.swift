import Foundation
import HTTPTypes
import Hummingbird
@testable import Image
@testable import Networking
@testable import NimbusCore
import NIOCore
@testable import Placement

/// Requests as the handlers receive them: Hummingbird builds `Request.uri` from the request
/// target, and Nimbus's helpers (`queryDictionary`, `queryValues`, `QueryString`,
/// `NeutronListing`) decode `uri.query`.
enum FuzzHTTP {
    /// A GET of `path` with the input as its query string. NIO's HTTP parser refuses control
    /// characters, space and DEL in a request target, so those bytes are dropped: a request
    /// carrying them never reaches a handler. Other bytes, percent signs and `#` included, are
    /// passed as they come.
    static func get(_ path: String, query: some Collection<UInt8>) -> Request {
        let target = query.filter { $0 > 0x20 && $0 != 0x7F }
        let head = HTTPRequest(method: .get, scheme: "http", authority: "localhost:8080",
                               path: path + "?" + String(decoding: target, as: UTF8.self))
        return Request(head: head, body: RequestBody(buffer: ByteBuffer()))
    }
}

enum QueryTargets {
    // MARK: Placement

    /// `[VERSION "\n"] QUERY`: an optional first line picks the microversion (1.0 to 1.39;
    /// anything else means 1.39), the rest is the query string of `GET /resource_providers`
    /// and `GET /allocation_candidates`.
    static func placement(_ data: [UInt8]) {
        var version = Microversion.maximum
        var query = data[...]
        if let newline = data.firstIndex(of: UInt8(ascii: "\n")) {
            if let asked = Microversion(String(decoding: data[..<newline], as: UTF8.self)),
               asked >= Microversion.minimum, asked <= Microversion.maximum {
                version = asked
            }
            query = data[(newline + 1)...]
        }
        let q = QueryString(FuzzHTTP.get("/placement/allocation_candidates", query: query).uri.query)

        // GET /resource_providers, parameter by parameter (listProviders checks resource
        // classes and traits against the database between these; each runs on its own here).
        if let uuid = q.last("uuid") { _ = try? PlacementQuery.uuid(uuid, key: "uuid") }
        _ = try? PlacementQuery.memberOf(q.values("member_of"), key: "member_of", version: version)
        if let resources = q.last("resources") { _ = try? PlacementQuery.resources(resources) }
        if let inTree = q.last("in_tree") { _ = try? PlacementQuery.uuid(inTree, key: "in_tree") }
        if let traits = try? PlacementQuery.traits(q.values("required"), key: "required", version: version) {
            _ = PlacementQuery.traitNames(traits)
        }

        // GET /allocation_candidates: everything before its database lookups.
        if let parsed = try? PlacementRoutes.parseCandidateQuery(q, version: version) {
            guard parsed.query.groups.values.contains(where: { !$0.resources.isEmpty }) else {
                fatalError("an allocation-candidates query without resources was accepted")
            }
        }
    }

    // MARK: Glance

    /// `GET /v2/images?…`: the query dictionary and tag list the route builds, the checks
    /// `ImageService.list` makes before it reads the store, the sort it applies, and the
    /// escaping of the `next` link.
    static func glance(_ data: [UInt8]) {
        let request = FuzzHTTP.get("/image/v2/images", query: data)
        let query = request.queryDictionary
        _ = request.queryValues("tag")
        for (key, value) in query.prefix(16) {
            _ = ImageRoutes.escape(key)
            _ = ImageRoutes.escape(value)
        }
        guard let parsed = try? ImageService.ListQuery(query) else { return }
        var images = sampleImages
        ImageService.sort(&images, by: parsed.sortKeys)
        guard images.count == sampleImages.count else { fatalError("sorting changed the number of images") }
    }

    static let sampleImages: [Image] = {
        let base = Date(timeIntervalSince1970: 1_700_000_000)
        func image(_ id: String, _ name: String?, size: Int64?, minRAM: Int64, created: TimeInterval, owner: String?) -> Image {
            Image(id: id, name: name, status: size == nil ? .queued : .active, visibility: "public", protected: false, hidden: false,
                  checksum: nil, hashValue: nil, owner: owner, size: size, virtualSize: nil, minRAM: minRAM, minDisk: 0,
                  diskFormat: size == nil ? nil : "qcow2", containerFormat: "bare", createdAt: base.addingTimeInterval(created),
                  updatedAt: base.addingTimeInterval(created * 2), properties: ["os_distro": "debian"], tags: ["a"], locations: [:])
        }
        return [
            image("3f0c1a52-0000-4000-8000-000000000001", "cirros", size: 16_338_944, minRAM: 64, created: 0, owner: "p1"),
            image("3f0c1a52-0000-4000-8000-000000000002", nil, size: nil, minRAM: 0, created: 0, owner: nil),
            image("3f0c1a52-0000-4000-8000-000000000003", "cirros", size: -1, minRAM: Int64.max, created: -5, owner: "p2"),
            image("3f0c1a52-0000-4000-8000-000000000004", "", size: Int64.max, minRAM: Int64.min, created: 1e9, owner: "p1"),
        ]
    }()

    // MARK: Neutron

    /// A Neutron collection GET over a few networks: filters, tag filters, sort, paging with
    /// links, and `fields`.
    static func neutron(_ data: [UInt8]) {
        let listing = NeutronListing(collection: "networks", request: FuzzHTTP.get("/networking/v2.0/networks", query: data))
        _ = listing.fields
        _ = listing.values("fixed_ips")
        for item in sampleNetworks { _ = listing.project(item) }
        _ = try? listing.body([])
        if case .object(let body)? = try? listing.body(sampleNetworks) {
            guard let rows = body["networks"]?.arrayValue, rows.count <= sampleNetworks.count else {
                fatalError("a listing returned more rows than it was given")
            }
        }
    }

    static let sampleNetworks: [[String: JSON]] = [
        ["id": "n1", "name": "private", "admin_state_up": true, "mtu": 1450, "shared": false, "tags": ["red", "blue"],
         "description": "", "qos_policy_id": nil, "subnets": ["s1"], "ratio": .double(1.5)],
        ["id": "n2", "name": "public", "admin_state_up": false, "mtu": 1500, "shared": true, "tags": [],
         "description": "external", "qos_policy_id": "q1", "subnets": [], "ratio": .int(Int64.max)],
        ["id": "n3", "name": "private", "admin_state_up": true, "mtu": .int(Int64.min), "shared": false, "tags": ["red"],
         "description": nil, "qos_policy_id": nil, "subnets": ["s2", "s3"], "ratio": .double(-0.0)],
    ]
}
