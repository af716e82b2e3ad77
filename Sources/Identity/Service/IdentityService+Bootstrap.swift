import Foundation
import NimbusCore
import NimbusStore

/// What `keystone-manage bootstrap` does, idempotently: the Default domain, the admin project
/// and user, the admin ⇒ manager ⇒ member ⇒ reader roles, RegionOne, and a catalog entry for every
/// service this process serves. Run at every start; it only fills in what is missing and
/// corrects endpoint URLs when the listener moved.
extension IdentityService {
    public struct CatalogEntry: Sendable {
        public let type: String
        public let name: String
        public let url: String
        public init(type: String, name: String, url: String) {
            self.type = type
            self.name = name
            self.url = url
        }
    }

    public static let region = "RegionOne"

    /// Returns true when the admin user was created by this call. An existing admin whose
    /// password differs from `adminPassword` gets it set, as `keystone-manage bootstrap` does,
    /// so clouds.yaml always matches.
    @discardableResult
    public func bootstrap(adminPassword: String, catalog: [CatalogEntry]) async throws -> Bool {
        let existing = try await store.user(name: "admin", domainID: defaultDomainID, db)
        // Hashing is slow by design: only when the admin is new or its password changes.
        let unchanged = existing?.passwordHash.map { hasher.verify(adminPassword, hash: $0) } == true
        let hash = unchanged ? nil : try hasher.hash(adminPassword)
        let created = try await db.transaction { x -> Bool in
            if try await self.store.domain(id: self.defaultDomainID, x) == nil {
                try await self.store.insert(Domain(id: self.defaultDomainID, name: "Default", description: "The default domain", enabled: true,
                                                   tags: [], extra: [:]), x)
            }
            let project: Project
            if let existing = try await self.store.project(name: "admin", domainID: self.defaultDomainID, x) {
                project = existing
            } else {
                project = Project(id: Identifiers.hexID(), name: "admin", domainID: self.defaultDomainID, parentID: nil,
                                  description: "Bootstrap project for initializing the cloud.", enabled: true, tags: [], extra: [:])
                try await self.store.insert(project, x)
            }
            var createdUser = false
            let user: User
            if var existing = try await self.store.user(name: "admin", domainID: self.defaultDomainID, x) {
                if let hash {
                    existing.passwordHash = hash
                    try await self.store.update(existing, x)
                }
                user = existing
            } else {
                user = User(id: Identifiers.hexID(), name: "admin", domainID: self.defaultDomainID, enabled: true, passwordHash: hash,
                            defaultProjectID: project.id, description: nil, extra: [:])
                try await self.store.insert(user, x)
                createdUser = true
            }
            var roleIDs: [String: String] = [:]
            let roles = try await self.store.roles(x)
            for name in ["admin", "manager", "member", "reader", "service"] {
                if let r = roles.first(where: { $0.name == name && $0.domainID == nil }) {
                    roleIDs[name] = r.id
                } else {
                    let r = Role(id: Identifiers.hexID(), name: name, domainID: nil, description: nil, extra: [:])
                    try await self.store.insert(r, x)
                    roleIDs[name] = r.id
                }
            }
            if createdUser {
                for (prior, implied) in [("admin", "manager"), ("manager", "member"), ("member", "reader")] {
                    if try await x.first("SELECT prior_role_id FROM identity_implied_role WHERE prior_role_id = ? AND implied_role_id = ?",
                                         .text(roleIDs[prior]!), .text(roleIDs[implied]!)) == nil {
                        try await x.execute("INSERT INTO identity_implied_role (prior_role_id, implied_role_id) VALUES (?, ?)",
                                            [.text(roleIDs[prior]!), .text(roleIDs[implied]!)])
                    }
                }
                for target in [AssignmentTarget.project(project.id), .system] {
                    let grant = Assignment(actor: .user(user.id), target: target, roleID: roleIDs["admin"]!, inherited: false)
                    if try await !self.store.exists(grant, x) { try await self.store.insert(grant, x) }
                }
            }
            if try await self.store.region(id: Self.region, x) == nil {
                try await self.store.insert(Region(id: Self.region, description: "", parentRegionID: nil, extra: [:]), x)
            }
            try await self.registerCatalog(catalog, x)
            return createdUser
        }
        didChange()
        return created
    }

    /// Ensures one service per entry with public, internal and admin endpoints at its URL.
    func registerCatalog(_ catalog: [CatalogEntry], _ x: any SQLExecutor) async throws {
        let services = try await store.services(x)
        let endpoints = try await store.endpoints(x)
        for entry in catalog {
            var service = services.first { $0.type == entry.type && $0.name == entry.name }
            if service == nil {
                let s = CatalogService(id: Identifiers.hexID(), type: entry.type, enabled: true,
                                       extra: ["name": .string(entry.name), "description": .string("Nimbus \(entry.type) service")])
                try await store.insert(s, x)
                service = s
            }
            for interface in ["public", "internal", "admin"] {
                if var e = endpoints.first(where: { $0.serviceID == service!.id && $0.interface == interface && $0.regionID == Self.region }) {
                    if e.url != entry.url {
                        e.url = entry.url
                        try await store.update(e, x)
                    }
                } else {
                    try await store.insert(Endpoint(id: Identifiers.hexID(), serviceID: service!.id, interface: interface, url: entry.url,
                                                    regionID: Self.region, enabled: true, extra: [:]), x)
                }
            }
        }
    }
}
