import Compute
import Foundation
import HostAPI
import NimbusCore
import NimbusTestSupport
import Virt
import XCTest

/// The calls clients make beside the main server API: crash dumps, steering a live migration,
/// topology, addresses by network, generated and x509 keypairs, image precache, and the
/// proxies to Neutron below 2.36 — each with Nova's microversion gates and errors.
final class ComputeCompatTests: XCTestCase {
    func testTriggerCrashDumpReachesTheGuestOnlyWhenItCanTakeOne() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(0)) { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let driver = FakeDriver()
            let hosts = try await AgentMessagingTests.runHosts(["dump-1": driver], plane, api, admin: admin)
            defer { hosts.cancel() }
            let member = try await api.projectUser(admin: admin, name: "dumper")
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let booted = try await Compute.boot(api, token: member.token, image: image, flavor: flavor)
            let id = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)
            try await Compute.waitFor(api, id, token: member.token, status: "ACTIVE")

            let early = try await Compute.action(api, id, token: member.token, ["trigger_crash_dump": .null], version: "2.16")
            XCTAssertEqual(early.status, 404, "an action added in 2.17: \(early.text)")
            let malformed = try await Compute.action(api, id, token: member.token, ["trigger_crash_dump": [:]], version: "2.17")
            XCTAssertEqual(malformed.status, 400, malformed.text)
            let dumped = try await Compute.action(api, id, token: member.token, ["trigger_crash_dump": .null], version: "2.17")
            XCTAssertEqual(dumped.status, 202, dumped.text)
            let delivered = try await AgentMessagingTests.eventually { try await driver.consoleOutput(id, lines: nil).contains("NMI received") }
            XCTAssertTrue(delivered, "the guest got no NMI")
            let actions = try await Compute.call(api, .get, "/servers/\(id)/os-instance-actions", token: member.token).json["instanceActions"]?.arrayValue ?? []
            XCTAssertTrue(actions.contains { $0["action"]?.stringValue == "trigger_crash_dump" }, "\(actions)")

            // Locked by an admin, or stopped: Nova's 409s.
            _ = try await Compute.action(api, id, token: admin, ["lock": .null])
            let locked = try await Compute.action(api, id, token: member.token, ["trigger_crash_dump": .null])
            XCTAssertEqual(locked.status, 409, locked.text)
            _ = try await Compute.action(api, id, token: admin, ["unlock": .null])
            _ = try await Compute.action(api, id, token: member.token, ["os-stop": .null])
            try await Compute.waitFor(api, id, token: member.token, status: "SHUTOFF")
            let stopped = try await Compute.action(api, id, token: member.token, ["trigger_crash_dump": .null])
            XCTAssertEqual(stopped.status, 409, stopped.text)
            XCTAssertTrue(stopped.text.contains("vm_state stopped"), stopped.text)
        }
    }

    /// A slow live migration is forced to complete (the guest pauses at the source and runs
    /// at the destination) and another is aborted (the server stays ACTIVE where it was, the
    /// migration `cancelled`).
    func testALiveMigrationUnderWayIsForcedToCompleteOrAborted() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(0)) { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let drivers = ["lm-1": FakeDriver(), "lm-2": FakeDriver()]
            for driver in drivers.values { driver.slowDown("migrate", by: .seconds(120)) }
            let hosts = try await AgentMessagingTests.runHosts(drivers, plane, api, admin: admin)
            defer { hosts.cancel() }
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let booted = try await Compute.boot(api, token: admin, image: image, flavor: flavor, extra: ["availability_zone": "nova:lm-1"])
            let id = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)
            try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")

            // Force complete.
            let started = ContinuousClock.now
            let migration = try await Self.startLiveMigration(api, id, to: "lm-2", source: drivers["lm-1"]!, admin: admin)
            let path = "/servers/\(id)/migrations/\(migration)/action"
            let early = try await Compute.call(api, .post, path, token: admin, body: ["force_complete": .null], version: "2.21")
            XCTAssertEqual(early.status, 404, early.text)
            let wrongBody = try await Compute.call(api, .post, path, token: admin, body: ["force_complete": [:]], version: "2.22")
            XCTAssertEqual(wrongBody.status, 400, wrongBody.text)
            let unknown = try await Compute.call(api, .post, "/servers/\(id)/migrations/999999/action", token: admin,
                                                 body: ["force_complete": .null], version: "2.22")
            XCTAssertEqual(unknown.status, 400, "Nova answers an unknown migration with 400 here: \(unknown.text)")
            let member = try await api.projectUser(admin: admin, name: "bystander")
            let foreign = try await Compute.call(api, .post, path, token: member.token, body: ["force_complete": .null], version: "2.22")
            XCTAssertEqual(foreign.status, 404, foreign.text)
            let forced = try await Compute.call(api, .post, path, token: admin, body: ["force_complete": .null], version: "2.22")
            XCTAssertEqual(forced.status, 202, forced.text)
            let arrived = try await AgentMessagingTests.eventually(30) {
                let server = try await Compute.call(api, .get, "/servers/\(id)", token: admin).json["server"]
                return server?["OS-EXT-SRV-ATTR:host"]?.stringValue == "lm-2" && server?["OS-EXT-STS:task_state"] == .null
            }
            XCTAssertTrue(arrived, "the forced migration did not finish")
            XCTAssertLessThan(ContinuousClock.now - started, .seconds(60), "the migration was not forced")
            let arrivedState = try await drivers["lm-2"]!.powerState(of: id)
            XCTAssertEqual(arrivedState, .running, "the guest runs again at the destination")
            let finished = try await Compute.call(api, .get, "/os-migrations?instance_uuid=\(id)", token: admin).json["migrations"]?.arrayValue ?? []
            XCTAssertEqual(finished.first?["status"]?.stringValue, "completed", "\(finished)")
            let over = try await Compute.call(api, .post, path, token: admin, body: ["force_complete": .null], version: "2.22")
            XCTAssertEqual(over.status, 409, "no migration under way: \(over.text)")

            // Abort.
            let back = try await Self.startLiveMigration(api, id, to: "lm-1", source: drivers["lm-2"]!, admin: admin)
            let abortPath = "/servers/\(id)/migrations/\(back)"
            let tooEarly = try await Compute.call(api, .delete, abortPath, token: admin, version: "2.23")
            XCTAssertEqual(tooEarly.status, 404, tooEarly.text)
            let missing = try await Compute.call(api, .delete, "/servers/\(id)/migrations/999999", token: admin, version: "2.24")
            XCTAssertEqual(missing.status, 404, missing.text)
            let aborted = try await Compute.call(api, .delete, abortPath, token: admin, version: "2.24")
            XCTAssertEqual(aborted.status, 202, aborted.text)
            let cancelled = try await AgentMessagingTests.eventually(30) {
                let migrations = try await Compute.call(api, .get, "/os-migrations?instance_uuid=\(id)", token: admin).json["migrations"]?.arrayValue ?? []
                return migrations.first { $0["id"]?.intValue.map(String.init) == back }?["status"]?.stringValue == "cancelled"
            }
            XCTAssertTrue(cancelled, "the migration did not end cancelled")
            let server = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
            XCTAssertEqual(server["OS-EXT-SRV-ATTR:host"]?.stringValue, "lm-2")
            let stayed = try await drivers["lm-2"]!.powerState(of: id)
            XCTAssertEqual(stayed, .running)
            let leftover = try await AgentMessagingTests.eventually { try await drivers["lm-1"]!.listGuests().isEmpty }
            XCTAssertTrue(leftover, "the destination let go of the guest")
            let actions = try await Compute.call(api, .get, "/servers/\(id)/os-instance-actions", token: admin).json["instanceActions"]?.arrayValue ?? []
            for name in ["live_migration_force_complete", "live_migration_cancel"] {
                XCTAssertTrue(actions.contains { $0["action"]?.stringValue == name }, "\(name) missing: \(actions)")
            }
            let again = try await Compute.call(api, .delete, abortPath, token: admin, version: "2.24")
            XCTAssertEqual(again.status, 409, "not migrating any more: \(again.text)")
        }
    }

    /// Starts a live migration to `host` and waits until the source sends; the migration's id.
    static func startLiveMigration(_ api: API, _ id: String, to host: String, source: FakeDriver, admin: String) async throws -> String {
        let migrate = try await Compute.action(api, id, token: admin, ["os-migrateLive": ["host": .string(host), "block_migration": "auto"]])
        XCTAssertEqual(migrate.status, 202, migrate.text)
        let sending = try await AgentMessagingTests.eventually { source.underWay("migrate") == 1 }
        XCTAssertTrue(sending, "the source never started sending")
        let listed = try await Compute.call(api, .get, "/servers/\(id)/migrations", token: admin, version: "2.24")
        let migration = try XCTUnwrap(listed.json["migrations"]?.arrayValue?.first, listed.text)
        XCTAssertEqual(migration["status"]?.stringValue, "running")
        return try XCTUnwrap(migration["id"]?.intValue.map(String.init))
    }

    func testTopologyAndAddressesByNetwork() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let member = try await api.projectUser(admin: admin, name: "topo")
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let network = try await api.call(.post, "/networking/v2.0/networks", token: admin, body: ["network": ["name": "lab net", "shared": true]])
            let networkID = try XCTUnwrap(network.json["network"]?["id"]?.stringValue, network.text)
            let subnet = try await api.call(.post, "/networking/v2.0/subnets", token: admin,
                                            body: ["subnet": ["network_id": .string(networkID), "cidr": "10.44.0.0/24", "ip_version": 4]])
            XCTAssertEqual(subnet.status, 201, subnet.text)
            let booted = try await Compute.boot(api, token: member.token, image: image, flavor: flavor,
                                                extra: ["networks": [["uuid": .string(networkID), "fixed_ip": "10.44.0.9"]]])
            let id = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)
            try await Compute.waitFor(api, id, token: member.token, status: "ACTIVE")

            let old = try await Compute.call(api, .get, "/servers/\(id)/topology", token: member.token, version: "2.77")
            XCTAssertEqual(old.status, 404, old.text)
            for token in [member.token, admin] {
                let topology = try await Compute.call(api, .get, "/servers/\(id)/topology", token: token, version: "2.78")
                XCTAssertEqual(topology.status, 200, topology.text)
                XCTAssertEqual(topology.json, ["nodes": [], "pagesize_kb": .null])
            }
            let stranger = try await api.projectUser(admin: admin, name: "stranger")
            let hidden = try await Compute.call(api, .get, "/servers/\(id)/topology", token: stranger.token, version: "2.78")
            XCTAssertEqual(hidden.status, 404, hidden.text)

            let all = try await Compute.call(api, .get, "/servers/\(id)/ips", token: member.token)
            XCTAssertEqual(all.json, ["addresses": ["lab net": [["version": 4, "addr": "10.44.0.9"]]]], all.text)
            let one = try await Compute.call(api, .get, "/servers/\(id)/ips/lab%20net", token: member.token)
            XCTAssertEqual(one.status, 200, one.text)
            XCTAssertEqual(one.json, ["lab net": [["version": 4, "addr": "10.44.0.9"]]])
            let other = try await Compute.call(api, .get, "/servers/\(id)/ips/private", token: member.token)
            XCTAssertEqual(other.status, 404, other.text)
            XCTAssertEqual(other.json["itemNotFound"]?["message"]?.stringValue, "Instance is not a member of specified network")
        }
    }

    /// Keypairs Nova generates (no `public_key`, before 2.92): RSA, an `ssh-rsa` line or a
    /// self-signed x509 certificate that OpenSSL reads, with Nova's fingerprints.
    func testGeneratedAndX509Keypairs() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let user = try await api.projectUser(admin: admin, name: "keyholder")
            let ssh = try await Compute.call(api, .post, "/os-keypairs", token: user.token, body: ["keypair": ["name": "made"]], version: "2.1")
            XCTAssertEqual(ssh.status, 200, ssh.text)
            let made = try XCTUnwrap(ssh.json["keypair"])
            XCTAssertTrue(made["public_key"]?.stringValue?.hasPrefix("ssh-rsa ") == true, ssh.text)
            let privateKey = try XCTUnwrap(made["private_key"]?.stringValue)
            let derived = try Self.openssl(["pkey", "-pubout"], input: privateKey)
            XCTAssertTrue(derived.contains("BEGIN PUBLIC KEY"), derived)
            XCTAssertEqual(made["fingerprint"]?.stringValue?.split(separator: ":").count, 16, "an MD5 fingerprint")
            let shown = try await Compute.call(api, .get, "/os-keypairs/made", token: user.token, version: "2.1")
            XCTAssertNil(shown.json["keypair"]?["private_key"], "the private key is never stored")

            let x509 = try await Compute.call(api, .post, "/os-keypairs", token: user.token, body: ["keypair": ["name": "cert", "type": "x509"]], version: "2.2")
            XCTAssertEqual(x509.status, 201, x509.text)
            let cert = try XCTUnwrap(x509.json["keypair"])
            XCTAssertEqual(cert["type"]?.stringValue, "x509")
            let pem = try XCTUnwrap(cert["public_key"]?.stringValue)
            let read = try Self.openssl(["x509", "-noout", "-subject", "-fingerprint", "-sha1", "-ext", "extendedKeyUsage,subjectAltName"], input: pem)
            XCTAssertTrue(read.contains("CN = \(user.user)") || read.contains("CN=\(user.user)"), read)
            XCTAssertTrue(read.contains("TLS Web Client Authentication"), read)
            let opensslFingerprint = read.split(separator: "\n").first { $0.contains("Fingerprint=") }?.split(separator: "=").last.map(String.init)
            XCTAssertEqual(cert["fingerprint"]?.stringValue, opensslFingerprint?.lowercased(), read)
            let certModulus = try Self.openssl(["x509", "-noout", "-modulus"], input: pem)
            let keyModulus = try Self.openssl(["rsa", "-noout", "-modulus"], input: try XCTUnwrap(cert["private_key"]?.stringValue))
            XCTAssertEqual(certModulus, keyModulus, "the certificate is of the returned key")
            // Its signature is its own key's.
            let file = NSTemporaryDirectory() + "nimbus-x509-\(Identifiers.hexID()).pem"
            try pem.write(toFile: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: file) }
            let verified = try Self.openssl(["verify", "-check_ss_sig", "-partial_chain", "-CAfile", file, file], input: "")
            XCTAssertTrue(verified.contains("OK"), verified)

            // The same certificate imported: the same fingerprint.
            let imported = try await Compute.call(api, .post, "/os-keypairs", token: user.token,
                                                  body: ["keypair": ["name": "cert-again", "type": "x509", "public_key": .string(pem)]], version: "2.2")
            XCTAssertEqual(imported.status, 201, imported.text)
            XCTAssertEqual(imported.json["keypair"]?["fingerprint"], cert["fingerprint"])
            XCTAssertNil(imported.json["keypair"]?["private_key"])
            let listed = try await Compute.call(api, .get, "/os-keypairs", token: user.token, version: "2.2").json["keypairs"]?.arrayValue ?? []
            XCTAssertEqual(listed.first { $0["keypair"]?["name"] == "cert" }?["keypair"]?["type"], "x509")

            let late = try await Compute.call(api, .post, "/os-keypairs", token: user.token, body: ["keypair": ["name": "late"]], version: "2.92")
            XCTAssertEqual(late.status, 400, "Nova generates no keys from 2.92: \(late.text)")
            let badType = try await Compute.call(api, .post, "/os-keypairs", token: user.token, body: ["keypair": ["name": "b", "type": "pgp"]], version: "2.2")
            XCTAssertEqual(badType.status, 400, badType.text)
        }
    }

    /// Runs `openssl` with `input` on its standard input; its output (it must succeed).
    static func openssl(_ arguments: [String], input: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stdout
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let output = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "openssl \(arguments): \(output)")
        return output
    }

    /// `os-networks`, `os-tenant-networks`, `os-floating-ip-pools`, `os-security-groups` and
    /// `os-security-group-rules`: Neutron's resources in nova-network's shapes, 404 from 2.36.
    func testTheNetworkProxiesBelow236() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let member = try await api.projectUser(admin: admin, name: "proxied")
            let own = try await api.call(.post, "/networking/v2.0/networks", token: member.token, body: ["network": ["name": "mine"]])
            let ownID = try XCTUnwrap(own.json["network"]?["id"]?.stringValue, own.text)
            let external = try await api.call(.post, "/networking/v2.0/networks", token: admin,
                                              body: ["network": ["name": "ext", "router:external": true, "shared": true]])
            XCTAssertEqual(external.status, 201, external.text)
            let hidden = try await api.call(.post, "/networking/v2.0/networks", token: admin, body: ["network": ["name": "admins-only"]])
            let hiddenID = try XCTUnwrap(hidden.json["network"]?["id"]?.stringValue)

            let v = "2.35"
            let networks = try await Compute.call(api, .get, "/os-networks", token: member.token, version: v)
            XCTAssertEqual(networks.status, 200, networks.text)
            let labels = Set(networks.json["networks"]?.arrayValue?.compactMap { $0["label"]?.stringValue } ?? [])
            XCTAssertEqual(labels, ["mine", "ext"])
            let shown = try await Compute.call(api, .get, "/os-networks/\(ownID)", token: member.token, version: v).json["network"]
            XCTAssertEqual(shown?["id"]?.stringValue, ownID)
            XCTAssertEqual(shown?["cidr"], .null)
            XCTAssertNil(shown?["bridge"], "admin-only fields")
            let adminShown = try await Compute.call(api, .get, "/os-networks/\(ownID)", token: admin, version: v).json["network"]
            XCTAssertEqual(adminShown?["bridge"], .null)
            XCTAssertNotNil(adminShown?.objectValue?["bridge"])
            let notVisible = try await Compute.call(api, .get, "/os-networks/\(hiddenID)", token: member.token, version: v)
            XCTAssertEqual(notVisible.status, 404, notVisible.text)
            XCTAssertEqual(notVisible.json["itemNotFound"]?["message"]?.stringValue, "Network not found")
            let tenant = try await Compute.call(api, .get, "/os-tenant-networks/\(ownID)", token: member.token, version: v)
            XCTAssertEqual(tenant.json, ["network": ["id": .string(ownID), "cidr": "None", "label": "mine"]], tenant.text)
            let tenantList = try await Compute.call(api, .get, "/os-tenant-networks", token: member.token, version: v)
            XCTAssertEqual(tenantList.json["networks"]?.arrayValue?.count, 2, tenantList.text)
            let pools = try await Compute.call(api, .get, "/os-floating-ip-pools", token: member.token, version: v)
            XCTAssertEqual(pools.json, ["floating_ip_pools": [["name": "ext"]]], pools.text)

            // Security groups.
            let created = try await Compute.call(api, .post, "/os-security-groups", token: member.token,
                                                 body: ["security_group": ["name": "web", "description": "web servers"]], version: v)
            XCTAssertEqual(created.status, 200, created.text)
            let group = try XCTUnwrap(created.json["security_group"])
            let groupID = try XCTUnwrap(group["id"]?.stringValue)
            XCTAssertEqual(group["tenant_id"]?.stringValue, member.project)
            XCTAssertEqual(group["rules"], [], "Neutron's default egress rules are not shown")
            let noDescription = try await Compute.call(api, .post, "/os-security-groups", token: member.token,
                                                       body: ["security_group": ["name": "x"]], version: v)
            XCTAssertEqual(noDescription.status, 400, noDescription.text)
            let listed = try await Compute.call(api, .get, "/os-security-groups", token: member.token, version: v)
            XCTAssertEqual(listed.json["security_groups"]?.arrayValue?.compactMap { $0["name"]?.stringValue }, ["default", "web"], listed.text)
            let limited = try await Compute.call(api, .get, "/os-security-groups?limit=1", token: member.token, version: v)
            XCTAssertEqual(limited.json["security_groups"]?.arrayValue?.count, 1)
            let renamed = try await Compute.call(api, .put, "/os-security-groups/\(groupID)", token: member.token,
                                                 body: ["security_group": ["name": "www", "description": "renamed"]], version: v)
            XCTAssertEqual(renamed.json["security_group"]?["name"]?.stringValue, "www", renamed.text)
            let badID = try await Compute.call(api, .get, "/os-security-groups/not-a-uuid", token: member.token, version: v)
            XCTAssertEqual(badID.status, 400, badID.text)
            XCTAssertEqual(badID.json["badRequest"]?["message"]?.stringValue, "Security group id should be uuid")

            let rule = try await Compute.call(api, .post, "/os-security-group-rules", token: member.token, body: ["security_group_rule": [
                "parent_group_id": .string(groupID), "ip_protocol": "tcp", "from_port": 22, "to_port": "22", "cidr": "10.0.0.0/8"]], version: v)
            XCTAssertEqual(rule.status, 200, rule.text)
            XCTAssertEqual(rule.json["security_group_rule"]?["ip_range"], ["cidr": "10.0.0.0/8"])
            XCTAssertEqual(rule.json["security_group_rule"]?["from_port"], 22)
            XCTAssertEqual(rule.json["security_group_rule"]?["parent_group_id"]?.stringValue, groupID)
            let ruleID = try XCTUnwrap(rule.json["security_group_rule"]?["id"]?.stringValue)
            let neutronRule = try await api.call(.get, "/networking/v2.0/security-group-rules/\(ruleID)", token: member.token).json["security_group_rule"]
            XCTAssertEqual(neutronRule?["direction"], "ingress")
            XCTAssertEqual(neutronRule?["port_range_max"], 22)
            let duplicate = try await Compute.call(api, .post, "/os-security-group-rules", token: member.token, body: ["security_group_rule": [
                "parent_group_id": .string(groupID), "ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.0.0.0/8"]], version: v)
            XCTAssertEqual(duplicate.status, 400, duplicate.text)
            for (bad, why) in [(["ip_protocol": "gre", "from_port": 1, "to_port": 2] as [String: JSON], "protocol"),
                               (["ip_protocol": "tcp", "from_port": 30, "to_port": 20], "range"),
                               (["ip_protocol": "tcp", "from_port": "a", "to_port": 20], "integers"),
                               (["ip_protocol": "tcp"], "not enough"),
                               (["ip_protocol": "tcp", "from_port": 1, "to_port": 2, "cidr": "10.0.0.0/33"], "cidr")] {
                var body = bad
                body["parent_group_id"] = .string(groupID)
                let refused = try await Compute.call(api, .post, "/os-security-group-rules", token: member.token,
                                                     body: ["security_group_rule": .object(body)], version: v)
                XCTAssertEqual(refused.status, 400, "\(why): \(refused.text)")
            }
            let fromGroup = try await Compute.call(api, .post, "/os-security-group-rules", token: member.token, body: ["security_group_rule": [
                "parent_group_id": .string(groupID), "group_id": .string(groupID), "ip_protocol": "icmp"]], version: v)
            XCTAssertEqual(fromGroup.status, 200, fromGroup.text)
            XCTAssertEqual(fromGroup.json["security_group_rule"]?["group"], ["name": "www", "tenant_id": .string(member.project)])
            XCTAssertEqual(fromGroup.json["security_group_rule"]?["from_port"], -1)
            let unknownParent = try await Compute.call(api, .post, "/os-security-group-rules", token: member.token, body: ["security_group_rule": [
                "parent_group_id": .string(Identifiers.uuid()), "ip_protocol": "tcp", "from_port": 1, "to_port": 2]], version: v)
            XCTAssertEqual(unknownParent.status, 404, unknownParent.text)
            let withRules = try await Compute.call(api, .get, "/os-security-groups/\(groupID)", token: member.token, version: v)
            XCTAssertEqual(withRules.json["security_group"]?["rules"]?.arrayValue?.count, 2, withRules.text)
            let listedGroups = try await Compute.call(api, .get, "/os-security-groups", token: member.token, version: v)
            let listedGroup = listedGroups.json["security_groups"]?.arrayValue?.first { $0["id"]?.stringValue == groupID }
            XCTAssertEqual(listedGroup?["rules"]?.arrayValue?.compactMap { $0["group"] }.filter { $0 != [:] }, [["name": "www", "tenant_id": .string(member.project)]],
                           "a listed rule names its remote group: \(listedGroups.text)")

            let deletedRule = try await Compute.call(api, .delete, "/os-security-group-rules/\(ruleID)", token: member.token, version: v)
            XCTAssertEqual(deletedRule.status, 202, deletedRule.text)
            let goneRule = try await Compute.call(api, .delete, "/os-security-group-rules/\(ruleID)", token: member.token, version: v)
            XCTAssertEqual(goneRule.status, 404, goneRule.text)
            let deleted = try await Compute.call(api, .delete, "/os-security-groups/\(groupID)", token: member.token, version: v)
            XCTAssertEqual(deleted.status, 202, deleted.text)
            let gone = try await Compute.call(api, .get, "/os-security-groups/\(groupID)", token: member.token, version: v)
            XCTAssertEqual(gone.status, 404, gone.text)

            for path in ["/os-networks", "/os-tenant-networks", "/os-floating-ip-pools", "/os-security-groups"] {
                let removed = try await Compute.call(api, .get, path, token: member.token, version: "2.36")
                XCTAssertEqual(removed.status, 404, "\(path) at 2.36: \(removed.text)")
            }
        }
    }

    /// `POST /os-aggregates/{id}/images` (2.81+): admins only, images checked before any host
    /// is asked; the hosts' agents answer (a fake host: `unsupported`).
    func testImagePrecacheOnAnAggregate() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let (image, _) = try await Compute.bootables(api, admin: admin)
            let created = try await Compute.call(api, .post, "/os-aggregates", token: admin, body: ["aggregate": ["name": "cachers"]])
            let aggregate = try XCTUnwrap(created.json["aggregate"]?["id"]?.intValue, created.text)
            let hosts = try await Compute.call(api, .get, "/os-hypervisors", token: admin).json["hypervisors"]?.arrayValue ?? []
            let host = try XCTUnwrap(hosts.first?["hypervisor_hostname"]?.stringValue)
            let added = try await Compute.call(api, .post, "/os-aggregates/\(aggregate)/action", token: admin, body: ["add_host": ["host": .string(host)]])
            XCTAssertEqual(added.status, 200, added.text)
            let path = "/os-aggregates/\(aggregate)/images"
            let body: JSON = ["cache": [["id": .string(image)]]]
            let early = try await Compute.call(api, .post, path, token: admin, body: body, version: "2.80")
            XCTAssertEqual(early.status, 404, early.text)
            let member = try await api.projectUser(admin: admin, name: "cacher")
            let refused = try await Compute.call(api, .post, path, token: member.token, body: body, version: "2.81")
            XCTAssertEqual(refused.status, 403, refused.text)
            let cached = try await Compute.call(api, .post, path, token: admin, body: body, version: "2.81")
            XCTAssertEqual(cached.status, 202, cached.text)
            XCTAssertEqual(cached.text, "")
            for (bad, status) in [(["cache": [["id": .string(image)], ["id": .string(image)]]] as JSON, 400), (["cache": []], 400),
                                  (["cache": [["id": "nope"]]], 400), (["cache": [["id": .string(Identifiers.uuid())]]], 400), ([:], 400)] {
                let reply = try await Compute.call(api, .post, path, token: admin, body: bad, version: "2.81")
                XCTAssertEqual(reply.status, status, "\(bad.serialized()): \(reply.text)")
            }
            let unknown = try await Compute.call(api, .post, "/os-aggregates/424242/images", token: admin, body: body, version: "2.81")
            XCTAssertEqual(unknown.status, 404, unknown.text)
        }
    }
}
