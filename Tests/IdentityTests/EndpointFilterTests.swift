import Foundation
import NimbusCore
import NimbusTestSupport
import XCTest

/// OS-EP-FILTER: endpoints and endpoint groups given to projects, and the catalog of a project
/// that has any (only those endpoints) or none (all of them).
final class EndpointFilterTests: XCTestCase {
    static func catalogEndpoints(_ api: API, token: String) async throws -> Set<String> {
        let catalog = try await api.call(.get, "/identity/v3/auth/catalog", token: token)
        XCTAssertEqual(catalog.status, 200, catalog.text)
        return Set((catalog.json["catalog"]?.arrayValue ?? []).flatMap { $0["endpoints"]?.arrayValue ?? [] }.compactMap { $0["id"]?.stringValue })
    }

    func testProjectAssociationsFilterTheCatalog() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let alice = try await api.projectUser(admin: admin, name: "epalice")
            let everything = try await Self.catalogEndpoints(api, token: alice.token)
            let endpoints = try await api.call(.get, "/identity/v3/endpoints", token: admin).json["endpoints"]?.arrayValue ?? []
            let identityPublic = try XCTUnwrap(endpoints.first { $0["interface"] == "public" && $0["url"]?.stringValue?.contains("/identity") == true })
            let identityEndpoint = try XCTUnwrap(identityPublic["id"]?.stringValue)
            XCTAssertTrue(everything.contains(identityEndpoint) && everything.count > 1, "unfiltered: every endpoint")

            let path = "/identity/v3/OS-EP-FILTER/projects/\(alice.project)/endpoints/\(identityEndpoint)"
            let beforeAdd = try await api.call(.head, path, token: admin)
            XCTAssertEqual(beforeAdd.status, 404, beforeAdd.text)
            let added = try await api.call(.put, path, token: admin)
            XCTAssertEqual(added.status, 204, added.text)
            let afterAdd = try await api.call(.head, path, token: admin)
            XCTAssertEqual(afterAdd.status, 204, afterAdd.text)
            let forbidden = try await api.call(.put, path, token: alice.token)
            XCTAssertEqual(forbidden.status, 403, forbidden.text)
            let badEndpoint = try await api.call(.put, "/identity/v3/OS-EP-FILTER/projects/\(alice.project)/endpoints/nosuch", token: admin)
            XCTAssertEqual(badEndpoint.status, 404, badEndpoint.text)

            // A fresh token of the filtered project sees only its endpoint.
            let filteredToken = try await api.token(user: "epalice", password: "pw-epalice", project: "p-epalice")
            let filtered = try await Self.catalogEndpoints(api, token: filteredToken)
            XCTAssertEqual(filtered, [identityEndpoint])
            let listed = try await api.call(.get, "/identity/v3/OS-EP-FILTER/projects/\(alice.project)/endpoints", token: admin)
            XCTAssertEqual(listed.json["endpoints"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [identityEndpoint], listed.text)
            let projects = try await api.call(.get, "/identity/v3/OS-EP-FILTER/endpoints/\(identityEndpoint)/projects", token: admin)
            XCTAssertEqual(projects.json["projects"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [alice.project], projects.text)

            // An endpoint group adds the endpoints its filters match: every internal endpoint.
            let group = try await api.call(.post, "/identity/v3/OS-EP-FILTER/endpoint_groups", token: admin,
                                           body: ["endpoint_group": ["name": "internal", "filters": ["interface": "internal"]]])
            let groupID = try XCTUnwrap(group.json["endpoint_group"]?["id"]?.stringValue, group.text)
            let grouped = "/identity/v3/OS-EP-FILTER/endpoint_groups/\(groupID)/projects/\(alice.project)"
            let groupBefore = try await api.call(.get, grouped, token: admin)
            XCTAssertEqual(groupBefore.status, 404, groupBefore.text)
            let groupAdded = try await api.call(.put, grouped, token: admin)
            XCTAssertEqual(groupAdded.status, 204, groupAdded.text)
            let association = try await api.call(.get, grouped, token: admin)
            XCTAssertEqual(association.json["project_endpoint_group"]?["endpoint_group_id"]?.stringValue, groupID, association.text)
            let internalEndpoints = Set(endpoints.filter { $0["interface"] == "internal" }.compactMap { $0["id"]?.stringValue })
            XCTAssertFalse(internalEndpoints.isEmpty)
            let withGroup = try await Self.catalogEndpoints(api, token: try await api.token(user: "epalice", password: "pw-epalice", project: "p-epalice"))
            XCTAssertEqual(withGroup, internalEndpoints.union([identityEndpoint]))
            let groupEndpoints = try await api.call(.get, "/identity/v3/OS-EP-FILTER/endpoint_groups/\(groupID)/endpoints", token: admin)
            XCTAssertEqual(Set(groupEndpoints.json["endpoints"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []), internalEndpoints)
            let groups = try await api.call(.get, "/identity/v3/OS-EP-FILTER/projects/\(alice.project)/endpoint_groups", token: admin)
            XCTAssertEqual(groups.json["endpoint_groups"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [groupID], groups.text)
            let groupProjects = try await api.call(.get, "/identity/v3/OS-EP-FILTER/endpoint_groups/\(groupID)/projects", token: admin)
            XCTAssertEqual(groupProjects.json["projects"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [alice.project])

            // Removing both associations makes the project unfiltered again.
            let groupRemoved = try await api.call(.delete, grouped, token: admin)
            XCTAssertEqual(groupRemoved.status, 204, groupRemoved.text)
            let endpointRemoved = try await api.call(.delete, path, token: admin)
            XCTAssertEqual(endpointRemoved.status, 204, endpointRemoved.text)
            let removedAgain = try await api.call(.delete, path, token: admin)
            XCTAssertEqual(removedAgain.status, 404, removedAgain.text)
            let again = try await Self.catalogEndpoints(api, token: try await api.token(user: "epalice", password: "pw-epalice", project: "p-epalice"))
            XCTAssertEqual(again, everything)
        }
    }
}
