import Crypto
import Foundation
import Logging
import NimbusCore
import NimbusStore

/// Nova's API logic (nova-api's side of nova/compute/api.py): flavors, keypairs, servers and
/// their actions, hosts, aggregates, server groups and quotas. No HTTP here; the conductor
/// and the host agents do the work that follows an accepted request.
public final class ComputeService: Sendable {
    let db: any Database
    let store = ComputeStore()
    let policy: PolicyEngine
    let logger: Logger
    let settings: Settings
    public let conductor: Conductor
    var images: any ImageClient { conductor.images }

    /// Tunables from `nimbus.conf`.
    public struct Settings: Sendable {
        /// Seconds without a heartbeat after which a compute service is down (`service_down_time`).
        public var serviceDownTime: TimeInterval = 60
        public var defaultAvailabilityZone = "nova"
        public var quotaDefaults: [String: Int64] = ComputeQuotas.defaults
        public var allocationRatios = Conductor.AllocationRatios()
        /// `[compute] force_config_drive`: every server gets a config drive.
        public var forceConfigDrive = false
        /// `[DEFAULT] allow_resize_to_same_host`: a resize may be scheduled to the server's own host.
        public var allowResizeToSameHost = true
        /// `[consoleauth] token_ttl`: how long a console URL's token stays valid.
        public var consoleTokenTTL: TimeInterval = 600
        /// `[vnc] novncproxy_base_url`: the noVNC page a console URL opens (its token goes into
        /// the page's `path` parameter, as in Nova).
        public var novncBaseURL = "http://127.0.0.1:8800/novnc/vnc_lite.html"
        /// `[neutron] metadata_proxy_shared_secret`: what metadata proxies sign instance ids
        /// with; empty refuses every metadata request.
        public var metadataProxySharedSecret = ""
        public init() {}
    }

    public init(db: any Database, policy: PolicyEngine, placement: any PlacementClient, images: any ImageClient,
                network: (any NetworkClient)? = nil, scheduler: SchedulerSettings, settings: Settings, logger: Logger) {
        self.db = db
        self.policy = policy
        self.settings = settings
        self.logger = logger
        conductor = Conductor(db: db, placement: placement, images: images, network: network, scheduler: scheduler, settings: settings,
                              logger: logger)
    }

    // MARK: Access

    func authorize(_ action: String, _ caller: AuthContext, project: String? = nil, user: String? = nil) throws {
        var target = ["project_id": project ?? caller.projectID ?? ""]
        target["user_id"] = user ?? caller.userID
        guard policy.enforce(action, credentials: caller.policyInput, target: target) else {
            throw APIError.forbidden("Policy doesn't allow \(action) to be performed.")
        }
    }

    // MARK: Flavors

    public func flavors(caller: AuthContext, query: [String: String]) async throws -> [Flavor] {
        try authorize("os_compute_api:flavors:index", caller)
        var flavors = try await store.flavors(db)
        // Public flavors for everyone; private ones for admins (is_public=None/false) and the
        // projects given access.
        let isPublic = query["is_public"]?.lowercased()
        let access = caller.projectID == nil ? [] : try await store.accessibleFlavors(project: caller.projectID!, db)
        flavors = flavors.filter { flavor in
            switch isPublic {
            case "none", "all": return caller.isAdmin || flavor.isPublic || access.contains(flavor.id)
            case "false", "f", "0", "no", "n", "off": return !flavor.isPublic && (caller.isAdmin || access.contains(flavor.id))
            default: return flavor.isPublic || access.contains(flavor.id)
            }
        }
        if let minRAM = query["minRam"] {
            guard let v = Int64(minRAM) else { throw APIError.badRequest("Invalid minRam filter [\(minRAM)]") }
            flavors = flavors.filter { $0.ram >= v }
        }
        if let minDisk = query["minDisk"] {
            guard let v = Int64(minDisk) else { throw APIError.badRequest("Invalid minDisk filter [\(minDisk)]") }
            flavors = flavors.filter { $0.disk >= v }
        }
        let key = query["sort_key"] ?? "flavorid"
        let ascending = (query["sort_dir"] ?? "asc") == "asc"
        guard ["flavorid", "id", "name", "memory_mb", "ram", "vcpus", "root_gb", "disk", "created_at"].contains(key) else {
            throw APIError.badRequest("Invalid sort key: \(key)")
        }
        flavors.sort { a, b in
            let ordered: Bool
            switch key {
            case "name": ordered = a.name < b.name
            case "memory_mb", "ram": ordered = a.ram < b.ram
            case "vcpus": ordered = a.vcpus < b.vcpus
            case "root_gb", "disk": ordered = a.disk < b.disk
            case "created_at": ordered = a.createdAt < b.createdAt
            default: ordered = a.id.localizedStandardCompare(b.id) == .orderedAscending
            }
            return ascending ? ordered : !ordered
        }
        return try Paging.page(flavors, query: query, id: \.id)
    }

    public func flavor(_ id: String, caller: AuthContext) async throws -> Flavor {
        try authorize("os_compute_api:flavors:show", caller)
        guard let flavor = try await store.flavor(id: id, db) else { throw APIError.notFound("Flavor \(id) could not be found.") }
        return flavor
    }

    public func createFlavor(_ body: JSON, caller: AuthContext) async throws -> Flavor {
        try authorize("os_compute_api:os-flavor-manage:create", caller)
        let input = try JSONInput(body: body, key: "flavor")
        let name = try input.requiredString("name", maxLength: 255)
        func count(_ key: String, required: Bool, min: Int64) throws -> Int64 {
            guard let raw = input.fields[key], !raw.isNull else {
                if required { throw APIError.badRequest("Invalid input for field/attribute flavor. Value: \(body.serialized()). '\(key)' is a required property") }
                return 0
            }
            let value: Int64?
            if let i = raw.intValue { value = i } else if let s = raw.stringValue { value = Int64(s) } else { value = nil }
            guard let value, value >= min, value <= Int64(Int32.max) else {
                throw APIError.badRequest("Invalid input for field/attribute \(key). Value: \(raw.serialized()). \(raw.serialized()) is not a valid integer of at least \(min)")
            }
            return value
        }
        // Nova takes a numeric id as its decimal string.
        var id = try input.fields["id"]?.intValue.map(String.init) ?? input.optionalString("id", maxLength: 255) ?? "auto"
        if id == "auto" { id = Identifiers.uuid() }
        guard id.range(of: "^[\\w\\.\\- ]+$", options: .regularExpression) != nil, id.trimmingCharacters(in: .whitespaces) == id else {
            throw APIError.badRequest("Invalid input for field/attribute id. Value: \(id). Does not match the flavor id pattern")
        }
        var rxtx = 1.0
        if let raw = input.fields["rxtx_factor"] {
            guard let v = raw.doubleValue, v > 0 else { throw APIError.badRequest("Invalid input for field/attribute rxtx_factor. Value: \(raw.serialized()).") }
            rxtx = v
        }
        var isPublic = true
        if let raw = input.fields["os-flavor-access:is_public"] {
            guard let b = Self.lenientBool(raw) else {
                throw APIError.badRequest("Invalid input for field/attribute os-flavor-access:is_public. Value: \(raw.serialized()).")
            }
            isPublic = b
        }
        let flavor = Flavor(id: id, name: name.trimmingCharacters(in: .whitespaces), ram: try count("ram", required: true, min: 1),
                            vcpus: try count("vcpus", required: true, min: 1), disk: try count("disk", required: true, min: 0),
                            ephemeral: try count("OS-FLV-EXT-DATA:ephemeral", required: false, min: 0),
                            swap: try count("swap", required: false, min: 0), rxtxFactor: rxtx, isPublic: isPublic,
                            description: try input.optionalString("description", maxLength: 65535))
        do {
            try await store.insert(flavor, db)
        } catch DatabaseError.uniqueViolation {
            if try await store.flavor(id: id, db) != nil { throw APIError.conflict("Flavor with ID \(id) already exists.") }
            throw APIError.conflict("Flavor with name \(name) already exists.")
        }
        return flavor
    }

    public func updateFlavor(_ id: String, _ body: JSON, caller: AuthContext) async throws -> Flavor {
        try authorize("os_compute_api:os-flavor-manage:update", caller)
        let input = try JSONInput(body: body, key: "flavor")
        guard input.has("description"), input.fields.count == 1 else {
            throw APIError.badRequest("Invalid input for field/attribute flavor: only 'description' can be updated.")
        }
        var flavor = try await flavor(id, caller: caller)
        flavor.description = try input.optionalString("description", maxLength: 65535)
        try await store.updateFlavor(flavor, db)
        return flavor
    }

    public func deleteFlavor(_ id: String, caller: AuthContext) async throws {
        try authorize("os_compute_api:os-flavor-manage:delete", caller)
        guard try await store.deleteFlavor(id: id, db) else { throw APIError.notFound("Flavor \(id) could not be found.") }
    }

    public func setExtraSpecs(_ id: String, _ body: JSON, caller: AuthContext) async throws -> [String: String] {
        try authorize("os_compute_api:os-flavor-extra-specs:create", caller)
        let input = try JSONInput(body: body, key: "extra_specs")
        var flavor = try await flavor(id, caller: caller)
        for (key, value) in input.fields {
            guard key.count <= 255, !key.isEmpty, key.range(of: "^[\\w\\.\\-:]+$", options: .regularExpression) != nil else {
                throw APIError.badRequest("Invalid input for field/attribute extra_specs. Key '\(key)' is not valid.")
            }
            let text: String
            if let s = value.stringValue { text = s } else if let i = value.intValue { text = String(i) } else if let b = value.boolValue {
                text = b ? "true" : "false"
            } else { throw APIError.badRequest("Invalid input for field/attribute extra_specs. Value of '\(key)' must be a string.") }
            guard text.count <= 255 else { throw APIError.badRequest("Extra spec value of '\(key)' is longer than 255 characters.") }
            flavor.extraSpecs[key] = text
        }
        try await store.updateFlavor(flavor, db)
        return input.fields.keys.reduce(into: [:]) { $0[$1] = flavor.extraSpecs[$1] }
    }

    public func extraSpecs(_ id: String, caller: AuthContext) async throws -> [String: String] {
        try authorize("os_compute_api:os-flavor-extra-specs:index", caller)
        return try await flavor(id, caller: caller).extraSpecs
    }

    /// `PUT /flavors/{id}/os-extra_specs/{key}`: the body must name exactly that key.
    public func setExtraSpec(_ id: String, key: String, _ body: JSON, caller: AuthContext) async throws -> [String: String] {
        guard let object = body.objectValue, object.count == 1, object[key] != nil else {
            throw APIError.badRequest("Request body and URI mismatch")
        }
        return try await setExtraSpecs(id, ["extra_specs": body], caller: caller)
    }

    public func deleteExtraSpec(_ id: String, key: String, caller: AuthContext) async throws {
        try authorize("os_compute_api:os-flavor-extra-specs:delete", caller)
        var flavor = try await flavor(id, caller: caller)
        guard flavor.extraSpecs.removeValue(forKey: key) != nil else {
            throw APIError.notFound("Flavor \(id) has no extra specs with key \(key).")
        }
        try await store.updateFlavor(flavor, db)
    }

    public func flavorAccess(_ id: String, caller: AuthContext) async throws -> [String] {
        try authorize("os_compute_api:os-flavor-access", caller)
        let flavor = try await flavor(id, caller: caller)
        if flavor.isPublic { throw APIError.notFound("Access list not available for public flavors.") }
        return try await store.flavorAccess(flavorID: id, db)
    }

    public func changeFlavorAccess(_ id: String, project: String, add: Bool, caller: AuthContext) async throws -> [String] {
        try authorize(add ? "os_compute_api:os-flavor-access:add_tenant_access" : "os_compute_api:os-flavor-access:remove_tenant_access", caller)
        let flavor = try await flavor(id, caller: caller)
        if flavor.isPublic { throw APIError.conflict("Can not add access to a public flavor.") }
        if add {
            do { try await store.addFlavorAccess(flavorID: id, project: project, db) } catch DatabaseError.uniqueViolation {
                throw APIError.conflict("Flavor access already exists for flavor \(id) and project \(project) combination.")
            }
        } else if try await !store.removeFlavorAccess(flavorID: id, project: project, db) {
            throw APIError.notFound("Flavor access not found for \(id) / \(project) combination.")
        }
        return try await store.flavorAccess(flavorID: id, db)
    }

    /// Nova's `parameter_types.boolean`: a JSON boolean or one of its spellings as a string.
    static func lenientBool(_ value: JSON) -> Bool? {
        if let b = value.boolValue { return b }
        switch value.stringValue?.lowercased() {
        case "true", "1", "yes", "on", "t", "y": return true
        case "false", "0", "no", "off", "f", "n": return false
        default: return nil
        }
    }

    // MARK: Keypairs

    /// Whose keypairs a request is about: the caller's, or (admins, 2.10+) the named user's.
    func keypairOwner(_ caller: AuthContext, userID: String?) throws -> String {
        guard let userID, userID != caller.userID else { return caller.userID }
        guard caller.isAdmin else { throw APIError.forbidden("Policy doesn't allow os_compute_api:os-keypairs to be performed.") }
        return userID
    }

    /// The keypair, and the private key when Nova generated it (no `public_key`, before 2.92).
    public func createKeypair(_ body: JSON, version: Microversion, caller: AuthContext) async throws -> (KeyPair, privateKey: String?) {
        let input = try JSONInput(body: body, key: "keypair")
        let name = try input.requiredString("name", maxLength: 255)
        guard name.range(of: "^[a-zA-Z0-9 _\\-\\.@]+$", options: .regularExpression) != nil, name.trimmingCharacters(in: .whitespaces) == name else {
            throw APIError.badRequest("Keypair data is invalid: Keypair name contains unsafe characters")
        }
        let type = version >= Microversion(2, 2) ? try input.optionalString("type") ?? "ssh" : "ssh"
        guard type == "ssh" || type == "x509" else { throw APIError.badRequest("Invalid input for field/attribute type. Value: \(type).") }
        let owner = try keypairOwner(caller, userID: version >= Microversion(2, 10) ? try input.optionalString("user_id") : nil)
        try authorize("os_compute_api:os-keypairs:create", caller, user: owner)
        var privateKey: String?
        var publicKey: String
        if let given = try input.optionalString("public_key", maxLength: 65535) {
            publicKey = given
        } else {
            guard version < Microversion(2, 92) else {
                throw APIError.badRequest("Invalid input for field/attribute keypair. Value: \(body["keypair"]?.serialized() ?? ""). 'public_key' is a required property")
            }
            let generated = try KeyPairGenerator.generate(type: type, userID: owner)
            (publicKey, privateKey) = (generated.publicKey, generated.privateKey)
        }
        let fingerprint = try KeyPairFingerprint.fingerprint(publicKey, type: type)
        let keypair = KeyPair(id: Int64.random(in: 1...(1 << 47)), userID: owner, name: name,
                              publicKey: publicKey.trimmingCharacters(in: .whitespacesAndNewlines), fingerprint: fingerprint, type: type, createdAt: Date())
        let limit = try await quotaLimit(ComputeQuotas.keyPairs, project: owner)
        do {
            try await db.transaction { x in
                guard try await self.store.reserve(project: "user:\(owner)", resource: ComputeQuotas.keyPairs, amount: 1, limit: limit, x) else {
                    throw APIError.forbidden("Quota exceeded, too many key pairs.")
                }
                try await self.store.insert(keypair, x)
            }
        } catch DatabaseError.uniqueViolation {
            throw APIError.conflict("Key pair '\(name)' already exists.")
        }
        return (keypair, privateKey)
    }

    public func keypairs(caller: AuthContext, userID: String?, query: [String: String]) async throws -> [KeyPair] {
        let owner = try keypairOwner(caller, userID: userID)
        try authorize("os_compute_api:os-keypairs:index", caller, user: owner)
        return try Paging.page(try await store.keypairs(user: owner, db), query: query, id: \.name)
    }

    public func keypair(_ name: String, caller: AuthContext, userID: String?) async throws -> KeyPair {
        let owner = try keypairOwner(caller, userID: userID)
        try authorize("os_compute_api:os-keypairs:show", caller, user: owner)
        guard let keypair = try await store.keypair(user: owner, name: name, db) else {
            throw APIError.notFound("Keypair \(name) not found for user \(owner)")
        }
        return keypair
    }

    public func deleteKeypair(_ name: String, caller: AuthContext, userID: String?) async throws {
        let owner = try keypairOwner(caller, userID: userID)
        try authorize("os_compute_api:os-keypairs:delete", caller, user: owner)
        try await db.transaction { x in
            guard try await self.store.deleteKeypair(user: owner, name: name, x) else {
                throw APIError.notFound("Keypair \(name) not found for user \(owner)")
            }
            try await self.store.release(project: "user:\(owner)", resource: ComputeQuotas.keyPairs, amount: 1, x)
        }
    }
}

/// Nova's paging of list calls (`[api] max_limit`, 1000, per page), parsed in one place so
/// that no query value reaches `prefix`/`dropFirst` unchecked: a negative count there traps,
/// and one process serves every API.
enum Paging {
    static let maxLimit = 1000

    /// A paging count (`limit`, `offset`) as Nova's query schemas take it: decimal digits
    /// only, so a sign, a fraction or an empty value is 400. Python's integers do not
    /// overflow, so a longer run of digits than `Int` holds means "more than any list" and
    /// is `Int.max`. Nil when the parameter is absent.
    static func count(_ name: String, _ query: [String: String]) throws -> Int? {
        guard let raw = query[name] else { return nil }
        guard !raw.isEmpty, raw.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
            throw APIError.badRequest("Invalid input for query parameters \(name). Value: \(raw). '\(raw)' does not match '^[0-9]*$'")
        }
        return Int(raw) ?? Int.max
    }

    /// The page size of marker paging (Nova's `get_limit_and_marker`): `limit` capped at
    /// `max_limit`, `max_limit` without one; `limit=0` is an empty page.
    static func limit(_ query: [String: String]) throws -> Int {
        min(try count("limit", query) ?? maxLimit, maxLimit)
    }

    /// Whether a page is full, so that Nova shows a `next` link after it (never after an empty page).
    static func isFull(_ count: Int, query: [String: String]) throws -> Bool {
        let size = try limit(query)
        return size > 0 && count == size
    }

    /// `marker` and `limit` over an already sorted list: at most one page of the items after
    /// the marker.
    static func page<T>(_ items: [T], query: [String: String], id: (T) -> String,
                        markerNotFound: (String) -> String = { "marker [\($0)] not found" }) throws -> [T] {
        let size = try limit(query)
        return Array(try afterMarker(items, query: query, id: id, markerNotFound: markerNotFound).prefix(size))
    }

    /// The items after the one whose id is `marker` (all of them without one); an unknown
    /// marker is 400, in the wording of the calling API.
    static func afterMarker<T>(_ items: [T], query: [String: String], id: (T) -> String,
                               markerNotFound: (String) -> String = { "marker [\($0)] not found" }) throws -> ArraySlice<T> {
        guard let marker = query["marker"] else { return items[...] }
        guard let index = items.firstIndex(where: { id($0) == marker }) else { throw APIError.badRequest(markerNotFound(marker)) }
        return items[(index + 1)...]
    }

    /// `offset` and `limit` paging (Nova's `limited`, used by server groups): `limit=0` or
    /// none is a full page of `max_limit`.
    static func limited<T>(_ items: [T], query: [String: String]) throws -> [T] {
        let offset = try count("offset", query) ?? 0
        let limit = try count("limit", query) ?? 0
        return Array(items.dropFirst(offset).prefix(limit == 0 ? maxLimit : min(limit, maxLimit)))
    }
}

/// The MD5 fingerprint Nova shows for an SSH public key (`aa:bb:…`), which also checks that
/// the key parses.
enum KeyPairFingerprint {
    static let types: Set<String> = ["ssh-rsa", "ssh-dss", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"]

    static func fingerprint(_ publicKey: String, type: String) throws -> String {
        let invalid = APIError.badRequest("Keypair data is invalid: failed to generate fingerprint")
        if type == "x509" {
            guard publicKey.contains("BEGIN CERTIFICATE") else { throw invalid }
            let body = publicKey.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
            guard let der = Data(base64Encoded: body) else { throw invalid }
            return Hex.encode(Insecure.SHA1.hash(data: der), separator: ":")
        }
        let parts = publicKey.split(whereSeparator: \.isWhitespace)
        guard parts.count >= 2, types.contains(String(parts[0])), let blob = Data(base64Encoded: String(parts[1])) else { throw invalid }
        // The blob starts with its own type name, length-prefixed.
        guard blob.count > 4 else { throw invalid }
        let length = Int(blob[0]) << 24 | Int(blob[1]) << 16 | Int(blob[2]) << 8 | Int(blob[3])
        guard blob.count >= 4 + length, String(decoding: blob[4..<(4 + length)], as: UTF8.self) == parts[0] else { throw invalid }
        return Hex.encode(Insecure.MD5.hash(data: blob), separator: ":")
    }
}
