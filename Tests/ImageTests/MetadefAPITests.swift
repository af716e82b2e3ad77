import NimbusCore
import NimbusTestSupport
import XCTest

/// Glance's metadata definitions API through the real router.
final class MetadefAPITests: XCTestCase {
    static let base = "/image/v2/metadefs"

    static func namespaceNames(_ reply: API.Reply) -> [String] {
        reply.json["namespaces"]?.arrayValue?.compactMap { $0["namespace"]?.stringValue } ?? []
    }

    static func check(_ reply: API.Reply, _ status: Int, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(reply.status, status, reply.text, file: file, line: line)
    }

    func testStandardNamespacesAreLoadedOnceWithTheirAssociations() async throws {
        try await onEachEngine { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let list = try await api.call(.get, "\(Self.base)/namespaces?limit=100", token: admin)
            Self.check(list, 200)
            let names = Self.namespaceNames(list)
            for expected in ["OS::Compute::Quota", "OS::Compute::Libvirt", "OS::Compute::Hypervisor", "OS::Compute::Watchdog",
                             "OS::Compute::RandomNumberGenerator", "OS::Compute::InstanceData", "OS::Compute::VirtCPUTopology",
                             "OS::Compute::GuestShutdownBehavior", "OS::Compute::LibvirtImage"] {
                XCTAssertTrue(names.contains(expected), "\(expected) missing from \(names)")
            }
            let libvirt = list.json["namespaces"]?.arrayValue?.first { $0["namespace"]?.stringValue == "OS::Compute::Libvirt" }
            XCTAssertEqual(libvirt?["protected"]?.boolValue, true)
            XCTAssertEqual(libvirt?["visibility"]?.stringValue, "public")
            let prefixes = libvirt?["resource_type_associations"]?.arrayValue?.map { "\($0["name"]?.stringValue ?? ""):\($0["prefix"]?.stringValue ?? "")" }
            XCTAssertEqual(Set(prefixes ?? []), ["OS::Glance::Image:hw_", "OS::Nova::Flavor:hw:"])

            // Seen through a resource type, property names carry its prefix.
            let shown = try await api.call(.get, "\(Self.base)/namespaces/OS::Compute::Libvirt?resource_type=OS::Nova::Flavor", token: admin)
            XCTAssertEqual(shown.json["properties"]?["hw:serial_port_count"]?["type"]?.stringValue, "integer", shown.text)
            let encoded = try await api.call(.get, "\(Self.base)/namespaces/OS%3A%3ACompute%3A%3ALibvirt/properties/hw_boot_menu?resource_type=OS::Glance::Image",
                                             token: admin)
            XCTAssertEqual(encoded.json["name"]?.stringValue, "boot_menu", encoded.text)
            let unprefixed = try await api.call(.get, "\(Self.base)/namespaces/OS::Compute::Libvirt/properties/boot_menu?resource_type=OS::Glance::Image",
                                                token: admin)
            Self.check(unprefixed, 404)
            let quota = try await api.call(.get, "\(Self.base)/namespaces/OS::Compute::Quota/objects", token: admin)
            XCTAssertTrue(quota.json["objects"]?.arrayValue?.contains { $0["properties"]?["quota:cpu_shares"] != nil } ?? false, quota.text)

            let types = try await api.call(.get, "\(Self.base)/resource_types", token: admin)
            let typeNames = types.json["resource_types"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
            XCTAssertTrue(Set(typeNames).isSuperset(of: ["OS::Glance::Image", "OS::Cinder::Volume", "OS::Nova::Flavor", "OS::Nova::Aggregate"]))

            // A namespace the operator removed stays removed when the catalog is loaded again.
            let unprotect = try await api.call(.put, "\(Self.base)/namespaces/OS::Compute::Trust", token: admin, body: ["namespace": "OS::Compute::Trust", "protected": false])
            Self.check(unprotect, 200)
            Self.check(try await api.call(.delete, "\(Self.base)/namespaces/OS::Compute::Trust", token: admin), 204)
            try await plane.image.metadefs.loadCatalog()
            let again = try await api.call(.get, "\(Self.base)/namespaces?limit=100", token: admin)
            XCTAssertEqual(Self.namespaceNames(again).count, names.count - 1)
            XCTAssertFalse(Self.namespaceNames(again).contains("OS::Compute::Trust"))
        }
    }

    func testNamespaceLifecycleAndErrors() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let created = try await api.call(.post, "\(Self.base)/namespaces", token: admin, body: [
                "namespace": "Nimbus::Test", "display_name": "Test", "description": "For tests", "visibility": "public", "protected": true,
                "resource_type_associations": [["name": "OS::Glance::Image", "prefix": "t_"]],
                "properties": ["speed": ["title": "Speed", "type": "integer", "minimum": 1]],
                "objects": [["name": "Box", "properties": ["size": ["title": "Size", "type": "string"]], "required": ["size"]]],
                "tags": [["name": "alpha"]],
            ])
            Self.check(created, 201)
            XCTAssertEqual(created.headers[.location], "/v2/metadefs/namespaces/Nimbus::Test")
            XCTAssertEqual(created.json["self"]?.stringValue, "/v2/metadefs/namespaces/Nimbus::Test")
            XCTAssertEqual(created.json["schema"]?.stringValue, "/v2/schemas/metadefs/namespace")
            XCTAssertEqual(created.json["protected"]?.boolValue, true)

            let shown = try await api.call(.get, "\(Self.base)/namespaces/Nimbus::Test", token: admin)
            XCTAssertEqual(shown.json["properties"]?["speed"]?["minimum"]?.intValue, 1, shown.text)
            XCTAssertEqual(shown.json["objects"]?.arrayValue?.first?["required"], ["size"])
            XCTAssertEqual(shown.json["tags"]?.arrayValue?.first?["name"]?.stringValue, "alpha")
            XCTAssertEqual(shown.json["resource_type_associations"]?.arrayValue?.first?["prefix"]?.stringValue, "t_")

            Self.check(try await api.call(.post, "\(Self.base)/namespaces", token: admin, body: ["namespace": "Nimbus::Test"]), 409)
            Self.check(try await api.call(.post, "\(Self.base)/namespaces", token: admin, body: ["display_name": "no name"]), 400)
            Self.check(try await api.call(.post, "\(Self.base)/namespaces", token: admin, body: ["namespace": "x", "visibility": "shared"]), 400)
            Self.check(try await api.call(.post, "\(Self.base)/namespaces", token: admin, body: ["namespace": "x", "colour": "red"]), 400)
            Self.check(try await api.call(.post, "\(Self.base)/namespaces", token: admin, body: ["namespace": "x", "protected": "yes"]), 400)
            Self.check(try await api.call(.post, "\(Self.base)/namespaces", token: admin, body: ["namespace": "x",
                                                                                                       "properties": ["p": ["type": "colour"]]]), 400)
            Self.check(try await api.call(.post, "\(Self.base)/namespaces", token: admin, raw: "[1]"), 400)
            Self.check(try await api.call(.get, "\(Self.base)/namespaces/Nimbus::Nothing", token: admin), 404)

            let protectedDelete = try await api.call(.delete, "\(Self.base)/namespaces/Nimbus::Test", token: admin)
            Self.check(protectedDelete, 403)
            XCTAssertTrue(protectedDelete.text.contains("protected"), protectedDelete.text)
            Self.check(try await api.call(.delete, "\(Self.base)/namespaces/Nimbus::Test/tags", token: admin), 403)
            Self.check(try await api.call(.delete, "\(Self.base)/namespaces/Nimbus::Test/resource_types/OS::Glance::Image", token: admin), 403)
            Self.check(try await api.call(.put, "\(Self.base)/namespaces/Nimbus::Test", token: admin, body: ["protected": false]), 400)

            let renamed = try await api.call(.put, "\(Self.base)/namespaces/Nimbus::Test", token: admin,
                                             body: ["namespace": "Nimbus::Renamed", "visibility": "private", "protected": false])
            Self.check(renamed, 200)
            XCTAssertEqual(renamed.json["visibility"]?.stringValue, "private")
            XCTAssertEqual(renamed.json["description"]?.stringValue, "For tests")
            Self.check(try await api.call(.get, "\(Self.base)/namespaces/Nimbus::Test", token: admin), 404)
            let children = try await api.call(.get, "\(Self.base)/namespaces/Nimbus::Renamed/properties", token: admin)
            XCTAssertNotNil(children.json["properties"]?["speed"], children.text)
            Self.check(try await api.call(.put, "\(Self.base)/namespaces/Nimbus::Renamed", token: admin,
                                                 body: ["namespace": "OS::Compute::Quota"]), 409)

            Self.check(try await api.call(.delete, "\(Self.base)/namespaces/Nimbus::Renamed", token: admin), 204)
            Self.check(try await api.call(.get, "\(Self.base)/namespaces/Nimbus::Renamed", token: admin), 404)
            Self.check(try await api.call(.delete, "\(Self.base)/namespaces/Nimbus::Renamed", token: admin), 404)
            // Its children went with it: a namespace of the same name starts empty.
            Self.check(try await api.call(.post, "\(Self.base)/namespaces", token: admin, body: ["namespace": "Nimbus::Renamed"]), 201)
            let fresh = try await api.call(.get, "\(Self.base)/namespaces/Nimbus::Renamed/properties", token: admin)
            XCTAssertEqual(fresh.json["properties"], [:], fresh.text)
        }
    }

    func testVisibilityAndPolicy() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let member = try await api.projectUser(admin: admin, name: "md-member")
            let other = try await api.projectUser(admin: admin, name: "md-other")
            for (name, visibility, owner) in [("Nimbus::Public", "public", nil), ("Nimbus::Mine", "private", member.project),
                                              ("Nimbus::Theirs", "private", other.project)] as [(String, String, String?)] {
                var body: [String: JSON] = ["namespace": .string(name), "visibility": .string(visibility)]
                if let owner { body["owner"] = .string(owner) }
                Self.check(try await api.call(.post, "\(Self.base)/namespaces", token: admin, body: .object(body)), 201)
            }
            let seen = Self.namespaceNames(try await api.call(.get, "\(Self.base)/namespaces?limit=100", token: member.token))
            XCTAssertTrue(seen.contains("Nimbus::Public"))
            XCTAssertTrue(seen.contains("Nimbus::Mine"))
            XCTAssertFalse(seen.contains("Nimbus::Theirs"))
            XCTAssertTrue(seen.contains("OS::Compute::Quota"))
            Self.check(try await api.call(.get, "\(Self.base)/namespaces/Nimbus::Theirs", token: member.token), 404)
            Self.check(try await api.call(.get, "\(Self.base)/namespaces/Nimbus::Theirs/properties", token: member.token), 404)
            Self.check(try await api.call(.get, "\(Self.base)/namespaces/Nimbus::Mine", token: member.token), 200)
            let adminSees = Self.namespaceNames(try await api.call(.get, "\(Self.base)/namespaces?limit=100", token: admin))
            XCTAssertTrue(adminSees.contains("Nimbus::Theirs"))

            // Writes are the admin's by default, even in one's own namespace.
            Self.check(try await api.call(.post, "\(Self.base)/namespaces", token: member.token, body: ["namespace": "Nimbus::Nope"]), 403)
            Self.check(try await api.call(.put, "\(Self.base)/namespaces/Nimbus::Mine", token: member.token, body: ["namespace": "Nimbus::Mine", "description": "x"]), 403)
            Self.check(try await api.call(.post, "\(Self.base)/namespaces/Nimbus::Mine/properties", token: member.token,
                                                 body: ["name": "p", "title": "P", "type": "string"]), 403)
            Self.check(try await api.call(.post, "\(Self.base)/namespaces/Nimbus::Public/tags/t", token: member.token), 403)
            Self.check(try await api.call(.delete, "\(Self.base)/namespaces/Nimbus::Public", token: member.token), 403)
            Self.check(try await api.call(.post, "\(Self.base)/namespaces/Nimbus::Public/resource_types", token: member.token,
                                                 body: ["name": "OS::Nova::Flavor"]), 403)
            Self.check(try await api.call(.get, "\(Self.base)/resource_types", token: member.token), 200)
            Self.check(try await api.call(.get, "\(Self.base)/namespaces"), 401)
        }
    }

    func testPropertiesObjectsAndTags() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let ns = "\(Self.base)/namespaces/Nimbus::Parts"
            Self.check(try await api.call(.post, "\(Self.base)/namespaces", token: admin, body: ["namespace": "Nimbus::Parts"]), 201)

            // Properties
            let property = try await api.call(.post, "\(ns)/properties", token: admin, body: [
                "name": "hypervisor", "title": "Hypervisor", "type": "string", "enum": ["kvm", "qemu"], "default": "kvm", "readonly": false,
                "items": ["type": "string"],
            ])
            Self.check(property, 201)
            XCTAssertEqual(property.json["name"]?.stringValue, "hypervisor")
            XCTAssertEqual(property.json["enum"], ["kvm", "qemu"])
            Self.check(try await api.call(.post, "\(ns)/properties", token: admin, body: ["name": "hypervisor", "title": "H", "type": "string"]), 409)
            Self.check(try await api.call(.post, "\(ns)/properties", token: admin, body: ["name": "x", "title": "X"]), 400)
            Self.check(try await api.call(.post, "\(ns)/properties", token: admin, body: ["name": "x", "title": "X", "type": "colour"]), 400)
            Self.check(try await api.call(.post, "\(ns)/properties", token: admin, body: ["name": "x", "title": "X", "type": "integer",
                                                                                                 "minimum": "low"]), 400)
            Self.check(try await api.call(.post, "\(ns)/properties", token: admin, body: ["name": "x", "title": "X", "type": "string",
                                                                                                 "enum": ["a", "a"]]), 400)
            Self.check(try await api.call(.post, "\(ns)/properties", token: admin, body: ["name": "x", "title": "X", "type": "string",
                                                                                                 "colour": "red"]), 400)
            let listed = try await api.call(.get, "\(ns)/properties", token: admin)
            XCTAssertEqual(listed.json["properties"]?["hypervisor"]?["title"]?.stringValue, "Hypervisor", listed.text)
            XCTAssertNil(listed.json["properties"]?["hypervisor"]?["name"])
            let updated = try await api.call(.put, "\(ns)/properties/hypervisor", token: admin,
                                             body: ["name": "hv", "title": "HV", "type": "string", "maxLength": 10])
            Self.check(updated, 200)
            XCTAssertEqual(updated.json["name"]?.stringValue, "hv")
            XCTAssertNil(updated.json["enum"], "a replace drops fields the body leaves out")
            Self.check(try await api.call(.get, "\(ns)/properties/hypervisor", token: admin), 404)
            let hv = try await api.call(.get, "\(ns)/properties/hv", token: admin)
            XCTAssertEqual(hv.json["maxLength"]?.intValue, 10)
            Self.check(try await api.call(.put, "\(ns)/properties/missing", token: admin, body: ["title": "M", "type": "string"]), 404)
            Self.check(try await api.call(.delete, "\(ns)/properties/hv", token: admin), 204)
            Self.check(try await api.call(.delete, "\(ns)/properties/hv", token: admin), 404)

            // Objects
            let object = try await api.call(.post, "\(ns)/objects", token: admin, body: [
                "name": "Disk", "description": "Disk settings", "required": ["bus"],
                "properties": ["bus": ["title": "Bus", "type": "string", "enum": ["virtio", "scsi"]]],
            ])
            Self.check(object, 201)
            XCTAssertEqual(object.json["self"]?.stringValue, "/v2/metadefs/namespaces/Nimbus::Parts/objects/Disk")
            Self.check(try await api.call(.post, "\(ns)/objects", token: admin, body: ["name": "Disk"]), 409)
            Self.check(try await api.call(.post, "\(ns)/objects", token: admin, body: ["description": "no name"]), 400)
            Self.check(try await api.call(.post, "\(ns)/objects", token: admin, body: ["name": "Bad", "properties": ["p": ["title": "P"]]]), 400)
            Self.check(try await api.call(.post, "\(ns)/objects", token: admin, body: ["name": "Net"]), 201)
            let objects = try await api.call(.get, "\(ns)/objects?sort_key=name&sort_dir=asc", token: admin)
            XCTAssertEqual(objects.json["objects"]?.arrayValue?.compactMap { $0["name"]?.stringValue }, ["Disk", "Net"], objects.text)
            let disk = try await api.call(.get, "\(ns)/objects/Disk", token: admin)
            XCTAssertEqual(disk.json["properties"]?["bus"]?["enum"], ["virtio", "scsi"])
            let renamed = try await api.call(.put, "\(ns)/objects/Disk", token: admin, body: ["name": "Volume", "description": "Renamed"])
            Self.check(renamed, 200)
            XCTAssertEqual(renamed.json["properties"], [:])
            Self.check(try await api.call(.put, "\(ns)/objects/Volume", token: admin, body: ["name": "Net"]), 409)
            Self.check(try await api.call(.get, "\(ns)/objects/Disk", token: admin), 404)
            Self.check(try await api.call(.delete, "\(ns)/objects/Volume", token: admin), 204)
            Self.check(try await api.call(.delete, "\(ns)/objects/Volume", token: admin), 404)

            // Tags
            Self.check(try await api.call(.post, "\(ns)/tags/Blue", token: admin), 201)
            Self.check(try await api.call(.post, "\(ns)/tags/blue", token: admin), 409)
            let blue = try await api.call(.get, "\(ns)/tags/Blue", token: admin)
            XCTAssertEqual(blue.json["name"]?.stringValue, "Blue")
            let replaced = try await api.call(.post, "\(ns)/tags", token: admin, body: ["tags": [["name": "a"], ["name": "b"]]])
            Self.check(replaced, 201)
            XCTAssertEqual(replaced.json["tags"], [["name": "a"], ["name": "b"]])
            func tagNames() async throws -> [String] {
                try await api.call(.get, "\(ns)/tags?sort_key=name&sort_dir=asc", token: admin).json["tags"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
            }
            let replacedNames = try await tagNames()
            XCTAssertEqual(replacedNames, ["a", "b"], "without X-Openstack-Append the list is replaced")
            let appended = try await api.call(.post, "\(ns)/tags", token: admin, body: ["tags": [["name": "c"]]], headers: ["X-Openstack-Append": "True"])
            Self.check(appended, 201)
            let appendedNames = try await tagNames()
            XCTAssertEqual(appendedNames, ["a", "b", "c"])
            Self.check(try await api.call(.post, "\(ns)/tags", token: admin, body: ["tags": [["name": "A"]]], headers: ["X-Openstack-Append": "true"]), 409)
            Self.check(try await api.call(.post, "\(ns)/tags", token: admin, body: ["tags": [["name": "x"], ["name": "x"]]]), 409)
            let unchangedNames = try await tagNames()
            XCTAssertEqual(unchangedNames, ["a", "b", "c"], "a refused bulk create changes nothing")
            Self.check(try await api.call(.post, "\(ns)/tags", token: admin, body: ["tag": "x"]), 400)
            let page = try await api.call(.get, "\(ns)/tags?sort_key=name&sort_dir=asc&limit=2", token: admin)
            XCTAssertEqual(page.json["tags"]?.arrayValue?.count, 2)
            XCTAssertEqual(page.json["next"]?.stringValue, "/v2/metadefs/namespaces/Nimbus::Parts/tags?limit=2&marker=b&sort_dir=asc&sort_key=name")
            let tagUpdate = try await api.call(.put, "\(ns)/tags/c", token: admin, body: ["name": "d"])
            Self.check(tagUpdate, 200)
            XCTAssertEqual(tagUpdate.json["name"]?.stringValue, "d")
            Self.check(try await api.call(.put, "\(ns)/tags/d", token: admin, body: ["name": "A"]), 409)
            Self.check(try await api.call(.put, "\(ns)/tags/zz", token: admin, body: ["name": "y"]), 404)
            Self.check(try await api.call(.delete, "\(ns)/tags/d", token: admin), 204)
            Self.check(try await api.call(.delete, "\(ns)/tags/d", token: admin), 404)
            Self.check(try await api.call(.delete, "\(ns)/tags", token: admin), 204)
            let remainingNames = try await tagNames()
            XCTAssertEqual(remainingNames, [])
        }
    }

    func testResourceTypeAssociations() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let ns = "\(Self.base)/namespaces/Nimbus::Assoc"
            Self.check(try await api.call(.post, "\(Self.base)/namespaces", token: admin, body: ["namespace": "Nimbus::Assoc"]), 201)
            let created = try await api.call(.post, "\(ns)/resource_types", token: admin,
                                             body: ["name": "OS::Cinder::Volume", "prefix": "hw_", "properties_target": "image"])
            Self.check(created, 201)
            XCTAssertEqual(created.json["properties_target"]?.stringValue, "image")
            Self.check(try await api.call(.post, "\(ns)/resource_types", token: admin, body: ["name": "OS::Cinder::Volume"]), 409)
            Self.check(try await api.call(.post, "\(ns)/resource_types", token: admin, body: ["prefix": "x"]), 400)
            // An unknown resource type is created on first association, as Glance does.
            Self.check(try await api.call(.post, "\(ns)/resource_types", token: admin, body: ["name": "Nimbus::Gadget"]), 201)
            let types = try await api.call(.get, "\(Self.base)/resource_types", token: admin)
            XCTAssertTrue(types.json["resource_types"]?.arrayValue?.contains { $0["name"]?.stringValue == "Nimbus::Gadget" } ?? false)
            let listed = try await api.call(.get, "\(ns)/resource_types", token: admin)
            XCTAssertEqual(Set(listed.json["resource_type_associations"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []),
                           ["OS::Cinder::Volume", "Nimbus::Gadget"])
            let filtered = try await api.call(.get, "\(Self.base)/namespaces?resource_types=Nimbus::Gadget,Nimbus::Other", token: admin)
            XCTAssertEqual(Self.namespaceNames(filtered), ["Nimbus::Assoc"])
            Self.check(try await api.call(.delete, "\(ns)/resource_types/Nimbus::Gadget", token: admin), 204)
            Self.check(try await api.call(.delete, "\(ns)/resource_types/Nimbus::Gadget", token: admin), 404)
            let gadgets = try await api.call(.get, "\(Self.base)/namespaces?resource_types=Nimbus::Gadget", token: admin)
            XCTAssertEqual(Self.namespaceNames(gadgets), [])
        }
    }

    func testNamespaceListFiltersSortingAndPaging() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            for name in ["Nimbus::C", "Nimbus::A", "Nimbus::B"] {
                Self.check(try await api.call(.post, "\(Self.base)/namespaces", token: admin,
                                                     body: ["namespace": .string(name), "visibility": "private"]), 201)
            }
            let privateOnly = try await api.call(.get, "\(Self.base)/namespaces?visibility=private&sort_key=namespace&sort_dir=asc", token: admin)
            XCTAssertEqual(Self.namespaceNames(privateOnly), ["Nimbus::A", "Nimbus::B", "Nimbus::C"])
            XCTAssertEqual(privateOnly.json["schema"]?.stringValue, "/v2/schemas/metadefs/namespaces")
            XCTAssertNil(privateOnly.json["next"])
            let first = try await api.call(.get, "\(Self.base)/namespaces?visibility=private&sort_key=namespace&sort_dir=desc&limit=2", token: admin)
            XCTAssertEqual(Self.namespaceNames(first), ["Nimbus::C", "Nimbus::B"])
            let next = try XCTUnwrap(first.json["next"]?.stringValue)
            let second = try await api.call(.get, "/image" + next, token: admin)
            XCTAssertEqual(Self.namespaceNames(second), ["Nimbus::A"], second.text)
            let newest = try await api.call(.get, "\(Self.base)/namespaces?visibility=private&limit=1", token: admin)
            XCTAssertEqual(Self.namespaceNames(newest), ["Nimbus::B"], "newest first by default")
            let publicOnly = Self.namespaceNames(try await api.call(.get, "\(Self.base)/namespaces?visibility=public&limit=100", token: admin))
            XCTAssertFalse(publicOnly.contains("Nimbus::A"))
            XCTAssertTrue(publicOnly.contains("OS::Compute::Quota"))
            Self.check(try await api.call(.get, "\(Self.base)/namespaces?sort_key=colour", token: admin), 400)
            Self.check(try await api.call(.get, "\(Self.base)/namespaces?sort_dir=up", token: admin), 400)
            Self.check(try await api.call(.get, "\(Self.base)/namespaces?limit=-1", token: admin), 400)
            Self.check(try await api.call(.get, "\(Self.base)/namespaces?limit=many", token: admin), 400)
            Self.check(try await api.call(.get, "\(Self.base)/namespaces?marker=Nimbus::Nothing", token: admin), 400)
            Self.check(try await api.call(.get, "\(Self.base)/namespaces?visibility=shared", token: admin), 400)
        }
    }

    func testSchemas() async throws {
        try await onEachEngine { cloud, api in
            let member = try await api.projectUser(admin: try await api.adminToken(cloud), name: "md-reader", role: "reader")
            for (path, name) in [("namespace", "namespace"), ("namespaces", "namespaces"), ("resource_type", "resource_type_association"),
                                 ("resource_types", "resource_type_associations"), ("object", "object"), ("objects", "objects"),
                                 ("property", "property"), ("properties", "properties"), ("tag", "tag"), ("tags", "tags")] {
                let schema = try await api.call(.get, "/image/v2/schemas/metadefs/\(path)", token: member.token)
                XCTAssertEqual(schema.status, 200, path)
                XCTAssertEqual(schema.json["name"]?.stringValue, name, path)
                XCTAssertNotNil(schema.json["properties"]?.objectValue, path)
            }
        }
    }
}
