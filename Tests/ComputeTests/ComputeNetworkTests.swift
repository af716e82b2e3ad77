import Foundation
import HostAPI
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

/// Nova with Neutron: requested networks and ports become ports bound to the server's host.
final class ComputeNetworkTests: XCTestCase {
    func testServersGetPortsOnTheirNetworksAndGiveThemBack() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(2)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let network = try await api.call(.post, "/networking/v2.0/networks", token: admin, body: ["network": ["name": "net1"]])
            let networkID = try XCTUnwrap(network.json["network"]?["id"]?.stringValue, network.text)
            let subnet = try await api.call(.post, "/networking/v2.0/subnets", token: admin,
                                            body: ["subnet": ["network_id": .string(networkID), "cidr": "10.30.0.0/24", "ip_version": 4]])
            XCTAssertEqual(subnet.status, 201, subnet.text)

            // A network with a fixed address: the port is made, bound to the host and shown.
            let fixed = try await Compute.boot(api, token: admin, image: image, flavor: flavor,
                                               extra: ["networks": [["uuid": .string(networkID), "fixed_ip": "10.30.0.40"]]])
            XCTAssertEqual(fixed.status, 202, fixed.text)
            let fixedID = try XCTUnwrap(fixed.json["server"]?["id"]?.stringValue)
            let active = try await Compute.waitFor(api, fixedID, token: admin, status: "ACTIVE")
            XCTAssertEqual(active["addresses"]?["net1"]?.arrayValue?.first?["addr"]?.stringValue, "10.30.0.40", active.serialized())
            let ports = try await api.call(.get, "/networking/v2.0/ports?device_id=\(fixedID)", token: admin).json["ports"]?.arrayValue ?? []
            XCTAssertEqual(ports.count, 1)
            XCTAssertEqual(ports.first?["binding:host_id"]?.stringValue, active["OS-EXT-SRV-ATTR:host"]?.stringValue)
            XCTAssertEqual(ports.first?["status"]?.stringValue, "ACTIVE")

            // A cold migration takes the port along to the new host.
            let migrated = try await Compute.call(api, .post, "/servers/\(fixedID)/action", token: admin, body: ["migrate": .null])
            XCTAssertEqual(migrated.status, 202, migrated.text)
            let resized = try await Compute.waitFor(api, fixedID, token: admin, status: "VERIFY_RESIZE")
            let newHost = try XCTUnwrap(resized["OS-EXT-SRV-ATTR:host"]?.stringValue)
            XCTAssertNotEqual(newHost, active["OS-EXT-SRV-ATTR:host"]?.stringValue)
            // The binding follows right after the move is reported.
            var boundTo: String?
            let deadline = Date().addingTimeInterval(10)
            while boundTo != newHost && Date() < deadline {
                let moved = try await api.call(.get, "/networking/v2.0/ports?device_id=\(fixedID)", token: admin).json["ports"]?.arrayValue?.first
                boundTo = moved?["binding:host_id"]?.stringValue
                if boundTo != newHost { try await Task.sleep(nanoseconds: 20_000_000) }
            }
            XCTAssertEqual(boundTo, newHost)
            let confirmed = try await Compute.call(api, .post, "/servers/\(fixedID)/action", token: admin, body: ["confirmResize": .null])
            XCTAssertEqual(confirmed.status, 204, confirmed.text)
            _ = try await Compute.waitFor(api, fixedID, token: admin, status: "ACTIVE")

            // `auto` with one network in the project uses it.
            let auto = try await Compute.boot(api, token: admin, image: image, flavor: flavor, extra: ["networks": "auto"])
            let autoServer = try await Compute.waitFor(api, try XCTUnwrap(auto.json["server"]?["id"]?.stringValue), token: admin, status: "ACTIVE")
            XCTAssertNotNil(autoServer["addresses"]?["net1"], autoServer.serialized())

            // A port handed over is bound and, after the server is deleted, kept but freed.
            let port = try await api.call(.post, "/networking/v2.0/ports", token: admin, body: ["port": ["network_id": .string(networkID)]])
            let portID = try XCTUnwrap(port.json["port"]?["id"]?.stringValue, port.text)
            let onPort = try await Compute.boot(api, token: admin, image: image, flavor: flavor, extra: ["networks": [["port": .string(portID)]]])
            let onPortID = try XCTUnwrap(onPort.json["server"]?["id"]?.stringValue, onPort.text)
            _ = try await Compute.waitFor(api, onPortID, token: admin, status: "ACTIVE")
            let again = try await Compute.boot(api, token: admin, image: image, flavor: flavor, extra: ["networks": [["port": .string(portID)]]])
            XCTAssertEqual(again.status, 409, again.text)

            // Bad requests are refused before a server exists.
            let unknown = try await Compute.boot(api, token: admin, image: image, flavor: flavor, extra: ["networks": [["uuid": .string(Identifiers.uuid())]]])
            XCTAssertEqual(unknown.status, 400, unknown.text)
            let badIP = try await Compute.boot(api, token: admin, image: image, flavor: flavor,
                                               extra: ["networks": [["uuid": .string(networkID), "fixed_ip": "10.30.0.300"]]])
            XCTAssertEqual(badIP.status, 400, badIP.text)

            for id in [fixedID, onPortID] {
                let deleted = try await Compute.call(api, .delete, "/servers/\(id)", token: admin)
                XCTAssertEqual(deleted.status, 204, deleted.text)
            }
            let made = try await api.call(.get, "/networking/v2.0/ports?device_id=\(fixedID)", token: admin).json["ports"]?.arrayValue ?? []
            XCTAssertEqual(made.count, 0, "the port compute made is deleted with the server")
            let kept = try await api.call(.get, "/networking/v2.0/ports/\(portID)", token: admin).json["port"]
            XCTAssertEqual(kept?["device_id"]?.stringValue, "", kept?.serialized() ?? "")
            XCTAssertEqual(kept?["binding:host_id"]?.stringValue, "", kept?.serialized() ?? "")
        }
    }

    func testOSInterfaceShowsTheServersPortsToItsProjectOnly() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let network = try await api.call(.post, "/networking/v2.0/networks", token: admin, body: ["network": ["name": "net-if"]])
            let networkID = try XCTUnwrap(network.json["network"]?["id"]?.stringValue, network.text)
            let subnet = try await api.call(.post, "/networking/v2.0/subnets", token: admin,
                                            body: ["subnet": ["network_id": .string(networkID), "cidr": "10.31.0.0/24", "ip_version": 4]])
            let subnetID = try XCTUnwrap(subnet.json["subnet"]?["id"]?.stringValue, subnet.text)
            let booted = try await Compute.boot(api, token: admin, image: image, flavor: flavor,
                                                extra: ["networks": [["uuid": .string(networkID), "fixed_ip": "10.31.0.7"]]])
            let serverID = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)
            _ = try await Compute.waitFor(api, serverID, token: admin, status: "ACTIVE")
            let ports = try await api.call(.get, "/networking/v2.0/ports?device_id=\(serverID)", token: admin)
            let port = try XCTUnwrap(ports.json["ports"]?.arrayValue?.first, ports.text)
            let portID = try XCTUnwrap(port["id"]?.stringValue)

            let listed = try await Compute.call(api, .get, "/servers/\(serverID)/os-interface", token: admin)
            XCTAssertEqual(listed.status, 200, listed.text)
            let attachments = listed.json["interfaceAttachments"]?.arrayValue ?? []
            XCTAssertEqual(attachments.count, 1, listed.text)
            let expected: JSON = ["port_id": .string(portID), "net_id": .string(networkID), "mac_addr": port["mac_address"] ?? .null,
                                  "port_state": "ACTIVE", "fixed_ips": [["ip_address": "10.31.0.7", "subnet_id": .string(subnetID)]], "tag": .null]
            XCTAssertEqual(attachments.first, expected, listed.text)
            let shown = try await Compute.call(api, .get, "/servers/\(serverID)/os-interface/\(portID)", token: admin)
            XCTAssertEqual(shown.json["interfaceAttachment"], expected, shown.text)

            // A port that is not the server's, a server of another project: Nova's 404s.
            let other = try await Compute.call(api, .get, "/servers/\(serverID)/os-interface/\(Identifiers.uuid())", token: admin)
            XCTAssertEqual(other.status, 404, other.text)
            XCTAssertNotNil(other.json["itemNotFound"], other.text)
            let outsider = try await api.projectUser(admin: admin, name: "if-outsider")
            let hidden = try await Compute.call(api, .get, "/servers/\(serverID)/os-interface", token: outsider.token)
            XCTAssertEqual(hidden.status, 404, hidden.text)
        }
    }

    func testAutoGivesAProjectWithoutANetworkItsAutoAllocatedOne() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            // Without a default external network and subnet pool, `auto` boots without a network.
            let bare = try await Compute.boot(api, token: admin, image: image, flavor: flavor, extra: ["networks": "auto"])
            let bareServer = try await Compute.waitFor(api, try XCTUnwrap(bare.json["server"]?["id"]?.stringValue, bare.text), token: admin, status: "ACTIVE")
            XCTAssertEqual(bareServer["addresses"], [:])

            let external = try await api.call(.post, "/networking/v2.0/networks", token: admin,
                                              body: ["network": ["name": "public", "router:external": true, "is_default": true]])
            let externalID = try XCTUnwrap(external.json["network"]?["id"]?.stringValue, external.text)
            _ = try await api.call(.post, "/networking/v2.0/subnets", token: admin,
                                   body: ["subnet": ["network_id": .string(externalID), "cidr": "172.27.0.0/24", "ip_version": 4]])
            _ = try await api.call(.post, "/networking/v2.0/subnetpools", token: admin, body: ["subnetpool": [
                "name": "default", "prefixes": ["10.200.0.0/16"], "default_prefixlen": 24, "is_default": true, "shared": true]])
            let auto = try await Compute.boot(api, token: admin, image: image, flavor: flavor, extra: ["networks": "auto"])
            let server = try await Compute.waitFor(api, try XCTUnwrap(auto.json["server"]?["id"]?.stringValue, auto.text), token: admin, status: "ACTIVE")
            let address = server["addresses"]?["auto_allocated_network"]?.arrayValue?.first?["addr"]?.stringValue
            XCTAssertTrue(address?.hasPrefix("10.200.0.") == true, server.serialized())

            // A floating IP on the server's port shows in its addresses, and goes with it
            // (the auto-allocated router joins the subnet to the external network).
            let serverID = server["id"]?.stringValue ?? ""
            let port = try await api.call(.get, "/networking/v2.0/ports?device_id=\(serverID)", token: admin).json["ports"]?.arrayValue?.first?["id"]
            let floating = try await api.call(.post, "/networking/v2.0/floatingips", token: admin,
                                              body: ["floatingip": ["floating_network_id": .string(externalID), "port_id": port ?? .null]])
            XCTAssertEqual(floating.status, 201, floating.text)
            let floatingAddress = try XCTUnwrap(floating.json["floatingip"]?["floating_ip_address"]?.stringValue)
            let shown = try await Compute.call(api, .get, "/servers/\(serverID)", token: admin)
            let entries = shown.json["server"]?["addresses"]?["auto_allocated_network"]?.arrayValue ?? []
            XCTAssertEqual(entries.map { $0["OS-EXT-IPS:type"]?.stringValue }, ["fixed", "floating"], shown.text)
            XCTAssertEqual(entries.last?["addr"]?.stringValue, floatingAddress)
            let gone = try await api.call(.delete, "/networking/v2.0/floatingips/\(floating.json["floatingip"]?["id"]?.stringValue ?? "")", token: admin)
            XCTAssertEqual(gone.status, 204)
            let after = try await Compute.call(api, .get, "/servers/\(serverID)", token: admin)
            XCTAssertEqual(after.json["server"]?["addresses"]?["auto_allocated_network"]?.arrayValue?.count, 1, after.text)
        }
    }

    func testSecurityGroupsGoOnTheServersPorts() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let network = try await api.call(.post, "/networking/v2.0/networks", token: admin, body: ["network": ["name": "net1"]])
            let networkID = try XCTUnwrap(network.json["network"]?["id"]?.stringValue, network.text)
            _ = try await api.call(.post, "/networking/v2.0/subnets", token: admin,
                                   body: ["subnet": ["network_id": .string(networkID), "cidr": "10.31.0.0/24", "ip_version": 4]])
            let web = try await api.call(.post, "/networking/v2.0/security-groups", token: admin, body: ["security_group": ["name": "web"]])
            let webID = try XCTUnwrap(web.json["security_group"]?["id"]?.stringValue, web.text)

            let unknown = try await Compute.boot(api, token: admin, image: image, flavor: flavor,
                                                 extra: ["networks": [["uuid": .string(networkID)]], "security_groups": [["name": "no-such-group"]]])
            XCTAssertEqual(unknown.status, 400, unknown.text)
            let booted = try await Compute.boot(api, token: admin, image: image, flavor: flavor,
                                                extra: ["networks": [["uuid": .string(networkID)]], "security_groups": [["name": "web"]]])
            let id = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)
            let server = try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
            XCTAssertEqual(server["security_groups"], [["name": "web"]])
            func portGroups() async throws -> [String] {
                let ports = try await api.call(.get, "/networking/v2.0/ports?device_id=\(id)", token: admin).json["ports"]?.arrayValue ?? []
                return (ports.first?["security_groups"]?.arrayValue ?? []).compactMap(\.stringValue).sorted()
            }
            let onPort = try await portGroups()
            XCTAssertEqual(onPort, [webID])

            let added = try await Compute.call(api, .post, "/servers/\(id)/action", token: admin, body: ["addSecurityGroup": ["name": "default"]])
            XCTAssertEqual(added.status, 202, added.text)
            let twoGroups = try await portGroups()
            XCTAssertEqual(twoGroups.count, 2)
            let again = try await Compute.call(api, .post, "/servers/\(id)/action", token: admin, body: ["addSecurityGroup": ["name": "web"]])
            XCTAssertEqual(again.status, 400, again.text)
            let removed = try await Compute.call(api, .post, "/servers/\(id)/action", token: admin, body: ["removeSecurityGroup": ["name": "web"]])
            XCTAssertEqual(removed.status, 202, removed.text)
            let remaining = try await portGroups()
            XCTAssertFalse(remaining.contains(webID))
            let shown = try await Compute.call(api, .get, "/servers/\(id)", token: admin)
            XCTAssertEqual(shown.json["server"]?["security_groups"], [["name": "default"]], shown.text)
            let notThere = try await Compute.call(api, .post, "/servers/\(id)/action", token: admin, body: ["removeSecurityGroup": ["name": "web"]])
            XCTAssertEqual(notThere.status, 400, notThere.text)
            let missing = try await Compute.call(api, .post, "/servers/\(id)/action", token: admin, body: ["addSecurityGroup": ["name": "nope"]])
            XCTAssertEqual(missing.status, 404, missing.text)
        }
    }

    /// `GET /servers` filters as Nova applies them (which ones a project member may use at
    /// which microversion, regular expressions, addresses by substring as Neutron matches them),
    /// sort keys, and `GET /servers/{id}/os-security-groups` (Ansible's openstack.cloud.server).
    func testServerListFiltersAndAServersSecurityGroups() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let member = try await api.projectUser(admin: admin, name: "lister")
            let token = member.token
            let network = try await api.call(.post, "/networking/v2.0/networks", token: token, body: ["network": ["name": "net1"]])
            let networkID = try XCTUnwrap(network.json["network"]?["id"]?.stringValue, network.text)
            let subnet = try await api.call(.post, "/networking/v2.0/subnets", token: token,
                                            body: ["subnet": ["network_id": .string(networkID), "cidr": "10.32.0.0/24", "ip_version": 4]])
            XCTAssertEqual(subnet.status, 201, subnet.text)
            let web = try await api.call(.post, "/networking/v2.0/security-groups", token: token, body: ["security_group": ["name": "web", "description": "w"]])
            let webID = try XCTUnwrap(web.json["security_group"]?["id"]?.stringValue, web.text)
            for rule: JSON in [["protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.0.0.0/8"],
                               ["protocol": "icmp", "ethertype": "IPv6"], ["remote_group_id": .string(webID)]] {
                var body = rule.objectValue ?? [:]
                body["security_group_id"] = .string(webID)
                body["direction"] = "ingress"
                let made = try await api.call(.post, "/networking/v2.0/security-group-rules", token: token, body: ["security_group_rule": .object(body)])
                XCTAssertEqual(made.status, 201, made.text)
            }
            let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGbdLLNv4eRqIjYgG1Uvvr0fMBE/gwUTJSEsTS+qlt3f lister@example"
            let keypair = try await Compute.call(api, .post, "/os-keypairs", token: token, body: ["keypair": ["name": "k1", "public_key": .string(key)]])
            XCTAssertEqual(keypair.status, 201, keypair.text)

            var ids: [String: String] = [:]
            for (name, extra) in [("alpha", ["networks": [["uuid": .string(networkID), "fixed_ip": "10.32.0.15"]], "key_name": "k1",
                                             "security_groups": [["name": "web"]]] as [String: JSON]),
                                  ("beta", ["networks": [["uuid": .string(networkID), "fixed_ip": "10.32.0.151"]]]),
                                  ("gamma", [:])] {
                let booted = try await Compute.boot(api, token: token, image: image, flavor: flavor, name: name, extra: extra)
                ids[name] = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)
                _ = try await Compute.waitFor(api, ids[name]!, token: token, status: "ACTIVE")
            }
            func names(_ query: String, token: String = token, version: String = "2.100") async throws -> [String] {
                let reply = try await Compute.call(api, .get, "/servers?\(query)", token: token, version: version)
                XCTAssertEqual(reply.status, 200, "\(query) at \(version): \(reply.text)")
                return reply.json["servers"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
            }
            var value = try await names("sort_key=display_name&sort_dir=asc")
            XCTAssertEqual(value, ["alpha", "beta", "gamma"])
            value = try await names("sort_key=display_name&sort_dir=desc")
            XCTAssertEqual(value, ["gamma", "beta", "alpha"])
            // Fixed addresses containing the text, as Nova asks Neutron (ip_address_substr).
            value = try await names("ip=10.32.0.15&sort_key=display_name&sort_dir=asc")
            XCTAssertEqual(value, ["alpha", "beta"])
            value = try await names("ip=10.32.0.151")
            XCTAssertEqual(value, ["beta"])
            value = try await names("ip=10.99.")
            XCTAssertEqual(value, [])
            value = try await names("ip6=fd00")
            XCTAssertEqual(value, [])
            value = try await names("name=^alp")
            XCTAssertEqual(value, ["alpha"])
            // From 2.83 a member may filter by these; before, Nova drops them and lists everything.
            value = try await names("key_name=k1")
            XCTAssertEqual(value, ["alpha"])
            value = try await names("key_name=k1", version: "2.82")
            XCTAssertEqual(value.count, 3)
            value = try await names("vm_state=active")
            XCTAssertEqual(value.count, 3)
            value = try await names("vm_state=stopped")
            XCTAssertEqual(value, [])
            value = try await names("power_state=4")
            XCTAssertEqual(value, [])
            value = try await names("power_state=1")
            XCTAssertEqual(value.count, 3)
            value = try await names("task_state=spawning")
            XCTAssertEqual(value, [])
            value = try await names("hostname=gam")
            XCTAssertEqual(value, ["gamma"])
            value = try await names("hostname=gam", version: "2.89")
            XCTAssertEqual(value.count, 3)
            // uuid, host and node are the admin's (allow_all_filters).
            value = try await names("uuid=\(ids["beta"]!)")
            XCTAssertEqual(value.count, 3)
            value = try await names("all_tenants=1&uuid=\(ids["beta"]!)", token: admin)
            XCTAssertEqual(value, ["beta"])
            value = try await names("all_tenants=1&key_name=k1", token: admin, version: "2.1")
            XCTAssertEqual(value, ["alpha"])
            value = try await names("all_tenants=1&node=no-such-node", token: admin)
            XCTAssertEqual(value, [])
            for query in ["security_groups=web", "_secret=1"] {
                let refused = try await Compute.call(api, .get, "/servers?\(query)", token: admin)
                XCTAssertEqual(refused.status, 400, refused.text)
                XCTAssertEqual(refused.json["badRequest"]?["message"]?.stringValue, "Invalid filter field: \(query.prefix { $0 != "=" }).")
            }

            for (query, version, status) in [("sort_key=colour", "2.100", 400), ("sort_key=name", "2.1", 400), ("sort_key=id", "2.74", 200),
                                             ("sort_key=id", "2.75", 400), ("sort_key=display_name&sort_dir=up", "2.100", 400),
                                             ("sort_key=host", "2.100", 403), ("foo=bar", "2.74", 200), ("foo=bar", "2.75", 400),
                                             ("name=(", "2.100", 400), ("_secret=1", "2.100", 200)] {
                let reply = try await Compute.call(api, .get, "/servers?\(query)", token: token, version: version)
                XCTAssertEqual(reply.status, status, "\(query) at \(version): \(reply.text)")
                if status == 400 { XCTAssertEqual(reply.json["badRequest"]?["code"]?.intValue, 400, reply.text) }
            }

            // The server's groups with their ingress rules, in Nova's shape.
            let groups = try await Compute.call(api, .get, "/servers/\(ids["alpha"]!)/os-security-groups", token: token)
            XCTAssertEqual(groups.status, 200, groups.text)
            let listed = groups.json["security_groups"]?.arrayValue ?? []
            XCTAssertEqual(listed.count, 1, groups.text)
            XCTAssertEqual(listed.first?["id"]?.stringValue, webID)
            XCTAssertEqual(listed.first?["name"]?.stringValue, "web")
            XCTAssertEqual(listed.first?["description"]?.stringValue, "w")
            XCTAssertEqual(listed.first?["tenant_id"]?.stringValue, member.project)
            let rules = listed.first?["rules"]?.arrayValue ?? []
            XCTAssertEqual(rules.count, 3, "ingress rules only: \(groups.text)")
            let ssh = try XCTUnwrap(rules.first { $0["ip_protocol"]?.stringValue == "tcp" })
            XCTAssertEqual(ssh["from_port"]?.intValue, 22)
            XCTAssertEqual(ssh["to_port"]?.intValue, 22)
            XCTAssertEqual(ssh["ip_range"], ["cidr": "10.0.0.0/8"])
            XCTAssertEqual(ssh["group"], [:])
            XCTAssertEqual(ssh["parent_group_id"]?.stringValue, webID)
            // Neutron stores an IPv6 `icmp` rule as `ipv6-icmp`, which Nova passes on.
            let icmp = try XCTUnwrap(rules.first { $0["ip_protocol"]?.stringValue == "ipv6-icmp" }, groups.text)
            XCTAssertEqual(icmp["from_port"]?.intValue, -1)
            XCTAssertEqual(icmp["ip_range"], ["cidr": "0.0.0.0/0"])
            let fromGroup = try XCTUnwrap(rules.first { $0["ip_protocol"] == .null })
            XCTAssertEqual(fromGroup["group"], ["name": "web", "tenant_id": .string(member.project)])
            XCTAssertEqual(fromGroup["ip_range"], [:])
            let portless = try await Compute.call(api, .get, "/servers/\(ids["gamma"]!)/os-security-groups", token: token)
            XCTAssertEqual(portless.json["security_groups"], [], portless.text)
            let beta = try await Compute.call(api, .get, "/servers/\(ids["beta"]!)/os-security-groups", token: token)
            XCTAssertEqual(beta.json["security_groups"]?.arrayValue?.compactMap { $0["name"]?.stringValue }, ["default"], beta.text)
            let unknown = try await Compute.call(api, .get, "/servers/00000000-0000-0000-0000-000000000000/os-security-groups", token: token)
            XCTAssertEqual(unknown.status, 404, unknown.text)
        }
    }

    func testServerExternalEventsRefreshAndAnswerPerEvent() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let member = try await api.projectUser(admin: admin, name: "events-member")
            let (id, _) = try await Compute.activeServer(api, admin: admin)
            let one = try await Compute.call(api, .post, "/os-server-external-events", token: admin,
                                             body: ["events": [["name": "network-changed", "server_uuid": .string(id), "tag": "port-1"]]])
            XCTAssertEqual(one.status, 200, one.text)
            XCTAssertEqual(one.json["events"]?.arrayValue?.first?["code"], 200)
            XCTAssertEqual(one.json["events"]?.arrayValue?.first?["tag"], "port-1")
            let mixed = try await Compute.call(api, .post, "/os-server-external-events", token: admin, body: ["events": [
                ["name": "network-vif-plugged", "server_uuid": .string(id)], ["name": "network-changed", "server_uuid": "no-such-server"]]])
            XCTAssertEqual(mixed.status, 207, mixed.text)
            XCTAssertEqual(mixed.json["events"]?.arrayValue?.map { $0["code"] }, [200, 404])
            let bad = try await Compute.call(api, .post, "/os-server-external-events", token: admin,
                                             body: ["events": [["name": "made-up", "server_uuid": .string(id)]]])
            XCTAssertEqual(bad.status, 400, bad.text)
            let forbidden = try await Compute.call(api, .post, "/os-server-external-events", token: member.token,
                                                   body: ["events": [["name": "network-changed", "server_uuid": .string(id)]]])
            XCTAssertEqual(forbidden.status, 403, forbidden.text)
            // Nothing is soft-deleted here, so restore and forceDelete always find the wrong state.
            for action in ["restore", "forceDelete"] {
                let refused = try await Compute.action(api, id, token: admin, [action: .null])
                XCTAssertEqual(refused.status, 409, refused.text)
            }
        }
    }

    func testAnExhaustedNetworkFailsTheBuildWithAFault() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let network = try await api.call(.post, "/networking/v2.0/networks", token: admin, body: ["network": ["name": "tiny"]])
            let networkID = try XCTUnwrap(network.json["network"]?["id"]?.stringValue, network.text)
            // A /30 has two hosts, one of them the gateway: one port fits.
            _ = try await api.call(.post, "/networking/v2.0/subnets", token: admin,
                                   body: ["subnet": ["network_id": .string(networkID), "cidr": "10.31.0.0/30", "ip_version": 4]])
            let first = try await Compute.boot(api, token: admin, image: image, flavor: flavor, extra: ["networks": [["uuid": .string(networkID)]]])
            _ = try await Compute.waitFor(api, try XCTUnwrap(first.json["server"]?["id"]?.stringValue), token: admin, status: "ACTIVE")
            let second = try await Compute.boot(api, token: admin, image: image, flavor: flavor, extra: ["networks": [["uuid": .string(networkID)]]])
            let failed = try await Compute.waitFor(api, try XCTUnwrap(second.json["server"]?["id"]?.stringValue), token: admin, status: "ERROR")
            XCTAssertTrue(failed["fault"]?["message"]?.stringValue?.contains("Failed to allocate the network") ?? false, failed.serialized())
        }
    }

    /// Nova's PortBindingFailed: a host whose Linux bridge agent runs the dataplane carries no
    /// `gre` network (Neutron's Linux bridge agent has no GRE), so the port fails to bind there
    /// and the build fails with Nova's fault, not rescheduled.
    func testABuildOnAGRENetworkFailsOnAHostWhoseLinuxBridgeAgentCannotCarryIt() async throws {
        try await onEachEngine(settings: Compute.fakeHosts(1)) { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            // fake-1 as a host running the Linux dataplane: its agent reports vxlan as its one tunnel type.
            try await plane.network.applyNetworkReport(NetworkAgentReport(host: "fake-1", tunnelingIP: "10.250.0.1"))
            let network = try await api.call(.post, "/networking/v2.0/networks", token: admin,
                                             body: ["network": ["name": "tunnel", "provider:network_type": "gre"]])
            let networkID = try XCTUnwrap(network.json["network"]?["id"]?.stringValue, network.text)
            _ = try await api.call(.post, "/networking/v2.0/subnets", token: admin,
                                   body: ["subnet": ["network_id": .string(networkID), "cidr": "10.32.0.0/24", "ip_version": 4]])
            let booted = try await Compute.boot(api, token: admin, image: image, flavor: flavor, extra: ["networks": [["uuid": .string(networkID)]]])
            let failed = try await Compute.waitFor(api, try XCTUnwrap(booted.json["server"]?["id"]?.stringValue), token: admin, status: "ERROR")
            let message = failed["fault"]?["message"]?.stringValue ?? ""
            XCTAssertTrue(message.contains("Failed to allocate the network(s), not rescheduling."), failed.serialized())
            XCTAssertTrue(message.contains("Binding failed for port"), failed.serialized())
        }
    }
}
