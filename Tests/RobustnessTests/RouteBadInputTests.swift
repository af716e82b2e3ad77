import Foundation
import HTTPTypes
import NimbusCore
import NimbusServer
import Placement
import NimbusTestSupport
import XCTest

/// Every route the router has, fed malformed input by three callers: no answer may be a 5xx
/// (Nova's deliberate 501s aside), every error must be in its service's own shape, and the cloud
/// must still answer afterwards. Routes come from the router itself and body fields from what
/// the handlers ask `JSONInput` for, so a new route or field is covered the day it is added.
///
/// Reproducible: the requests follow from `NIMBUS_BAD_INPUT_SEED` (printed); `NIMBUS_BAD_INPUT_ROUTE`
/// limits a run to routes whose `METHOD /template` contains the text, and the route under way is
/// written to `.build-logs/bad-input-current.txt` so a trap names it.
final class RouteBadInputTests: XCTestCase {
    func testEveryRouteAnswersBadInputWithoutAServerError() async throws {
        let environment = ProcessInfo.processInfo.environment
        let seed = environment["NIMBUS_BAD_INPUT_SEED"].flatMap { UInt64($0) } ?? 20_261_206
        let only = environment["NIMBUS_BAD_INPUT_ROUTE"]
        var cloud = try await TestCloud.make(.sqlite)
        cloud.settings = ["fake_hosts": ["count": "2"]]
        let configured = cloud
        try await configured.run { plane, api in
            // Placement dispatches its own table behind one catch-all: its entries stand in for it.
            let routes = try plane.makeRouter().routes.map { RouteTemplate(method: $0.method.rawValue, template: "\($0.path)") }
                .filter { $0.service != "placement" } + PlacementRoutes.routeTemplates.map { RouteTemplate(method: $0.method, template: $0.path) }
            if environment["NIMBUS_BAD_INPUT_LIST"] != nil {
                for route in routes { print("route: \(route)") }
                return
            }
            let callers = try await Callers.make(api, adminPassword: configured.adminPassword)
            let fixtures = try await Fixtures.make(api, callers)
            var run = BadInputRun(api: api, callers: callers, fixtures: fixtures, seed: seed,
                                  queryNames: QueryNames.scan(), progressFile: Self.progressFile)
            let selected = routes.filter { only == nil || $0.description.contains(only!) }
            // Deletions last, so the other routes meet the fixtures while they exist.
            let ordered = selected.filter { $0.method != "DELETE" } + selected.filter { $0.method == "DELETE" }
            for route in ordered { try await run.exercise(route) }
            try await run.checkStillServing()

            print("bad-input: \(routes.count) routes registered, \(ordered.count) exercised (\(run.routesWithRealIDs) with real ids), "
                  + "\(run.requests) requests, \(run.bodyFields) body fields learned, seed \(seed)")
            for (status, count) in run.statusCounts.sorted(by: { $0.key < $1.key }) { print("bad-input:   \(status): \(count)") }
            if !run.failures.isEmpty {
                for failure in run.failures.prefix(60) { print("bad-input FAILURE: \(failure)") }
                XCTFail("\(run.failures.count) bad-input failures (first ones printed above); seed \(seed)")
            }
        }
    }

    static var progressFile: String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let logs = root.appendingPathComponent(".build-logs")
        try? FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        return logs.appendingPathComponent("bad-input-current.txt").path
    }
}

/// The three callers: the cloud's admin, a member of one project and a reader of another.
struct Callers: Sendable {
    let admin: String
    let member: String
    let reader: String
    let adminProject: String
    let readerProject: String

    var all: [(name: String, token: String)] { [("admin", admin), ("member", member), ("reader", reader)] }

    static func make(_ api: API, adminPassword: String) async throws -> Callers {
        let admin = try await api.token(user: "admin", password: adminPassword)
        let member = try await api.projectUser(admin: admin, name: "fuzz-member", role: "member")
        let reader = try await api.projectUser(admin: admin, name: "fuzz-reader", role: "reader")
        let project = try await api.call(.get, "/identity/v3/auth/tokens", token: admin, headers: ["X-Subject-Token": admin])
        return Callers(admin: admin, member: member.token, reader: reader.token,
                       adminProject: project.json["token"]?["project"]?["id"]?.stringValue ?? "", readerProject: reader.project)
    }
}

/// Query parameter names each service reads, found in its sources (`query["limit"]`,
/// `request.query("marker")`, `queryValues("tag")`), plus the paging and sorting names every
/// OpenStack list takes.
enum QueryNames {
    static let common = ["limit", "marker", "offset", "sort_key", "sort_dir", "sort", "fields", "all_tenants", "all_projects",
                         "project_id", "changes-since", "name", "id", "status"]

    /// Service path prefix → names.
    static func scan() -> [String: [String]] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let modules = ["identity": "Identity", "image": "Image", "placement": "Placement", "compute": "Compute",
                       "networking": "Networking", "compute-agent": "Compute"]
        let pattern = try! NSRegularExpression(pattern: #"[qQ]uery\w*(?:\[|\(|\.\w+\()\s*"([A-Za-z0-9_:.\-]+)""#)
        var out: [String: [String]] = [:]
        for (prefix, module) in modules {
            var names = Set(common)
            let dir = root.appendingPathComponent("Sources/\(module)")
            let files = FileManager.default.enumerator(atPath: dir.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") } ?? []
            for file in files {
                guard let text = try? String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8) else { continue }
                for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                    if let range = Range(match.range(at: 1), in: text) { names.insert(String(text[range])) }
                }
            }
            out[prefix] = names.sorted()
        }
        return out
    }
}

/// Nova's server actions, found where `ComputeService.action` dispatches on them, so a new
/// action is fuzzed the day it is added.
enum ActionNames {
    static let compute: [String] = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let file = root.appendingPathComponent("Sources/Compute/Service/ComputeService+Actions.swift")
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return [] }
        let caseLine = try! NSRegularExpression(pattern: #"^\s*case ("[A-Za-z-]+"(?:,\s*"[A-Za-z-]+")*):"#, options: [.anchorsMatchLines])
        let name = try! NSRegularExpression(pattern: #""([A-Za-z-]+)""#)
        var names: [String] = []
        for line in caseLine.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            guard let range = Range(line.range(at: 1), in: text) else { continue }
            let list = String(text[range])
            for match in name.matches(in: list, range: NSRange(list.startIndex..., in: list)) {
                if let r = Range(match.range(at: 1), in: list) { names.append(String(list[r])) }
            }
        }
        return Array(Set(names)).sorted()
    }()
}

/// The requests of one run and what they answered.
struct BadInputRun {
    let api: API
    let callers: Callers
    let fixtures: Fixtures
    var random: SeededGenerator
    let queryNames: [String: [String]]
    let progressFile: String

    var requests = 0
    var routesWithRealIDs = 0
    var bodyFields = 0
    var statusCounts: [Int: Int] = [:]
    var failures: [String] = []

    init(api: API, callers: Callers, fixtures: Fixtures, seed: UInt64, queryNames: [String: [String]], progressFile: String) {
        self.api = api
        self.callers = callers
        self.fixtures = fixtures
        self.random = SeededGenerator(seed: seed)
        self.queryNames = queryNames
        self.progressFile = progressFile
    }

    mutating func exercise(_ route: RouteTemplate) async throws {
        try? "\(route)\n".write(toFile: progressFile, atomically: false, encoding: .utf8)
        let realPath = route.path { collection, _ in fixtures.id(for: collection, service: route.service) ?? BadValues.ids[0] }
        if route.parameterCount > 0, realPath != route.path({ _, _ in BadValues.ids[0] }) { routesWithRealIDs += 1 }

        // Path parameters: real ids, then each malformed one in every position.
        var paths = [realPath]
        if route.parameterCount > 0 {
            for bad in BadValues.ids { paths.append(route.path { _, _ in bad }) }
        }
        for (index, path) in paths.enumerated() {
            for caller in index == 0 ? callers.all : random.sample(callers.all, 1) {
                try await send(route, path, caller: caller, body: route.takesBody ? "{}" : nil)
            }
        }

        // Query parameters, on reads.
        if route.method == "GET" || route.method == "HEAD" {
            let names = queryNames[route.service] ?? QueryNames.common
            for name in QueryNames.common {
                for value in random.sample(BadValues.query, 8) {
                    try await send(route, realPath + "?" + Self.query(name, value), caller: random.sample(callers.all, 1)[0], body: nil)
                }
            }
            for name in random.sample(names.filter { !QueryNames.common.contains($0) }, 40) {
                for value in random.sample(BadValues.query, 3) {
                    try await send(route, realPath + "?" + Self.query(name, value), caller: random.sample(callers.all, 1)[0], body: nil)
                }
            }
        }

        guard route.takesBody else { return }
        // Whole bodies of the wrong shape and content types, from each caller.
        for body in BadValues.bodies {
            try await send(route, realPath, caller: random.sample(callers.all, 1)[0], body: body)
        }
        for contentType in BadValues.contentTypes {
            try await send(route, realPath, caller: (name: "admin", token: callers.admin), body: "{\"a\":1}", contentType: contentType)
        }
        // Each field the handler reads, set to each bad value, in an otherwise plausible body;
        // for Nova's action routes, once per action (the body's one key names it).
        if route.template.hasSuffix("/action") && route.service == "compute" {
            for action in ActionNames.compute {
                try await mutateFields(route, realPath, start: .object([action: .object([:])]), always: [action: .object])
            }
        } else {
            try await mutateFields(route, realPath, start: .object([:]), always: [:])
        }
    }

    mutating func mutateFields(_ route: RouteTemplate, _ realPath: String, start: JSON, always: [String: JSONFieldLog.Kind]) async throws {
        var (sample, fields) = try await learnBody(route, realPath, start: start)
        fields.merge(always) { learned, _ in learned }
        bodyFields += fields.count
        for (field, kind) in fields.sorted(by: { $0.key < $1.key }) {
            let steps = PathStep.parse(field)
            let values = BadValues.forField(kind)
            for value in values {
                try await send(route, realPath, caller: (name: "admin", token: callers.admin), body: sample.setting(steps, to: value).serialized())
            }
            for value in random.sample(values, 3) {
                try await send(route, realPath, caller: random.sample(callers.all, 1)[0], body: sample.setting(steps, to: value).serialized())
            }
        }
    }

    static func query(_ name: String, _ value: String) -> String {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_.~:,"))
        return "\(name.addingPercentEncoding(withAllowedCharacters: allowed) ?? name)=\(value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")"
    }

    /// A body that gets as far into the handler as plausible values take it, and the fields the
    /// handler asked for on the way: starting from `{}`, each round adds the fields the last
    /// request asked for that the body lacks.
    mutating func learnBody(_ route: RouteTemplate, _ path: String, start: JSON) async throws -> (JSON, [String: JSONFieldLog.Kind]) {
        var body = start
        var known: [String: JSONFieldLog.Kind] = [:]
        for _ in 0..<8 {
            let log = JSONFieldLog()
            let text = body.serialized()
            try await JSONFieldLog.$current.withValue(log) {
                try await send(route, path, caller: (name: "admin", token: callers.admin), body: text)
            }
            let new = log.fields.filter { known[$0.key] == nil }
            if new.isEmpty { break }
            for (field, kind) in new.sorted(by: { $0.key < $1.key }) {
                known[field] = kind
                let steps = PathStep.parse(field)
                if body.value(at: steps) == nil || body.value(at: steps) == .null {
                    body = body.setting(steps, to: fixtures.plausible(field: field, kind: kind))
                }
            }
        }
        return (body, known)
    }

    mutating func send(_ route: RouteTemplate, _ path: String, caller: (name: String, token: String), body: String?,
                       contentType: String = "application/json") async throws {
        requests += 1
        var headers = ["Accept": "application/json"]
        if !contentType.isEmpty { headers["Content-Type"] = contentType }
        if let versions = BadValues.microversions[route.service] {
            // Mostly the newest version, so every route is reachable; now and then another or a bad one.
            let choice = random.next() % 10
            headers["OpenStack-API-Version"] = choice < 7 ? "\(route.service) latest" : versions[Int(random.next() % UInt64(versions.count))]
        }
        let method = HTTPRequest.Method(route.method) ?? .get
        let reply: API.Reply
        do {
            reply = try await api.call(method, path, token: caller.token, raw: body, headers: headers)
        } catch {
            failures.append("\(route.method) \(path.prefix(200)) as \(caller.name): the client failed: \(error)")
            return
        }
        statusCounts[reply.status, default: 0] += 1
        let shown = "\(route.method) \(path.prefix(200)) as \(caller.name) body \(String((body ?? "-").prefix(160)).debugDescription)"
        if reply.status >= 500 && reply.status != 501 {
            failures.append("\(shown) → \(reply.status) \(reply.text.prefix(300))")
        } else if reply.status >= 400, route.method != "HEAD", let problem = ErrorShape.problem(service: route.service, reply) {
            failures.append("\(shown) → \(reply.status), \(problem): \(reply.text.prefix(300))")
        }
    }

    /// The cloud still issues tokens and lists servers, networks and images.
    mutating func checkStillServing() async throws {
        let token = try await api.call(.get, "/identity/v3/auth/tokens", token: callers.admin, headers: ["X-Subject-Token": callers.admin])
        XCTAssertEqual(token.status, 200, token.text)
        for path in ["/compute/v2.1/servers", "/networking/v2.0/networks", "/image/v2/images", "/placement/resource_providers"] {
            let reply = try await api.call(.get, path, token: callers.admin)
            XCTAssertEqual(reply.status, 200, "\(path): \(reply.text)")
        }
    }
}

/// Each service's error body, as `APIError.response(style:)` renders it.
enum ErrorShape {
    static func problem(service: String, _ reply: API.Reply) -> String? {
        let json = reply.json
        let keystone = json["error"]?["code"]?.intValue == Int64(reply.status) && json["error"]?["message"]?.stringValue != nil
        if reply.status == 401 { return keystone ? nil : "not Keystone's error body" }
        switch service {
        case "identity":
            return keystone ? nil : "not Keystone's error body"
        case "compute", "compute-agent":
            guard let object = json.objectValue, object.count == 1, let fault = object.values.first,
                  fault["code"]?.intValue == Int64(reply.status), fault["message"]?.stringValue != nil else { return "not Nova's fault body" }
            return nil
        case "networking":
            return json["NeutronError"]?["message"]?.stringValue != nil ? nil : "not a NeutronError body"
        case "placement":
            return json["errors"]?.arrayValue?.first?["status"]?.intValue == Int64(reply.status) ? nil : "not placement's errors body"
        case "image":
            return json["message"]?.stringValue != nil && json["code"]?.stringValue?.hasPrefix("\(reply.status)") == true
                ? nil : "not Glance's error body"
        default:
            return nil
        }
    }
}
