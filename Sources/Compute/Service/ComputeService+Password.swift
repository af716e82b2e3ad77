import NimbusCore

extension Instance {
    /// The most Nova keeps of a guest's encrypted password: four system-metadata chunks of
    /// 255 characters.
    static let guestPasswordLimit = 4 * 255

    /// What the guest posted to the metadata service (its admin password, encrypted with the
    /// server's public key, base64), nil before it does or after the password is cleared.
    var guestPassword: String? {
        guard let password = extra["password"]?.stringValue, !password.isEmpty else { return nil }
        return password
    }
}

extension ComputeService {
    /// Keeps the password a guest posts to the metadata service. Postcondition: returns false,
    /// changing nothing, when the server already has one (Nova's 409); true once it is kept.
    func setGuestPassword(_ uuid: String, _ password: String) async throws -> Bool {
        try await db.transaction { x in
            guard var instance = try await self.store.instance(uuid: uuid, x), instance.deletedAt == nil else { return false }
            guard instance.guestPassword == nil else { return false }
            instance.extra["password"] = .string(password)
            try await self.store.update(instance, x)
            return true
        }
    }

    /// `GET /servers/{id}/os-server-password`: the encrypted password the guest posted, or "".
    public func serverPassword(_ uuid: String, caller: AuthContext) async throws -> String {
        let instance = try await visibleInstance(uuid, caller: caller)
        try authorize("os_compute_api:os-server-password:show", caller, project: instance.projectID)
        return instance.guestPassword ?? ""
    }

    /// `DELETE /servers/{id}/os-server-password`: forgets it, so the guest may post a new one.
    public func clearServerPassword(_ uuid: String, caller: AuthContext) async throws {
        let instance = try await visibleInstance(uuid, caller: caller)
        try authorize("os_compute_api:os-server-password:clear", caller, project: instance.projectID)
        try await mutate(uuid, caller: caller) { instance in instance.extra.removeValue(forKey: "password") != nil }
    }
}
