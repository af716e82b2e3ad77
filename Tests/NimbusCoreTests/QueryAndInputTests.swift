import Testing
@testable import NimbusCore

/// Typed body access: wrong types and missing fields become 400s that name the field.
@Suite struct JSONInputTests {
    @Test func wrongTypeNamesTheField() throws {
        let input = try JSONInput(body: ["user": ["name": 5, "enabled": "yes"]], key: "user")
        #expect(throws: APIError.self) { try input.string("name") }
        do {
            _ = try input.bool("enabled")
            Issue.record("expected a 400")
        } catch let error as APIError {
            #expect(error.status.code == 400)
            #expect(error.message.contains("user.enabled"))
        }
    }

    @Test(arguments: [JSON.string("x"), .array([]), .null])
    func bodyMustBeAnObjectWithTheKey(_ body: JSON) {
        #expect(throws: APIError.self) { try JSONInput(body: body, key: "user") }
    }

    @Test func lengthBoundsAndExtras() throws {
        let input = try JSONInput(body: ["role": ["name": .string(String(repeating: "r", count: 300)), "colour": "blue"]], key: "role")
        #expect(throws: APIError.self) { try input.requiredString("name") }
        #expect(input.extras(excluding: ["name"]) == ["colour": "blue"])
    }
}
