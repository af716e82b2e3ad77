import NimbusCore

/// One API extension as `/v2.0/extensions` lists it. Clients decide what to call from this
/// list (the CLI skips availability zones, segments, tags… when the alias is missing), so it
/// names exactly what Nimbus implements: add an entry with the feature, never before.
public struct NetworkExtension: Sendable {
    public let alias: String
    public let name: String
    public let description: String

    var json: JSON {
        ["alias": .string(alias), "name": .string(name), "description": .string(description),
         "updated": "2025-01-01T00:00:00-00:00", "links": []]
    }
}

public enum NetworkExtensions {
    /// The core resources `GET /v2.0` lists (Neutron's resource name and collection).
    static let coreResources: [(String, String)] = [("network", "networks"), ("subnet", "subnets"), ("port", "ports"),
                                                    ("subnetpool", "subnetpools")]

    /// Each resource family lists its own extensions (`NetworkExtensions+<Family>.swift`).
    public static var all: [NetworkExtension] { core + segments + security + routing + sharing + operations + services }
}
