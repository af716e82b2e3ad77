import Foundation
import HostAPI
import Networking
import NimbusCore
import NimbusTestSupport
import XCTest

final class AgentTests: XCTestCase {
    func testReportedAgentsAreListedAliveUntilTheirReportsStop() async throws {
        try await onEachEngine { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            try await plane.network.reportAgentState(host: "controller", type: .dhcp)
            try await plane.network.reportAgentState(host: "controller", type: .dhcp)
            try await plane.network.reportAgentState(host: "controller", type: .metadata, at: Date().addingTimeInterval(-100))
            let listed = try await api.neutron(.get, "/agents?host=controller", token: admin)
            let agents = try XCTUnwrap(listed.json["agents"]?.arrayValue, listed.text)
            XCTAssertEqual(agents.count, 2, listed.text)
            let dhcp = try XCTUnwrap(agents.first { $0["agent_type"] == "DHCP agent" })
            XCTAssertEqual(dhcp["binary"], "neutron-dhcp-agent")
            XCTAssertEqual(dhcp["topic"], "dhcp_agent")
            XCTAssertEqual(dhcp["availability_zone"], "nova")
            XCTAssertEqual(dhcp["alive"], true)
            XCTAssertEqual(dhcp["admin_state_up"], true)
            XCTAssertEqual(dhcp["configurations"], [:])
            XCTAssertNotNil(dhcp["heartbeat_timestamp"]?.stringValue)
            // Past [DEFAULT] agent_down_time (75 s) without a report, an agent is dead.
            let metadata = try XCTUnwrap(agents.first { $0["agent_type"] == "Metadata agent" })
            XCTAssertEqual(metadata["alive"], false)
            XCTAssertEqual(metadata["availability_zone"], .null)
            try await plane.network.reportAgentState(host: "controller", type: .metadata)
            let revived = try await api.neutron(.get, "/agents/\(metadata["id"]!.stringValue!)", token: admin)
            XCTAssertEqual(revived.json["agent"]?["alive"], true, revived.text)
        }
    }

    func testComputeHeartbeatsReportTheHostsLinuxBridgeAgent() async throws {
        try await onEachEngine(settings: ["fake_hosts": ["count": "1"]]) { cloud, api in
            let admin = try await api.adminToken(cloud)
            var agents: [JSON] = []
            for _ in 0..<100 where agents.isEmpty {
                agents = try await api.neutron(.get, "/agents?agent_type=Linux%20bridge%20agent", token: admin).json["agents"]?.arrayValue ?? []
                if agents.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
            }
            XCTAssertEqual(agents.map { $0["host"] }, ["fake-1"])
            XCTAssertEqual(agents.first?["binary"], "neutron-linuxbridge-agent")
            XCTAssertEqual(agents.first?["alive"], true)
        }
    }

    /// ML2 accepts `gre` networks, but a host whose Linux bridge agent runs the dataplane
    /// carries only local, flat, vlan and its tunnel types (vxlan), as Neutron's Linux bridge
    /// mechanism driver decides: a port on a gre network fails to bind there.
    func testAPortOnAGRENetworkFailsToBindOnALinuxBridgeDataplaneHost() async throws {
        try await onEachEngine { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            try await plane.network.applyNetworkReport(NetworkAgentReport(host: "lb-1", tunnelingIP: "10.250.0.1"))
            // A host with no dataplane: its Linux bridge agent (the compute heartbeat's) reports no tunnel types.
            try await plane.network.reportAgentState(host: "plain-1", type: .linuxBridge)
            let gre = try await api.neutronCreate("networks", "network", ["provider:network_type": "gre"], token: admin)
            XCTAssertEqual(gre["provider:network_type"], "gre")
            let vxlan = try await api.neutronCreate("networks", "network", ["provider:network_type": "vxlan"], token: admin)
            for (network, host, vifType, status) in [(gre, "lb-1", "binding_failed", "DOWN"), (vxlan, "lb-1", "other", "ACTIVE"),
                                                     (gre, "plain-1", "other", "ACTIVE")] {
                let port = try await api.neutronCreate("ports", "port", ["network_id": network["id"] ?? .null], token: admin)
                let bound = try await api.neutron(.put, "/ports/\(port["id"]?.stringValue ?? "")", token: admin,
                                                  body: ["port": ["binding:host_id": .string(host)]])
                XCTAssertEqual(bound.status, 200, bound.text)
                XCTAssertEqual(bound.json["port"]?["binding:host_id"], .string(host), bound.text)
                XCTAssertEqual(bound.json["port"]?["binding:vif_type"], .string(vifType), "\(network["provider:network_type"] ?? .null) on \(host)")
                XCTAssertEqual(bound.json["port"]?["status"], .string(status), bound.text)
            }
        }
    }

    func testAdminUpdatesAndDeletesAgentsMembersSeeNone() async throws {
        try await onEachEngine { cloud, plane, api in
            let admin = try await api.adminToken(cloud)
            let member = try await api.projectUser(admin: admin, name: "agent-member")
            try await plane.network.reportAgentState(host: "net-1", type: .l3)
            let listed = try await api.neutron(.get, "/agents?binary=neutron-l3-agent", token: admin)
            let id = try XCTUnwrap(listed.json["agents"]?.arrayValue?.first?["id"]?.stringValue, listed.text)

            let updated = try await api.neutron(.put, "/agents/\(id)", token: admin,
                                                body: ["agent": ["admin_state_up": false, "description": "draining"]])
            XCTAssertEqual(updated.status, 200, updated.text)
            XCTAssertEqual(updated.json["agent"]?["admin_state_up"], false)
            XCTAssertEqual(updated.json["agent"]?["description"], "draining")
            // A later report keeps what the admin set.
            try await plane.network.reportAgentState(host: "net-1", type: .l3)
            let afterReport = try await api.neutron(.get, "/agents/\(id)", token: admin)
            XCTAssertEqual(afterReport.json["agent"]?["admin_state_up"], false, afterReport.text)
            assertNeutronError(try await api.neutron(.put, "/agents/\(id)", token: admin, body: ["agent": ["host": "elsewhere"]]), 400)

            // Agents are the admin's: a member lists none and is told any one does not exist, as in Neutron.
            let memberList = try await api.neutron(.get, "/agents", token: member.token)
            XCTAssertEqual(memberList.status, 200, memberList.text)
            XCTAssertEqual(memberList.json["agents"], [])
            assertNeutronError(try await api.neutron(.get, "/agents/\(id)", token: member.token), 404, type: "HTTPNotFound")
            assertNeutronError(try await api.neutron(.put, "/agents/\(id)", token: member.token, body: ["agent": ["admin_state_up": true]]),
                               404, type: "HTTPNotFound")
            assertNeutronError(try await api.neutron(.delete, "/agents/\(id)", token: member.token), 404, type: "HTTPNotFound")

            let deleted = try await api.neutron(.delete, "/agents/\(id)", token: admin)
            XCTAssertEqual(deleted.status, 204, deleted.text)
            assertNeutronError(try await api.neutron(.get, "/agents/\(id)", token: admin), 404, type: "AgentNotFound")
        }
    }
}
