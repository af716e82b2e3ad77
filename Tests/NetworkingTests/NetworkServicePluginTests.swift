import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

/// Metering, conntrack helpers, flavors and service profiles, local IPs.
final class NetworkServicePluginTests: XCTestCase {
    func testMeteringLabelsAndRules() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            assertNeutronError(try await api.neutron(.post, "/metering/metering-labels", token: alice.token, body: ["metering_label": ["name": "l"]]), 403)
            let label = try await api.neutronCreate("metering/metering-labels", "metering_label", ["name": "web", "description": "d"], token: admin)
            let id = try XCTUnwrap(label["id"]?.stringValue)
            XCTAssertEqual(label["shared"], false)
            let reply1 = try await api.neutron(.get, "/metering/metering-labels?id=\(id)", token: admin)
            XCTAssertEqual(reply1.json["metering_labels"]?.arrayValue?.count, 1)
            let reply2 = try await api.neutron(.get, "/metering/metering-labels?id=33", token: admin)
            XCTAssertEqual(reply2.json["metering_labels"], [])
            assertNeutronError(try await api.neutron(.get, "/metering/metering-labels/\(id)", token: alice.token), 404, type: "MeteringLabelNotFound")

            let rule = try await api.neutronCreate("metering/metering-label-rules", "metering_label_rule",
                                                   ["metering_label_id": .string(id), "remote_ip_prefix": "10.0.1.0/24", "direction": "ingress"], token: admin)
            XCTAssertEqual(rule["excluded"], false)
            XCTAssertEqual(rule["remote_ip_prefix"], "10.0.1.0/24")
            assertNeutronError(try await api.neutron(.post, "/metering/metering-label-rules", token: admin, body: ["metering_label_rule": [
                "metering_label_id": .string(id), "remote_ip_prefix": "10.0.1.128/25"]]), 409, type: "MeteringLabelRuleOverlaps")
            assertNeutronError(try await api.neutron(.post, "/metering/metering-label-rules", token: admin, body: ["metering_label_rule": [
                "metering_label_id": .string(id), "remote_ip_prefix": "10.0.2.0/24", "source_ip_prefix": "10.0.3.0/24"]]), 400)
            assertNeutronError(try await api.neutron(.post, "/metering/metering-label-rules", token: admin, body: ["metering_label_rule": [
                "metering_label_id": .string(id), "direction": "sideways", "remote_ip_prefix": "10.0.2.0/24"]]), 400)
            assertNeutronError(try await api.neutron(.post, "/metering/metering-label-rules", token: admin, body: ["metering_label_rule": [
                "metering_label_id": "nope", "remote_ip_prefix": "10.0.2.0/24"]]), 404, type: "MeteringLabelNotFound")
            let v6 = try await api.neutronCreate("metering/metering-label-rules", "metering_label_rule",
                                                 ["metering_label_id": .string(id), "source_ip_prefix": "fd03::/64", "direction": "egress"], token: admin)
            XCTAssertEqual(v6["remote_ip_prefix"], .null)
            let shown = try await api.neutron(.get, "/metering/metering-label-rules/\(rule["id"]?.stringValue ?? "")", token: admin)
            XCTAssertEqual(shown.json["metering_label_rule"]?["metering_label_id"]?.stringValue, id, shown.text)

            // Rules go with their label.
            assertStatus(try await api.neutron(.delete, "/metering/metering-labels/\(id)", token: admin), 204)
            let reply3 = try await api.neutron(.get, "/metering/metering-label-rules", token: admin)
            XCTAssertEqual(reply3.json["metering_label_rules"], [])
            assertNeutronError(try await api.neutron(.delete, "/metering/metering-labels/\(id)", token: admin), 404)
        }
    }

    func testConntrackHelpersOfARouter() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")
            let router = try await api.neutronCreate("routers", "router", ["name": "r"], token: alice.token)
            let routerID = try XCTUnwrap(router["id"]?.stringValue)
            let helpers = "/routers/\(routerID)/conntrack_helpers"
            let helper = try await api.neutronCreate(String(helpers.dropFirst()), "conntrack_helper", ["protocol": "tcp", "port": 21, "helper": "ftp"],
                                                     token: alice.token)
            let id = try XCTUnwrap(helper["id"]?.stringValue)
            assertNeutronError(try await api.neutron(.post, helpers, token: alice.token, body: ["conntrack_helper": [
                "protocol": "tcp", "port": 21, "helper": "ftp"]]), 400)
            assertNeutronError(try await api.neutron(.post, helpers, token: alice.token, body: ["conntrack_helper": [
                "protocol": "udp", "port": 21, "helper": "ftp"]]), 400)
            assertNeutronError(try await api.neutron(.post, helpers, token: alice.token, body: ["conntrack_helper": [
                "protocol": "tcp", "port": 21, "helper": "teleport"]]), 400)
            assertNeutronError(try await api.neutron(.get, helpers, token: bob.token), 404, type: "RouterNotFound")
            let updated = try await api.neutron(.put, helpers + "/\(id)", token: alice.token, body: ["conntrack_helper": ["port": 2121]])
            XCTAssertEqual(updated.json["conntrack_helper"]?["port"], 2121, updated.text)
            let reply4 = try await api.neutron(.get, helpers + "?helper=ftp", token: alice.token)
            XCTAssertEqual(reply4.json["conntrack_helpers"]?.arrayValue?.count, 1)
            assertStatus(try await api.neutron(.delete, helpers + "/\(id)", token: alice.token), 204)
            assertNeutronError(try await api.neutron(.get, helpers + "/\(id)", token: alice.token), 404, type: "ConntrackHelperNotFound")
            _ = try await api.neutronCreate(String(helpers.dropFirst()), "conntrack_helper", ["protocol": "udp", "port": 69, "helper": "tftp"], token: alice.token)
            assertStatus(try await api.neutron(.delete, "/routers/\(routerID)", token: alice.token), 204)
        }
    }

    func testFlavorsAndServiceProfiles() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            assertNeutronError(try await api.neutron(.post, "/flavors", token: alice.token, body: ["flavor": ["name": "f", "service_type": "L3_ROUTER_NAT"]]), 403)
            assertNeutronError(try await api.neutron(.post, "/flavors", token: admin, body: ["flavor": ["name": "f", "service_type": "WARP_DRIVE"]]), 400)
            let flavor = try await api.neutronCreate("flavors", "flavor", ["name": "gold", "service_type": "L3_ROUTER_NAT"], token: admin)
            let id = try XCTUnwrap(flavor["id"]?.stringValue)
            XCTAssertEqual(flavor["enabled"], true)
            let reply5 = try await api.neutron(.get, "/flavors", token: alice.token)
            XCTAssertEqual(reply5.json["flavors"]?.arrayValue?.count, 1)

            assertNeutronError(try await api.neutron(.post, "/service_profiles", token: admin, body: ["service_profile": ["description": "d"]]), 400,
                               type: "ServiceProfileEmpty")
            assertNeutronError(try await api.neutron(.post, "/service_profiles", token: admin, body: ["service_profile": ["driver": "x.y.Z"]]), 404,
                               type: "ServiceProfileDriverNotFound")
            let profile = try await api.neutronCreate("service_profiles", "service_profile", ["metainfo": "{\"tier\": 1}"], token: admin)
            let profileID = try XCTUnwrap(profile["id"]?.stringValue)
            assertNeutronError(try await api.neutron(.get, "/service_profiles", token: alice.token), 403)

            let bound = try await api.neutron(.post, "/flavors/\(id)/service_profiles", token: admin, body: ["service_profile": ["id": .string(profileID)]])
            assertStatus(bound, 201)
            assertNeutronError(try await api.neutron(.post, "/flavors/\(id)/service_profiles", token: admin,
                                                     body: ["service_profile": ["id": .string(profileID)]]), 409, type: "FlavorServiceProfileBindingExists")
            let reply6 = try await api.neutron(.get, "/flavors/\(id)", token: alice.token)
            XCTAssertEqual(reply6.json["flavor"]?["service_profiles"], [.string(profileID)])
            assertNeutronError(try await api.neutron(.delete, "/service_profiles/\(profileID)", token: admin), 409, type: "ServiceProfileInUse")
            assertStatus(try await api.neutron(.delete, "/flavors/\(id)/service_profiles/\(profileID)", token: admin), 204)
            assertNeutronError(try await api.neutron(.delete, "/flavors/\(id)/service_profiles/\(profileID)", token: admin), 404)
            let renamed = try await api.neutron(.put, "/flavors/\(id)", token: admin, body: ["flavor": ["name": "silver", "enabled": false]])
            XCTAssertEqual(renamed.json["flavor"]?["enabled"], false, renamed.text)
            assertStatus(try await api.neutron(.delete, "/service_profiles/\(profileID)", token: admin), 204)
            assertStatus(try await api.neutron(.delete, "/flavors/\(id)", token: admin), 204)
            assertNeutronError(try await api.neutron(.get, "/flavors/\(id)", token: admin), 404, type: "FlavorNotFound")
        }
    }
    func testLocalIPsAndTheirPortAssociations() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "alice")
            let bob = try await api.projectUser(admin: admin, name: "bob")
            let net = try await RoutingFixture.make(api, admin: admin, owner: alice.token)
            assertNeutronError(try await api.neutron(.post, "/local_ips", token: alice.token, body: ["local_ip": ["name": "x"]]), 400)

            // On a network: a port of its own, owned by the local IP, which keeps it.
            let local = try await api.neutronCreate("local_ips", "local_ip", ["name": "dns", "network_id": .string(net.network),
                                                                              "local_ip_address": "10.0.0.53"], token: alice.token)
            let id = try XCTUnwrap(local["id"]?.stringValue)
            XCTAssertEqual(local["local_ip_address"], "10.0.0.53")
            XCTAssertEqual(local["ip_mode"], "translate")
            let localPort = try XCTUnwrap(local["local_port_id"]?.stringValue)
            let reply7 = try await api.neutron(.get, "/ports/\(localPort)", token: alice.token)
            XCTAssertEqual(reply7.json["port"]?["device_owner"], "network:local_ip")
            assertNeutronError(try await api.neutron(.delete, "/ports/\(localPort)", token: alice.token), 409, type: "LocalIPPortInUse")
            assertNeutronError(try await api.neutron(.get, "/local_ips/\(id)", token: bob.token), 404, type: "LocalIPNotFound")
            assertNeutronError(try await api.neutron(.post, "/local_ips", token: alice.token, body: ["local_ip": [
                "network_id": .string(net.network), "ip_mode": "tunnel"]]), 400)

            // Associations: a port's only address, or the one named, which it must have.
            let server = try await api.neutronCreate("ports", "port", ["network_id": .string(net.network)], token: alice.token)
            let serverID = try XCTUnwrap(server["id"]?.stringValue)
            assertNeutronError(try await api.neutron(.post, "/local_ips/\(id)/port_associations", token: alice.token, body: ["port_association": [
                "fixed_port_id": .string(serverID), "fixed_ip": "10.9.9.9"]]), 400)
            let association = try await api.neutron(.post, "/local_ips/\(id)/port_associations", token: alice.token,
                                                    body: ["port_association": ["fixed_port_id": .string(serverID)]])
            assertStatus(association, 201)
            XCTAssertEqual(association.json["port_association"]?["local_ip_address"], "10.0.0.53", association.text)
            XCTAssertEqual(association.json["port_association"]?["fixed_ip"], server["fixed_ips"]?.arrayValue?.first?["ip_address"])
            assertNeutronError(try await api.neutron(.post, "/local_ips/\(id)/port_associations", token: alice.token, body: ["port_association": [
                "fixed_port_id": .string(serverID)]]), 409, type: "LocalIPAssociationExists")
            let reply8 = try await api.neutron(.get, "/local_ips/\(id)/port_associations", token: alice.token)
            XCTAssertEqual(reply8.json["port_associations"]?.arrayValue?.count, 1)
            assertNeutronError(try await api.neutron(.delete, "/local_ips/\(id)", token: alice.token), 409, type: "LocalIPInUse")
            let renamed = try await api.neutron(.put, "/local_ips/\(id)", token: alice.token, body: ["local_ip": ["name": "resolver"]])
            XCTAssertEqual(renamed.json["local_ip"]?["name"], "resolver", renamed.text)

            // Deleting the associated port ends the association; the local IP takes its port with it.
            assertStatus(try await api.neutron(.delete, "/ports/\(serverID)", token: alice.token), 204)
            let reply9 = try await api.neutron(.get, "/local_ips/\(id)/port_associations", token: alice.token)
            XCTAssertEqual(reply9.json["port_associations"], [])
            assertNeutronError(try await api.neutron(.delete, "/local_ips/\(id)/port_associations/\(serverID)", token: alice.token), 404)
            assertStatus(try await api.neutron(.delete, "/local_ips/\(id)", token: alice.token), 204)
            assertStatus(try await api.neutron(.get, "/ports/\(localPort)", token: alice.token), 404)
        }
    }
}
