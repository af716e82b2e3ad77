import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import HTTPTypes
import NimbusCore
import NimbusServer
import NimbusStore
import XCTest

/// A control plane on a fresh data directory and a fresh database, driven through the real
/// router in-process. Every API test runs on SQLite, and again on PostgreSQL when
/// `NIMBUS_TEST_POSTGRES_URL` names a server (the test command starts one).
public struct TestCloud: Sendable {
    public enum Engine: String, CaseIterable, Sendable { case sqlite, postgres }

    public let dataDir: String
    public let databaseURL: String
    public let adminPassword = "admin-secret"
    /// nimbus.conf settings for this cloud: section → option → value.
    public var settings: [String: [String: String]] = [:]

    public static var postgresURL: String? {
        let url = ProcessInfo.processInfo.environment["NIMBUS_TEST_POSTGRES_URL"]
        return (url?.isEmpty ?? true) ? nil : url
    }

    /// The engines this run covers.
    public static var engines: [Engine] { postgresURL == nil ? [.sqlite] : [.sqlite, .postgres] }

    /// A new cloud; on PostgreSQL the schema is emptied first so each test starts clean.
    public static func make(_ engine: Engine) async throws -> TestCloud {
        let dir = NSTemporaryDirectory() + "nimbus-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        switch engine {
        case .sqlite:
            return TestCloud(dataDir: dir, databaseURL: "sqlite://\(dir)/nimbus.db")
        case .postgres:
            let url = postgresURL!
            let db = try await DatabaseFactory.open(url: url, logger: Logger(label: "test"))
            try await db.execute("DROP SCHEMA public CASCADE")
            try await db.execute("CREATE SCHEMA public")
            await db.close()
            return TestCloud(dataDir: dir, databaseURL: url)
        }
    }

    /// The first column of every row a query returns, as text, read straight from the database.
    public func rawColumn(_ sql: String) async throws -> [String] {
        let db = try await DatabaseFactory.open(url: databaseURL, logger: Logger(label: "test"))
        let rows = try await db.query(sql, [])
        await db.close()
        return rows.map { $0.optionalString($0.columns[0]) ?? "" }
    }

    public func config() -> NimbusConfig {
        var config = NimbusConfig()
        config.set("database", "connection", databaseURL)
        // bcrypt's minimum cost keeps tests fast; the cost itself is covered by the benchmark.
        config.set("identity", "password_hash_rounds", "4")
        for (section, options) in settings {
            for (name, value) in options { config.set(section, name, value) }
        }
        return config
    }

    public func start() async throws -> NimbusControlPlane {
        var logger = Logger(label: "nimbus-test")
        logger.logLevel = .warning
        let plane = try await NimbusControlPlane(dataDir: dataDir, config: config(), publicURL: "http://localhost", logger: logger)
        try await plane.bootstrap(adminPassword: adminPassword)
        return plane
    }

    /// Starts the control plane and runs `body` against its router.
    public func run(_ body: @Sendable (API) async throws -> Void) async throws {
        try await run { _, api in try await body(api) }
    }

    /// Starts the control plane and runs `body` against its router, handing it the plane too
    /// for what other services call in-process (such as `ProjectLimitLookup`).
    /// Fake compute hosts (`[fake_hosts] count` in `settings`) run for the duration of the body.
    public func run(_ body: @Sendable (NimbusControlPlane, API) async throws -> Void) async throws {
        let plane = try await start()
        let fleet = try plane.fakeHostFleet()
        let hosts = Task { await fleet.runAgents() }
        let app = Application(router: try plane.makeRouter(), server: .nimbusHTTP1)
        do {
            try await Self.waitForInventory(plane, hosts: fleet.agents.count)
            try await app.test(.router) { client in try await body(plane, API(client: client)) }
        } catch {
            hosts.cancel()
            await hosts.value
            await plane.close()
            throw error
        }
        hosts.cancel()
        await hosts.value
        await plane.close()
    }
}

extension TestCloud {
    /// Waits (up to 10 s) until `hosts` compute hosts have inventory in placement, so a body
    /// that boots at once does not race the fake hosts' registration into "No valid host".
    static func waitForInventory(_ plane: NimbusControlPlane, hosts: Int) async throws {
        guard hosts > 0 else { return }
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let ready = try await plane.db.query("SELECT DISTINCT provider_uuid FROM placement_inventory", [])
            if ready.count >= hosts { return }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// A thin JSON client over the test client.
public struct API: Sendable {
    public let client: any TestClientProtocol

    public init(client: any TestClientProtocol) { self.client = client }

    public struct Reply: Sendable {
        public let status: Int
        public let headers: HTTPFields
        public let text: String
        public let bytes: [UInt8]
        public var json: JSON { (try? JSON.parse(text)) ?? .null }
        public var subjectToken: String? { headers[HTTPField.Name("X-Subject-Token")!] }
    }

    @discardableResult
    public func call(_ method: HTTPRequest.Method, _ path: String, token: String? = nil, body: JSON? = nil, raw: String? = nil,
                     bytes: [UInt8]? = nil, headers extra: [String: String] = [:]) async throws -> Reply {
        var headers: HTTPFields = [.contentType: bytes == nil ? "application/json" : "application/octet-stream"]
        if let token { headers[HTTPField.Name("X-Auth-Token")!] = token }
        for (k, v) in extra { headers[HTTPField.Name(k)!] = v }
        let payload = bytes.map { ByteBuffer(bytes: $0) } ?? (raw ?? body?.serialized()).map { ByteBuffer(string: $0) }
        let response = try await client.execute(uri: path, method: method, headers: headers, body: payload)
        return Reply(status: Int(response.status.code), headers: response.headers, text: String(buffer: response.body),
                     bytes: Array(response.body.readableBytesView))
    }

    public static func passwordAuth(user: String, password: String, domain: String = "Default", project: String? = nil, projectID: String? = nil) -> JSON {
        var auth: [String: JSON] = ["identity": ["methods": ["password"],
                                                "password": ["user": ["name": .string(user), "domain": ["name": .string(domain)],
                                                                      "password": .string(password)]]]]
        if let project { auth["scope"] = ["project": ["name": .string(project), "domain": ["name": .string(domain)]]] }
        if let projectID { auth["scope"] = ["project": ["id": .string(projectID)]] }
        return ["auth": .object(auth)]
    }

    /// Issues a token or fails the test with the server's answer.
    public func token(user: String, password: String, project: String? = "admin", projectID: String? = nil,
               file: StaticString = #filePath, line: UInt = #line) async throws -> String {
        let reply = try await call(.post, "/identity/v3/auth/tokens",
                                   body: Self.passwordAuth(user: user, password: password, project: projectID == nil ? project : nil, projectID: projectID))
        XCTAssertEqual(reply.status, 201, reply.text, file: file, line: line)
        return try XCTUnwrap(reply.subjectToken, file: file, line: line)
    }

    public func adminToken(_ cloud: TestCloud) async throws -> String {
        try await token(user: "admin", password: cloud.adminPassword)
    }

    /// Creates a resource and returns its id, failing the test on anything but 201.
    public func create(_ collection: String, _ key: String, _ fields: JSON, token: String, file: StaticString = #filePath, line: UInt = #line) async throws -> String {
        let reply = try await call(.post, "/identity/v3/\(collection)", token: token, body: [key: fields])
        XCTAssertEqual(reply.status, 201, reply.text, file: file, line: line)
        return try XCTUnwrap(reply.json[key]?["id"]?.stringValue, reply.text, file: file, line: line)
    }

    public func roleID(_ name: String, token: String) async throws -> String {
        let reply = try await call(.get, "/identity/v3/roles?name=\(name)", token: token)
        return try XCTUnwrap(reply.json["roles"]?.arrayValue?.first?["id"]?.stringValue, reply.text)
    }
}

/// Asserts Keystone's error body and status.
public func assertKeystoneError(_ reply: API.Reply, _ status: Int, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(reply.status, status, reply.text, file: file, line: line)
    let error = reply.json["error"]
    XCTAssertEqual(error?["code"]?.intValue, Int64(status), reply.text, file: file, line: line)
    XCTAssertNotNil(error?["title"]?.stringValue, reply.text, file: file, line: line)
    XCTAssertNotNil(error?["message"]?.stringValue, reply.text, file: file, line: line)
}

extension XCTestCase {
    /// Runs the body once per engine, each on a new cloud.
    public func onEachEngine(settings: [String: [String: String]] = [:], _ body: @Sendable (TestCloud, API) async throws -> Void) async throws {
        try await onEachEngine(settings: settings) { cloud, _, api in try await body(cloud, api) }
    }

    /// Runs the body once per engine, each on a new cloud, with its running control plane.
    public func onEachEngine(settings: [String: [String: String]] = [:],
                             _ body: @Sendable (TestCloud, NimbusControlPlane, API) async throws -> Void) async throws {
        for engine in TestCloud.engines {
            var cloud = try await TestCloud.make(engine)
            cloud.settings = settings
            let configured = cloud
            try await configured.run { plane, api in try await body(configured, plane, api) }
        }
    }
}

extension API {
    /// A new project with a new user holding `role` on it, and that user's project token.
    public func projectUser(admin: String, name: String, role: String = "member") async throws -> (user: String, project: String, token: String) {
        let project = try await create("projects", "project", ["name": .string("p-\(name)")], token: admin)
        let user = try await create("users", "user", ["name": .string(name), "password": .string("pw-\(name)")], token: admin)
        let roleID = try await self.roleID(role, token: admin)
        let granted = try await call(.put, "/identity/v3/projects/\(project)/users/\(user)/roles/\(roleID)", token: admin)
        XCTAssertEqual(granted.status, 204, granted.text)
        return (user, project, try await token(user: name, password: "pw-\(name)", project: "p-\(name)"))
    }
}
