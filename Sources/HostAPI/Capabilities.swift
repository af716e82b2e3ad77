import Foundation
import NimbusCore

/// What a host's driver can do. Drivers do not declare it: `DriverCapabilities(of:)` (in Virt)
/// derives it from the protocols a driver conforms to, the agent reports it when it registers,
/// and the API refuses an action the server's host cannot perform before anything changes
/// (Nova's driver `capabilities`). The scheduler sees it as `COMPUTE_*` traits.
public struct DriverCapabilities: Sendable, Equatable {
    public var pause: Bool
    public var suspend: Bool
    public var snapshot: Bool
    public var rescue: Bool
    public var diagnostics: Bool
    /// Resize on the same host.
    public var resize: Bool
    public var liveMigration: Bool
    /// Cold migration and resize to another host: the disks travel.
    public var coldMigration: Bool
    /// Ports plugged into and out of a guest (`os-interface` attach and detach).
    public var attachInterface: Bool
    /// The guest's administrator password set from outside (`changePassword`).
    public var setAdminPassword: Bool

    public init(pause: Bool = false, suspend: Bool = false, snapshot: Bool = false, rescue: Bool = false, diagnostics: Bool = false,
                resize: Bool = false, liveMigration: Bool = false, coldMigration: Bool = false, attachInterface: Bool = false,
                setAdminPassword: Bool = false) {
        (self.pause, self.suspend, self.snapshot, self.rescue, self.diagnostics) = (pause, suspend, snapshot, rescue, diagnostics)
        (self.resize, self.liveMigration, self.coldMigration) = (resize, liveMigration, coldMigration)
        (self.attachInterface, self.setAdminPassword) = (attachInterface, setAdminPassword)
    }

    /// Nova's names for them, as a node's `capabilities` and the agent's registration carry them.
    static var keys: [(String, WritableKeyPath<DriverCapabilities, Bool>)] { [
        ("supports_pause", \.pause), ("supports_suspend", \.suspend), ("supports_snapshot", \.snapshot), ("supports_rescue", \.rescue),
        ("supports_diagnostics", \.diagnostics), ("supports_resize", \.resize), ("supports_live_migration", \.liveMigration),
        ("supports_cold_migration", \.coldMigration), ("supports_attach_interface", \.attachInterface),
        ("supports_set_admin_password", \.setAdminPassword),
    ] }

    public var json: [String: JSON] {
        Dictionary(uniqueKeysWithValues: Self.keys.map { ($0.0, JSON.bool(self[keyPath: $0.1])) })
    }

    /// Read back from `json`; a capability that is not named is absent (false).
    public init(json: [String: JSON]) {
        self.init()
        for (key, path) in Self.keys { self[keyPath: path] = json[key]?.boolValue ?? false }
    }

    /// The traits a host with this driver reports to placement.
    public var traits: Set<String> {
        var traits: Set<String> = ["COMPUTE_NODE"]
        if rescue { traits.insert("COMPUTE_RESCUE_BFV") }
        return traits
    }
}
