import Foundation
import NimbusCore
import NimbusStore

/// Network flavors and service profiles (Neutron's `flavors` plugin): an operator's named
/// choices of a service's implementation. Stored and checked as Neutron does. Nimbus has one
/// implementation of each service and no provider drivers, so a profile can carry `metainfo`
/// but not name a `driver`, and no resource takes a `flavor_id` yet.
extension NetworkService {
    /// The service types of the plugins Nimbus runs (Neutron's plugin type names).
    static let flavorServiceTypes: Set<String> = ["L3_ROUTER_NAT", "QOS", "TRUNK", "METERING", "PORTFORWARDING", "CONNTRACKHELPER"]

    static func flavorNotFound(_ id: String) -> APIError { APIError(.notFound, "Flavor \(id) could not be found.", code: "FlavorNotFound") }
    static func serviceProfileNotFound(_ id: String) -> APIError {
        APIError(.notFound, "Service Profile \(id) could not be found.", code: "ServiceProfileNotFound")
    }

    func flavors(where clause: String = "", _ binds: [SQLValue] = [], _ x: any SQLExecutor) async throws -> [[String: JSON]] {
        let rows = try await x.query("SELECT * FROM network_flavor \(clause)", binds)
        var profiles: [String: [JSON]] = [:]
        for row in try await x.query("SELECT flavor_id, profile_id FROM network_flavor_service_profile ORDER BY profile_id") {
            profiles[row.string("flavor_id"), default: []].append(.string(row.string("profile_id")))
        }
        return rows.map { row in
            ["id": .string(row.string("id")), "name": .string(row.string("name")), "description": .string(row.string("description")),
             "service_type": .string(row.string("service_type")), "enabled": .bool(row.bool("enabled")),
             "service_profiles": .array(profiles[row.string("id")] ?? [])]
        }
    }

    func serviceProfiles(where clause: String = "", _ binds: [SQLValue] = [], _ x: any SQLExecutor) async throws -> [[String: JSON]] {
        try await x.query("SELECT * FROM network_service_profile \(clause)", binds).map { row in
            ["id": .string(row.string("id")), "description": .string(row.string("description")), "driver": .string(row.string("driver")),
             "enabled": .bool(row.bool("enabled")), "metainfo": .string(row.string("metainfo"))]
        }
    }

    public func listFlavors(caller: AuthContext) async throws -> [[String: JSON]] {
        try authorize("get_flavor", caller)
        return try await flavors(where: "ORDER BY created_at, id", [], db)
    }

    public func flavor(_ id: String, caller: AuthContext) async throws -> [String: JSON] {
        try authorize("get_flavor", caller)
        guard let flavor = try await flavors(where: "WHERE id = ?", [.text(id)], db).first else { throw Self.flavorNotFound(id) }
        return flavor
    }

    public func createFlavor(_ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try authorize("create_flavor", caller)
        try Self.allowOnly(input, ["name", "description", "service_type", "enabled", "service_profiles"])
        let type = try input.requiredString("service_type")
        guard Self.flavorServiceTypes.contains(type) else {
            throw APIError(.badRequest, "Invalid service type \(type).", code: "InvalidFlavorServiceType")
        }
        let profiles = try input.stringArray("service_profiles") ?? []
        let id = Identifiers.uuid()
        try await write { x in
            try await x.execute("INSERT INTO network_flavor (id, name, description, service_type, enabled, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                                .text(id), .text(try input.optionalString("name") ?? ""), .text(try input.optionalString("description") ?? ""),
                                .text(type), .bool(try input.bool("enabled") ?? true), Self.now())
            for profile in profiles { try await self.bindServiceProfile(profile, flavor: id, x) }
        }
        return try await flavor(id, caller: caller)
    }

    public func updateFlavor(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try authorize("update_flavor", caller)
        try Self.allowOnly(input, ["name", "description", "enabled", "service_profiles"])
        try await write { x in
            guard try await x.first("SELECT 1 FROM network_flavor WHERE id = ?", .text(id)) != nil else { throw Self.flavorNotFound(id) }
            var sets: [(String, SQLValue)] = []
            if let name = try input.optionalString("name") { sets.append(("name", .text(name))) }
            if let description = try input.optionalString("description") { sets.append(("description", .text(description))) }
            if let enabled = try input.bool("enabled") { sets.append(("enabled", .bool(enabled))) }
            if !sets.isEmpty {
                try await x.execute("UPDATE network_flavor SET \(sets.map { "\($0.0) = ?" }.joined(separator: ", ")) WHERE id = ?", sets.map(\.1) + [.text(id)])
            }
            if let profiles = try input.stringArray("service_profiles") {
                try await x.execute("DELETE FROM network_flavor_service_profile WHERE flavor_id = ?", .text(id))
                for profile in profiles { try await self.bindServiceProfile(profile, flavor: id, x) }
            }
        }
        return try await flavor(id, caller: caller)
    }

    public func deleteFlavor(_ id: String, caller: AuthContext) async throws {
        try authorize("delete_flavor", caller)
        guard try await db.execute("DELETE FROM network_flavor WHERE id = ?", .text(id)) > 0 else { throw Self.flavorNotFound(id) }
    }

    public func listServiceProfiles(caller: AuthContext) async throws -> [[String: JSON]] {
        try authorize("get_service_profile", caller)
        return try await serviceProfiles(where: "ORDER BY created_at, id", [], db)
    }

    public func serviceProfile(_ id: String, caller: AuthContext) async throws -> [String: JSON] {
        try authorize("get_service_profile", caller)
        guard let profile = try await serviceProfiles(where: "WHERE id = ?", [.text(id)], db).first else { throw Self.serviceProfileNotFound(id) }
        return profile
    }

    /// A profile names a driver or carries metainfo (400 otherwise); no provider driver is loaded, so a driver is not found.
    public func createServiceProfile(_ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try authorize("create_service_profile", caller)
        try Self.allowOnly(input, ["description", "driver", "enabled", "metainfo"])
        let driver = try input.string("driver") ?? "", metainfo = try input.string("metainfo") ?? ""
        if driver.isEmpty && metainfo.isEmpty {
            throw Self.badRequest("Service Profile needs either a driver or metainfo.", code: "ServiceProfileEmpty")
        }
        if !driver.isEmpty { throw APIError(.notFound, "Service Profile driver \(driver) could not be found.", code: "ServiceProfileDriverNotFound") }
        let id = Identifiers.uuid()
        try await db.execute("INSERT INTO network_service_profile (id, description, driver, enabled, metainfo, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                             .text(id), .text(try input.optionalString("description") ?? ""), .text(driver), .bool(try input.bool("enabled") ?? true),
                             .text(metainfo), Self.now())
        return try await serviceProfile(id, caller: caller)
    }

    public func updateServiceProfile(_ id: String, _ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try authorize("update_service_profile", caller)
        try Self.allowOnly(input, ["description", "enabled", "metainfo"])
        try await write { x in
            guard try await x.first("SELECT 1 FROM network_service_profile WHERE id = ?", .text(id)) != nil else { throw Self.serviceProfileNotFound(id) }
            var sets: [(String, SQLValue)] = []
            if let description = try input.optionalString("description") { sets.append(("description", .text(description))) }
            if let enabled = try input.bool("enabled") { sets.append(("enabled", .bool(enabled))) }
            if let metainfo = try input.string("metainfo") { sets.append(("metainfo", .text(metainfo))) }
            guard !sets.isEmpty else { return }
            try await x.execute("UPDATE network_service_profile SET \(sets.map { "\($0.0) = ?" }.joined(separator: ", ")) WHERE id = ?", sets.map(\.1) + [.text(id)])
        }
        return try await serviceProfile(id, caller: caller)
    }

    public func deleteServiceProfile(_ id: String, caller: AuthContext) async throws {
        try authorize("delete_service_profile", caller)
        try await write { x in
            guard try await x.first("SELECT 1 FROM network_service_profile WHERE id = ?", .text(id)) != nil else { throw Self.serviceProfileNotFound(id) }
            if try await x.first("SELECT 1 FROM network_flavor_service_profile WHERE profile_id = ?", .text(id)) != nil {
                throw Self.conflict("Service Profile \(id) is used by some service instance.", code: "ServiceProfileInUse")
            }
            try await x.execute("DELETE FROM network_service_profile WHERE id = ?", .text(id))
        }
    }

    /// `POST /flavors/{id}/service_profiles`: the flavor offers the profile.
    public func associateServiceProfile(flavor: String, _ input: JSONInput, caller: AuthContext) async throws -> [String: JSON] {
        try authorize("create_flavor_service_profile", caller)
        try Self.allowOnly(input, ["id"])
        let profile = try input.requiredString("id")
        try await write { x in
            guard try await x.first("SELECT 1 FROM network_flavor WHERE id = ?", .text(flavor)) != nil else { throw Self.flavorNotFound(flavor) }
            try await self.bindServiceProfile(profile, flavor: flavor, x)
        }
        return ["id": .string(profile)]
    }

    public func disassociateServiceProfile(flavor: String, profile: String, caller: AuthContext) async throws {
        try authorize("delete_flavor_service_profile", caller)
        try await write { x in
            guard try await x.first("SELECT 1 FROM network_flavor WHERE id = ?", .text(flavor)) != nil else { throw Self.flavorNotFound(flavor) }
            guard try await x.execute("DELETE FROM network_flavor_service_profile WHERE flavor_id = ? AND profile_id = ?", .text(flavor), .text(profile)) > 0 else {
                throw APIError(.notFound, "Service Profile \(profile) is not associated with flavor \(flavor).", code: "FlavorServiceProfileBindingNotFound")
            }
        }
    }

    func bindServiceProfile(_ profile: String, flavor: String, _ x: any SQLExecutor) async throws {
        guard try await x.first("SELECT 1 FROM network_service_profile WHERE id = ?", .text(profile)) != nil else { throw Self.serviceProfileNotFound(profile) }
        if try await x.first("SELECT 1 FROM network_flavor_service_profile WHERE flavor_id = ? AND profile_id = ?", .text(flavor), .text(profile)) != nil {
            throw Self.conflict("Service Profile \(profile) is already associated with flavor \(flavor).", code: "FlavorServiceProfileBindingExists")
        }
        try await x.execute("INSERT INTO network_flavor_service_profile (flavor_id, profile_id) VALUES (?, ?)", .text(flavor), .text(profile))
    }
}
