import XCTest
@testable import NimbusCore

final class PolicyTests: XCTestCase {
    private let member = PolicyCredentials(roles: ["Member"], attributes: ["user_id": "u1", "project_id": "p1"])

    private func makeEngine(_ rules: [String: String], overrides: [String: String] = [:]) throws -> PolicyEngine {
        try PolicyEngine(defaults: rules, overrides: overrides)
    }

    /// Whether `rule`, registered as the action "test", passes.
    private func allows(_ rule: String, roles: [String] = [], attributes: [String: String] = [:],
                        target: [String: String] = [:], others: [String: String] = [:]) throws -> Bool {
        try makeEngine(others.merging(["test": rule]) { $1 })
            .enforce("test", credentials: PolicyCredentials(roles: roles, attributes: attributes), target: target)
    }

    private func assertParseError(_ rule: String, mentioning detail: String? = nil,
                                  file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try makeEngine(["identity:bad": rule]), "\"\(rule)\" should not parse", file: file, line: line) { error in
            guard let policyError = error as? PolicyError else {
                return XCTFail("expected PolicyError, got \(error)", file: file, line: line)
            }
            XCTAssertTrue(policyError.description.contains("identity:bad"), policyError.description, file: file, line: line)
            if let detail {
                XCTAssertTrue(policyError.description.contains(detail), policyError.description, file: file, line: line)
            }
        }
    }

    // MARK: Checks

    func testAlwaysAllowAndDeny() throws {
        XCTAssertTrue(try allows("@"))
        XCTAssertTrue(try allows(""))
        XCTAssertFalse(try allows("!"))
        XCTAssertFalse(try allows("!", roles: ["admin"]))
    }

    func testRoleCheckIsCaseInsensitive() throws {
        XCTAssertTrue(try allows("role:admin", roles: ["reader", "admin"]))
        XCTAssertTrue(try allows("role:Admin", roles: ["ADMIN"]))
        XCTAssertFalse(try allows("role:admin", roles: ["reader"]))
        XCTAssertFalse(try allows("role:admin"))
    }

    func testRoleCheckWithTargetSubstitution() throws {
        XCTAssertTrue(try allows("role:%(role_name)s", roles: ["reader"], target: ["role_name": "Reader"]))
        XCTAssertFalse(try allows("role:%(role_name)s", roles: ["reader"]))
    }

    func testGenericLiteralCheck() throws {
        XCTAssertTrue(try allows("system_scope:all", attributes: ["system_scope": "all"]))
        XCTAssertFalse(try allows("system_scope:all", attributes: ["system_scope": "ALL"]))
        XCTAssertFalse(try allows("system_scope:all", attributes: ["project_id": "p1"]))
        // Only the first ':' separates kind from value.
        XCTAssertTrue(try allows("scope:compute:admin", attributes: ["scope": "compute:admin"]))
    }

    func testQuotedLiterals() throws {
        XCTAssertTrue(try allows("name:'foo'", attributes: ["name": "foo"]))
        XCTAssertTrue(try allows("name:\"foo\"", attributes: ["name": "foo"]))
        XCTAssertTrue(try allows("name:'two words' and role:a", roles: ["a"], attributes: ["name": "two words"]))
        XCTAssertTrue(try allows("(name:'a)')", attributes: ["name": "a)"]))
        // A quoted value is literal: no substitution, no True/False.
        XCTAssertTrue(try allows("name:'%(x)s'", attributes: ["name": "%(x)s"], target: ["x": "y"]))
        XCTAssertFalse(try allows("flag:'True'", attributes: ["flag": "true"]))
        // oslo.policy's literal-on-the-left form compares with the target.
        XCTAssertTrue(try allows("'member':%(role.name)s", target: ["role.name": "member"]))
        XCTAssertFalse(try allows("'member':%(role.name)s", target: ["role.name": "admin"]))
    }

    func testTrueAndFalseConstants() throws {
        XCTAssertTrue(try allows("is_admin:True", attributes: ["is_admin": "true"]))
        XCTAssertTrue(try allows("is_admin:True", attributes: ["is_admin": "TRUE"]))
        XCTAssertTrue(try allows("is_admin:true", attributes: ["is_admin": "True"]))
        XCTAssertFalse(try allows("is_admin:True", attributes: ["is_admin": "false"]))
        XCTAssertFalse(try allows("is_admin:True"))
        XCTAssertTrue(try allows("enabled:False", attributes: ["enabled": "false"]))
        XCTAssertTrue(try allows("True:%(user.enabled)s", target: ["user.enabled": "true"]))
        XCTAssertFalse(try allows("True:%(user.enabled)s", target: ["user.enabled": "false"]))
    }

    func testTargetSubstitution() throws {
        let rule = "project_id:%(project_id)s"
        XCTAssertTrue(try allows(rule, attributes: ["project_id": "p1"], target: ["project_id": "p1"]))
        XCTAssertFalse(try allows(rule, attributes: ["project_id": "p1"], target: ["project_id": "p2"]))
        XCTAssertFalse(try allows(rule, attributes: ["project_id": "p1"]), "missing target key")
        XCTAssertFalse(try allows(rule, target: ["project_id": "p1"]), "missing credential")
        XCTAssertTrue(try allows("user_id:%(target.user.id)s", attributes: ["user_id": "u1"],
                                 target: ["target.user.id": "u1"]))
        XCTAssertTrue(try allows("scope:%(a)s/%(b)s", attributes: ["scope": "x/y"], target: ["a": "x", "b": "y"]))
        XCTAssertFalse(try allows("scope:%(a)s/%(b)s", attributes: ["scope": "x/"], target: ["a": "x"]))
        XCTAssertTrue(try allows("(project_id:%(project_id)s)", attributes: ["project_id": "p1"],
                                 target: ["project_id": "p1"]))
    }

    // MARK: Operators

    func testOperatorPrecedence() throws {
        // not > and > or: "a or b and c" is "a or (b and c)".
        let rule = "role:a or role:b and role:c"
        XCTAssertTrue(try allows(rule, roles: ["a"]))
        XCTAssertFalse(try allows(rule, roles: ["b"]))
        XCTAssertTrue(try allows(rule, roles: ["b", "c"]))

        // "not a and b" is "(not a) and b".
        XCTAssertTrue(try allows("not role:a and role:b", roles: ["b"]))
        XCTAssertFalse(try allows("not role:a and role:b", roles: ["a", "b"]))
        XCTAssertFalse(try allows("not role:a and role:b"))

        XCTAssertEqual(try PolicyRule.parse("role:a or role:b and not role:c", name: "x"),
                       .or([.role(.literal("a")), .and([.role(.literal("b")), .not(.role(.literal("c")))])]))
    }

    func testParenthesesAndKeywordCase() throws {
        let rule = "(role:a or role:b) and role:c"
        XCTAssertFalse(try allows(rule, roles: ["a"]))
        XCTAssertTrue(try allows(rule, roles: ["a", "c"]))
        XCTAssertTrue(try allows("not (role:a or role:b)", roles: ["c"]))
        XCTAssertFalse(try allows("not (role:a or role:b)", roles: ["b"]))
        XCTAssertTrue(try allows("not not role:a", roles: ["a"]))
        XCTAssertTrue(try allows("((role:a)) AND (role:b OR role:c)", roles: ["a", "c"]))
        XCTAssertTrue(try allows("(role:a\tor\nrole:b)", roles: ["b"]))
    }

    // MARK: Named rules

    func testRuleReferences() throws {
        let engine = try makeEngine([
            "admin_required": "role:admin or is_admin:True",
            "owner": "user_id:%(user_id)s",
            "admin_or_owner": "rule:admin_required or rule:owner",
            "identity:get_user": "rule:admin_or_owner",
            "identity:broken": "rule:no_such_rule or role:nobody",
        ])
        XCTAssertTrue(engine.enforce("identity:get_user", credentials: member, target: ["user_id": "u1"]))
        XCTAssertFalse(engine.enforce("identity:get_user", credentials: member, target: ["user_id": "u2"]))
        let admin = PolicyCredentials(roles: ["admin"], attributes: [:])
        XCTAssertTrue(engine.enforce("identity:get_user", credentials: admin, target: [:]))
        XCTAssertFalse(engine.enforce("identity:broken", credentials: admin, target: [:]))
    }

    func testRecursionIsBounded() throws {
        let engine = try makeEngine([
            "self": "rule:self",
            "self_or_admin": "rule:self_or_admin or role:admin",
            "ping": "rule:pong",
            "pong": "rule:ping or role:reader",
        ])
        let admin = PolicyCredentials(roles: ["admin"], attributes: [:])
        let reader = PolicyCredentials(roles: ["reader"], attributes: [:])
        XCTAssertFalse(engine.enforce("self", credentials: admin, target: [:]))
        XCTAssertTrue(engine.enforce("self_or_admin", credentials: admin, target: [:]))
        XCTAssertFalse(engine.enforce("self_or_admin", credentials: reader, target: [:]))
        XCTAssertTrue(engine.enforce("ping", credentials: reader, target: [:]))
        XCTAssertFalse(engine.enforce("ping", credentials: admin, target: [:]))
    }

    func testUnknownActionUsesDefaultRuleOrDenies() throws {
        let withoutDefault = try makeEngine(["identity:get_user": "@"])
        XCTAssertFalse(withoutDefault.enforce("identity:unknown", credentials: member, target: [:]))

        let withDefault = try makeEngine(["default": "role:member"])
        XCTAssertTrue(withDefault.enforce("identity:unknown", credentials: member, target: [:]))
        XCTAssertFalse(withDefault.enforce("identity:unknown", credentials: PolicyCredentials(roles: [], attributes: [:]),
                                           target: [:]))
        XCTAssertNil(withDefault.rule(for: "identity:unknown"))
    }

    func testUnknownRuleReferenceDeniesEvenWithDefault() throws {
        // oslo.policy would evaluate "default" here; a typo in a reference must not grant access.
        let engine = try makeEngine(["default": "@", "identity:get_user": "rule:admin_requierd"])
        XCTAssertFalse(engine.enforce("identity:get_user", credentials: member, target: [:]))
    }

    func testOverrideReplacesDefaultAndAddsRules() throws {
        let engine = try makeEngine(
            ["identity:create_user": "rule:admin_required", "admin_required": "role:admin"],
            overrides: ["admin_required": "role:admin or role:superuser", "identity:new": "role:member"])
        let superuser = PolicyCredentials(roles: ["superuser"], attributes: [:])
        XCTAssertTrue(engine.enforce("identity:create_user", credentials: superuser, target: [:]))
        XCTAssertTrue(engine.enforce("identity:new", credentials: member, target: [:]))
        XCTAssertEqual(engine.rule(for: "admin_required"), "role:admin or role:superuser")
        XCTAssertEqual(engine.rule(for: "identity:create_user"), "rule:admin_required")
        XCTAssertNil(engine.rule(for: "identity:missing"))
    }

    func testOverrideDoesNotParseReplacedDefault() throws {
        // Only effective rules are parsed, so an operator can replace a default that no longer parses.
        XCTAssertNoThrow(try makeEngine(["identity:x": "role:"], overrides: ["identity:x": "role:admin"]))
    }

    // MARK: Parse errors

    func testMalformedRulesThrowNamingTheRule() {
        assertParseError("role:admin or", mentioning: "'or'")
        assertParseError("or role:admin")
        assertParseError("role:admin and and role:b")
        assertParseError("not")
        assertParseError("(role:admin", mentioning: "missing ')'")
        assertParseError("role:admin)", mentioning: "unexpected ')'")
        assertParseError("()")
        assertParseError("role:a role:b")
        assertParseError("admin", mentioning: "not a check")
        assertParseError("role:")
        assertParseError(":admin")
        assertParseError("rule:")
        assertParseError("name:'unterminated", mentioning: "unterminated quote")
        assertParseError("name:'a'b")
        assertParseError("project_id:%(project_id", mentioning: "%(key)s")
        assertParseError("project_id:%()s")
        assertParseError("   ")
        assertParseError("http://example.com/check")
    }

    // MARK: Policy files

    private func temporaryFile(_ name: String, _ contents: String) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("policy-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent(name)
        try contents.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    private func assertLoadError(_ contents: String, name: String = "policy.yaml", mentioning detail: String,
                                 file: StaticString = #filePath, line: UInt = #line) throws {
        let path = try temporaryFile(name, contents)
        XCTAssertThrowsError(try PolicyEngine.loadOverrides(path: path), file: file, line: line) { error in
            let message = String(describing: error)
            XCTAssertTrue(error is PolicyError, message, file: file, line: line)
            XCTAssertTrue(message.contains(path), message, file: file, line: line)
            XCTAssertTrue(message.contains(detail), message, file: file, line: line)
        }
    }

    func testLoadOverridesFromYAML() throws {
        let path = try temporaryFile("policy.yaml", """
            ---
            # Operator overrides

            "identity:create_user": "role:admin or role:superuser"
            identity:list_users: 'rule:admin_required'
            identity:get_user: role:reader or user_id:%(user_id)s   # trailing comment
            'identity:quoted''key': "say \\"hi\\""
            "identity:spaced" : '@'
            identity:hash: name:a#b
            identity:empty:
            #"identity:commented_out": "!"
            """)
        let overrides = try PolicyEngine.loadOverrides(path: path)
        XCTAssertEqual(overrides, [
            "identity:create_user": "role:admin or role:superuser",
            "identity:list_users": "rule:admin_required",
            "identity:get_user": "role:reader or user_id:%(user_id)s",
            "identity:quoted'key": "say \"hi\"",
            "identity:spaced": "@",
            "identity:hash": "name:a#b",
            "identity:empty": "",
        ])
    }

    func testLoadOverridesFromJSON() throws {
        let path = try temporaryFile("policy.json", """
            {
                "identity:create_user": "role:admin or role:superuser",
                "admin_required": "role:admin"
            }
            """)
        XCTAssertEqual(try PolicyEngine.loadOverrides(path: path), [
            "identity:create_user": "role:admin or role:superuser",
            "admin_required": "role:admin",
        ])
    }

    func testLoadedOverridesDriveEnforcement() throws {
        let path = try temporaryFile("policy.yaml", "admin_required: role:admin or role:superuser\n")
        let engine = try PolicyEngine(
            defaults: ["admin_required": "role:admin", "identity:create_user": "rule:admin_required"],
            overrides: PolicyEngine.loadOverrides(path: path))
        let superuser = PolicyCredentials(roles: ["superuser"], attributes: [:])
        XCTAssertTrue(engine.enforce("identity:create_user", credentials: superuser, target: [:]))
    }

    func testLoadOverridesMissingFileIsEmpty() throws {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("no-such-policy-\(UUID().uuidString).yaml").path
        XCTAssertEqual(try PolicyEngine.loadOverrides(path: path), [:])
    }

    func testLoadOverridesRejectsDirectory() throws {
        let path = FileManager.default.temporaryDirectory.path
        XCTAssertThrowsError(try PolicyEngine.loadOverrides(path: path)) { error in
            XCTAssertTrue(String(describing: error).contains("directory"), String(describing: error))
        }
    }

    func testLoadOverridesEmptyOrCommentOnlyFileIsEmpty() throws {
        XCTAssertEqual(try PolicyEngine.loadOverrides(path: temporaryFile("empty.yaml", "")), [:])
        XCTAssertEqual(try PolicyEngine.loadOverrides(path: temporaryFile("comments.yaml", "# a\n\n#\"x\": \"@\"\n")), [:])
    }

    func testLoadOverridesRejectsMalformedFiles() throws {
        try assertLoadError("a: '@'\nb: '@'\nnot a mapping\n", mentioning: "line 3")
        try assertLoadError("identity:get_user:role:admin\n", mentioning: "line 1")
        try assertLoadError("identity:\n  get_user: role:admin\n", mentioning: "line 2")
        try assertLoadError("- role:admin\n", mentioning: "line 1")
        try assertLoadError("a: \"unterminated\n", mentioning: "line 1")
        try assertLoadError("a: '@' extra\n", mentioning: "line 1")
        try assertLoadError("a: @\n", mentioning: "quoted")
        try assertLoadError("a: '@'\n\na: '!'\n", mentioning: "line 3")
        try assertLoadError("{\"a\": \"@\",\n \"b\": [[\"role:admin\"]]}", name: "policy.json", mentioning: "line 2")
        try assertLoadError("{\"a\": \"@\",\n \"b\": \"@\"\n \"c\": \"@\"}", name: "policy.json", mentioning: "invalid JSON")
        try assertLoadError("[\"role:admin\"]\n", name: "policy.json", mentioning: "line 1")
    }
}
