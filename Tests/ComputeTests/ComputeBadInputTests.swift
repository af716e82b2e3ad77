@testable import Compute
import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

/// Nova's `{"badRequest": {"code": 400, "message": …}}`.
func assertBadRequest(_ reply: API.Reply, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(reply.status, 400, reply.text, file: file, line: line)
    XCTAssertEqual(reply.json["badRequest"]?["code"]?.intValue, 400, reply.text, file: file, line: line)
    XCTAssertNotNil(reply.json["badRequest"]?["message"]?.stringValue, reply.text, file: file, line: line)
}

/// Request input that once reached a trapping operation (issue #12): in one process serving
/// every API, a trap is a cloud-wide outage. Each test sends the input, checks the answer in
/// Nova's error shape, and checks that the cloud still answers afterwards.
final class ComputeBadInputTests: XCTestCase {

    /// `GET /os-server-groups?limit=-1` by a reader took the process down (`prefix` of a
    /// negative length). Nova's schema: `limit` and `offset` are non-negative integers, and
    /// its `limited` treats `limit=0` (or none) as a full page of `max_limit`.
    func testServerGroupPagingByAReader() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let reader = try await api.projectUser(admin: admin, name: "sg-reader", role: "reader")
            // A member of the same project makes the groups the reader lists.
            let memberID = try await api.create("users", "user", ["name": "sg-member", "password": "pw-sg-member"], token: admin)
            let granted = try await api.call(.put, "/identity/v3/projects/\(reader.project)/users/\(memberID)/roles/\(try await api.roleID("member", token: admin))",
                                             token: admin)
            XCTAssertEqual(granted.status, 204, granted.text)
            let owner = try await api.token(user: "sg-member", password: "pw-sg-member", projectID: reader.project)
            for name in ["g1", "g2", "g3"] {
                let created = try await Compute.call(api, .post, "/os-server-groups", token: owner,
                                                     body: ["server_group": ["name": .string(name), "policy": "affinity"]])
                XCTAssertEqual(created.status, 200, created.text)
            }
            for bad in ["limit=-1", "offset=-1", "limit=abc", "limit=1.5", "limit=", "offset=+1", "limit=-0"] {
                assertBadRequest(try await Compute.call(api, .get, "/os-server-groups?\(bad)", token: reader.token))
            }
            func names(_ query: String) async throws -> [String] {
                let reply = try await Compute.call(api, .get, "/os-server-groups\(query)", token: reader.token)
                XCTAssertEqual(reply.status, 200, reply.text)
                return (reply.json["server_groups"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }.sorted()
            }
            // The cloud is still up, and the reader sees the project's groups.
            let all = try await names("")
            XCTAssertEqual(all, ["g1", "g2", "g3"])
            let checks: [(String, Int, String)] = [("?limit=0", 3, "limit=0 is a full page in Nova's `limited`"), ("?limit=2", 2, ""),
                                                   ("?offset=1&limit=1", 1, ""), ("?offset=3", 0, ""),
                                                   ("?limit=99999999999999999999999", 3, "beyond Int: capped at max_limit"),
                                                   ("?offset=99999999999999999999999", 0, "")]
            for (query, count, note) in checks {
                let listed = try await names(query)
                XCTAssertEqual(listed.count, count, "\(query) \(note)")
            }
        }
    }

    /// Every marker-paged list shares one parser: a negative or malformed `limit` is 400, a
    /// limit past `Int` is capped at `max_limit`.
    func testMarkerPagedListsRefuseBadLimits() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            for path in ["/flavors", "/flavors/detail", "/servers", "/servers/detail", "/os-keypairs", "/os-hypervisors", "/os-migrations",
                         "/os-simple-tenant-usage"] {
                assertBadRequest(try await Compute.call(api, .get, "\(path)?limit=-1", token: admin))
                assertBadRequest(try await Compute.call(api, .get, "\(path)?limit=x", token: admin))
                let huge = try await Compute.call(api, .get, "\(path)?limit=99999999999999999999999", token: admin)
                XCTAssertEqual(huge.status, 200, "\(path): \(huge.text)")
            }
            let images = try await Compute.call(api, .get, "/images?limit=-1", token: admin, version: "2.35")
            assertBadRequest(images)
            for name in ["small", "large"] {
                let created = try await Compute.call(api, .post, "/flavors", token: admin,
                                                     body: ["flavor": ["name": .string(name), "ram": 512, "vcpus": 1, "disk": 1]])
                XCTAssertEqual(created.status, 200, created.text)
            }
            let flavors = try await Compute.call(api, .get, "/flavors?limit=1", token: admin)
            XCTAssertEqual(flavors.json["flavors"]?.arrayValue?.count, 1, flavors.text)
            XCTAssertNotNil(flavors.json["flavors_links"], "a full page links to the next")
        }
    }

    /// `max_count` near 2^63 overflowed `vcpus × max_count` in the quota reservation (with
    /// the instances quota unlimited) and `members + max_count` with a server group hint. The
    /// count is now bounded by the limits, so the request gets the most servers that fit, as
    /// Nova does.
    func testHugeMaxCountIsBoundedByQuota() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let (image, flavor) = try await Compute.bootables(api, admin: admin, vcpus: 2)
            let user = try await api.projectUser(admin: admin, name: "many")
            let unlimited = try await Compute.call(api, .put, "/os-quota-sets/\(user.project)", token: admin, body: ["quota_set": ["instances": -1]])
            XCTAssertEqual(unlimited.status, 200, unlimited.text)
            let group = try await Compute.call(api, .post, "/os-server-groups", token: user.token,
                                               body: ["server_group": ["name": "big", "policy": "anti-affinity"]])
            let groupID = try XCTUnwrap(group.json["server_group"]?["id"]?.stringValue, group.text)
            let hints: JSON = ["group": .string(groupID)]
            let member = try await Compute.boot(api, token: user.token, image: image, flavor: flavor, hints: hints)
            XCTAssertEqual(member.status, 202, member.text)
            let huge = JSON.int(Int64.max)
            let grouped = try await Compute.boot(api, token: user.token, image: image, flavor: flavor, extra: ["max_count": huge], hints: hints)
            XCTAssertEqual(grouped.status, 403, grouped.text)
            // 20 cores by default, 2 of them held: nine more servers of 2 vCPUs fit.
            let most = try await Compute.boot(api, token: user.token, image: image, flavor: flavor, extra: ["max_count": huge])
            XCTAssertEqual(most.status, 202, most.text)
            let servers = try await Compute.call(api, .get, "/servers", token: user.token)
            XCTAssertEqual(servers.json["servers"]?.arrayValue?.count, 10, servers.text)
            let tooMany = try await Compute.boot(api, token: user.token, image: image, flavor: flavor, extra: ["min_count": huge, "max_count": huge])
            XCTAssertEqual(tooMany.status, 403, tooMany.text)
        }
    }

    /// Quota limits are bounded as in Nova's schema: -1 to 2^31 − 1.
    func testQuotaLimitsOutsideNovasRange() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let project = try await api.projectUser(admin: admin, name: "quota-range").project
            for value in [JSON.int(Int64(Int32.max) + 1), .int(Int64.max), .int(-2), "2147483648"] {
                assertBadRequest(try await Compute.call(api, .put, "/os-quota-sets/\(project)", token: admin, body: ["quota_set": ["cores": value]]))
                assertBadRequest(try await Compute.call(api, .put, "/os-quota-class-sets/default", token: admin,
                                                        body: ["quota_class_set": ["cores": value]]))
            }
            let top = try await Compute.call(api, .put, "/os-quota-sets/\(project)", token: admin, body: ["quota_set": ["cores": .int(Int64(Int32.max))]])
            XCTAssertEqual(top.json["quota_set"]?["cores"]?.intValue, Int64(Int32.max), top.text)
        }
    }

    /// Times in queries (`changes-since`, usage `start`/`end`) once reached `Int32(year)` and
    /// infinite dates: a year past 9999 or an exponent in the fraction trapped.
    func testOutOfRangeTimesInQueries() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            for time in ["99999999999-01-01T00:00:00", "2026-01-01T00:00:00.5e300", "2026-01-01T00:00:99999999999", "0000-01-01T00:00:00"] {
                let escaped = time.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? time
                assertBadRequest(try await Compute.call(api, .get, "/servers?changes-since=\(escaped)", token: admin))
                assertBadRequest(try await Compute.call(api, .get, "/os-simple-tenant-usage?start=\(escaped)", token: admin))
            }
            let fine = try await Compute.call(api, .get, "/servers?changes-since=2026-01-01T00:00:00.5Z", token: admin)
            XCTAssertEqual(fine.status, 200, fine.text)
        }
    }

    /// A host agent's registration is checked like placement checks an inventory: a count
    /// outside 0…2^31 − 1 is refused, where `memory_mb - 1` of Int64.min trapped and the
    /// hypervisor statistics summed huge counts past Int64.
    func testAgentRegistrationOutOfRange() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            for (host, memory) in [("h-min", Int64.min), ("h-max", Int64.max), ("h-over", Int64(Int32.max) + 1), ("h-neg", -1)] {
                let reply = try await api.call(.post, "/compute-agent/v1/hosts/\(host)/register", token: admin,
                                               body: ["host": .string(host), "resources": ["vcpus": 4, "memory_mb": .int(memory), "disk_gb": 10]])
                XCTAssertEqual(reply.status, 400, reply.text)
            }
            let ok = try await api.call(.post, "/compute-agent/v1/hosts/h-ok/register", token: admin,
                                        body: ["host": "h-ok", "resources": ["vcpus": 4, "memory_mb": .int(Int64(Int32.max)), "disk_gb": 10]])
            XCTAssertEqual(ok.status, 204, ok.text)
            let stats = try await Compute.call(api, .get, "/os-hypervisors/statistics", token: admin, version: "2.87")
            XCTAssertEqual(stats.status, 200, stats.text)
        }
    }

    /// A flavor extra spec named ":" (the extra spec pattern admits it) split to no parts in
    /// the capabilities and aggregate filters, which then read part 0: every boot of the
    /// flavor trapped in the scheduler. As in Nova, such a key is not about either filter.
    func testColonExtraSpecDoesNotTrapTheScheduler() async throws {
        let filters = ["filter_scheduler": ["enabled_filters": "ComputeFilter,ComputeCapabilitiesFilter,AggregateInstanceExtraSpecsFilter"]]
        try await onEachEngine(settings: Compute.fakeHosts(1, extra: filters)) { cloud, api in
            let admin = try await api.adminToken(cloud)
            let (image, flavor) = try await Compute.bootables(api, admin: admin)
            let specs = try await Compute.call(api, .post, "/flavors/\(flavor)/os-extra_specs", token: admin, body: ["extra_specs": [":": "x", "::": "y"]])
            XCTAssertEqual(specs.status, 200, specs.text)
            let booted = try await Compute.boot(api, token: admin, image: image, flavor: flavor)
            let id = try XCTUnwrap(booted.json["server"]?["id"]?.stringValue, booted.text)
            try await Compute.waitFor(api, id, token: admin, status: "ACTIVE")
        }
    }

    /// Diagnostics come from the host's agent; a memory figure whose KiB overflow Int64 is
    /// shown as unknown rather than trapped on.
    func testLegacyDiagnosticsWithHugeMemory() {
        let shown = ComputeService.legacyDiagnostics(["memory_details": ["maximum": .int(Int64.max)]])
        XCTAssertEqual(shown["memory"], .null)
        XCTAssertEqual(ComputeService.legacyDiagnostics(["memory_details": ["maximum": 512]])["memory"], 524_288)
    }
}
