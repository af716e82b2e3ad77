@testable import NimbusCore

enum PolicyTargets {
    /// A rule as a policy file (or a service's defaults) would give it. What parses is enforced
    /// with a few callers and targets, beside rules that refer to it and to themselves.
    static func rule(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        guard (try? PolicyRule.parse(text, name: "fuzz")) != nil else { return }
        guard let engine = try? PolicyEngine(defaults: [
            "fuzz": text,
            "admin_required": "role:admin",
            "owner": "project_id:%(project_id)s",
            "loop": "rule:loop or rule:fuzz",
            "default": "rule:fuzz",
        ]) else {
            fatalError("a rule that parses on its own made PolicyEngine throw")
        }
        for credentials in credentials {
            for target in targets {
                _ = engine.enforce("fuzz", credentials: credentials, target: target)
                _ = engine.enforce("loop", credentials: credentials, target: target)
                _ = engine.enforce("unknown", credentials: credentials, target: target)
            }
        }
        _ = engine.rule(for: "fuzz")
    }

    static let credentials: [PolicyCredentials] = [
        PolicyCredentials(roles: ["admin", "member", "reader"],
                          attributes: ["user_id": "u1", "project_id": "p1", "domain_id": "default", "system_scope": "all"]),
        PolicyCredentials(roles: ["Member"], attributes: ["user_id": "u2", "project_id": "p2", "is_admin": "False"]),
        PolicyCredentials(roles: [], attributes: [:]),
    ]

    static let targets: [[String: String]] = [
        ["project_id": "p1", "user_id": "u1", "target.user.domain_id": "default", "role.name": "member"],
        ["project_id": "p2", "user.enabled": "True"],
        [:],
    ]
}
