import Compute
import Foundation
import HostAgent
import HostAPI
import HTTPTypes
import Logging
import NimbusCore
@testable import NimbusServer
import NimbusTestSupport
import Virt
import XCTest

/// The metadata API (`/metadata`, Nova's nova-api-metadata behind Neutron's proxies): Nova's
/// answers to missing headers, bad signatures, other projects' and unknown instances and
/// paths; the same documents as the server's config drive; the EC2 tree as Nova lists it.
final class MetadataAPITests: XCTestCase {
    func testWithoutASharedSecretEveryRequestIsRefused() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let (id, _) = try await Compute.activeServer(api, admin: admin)
            let shown = try await Compute.call(api, .get, "/servers/\(id)", token: admin)
            let project = try XCTUnwrap(shown.json["server"]?["tenant_id"]?.stringValue, shown.text)
            // Signed with the (empty) secret the API has: still refused, as are requests
            // that need no instance.
            for path in ["/", "/openstack/latest/meta_data.json", "/latest/meta-data/instance-id"] {
                let reply = try await Metadata.get(api, path, instance: id, project: project, secret: "")
                XCTAssertEqual(reply.status, 403, "\(path): \(reply.text)")
                XCTAssertEqual(reply.text, "403 Forbidden\n\nInvalid proxy request signature.\n\n   ")
            }
        }
    }

    func testNovasStatusCodesAndMessages() async throws {
        try await onEachEngine(settings: Metadata.settings(hosts: 1)) { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let (id, _) = try await Compute.activeServer(api, admin: admin)
            let shown = try await Compute.call(api, .get, "/servers/\(id)", token: admin)
            let project = try XCTUnwrap(shown.json["server"]?["tenant_id"]?.stringValue, shown.text)
            let path = "/openstack/latest/meta_data.json"

            let good = try await Metadata.get(api, path, instance: id, project: project)
            XCTAssertEqual(good.status, 200, good.text)
            XCTAssertEqual(good.json["uuid"]?.stringValue, id)
            XCTAssertEqual(good.headers[.contentType], "application/json")

            // The root needs no instance (Nova answers it before reading any header).
            let root = try await api.call(.get, "/metadata/")
            XCTAssertEqual(root.status, 200, root.text)
            XCTAssertEqual(root.text, "1.0\n2007-01-19\n2007-03-01\n2007-08-29\n2007-10-10\n2007-12-15\n2008-02-01\n2008-09-01\n2009-04-04\nlatest")
            XCTAssertEqual(root.headers[.contentType], "text/plain; charset=UTF-8")

            // Missing headers: 400 naming the first missing one, in Nova's order.
            let signature = MetadataSignature.sign(instanceID: id, secret: Metadata.secret)
            let missing: [([String: String], String)] = [
                ([MetadataHeaders.tenantID: project, MetadataHeaders.signature: signature], "X-Instance-ID header is missing from request."),
                ([MetadataHeaders.instanceID: id, MetadataHeaders.tenantID: project], "X-Instance-ID-Signature header is missing from request."),
                ([MetadataHeaders.instanceID: id, MetadataHeaders.signature: signature], "X-Tenant-ID header is missing from request."),
            ]
            for (headers, message) in missing {
                let reply = try await api.call(.get, "/metadata" + path, headers: headers)
                XCTAssertEqual(reply.status, 400, reply.text)
                XCTAssertEqual(reply.text, "400 Bad Request\n\n\(message)\n\n   ")
            }
            // A header given twice (only a proxy calling in process can be caught doing so here).
            for (header, message) in [(MetadataHeaders.instanceID, "Multiple X-Instance-ID headers found within request."),
                                      (MetadataHeaders.tenantID, "Multiple X-Tenant-ID headers found within request.")] {
                var headers = [MetadataHeaders.instanceID: [id], MetadataHeaders.tenantID: [project], MetadataHeaders.signature: [signature]]
                headers[header]?.append(Identifiers.uuid())
                let reply = await plane.compute.metadata.respond(to: MetadataRequest(method: "GET", path: path, headers: headers))
                XCTAssertEqual(reply.status, 400, reply.text)
                XCTAssertEqual(reply.text, "400 Bad Request\n\n\(message)\n\n   ")
            }
            // webob's negotiation: JSON when asked for.
            let asJSON = try await api.call(.get, "/metadata" + path, headers: [MetadataHeaders.instanceID: id, MetadataHeaders.tenantID: project,
                                                                               "Accept": "application/json"])
            XCTAssertEqual(asJSON.status, 400)
            XCTAssertEqual(asJSON.json["code"]?.stringValue, "400 Bad Request", asJSON.text)

            // A signature made with another secret, or of another instance, or none at all.
            for forged in [MetadataSignature.sign(instanceID: id, secret: "guess"), MetadataSignature.sign(instanceID: Identifiers.uuid(), secret: Metadata.secret),
                           String(signature.dropLast()), signature.uppercased(), ""] {
                let reply = try await Metadata.get(api, path, instance: id, project: project, signature: forged)
                XCTAssertEqual(reply.status, 403, "\(forged): \(reply.text)")
                XCTAssertEqual(reply.text, "403 Forbidden\n\nInvalid proxy request signature.\n\n   ")
            }

            // Another project's instance, an instance that does not exist, a deleted one: 404.
            let other = try await Metadata.get(api, path, instance: id, project: Identifiers.hexID())
            XCTAssertEqual(other.status, 404, other.text)
            XCTAssertEqual(other.text, "404 Not Found\n\nThe resource could not be found.\n\n   ")
            let unknown = try await Metadata.get(api, path, instance: Identifiers.uuid(), project: project)
            XCTAssertEqual(unknown.status, 404, unknown.text)

            // Paths with nothing: 404.
            for nothing in ["/openstack/2011-01-01/meta_data.json", "/openstack/latest/nothing", "/openstack/latest/user_data",
                            "/openstack/2012-08-10/password", "/openstack/2013-04-04/vendor_data2.json", "/openstack/2012-08-10/vendor_data.json",
                            "/2010-01-01/meta-data/", "/latest/user-data", "/latest/meta-data/nothing", "/latest/meta-data/hostname/more",
                            "/latest/meta-data/security-groups/default", "/latest/nothing"] {
                let reply = try await Metadata.get(api, nothing, instance: id, project: project)
                XCTAssertEqual(reply.status, 404, "\(nothing): \(reply.text)")
            }
            // HEAD answers as GET, without the body; other methods are not allowed.
            let head = try await Metadata.get(api, path, instance: id, project: project, method: .head)
            XCTAssertEqual(head.status, 200)
            XCTAssertEqual(head.bytes, [])
            XCTAssertEqual(head.headers[.contentLength], good.headers[.contentLength])
            let post = try await Metadata.get(api, path, instance: id, project: project, method: .post)
            XCTAssertEqual(post.status, 405, post.text)

            let deleted = try await Compute.call(api, .delete, "/servers/\(id)", token: admin)
            XCTAssertEqual(deleted.status, 204)
            var gone = 0
            for _ in 0..<500 where gone != 404 {
                gone = try await Metadata.get(api, path, instance: id, project: project).status
                if gone != 404 { try await Task.sleep(for: .milliseconds(20)) }
            }
            XCTAssertEqual(gone, 404, "a deleted server has no metadata")
        }
    }

    /// Every file of the config drive the server's host would write is what the API serves
    /// at that path (the random seed aside, new for every meta_data.json), and every file a
    /// version lists is on the drive.
    func testAGuestPostsItsPasswordOnceAndItsOwnerReadsAndClearsIt() async throws {
        try await onEachEngine(settings: Metadata.settings(hosts: 1)) { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let (id, _) = try await Compute.activeServer(api, admin: admin)
            let shown = try await Compute.call(api, .get, "/servers/\(id)", token: admin)
            let project = try XCTUnwrap(shown.json["server"]?["tenant_id"]?.stringValue, shown.text)
            func post(_ path: String, _ text: String) async throws -> API.Reply {
                try await api.call(.post, "/metadata" + path, raw: text, headers: [
                    MetadataHeaders.instanceID: id, MetadataHeaders.tenantID: project, MetadataHeaders.forwardedFor: "10.0.0.9",
                    MetadataHeaders.signature: MetadataSignature.sign(instanceID: id, secret: Metadata.secret)])
            }
            let before = try await Metadata.get(api, "/openstack/latest/password", instance: id, project: project)
            XCTAssertEqual(before.status, 200, before.text)
            XCTAssertEqual(before.text, "")
            // Too large (Nova keeps four 255-character chunks), then kept; a second one is refused.
            let large = try await post("/openstack/2013-04-04/password", String(repeating: "x", count: 1021))
            XCTAssertEqual(large.status, 400, large.text)
            let posted = try await post("/openstack/latest/password", "c2VjcmV0")
            XCTAssertEqual(posted.status, 200, posted.text)
            let again = try await post("/openstack/latest/password", "b3RoZXI=")
            XCTAssertEqual(again.status, 409, again.text)
            let kept = try await Metadata.get(api, "/openstack/2013-10-17/password", instance: id, project: project)
            XCTAssertEqual(kept.text, "c2VjcmV0")
            // Only the password takes a POST, and only from 2013-04-04.
            let early = try await post("/openstack/2012-08-10/password", "x")
            XCTAssertEqual(early.status, 405, early.text)
            let other = try await post("/openstack/latest/meta_data.json", "x")
            XCTAssertEqual(other.status, 405, other.text)

            // Its owner reads it through Nova's API and clears it; then the guest may post again.
            let read = try await Compute.call(api, .get, "/servers/\(id)/os-server-password", token: admin)
            XCTAssertEqual(read.json, ["password": "c2VjcmV0"], read.text)
            let outsider = try await api.projectUser(admin: admin, name: "password-outsider")
            let hidden = try await Compute.call(api, .get, "/servers/\(id)/os-server-password", token: outsider.token)
            XCTAssertEqual(hidden.status, 404, hidden.text)
            let cleared = try await Compute.call(api, .delete, "/servers/\(id)/os-server-password", token: admin)
            XCTAssertEqual(cleared.status, 204, cleared.text)
            let empty = try await Compute.call(api, .get, "/servers/\(id)/os-server-password", token: admin)
            XCTAssertEqual(empty.json, ["password": ""])
            let renewed = try await post("/openstack/latest/password", "bmV3")
            XCTAssertEqual(renewed.status, 200, renewed.text)
        }
    }

    func testDocumentsAreTheConfigDrives() async throws {
        try await onEachEngine(settings: Metadata.settings(hosts: 0)) { cloud, plane, api in
            let (driver, running) = try await Metadata.host(plane, api: api, cloud: cloud)
            defer { running.cancel() }
            let admin = try await api.adminToken(cloud)
            let server = try await Metadata.richServer(api, admin: admin)
            let spec = try XCTUnwrap(driver.spec(of: server.id), "the host was told about the server")
            XCTAssertTrue(spec.configDrive)
            let files = MetadataTree.configDriveFiles(InstanceMetadata(guest: spec))
            let paths = Set(files.map(\.path))
            XCTAssertTrue(paths.isSuperset(of: ["openstack/latest/meta_data.json", "openstack/latest/user_data", "openstack/latest/network_data.json",
                                               "openstack/latest/vendor_data.json", "openstack/latest/vendor_data2.json",
                                               "ec2/latest/meta-data.json", "ec2/latest/user-data", "ec2/2009-04-04/meta-data.json"]), "\(paths)")
            for (path, data) in files {
                if path.hasPrefix("openstack/") {
                    let reply = try await Metadata.get(api, "/" + path, server)
                    XCTAssertEqual(reply.status, 200, "\(path): \(reply.text)")
                    guard path.hasSuffix("/meta_data.json") else {
                        XCTAssertEqual(reply.bytes, data, path)
                        continue
                    }
                    var served = try XCTUnwrap(reply.json.objectValue, reply.text)
                    var drive = try XCTUnwrap(try JSON.parse(data).objectValue)
                    let seeded = !path.hasPrefix("openstack/2012-08-10/")
                    XCTAssertEqual(served.removeValue(forKey: "random_seed")?.stringValue.flatMap { Data(base64Encoded: $0) }?.count, seeded ? 512 : nil, path)
                    XCTAssertEqual(drive.removeValue(forKey: "random_seed") != nil, seeded, path)
                    XCTAssertEqual(served, drive, path)
                } else if path.hasSuffix("/meta-data.json") {
                    let version = path.split(separator: "/")[1]
                    try await Metadata.assertTree(api, server, "/\(version)/meta-data", try JSON.parse(data))
                } else {
                    let reply = try await Metadata.get(api, "/" + path.dropFirst("ec2/".count), server)
                    XCTAssertEqual(reply.bytes, data, path)
                }
            }
            for version in MetadataTree.openStackVersions + ["latest"] {
                let listing = try await Metadata.get(api, "/openstack/\(version)", server)
                for file in listing.text.split(separator: "\n") {
                    XCTAssertTrue(paths.contains("openstack/\(version)/\(file)"), "\(version) lists \(file), which is not on the drive")
                }
            }
        }
    }

    func testTheEC2TreeAsNovaListsIt() async throws {
        try await onEachEngine(settings: Metadata.settings(hosts: 1)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let server = try await Metadata.richServer(api, admin: admin)
            func text(_ path: String) async throws -> String {
                let reply = try await Metadata.get(api, path, server)
                XCTAssertEqual(reply.status, 200, "\(path): \(reply.text)")
                XCTAssertEqual(reply.headers[.contentType], "text/plain; charset=UTF-8", path)
                return reply.text
            }
            let listing = try await text("/latest/meta-data/")
            XCTAssertEqual(listing.split(separator: "\n"), ["ami-id", "ami-launch-index", "ami-manifest-path", "block-device-mapping/", "hostname",
                                                            "instance-action", "instance-id", "instance-type", "local-hostname", "local-ipv4",
                                                            "placement/", "public-hostname", "public-ipv4", "public-keys/", "reservation-id",
                                                            "security-groups"])
            let oldest = try await text("/1.0/meta-data")
            XCTAssertEqual(oldest, "ami-id\nami-launch-index\nami-manifest-path\nhostname\ninstance-id\nlocal-ipv4\npublic-keys/\nreservation-id\nsecurity-groups")
            let ec2Prefixed = try await text("/ec2/2009-04-04/meta-data/")
            XCTAssertEqual(ec2Prefixed, listing)
            let top = try await text("/latest")
            XCTAssertEqual(top, "meta-data/\nuser-data")
            let userData = try await Metadata.get(api, "/latest/user-data", server)
            XCTAssertEqual(userData.bytes, Array(Metadata.userData.utf8))

            let keys = try await text("/latest/meta-data/public-keys/")
            XCTAssertEqual(keys, "0=\(Metadata.keyName)")
            let key0 = try await text("/latest/meta-data/public-keys/0/")
            XCTAssertEqual(key0, "openssh-key")
            let openssh = try await text("/latest/meta-data/public-keys/0/openssh-key")
            XCTAssertEqual(openssh, Metadata.publicKey)
            let placement = try await text("/latest/meta-data/placement/")
            XCTAssertEqual(placement, "availability-zone")
            let zone = try await text("/latest/meta-data/placement/availability-zone")
            XCTAssertEqual(zone, "nova")
            let devices = try await text("/latest/meta-data/block-device-mapping/")
            XCTAssertEqual(devices, "ami\nephemeral0\nroot\nswap")
            for (name, device) in [("ami", "vda"), ("root", "/dev/vda"), ("ephemeral0", "/dev/vdb"), ("swap", "/dev/vdc")] {
                let value = try await text("/latest/meta-data/block-device-mapping/\(name)")
                XCTAssertEqual(value, device)
            }

            let shown = try await Compute.call(api, .get, "/servers/\(server.id)", token: admin).json["server"]
            let instanceName = try XCTUnwrap(shown?["OS-EXT-SRV-ATTR:instance_name"]?.stringValue)
            let expected: [(String, String)] = [
                ("instance-id", "i-" + instanceName.dropFirst("instance-".count)),
                ("ami-id", "ami-" + server.imageID.prefix(8)),
                ("ami-launch-index", "0"),
                ("ami-manifest-path", "FIXME"),
                ("instance-type", "m1.metadata"),
                ("hostname", try XCTUnwrap(shown?["OS-EXT-SRV-ATTR:hostname"]?.stringValue)),
                ("local-hostname", try XCTUnwrap(shown?["OS-EXT-SRV-ATTR:hostname"]?.stringValue)),
                ("reservation-id", try XCTUnwrap(shown?["OS-EXT-SRV-ATTR:reservation_id"]?.stringValue)),
                ("security-groups", "default"),
                ("local-ipv4", server.fixedIP),
                ("public-ipv4", ""),
                ("instance-action", "none"),
            ]
            for (name, value) in expected {
                let served = try await text("/latest/meta-data/\(name)")
                XCTAssertEqual(served, value, name)
            }

            // A floating IP shows as public-ipv4 once it is associated.
            let floating = try await api.call(.post, "/networking/v2.0/floatingips", token: admin,
                                              body: ["floatingip": ["floating_network_id": .string(server.externalNetwork), "port_id": .string(server.port)]])
            XCTAssertEqual(floating.status, 201, floating.text)
            let floatingIP = try XCTUnwrap(floating.json["floatingip"]?["floating_ip_address"]?.stringValue)
            let publicIP = try await text("/latest/meta-data/public-ipv4")
            XCTAssertEqual(publicIP, floatingIP)

            // The OpenStack tree's lists.
            let versions = try await text("/openstack")
            XCTAssertEqual(versions, (MetadataTree.openStackVersions + ["latest"]).joined(separator: "\n"))
            let latest = try await text("/openstack/latest")
            XCTAssertEqual(latest, "meta_data.json\nuser_data\nvendor_data.json\nnetwork_data.json\nvendor_data2.json")
            let folsom = try await text("/openstack/2012-08-10/")
            XCTAssertEqual(folsom, "meta_data.json\nuser_data")
            let meta = try await Metadata.get(api, "/openstack/latest/meta_data.json", server).json
            XCTAssertEqual(meta["uuid"]?.stringValue, server.id)
            XCTAssertEqual(meta["project_id"]?.stringValue, server.project)
            XCTAssertEqual(meta["meta"], ["role": "web"])
            XCTAssertEqual(meta["public_keys"], [Metadata.keyName: .string(Metadata.publicKey)])
            XCTAssertEqual(meta["keys"], [["name": .string(Metadata.keyName), "type": "ssh", "data": .string(Metadata.publicKey)]])
            XCTAssertEqual(meta["devices"], [])
            XCTAssertEqual(meta["dedicated_cpus"], [])
            let folsomMeta = try await Metadata.get(api, "/openstack/2012-08-10/meta_data.json", server).json
            XCTAssertNil(folsomMeta["project_id"])
            XCTAssertNil(folsomMeta["random_seed"])
            let vendor2 = try await Metadata.get(api, "/openstack/latest/vendor_data2.json", server)
            XCTAssertEqual(vendor2.json, ["static": [:]])
            XCTAssertEqual(vendor2.headers[.contentType], "application/json")
        }
    }
}

/// `nimbus up` without `[neutron] metadata_proxy_shared_secret`: one secret, made on the
/// first start, readable by its owner only, and the same on every later start.
final class MetadataSecretTests: XCTestCase {
    func testTheGeneratedSecretIsKept() throws {
        let dir = NSTemporaryDirectory() + "nimbus-secret-" + Identifiers.hexID()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (first, generated) = try DataDirectory.metadataProxySecret(dir)
        XCTAssertTrue(generated)
        XCTAssertEqual(first.count, 64)
        XCTAssertTrue(first.allSatisfy(\.isHexDigit))
        let attributes = try FileManager.default.attributesOfItem(atPath: "\(dir)/metadata-proxy-shared-secret")
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        let (again, generatedAgain) = try DataDirectory.metadataProxySecret(dir)
        XCTAssertEqual(again, first)
        XCTAssertFalse(generatedAgain)
        let other = NSTemporaryDirectory() + "nimbus-secret-" + Identifiers.hexID()
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: other) }
        XCTAssertNotEqual(try DataDirectory.metadataProxySecret(other).0, first, "each cloud its own")
    }
}

/// Shared steps of the metadata tests.
enum Metadata {
    static let secret = "metadata-test-secret"
    static let keyName = "mdkey"
    static let publicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGbdLLNv4eRqIjYgG1Uvvr0fMBE/gwUTJSEsTS+qlt3f metadata@example"
    static let userData = "#!/bin/sh\necho metadata\n"

    static func settings(hosts: Int) -> [String: [String: String]] {
        Compute.fakeHosts(hosts, extra: ["neutron": ["metadata_proxy_shared_secret": secret]])
    }

    /// A request as a metadata proxy makes it: `signature` nil signs with `secret`.
    static func get(_ api: API, _ path: String, instance: String, project: String, secret: String = Metadata.secret, signature: String? = nil,
                    method: HTTPRequest.Method = .get, address: String = "10.0.0.9") async throws -> API.Reply {
        try await api.call(method, "/metadata" + path, headers: [
            MetadataHeaders.instanceID: instance, MetadataHeaders.tenantID: project, MetadataHeaders.forwardedFor: address,
            MetadataHeaders.signature: signature ?? MetadataSignature.sign(instanceID: instance, secret: secret),
        ])
    }

    static func get(_ api: API, _ path: String, _ server: Server) async throws -> API.Reply {
        try await get(api, path, instance: server.id, project: server.project, address: server.fixedIP)
    }

    struct Server {
        var id, project, imageID, fixedIP, port, externalNetwork: String
    }

    /// A compute host running in the test with a fake driver the test can ask what it was told.
    static func host(_ plane: NimbusControlPlane, api: API, cloud: TestCloud) async throws -> (FakeDriver, Task<Void, Never>) {
        let driver = FakeDriver()
        let agent = ComputeAgent(host: "metadata-1", driver: driver, link: LocalAgentLink(conductor: plane.compute.conductor), images: NoImages(),
                                 heartbeatInterval: .seconds(1), logger: Logger(label: "metadata-1"))
        let running = Task { await agent.run() }
        let admin = try await api.adminToken(cloud)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let providers = try await api.call(.get, "/placement/resource_providers", token: admin)
            if providers.json["resource_providers"]?.arrayValue?.isEmpty == false { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        return (driver, running)
    }

    /// A server with everything metadata shows: a key pair, user data, metadata, a flavor
    /// with ephemeral and swap disks, a config drive, and a port on an auto-allocated network
    /// behind a router to an external network (where a floating IP can come from).
    static func richServer(_ api: API, admin: String) async throws -> Server {
        let external = try await api.call(.post, "/networking/v2.0/networks", token: admin,
                                          body: ["network": ["name": "public", "router:external": true, "is_default": true]])
        let externalID = try XCTUnwrap(external.json["network"]?["id"]?.stringValue, external.text)
        _ = try await api.call(.post, "/networking/v2.0/subnets", token: admin,
                               body: ["subnet": ["network_id": .string(externalID), "cidr": "172.27.0.0/24", "ip_version": 4]])
        _ = try await api.call(.post, "/networking/v2.0/subnetpools", token: admin, body: ["subnetpool": [
            "name": "default", "prefixes": ["10.200.0.0/16"], "default_prefixlen": 24, "is_default": true, "shared": true]])
        let keypair = try await Compute.call(api, .post, "/os-keypairs", token: admin,
                                             body: ["keypair": ["name": .string(keyName), "public_key": .string(publicKey)]], version: "2.10")
        XCTAssertEqual(keypair.status, 201, keypair.text)
        let (image, _) = try await Compute.bootables(api, admin: admin)
        let flavor = try await Compute.call(api, .post, "/flavors", token: admin, body: ["flavor": [
            "name": "m1.metadata", "ram": 512, "vcpus": 1, "disk": 1, "OS-FLV-EXT-DATA:ephemeral": 1, "swap": 512]])
        let flavorID = try XCTUnwrap(flavor.json["flavor"]?["id"]?.stringValue, flavor.text)
        let booted = try await Compute.boot(api, token: admin, image: image, flavor: flavorID, name: "web-1", extra: [
            "networks": "auto", "key_name": .string(keyName), "user_data": .string(Data(userData.utf8).base64EncodedString()),
            "metadata": ["role": "web"], "config_drive": true,
        ])
        let id = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)
        let server = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
        let fixedIP = try XCTUnwrap(server["addresses"]?["auto_allocated_network"]?.arrayValue?.first?["addr"]?.stringValue, server.serialized())
        let port = try await api.call(.get, "/networking/v2.0/ports?device_id=\(id)", token: admin).json["ports"]?.arrayValue?.first?["id"]?.stringValue
        return Server(id: id, project: try XCTUnwrap(server["tenant_id"]?.stringValue), imageID: image, fixedIP: fixedIP,
                      port: try XCTUnwrap(port), externalNetwork: externalID)
    }

    /// The EC2 tree under `path` is what `node` (a config drive's meta-data.json) holds:
    /// each directory lists its entries (`public-keys/` lists each key as `<index>=<name>`),
    /// each leaf is its value as Nova prints it.
    static func assertTree(_ api: API, _ server: Server, _ path: String, _ node: JSON) async throws {
        let reply = try await get(api, path, server)
        XCTAssertEqual(reply.status, 200, "\(path): \(reply.text)")
        switch node {
        case .object(let entries):
            let listed = entries.keys.sorted().map { key in
                guard entries[key]?.objectValue != nil else { return key }
                return path.hasSuffix("/public-keys") ? "\(key)=\(keyName)" : key + "/"
            }
            XCTAssertEqual(reply.text.split(separator: "\n").map(String.init), listed, path)
            for (key, child) in entries { try await assertTree(api, server, "\(path)/\(key)", child) }
        case .array(let items):
            XCTAssertEqual(reply.text, items.map(printed).joined(separator: "\n"), path)
        default:
            XCTAssertEqual(reply.text, printed(node), path)
        }
    }

    /// A leaf as Python's `str` prints it.
    static func printed(_ value: JSON) -> String {
        switch value {
        case .string(let text): text
        case .int(let number): String(number)
        case .null: "None"
        default: value.serialized()
        }
    }
}
