import Foundation
import HTTPTypes
import Hummingbird
import NimbusCore

/// Keystone v3 over HTTP, mounted under `/identity`. Handlers only translate: parse the body,
/// call `IdentityService`, render Keystone's JSON and status codes.
public struct IdentityRoutes: Sendable {
    let service: IdentityService
    let maxBodySize: Int

    public init(service: IdentityService, maxBodySize: Int) {
        self.service = service
        self.maxBodySize = maxBodySize
    }

    typealias Context = NimbusRequestContext
    typealias Handler = @Sendable (Request, Context) async throws -> Response

    static let subjectTokenHeader = HTTPField.Name("X-Subject-Token")!
    static let versionID = "v3.14"

    public func register(on router: Router<NimbusRequestContext>) {
        let open = router.group("identity").add(middleware: ErrorStyleMiddleware(.keystone))
        open.get("") { request, _ in versions(request) }
        open.get("/v3") { request, _ in JSONResponse(["version": versionDocument(request)]).response() }
        open.post("/v3/auth/tokens") { request, _ in try await issueToken(request) }

        let api = router.group("identity/v3").add(middleware: ErrorStyleMiddleware(.keystone))
            .add(middleware: TokenAuthMiddleware(validator: service, service: .identity))
        registerAuth(api)
        registerDomains(api)
        registerDomainConfig(api)
        registerProjects(api)
        registerUsers(api)
        registerGroups(api)
        registerRoles(api)
        registerGrants(api)
        registerCatalog(api)
        registerCredentials(api)
        registerTrusts(api)
        registerFederation(api)
        registerLimits(api)
    }

    // MARK: Helpers

    func links(_ request: Request) -> Links { Links(identityBase: request.baseURL(fallback: "http://localhost") + "/identity") }

    func input(_ request: Request, _ key: String) async throws -> JSONInput {
        try JSONInput(body: try await request.jsonBody(limit: maxBodySize), key: key)
    }

    func id(_ context: Context, _ name: String = "id") throws -> String { try context.parameters.require(name) }

    static func ok(_ body: JSON, _ status: HTTPResponse.Status = .ok) -> Response { JSONResponse(status: status, body).response() }

    /// A collection body: `{"users": [...], "links": {...}}`.
    func list(_ request: Request, _ key: String, _ items: [JSON]) -> Response {
        Self.ok([key: .array(items), "links": links(request).collection(String(request.uri.path.split(separator: "/v3/", maxSplits: 1).last ?? ""),
                                                                            query: request.uri.query ?? "")])
    }

    /// The five routes of a Keystone collection: create (201), list, show, update (PATCH),
    /// delete (204).
    func registerCollection<Model: IdentityResource>(
        _ api: RouterGroup<Context>, _ path: String, key: String,
        create: @escaping @Sendable (JSONInput, AuthContext) async throws -> Model,
        index: @escaping @Sendable (IdentityService.Query, AuthContext) async throws -> [Model],
        show: @escaping @Sendable (String, AuthContext) async throws -> Model,
        update: @escaping @Sendable (String, JSONInput, AuthContext) async throws -> Model,
        delete: @escaping @Sendable (String, AuthContext) async throws -> Void
    ) {
        api.post(RouterPath(stringLiteral: "/\(path)")) { request, context in
            Self.ok([key: try await create(try await input(request, key), try context.requireAuth()).json(links(request))], .created)
        }
        registerMembers(api, path, key: key, index: index, show: show, update: update, delete: delete)
    }

    /// A collection Keystone creates in batches (registered limits, limits): POST takes
    /// `{"<collection>": [{...}, ...]}`, creates all or none, and answers 201 with the created
    /// list (without collection links); the other four routes are `registerCollection`'s.
    func registerBatchCollection<Model: IdentityResource>(
        _ api: RouterGroup<Context>, _ path: String, key: String,
        create: @escaping @Sendable ([JSONInput], AuthContext) async throws -> [Model],
        index: @escaping @Sendable (IdentityService.Query, AuthContext) async throws -> [Model],
        show: @escaping @Sendable (String, AuthContext) async throws -> Model,
        update: @escaping @Sendable (String, JSONInput, AuthContext) async throws -> Model,
        delete: @escaping @Sendable (String, AuthContext) async throws -> Void
    ) {
        let collection = String(path.split(separator: "/").last ?? Substring(path))
        api.post(RouterPath(stringLiteral: "/\(path)")) { request, context in
            let items = try JSONInput.list(body: try await request.jsonBody(limit: maxBodySize), key: collection)
            let created = try await create(items, try context.requireAuth())
            return Self.ok([collection: .array(created.map { $0.json(links(request)) })], .created)
        }
        registerMembers(api, path, key: key, index: index, show: show, update: update, delete: delete)
    }

    /// List, show, update (PATCH) and delete (204) of a collection's members.
    func registerMembers<Model: IdentityResource>(
        _ api: RouterGroup<Context>, _ path: String, key: String,
        index: @escaping @Sendable (IdentityService.Query, AuthContext) async throws -> [Model],
        show: @escaping @Sendable (String, AuthContext) async throws -> Model,
        update: @escaping @Sendable (String, JSONInput, AuthContext) async throws -> Model,
        delete: @escaping @Sendable (String, AuthContext) async throws -> Void
    ) {
        let collection = String(path.split(separator: "/").last ?? Substring(path))
        let item = RouterPath(stringLiteral: "/\(path)/:id")
        api.get(RouterPath(stringLiteral: "/\(path)")) { request, context in
            list(request, collection, try await index(request.queryDictionary, try context.requireAuth()).map { $0.json(links(request)) })
        }
        api.get(item) { request, context in
            Self.ok([key: try await show(try id(context), try context.requireAuth()).json(links(request))])
        }
        api.patch(item) { request, context in
            Self.ok([key: try await update(try id(context), try await input(request, key), try context.requireAuth()).json(links(request))])
        }
        api.delete(item) { _, context in
            try await delete(try id(context), try context.requireAuth())
            return Response.empty()
        }
    }

    // MARK: Versions

    func versionDocument(_ request: Request) -> JSON {
        ["id": .string(Self.versionID), "status": "stable", "updated": "2020-04-07T00:00:00Z",
         "links": [["rel": "self", "href": .string(request.baseURL(fallback: "http://localhost") + "/identity/v3/")]],
         "media-types": [["base": "application/json", "type": "application/vnd.openstack.identity-v3+json"]]]
    }

    func versions(_ request: Request) -> Response {
        Self.ok(["versions": ["values": [versionDocument(request)]]], .multipleChoices)
    }

    // MARK: Tokens

    func tokenBody(_ auth: AuthContext, catalog: Bool) async throws -> JSON {
        var token: [String: JSON] = [
            "methods": .array(auth.methods.map { .string($0) }),
            "user": ["id": .string(auth.userID), "name": .string(auth.userName),
                     "domain": ["id": .string(auth.userDomainID), "name": .string(auth.userDomainName)], "password_expires_at": nil],
            "audit_ids": .array(auth.auditIDs.map { .string($0) }),
            "expires_at": .string(Timestamps.keystone(auth.expiresAt)),
            "issued_at": .string(Timestamps.keystone(auth.issuedAt)),
        ]
        switch auth.scope {
        case .unscoped: break
        case .project(let id, let name, let domainID, let domainName):
            token["project"] = ["id": .string(id), "name": .string(name), "domain": ["id": .string(domainID), "name": .string(domainName)]]
            token["is_domain"] = false
        case .domain(let id, let name):
            token["domain"] = ["id": .string(id), "name": .string(name)]
        case .system:
            token["system"] = ["all": true]
        }
        if auth.scope != .unscoped {
            token["roles"] = .array(auth.roles.map { ["id": .string($0.id), "name": .string($0.name)] })
            if catalog { token["catalog"] = try await service.catalog(for: auth) }
        }
        if let trust = try await service.trustTokenSection(auth) { token["OS-TRUST:trust"] = trust }
        if let credentialID = auth.applicationCredentialID, let credential = try await service.store.appCredential(id: credentialID, service.db) {
            var section: [String: JSON] = ["id": .string(credential.id), "name": .string(credential.name),
                                           "restricted": .bool(!credential.unrestricted)]
            if !credential.accessRules.isEmpty { section["access_rules"] = .array(credential.accessRules.map(\.json)) }
            token["application_credential"] = .object(section)
        }
        return ["token": .object(token)]
    }

    func issueToken(_ request: Request) async throws -> Response {
        let auth = try await service.issueToken(try await request.jsonBody(limit: maxBodySize))
        var response = Self.ok(try await tokenBody(auth, catalog: request.query("nocatalog") == nil), .created)
        response.headers[Self.subjectTokenHeader] = auth.token
        return response
    }

    func subjectToken(_ request: Request) throws -> String {
        guard let subject = request.headers[Self.subjectTokenHeader], !subject.isEmpty else {
            throw APIError.badRequest("Expecting to find X-Subject-Token in the request headers.")
        }
        return subject
    }

    func registerAuth(_ api: RouterGroup<Context>) {
        let validate: Handler = { request, context in
            let validated = try await service.checkToken(try subjectToken(request), caller: try context.requireAuth())
            let catalog = request.query("nocatalog") == nil
            let body = try await service.renderedValidation(validated, catalog: catalog) { try await tokenBody(validated, catalog: catalog) }
            var response = Response.json(body)
            response.headers[Self.subjectTokenHeader] = validated.token
            if request.method == .head { response.body = .init() }
            return response
        }
        api.get("/auth/tokens", use: validate)
        api.head("/auth/tokens", use: validate)
        api.delete("/auth/tokens") { request, context in
            try await service.revokeToken(try subjectToken(request), caller: try context.requireAuth())
            return Response.empty()
        }
        api.get("/auth/catalog") { request, context in
            let auth = try context.requireAuth()
            try service.authorize("identity:get_auth_catalog", auth)
            guard auth.scope != .unscoped else { throw APIError.forbidden("The service catalog requires a scoped token.") }
            return Self.ok(["catalog": try await service.catalog(for: auth), "links": links(request).collection("auth/catalog")])
        }
        api.get("/auth/projects", use: authProjects)
        api.get("/auth/domains", use: authDomains)
        api.get("/auth/system") { request, context in
            let auth = try context.requireAuth()
            try service.authorize("identity:get_auth_system", auth)
            let roles = try await service.effectiveRoles(userID: auth.userID, target: .system, service.db)
            return Self.ok(["system": roles.isEmpty ? [] : [["all": true]], "links": links(request).collection("auth/system")])
        }
    }

    // MARK: Domains

    /// The projects the token's user has a role on (also served as `/OS-FEDERATION/projects`).
    @Sendable func authProjects(_ request: Request, _ context: Context) async throws -> Response {
        let auth = try context.requireAuth()
        try service.authorize("identity:get_auth_projects", auth)
        return list(request, "projects", try await service.projectsForUser(auth.userID).map { $0.json(links(request)) })
    }

    /// The domains the token's user has a role on (also served as `/OS-FEDERATION/domains`).
    @Sendable func authDomains(_ request: Request, _ context: Context) async throws -> Response {
        let auth = try context.requireAuth()
        try service.authorize("identity:get_auth_domains", auth)
        return list(request, "domains", try await service.domainsForUser(auth.userID).map { $0.json(links(request)) })
    }

    func registerDomains(_ api: RouterGroup<Context>) {
        registerCollection(api, "domains", key: "domain", create: service.createDomain, index: service.listDomains, show: service.getDomain,
                           update: service.updateDomain, delete: service.deleteDomain)
    }

    // MARK: Projects

    func registerProjects(_ api: RouterGroup<Context>) {
        registerCollection(api, "projects", key: "project", create: service.createProject, index: service.listProjects, show: service.getProject,
                           update: service.updateProject, delete: service.deleteProject)
        api.get("/projects/:id/tags") { _, context in
            let project = try await service.getProject(try id(context), caller: try context.requireAuth())
            return Self.ok(["tags": .array(project.tags.map { .string($0) })])
        }
        api.put("/projects/:id/tags") { request, context in
            let body = try await request.jsonBody(limit: maxBodySize)
            guard let tags = try JSONInput(body.objectValue ?? [:], path: "").stringArray("tags") else {
                throw APIError.badRequest("Invalid input for field 'tags': 'tags' is a required property.")
            }
            let saved = try await service.setProjectTags(try id(context), tags, caller: try context.requireAuth())
            return Self.ok(["tags": .array(saved.map { .string($0) })])
        }
        api.delete("/projects/:id/tags") { _, context in
            _ = try await service.setProjectTags(try id(context), [], caller: try context.requireAuth())
            return Response.empty()
        }
        let tagCheck: Handler = { _, context in
            let project = try await service.getProject(try id(context), caller: try context.requireAuth())
            let tag = try id(context, "tag")
            guard project.tags.contains(tag) else { throw APIError.notFound("Tag \(tag) not found on project \(project.id).") }
            return Response.empty()
        }
        api.get("/projects/:id/tags/:tag", use: tagCheck)
        api.head("/projects/:id/tags/:tag", use: tagCheck)
        api.put("/projects/:id/tags/:tag") { _, context in
            _ = try await service.setProjectTags(try id(context), nil, adding: try id(context, "tag"), caller: try context.requireAuth())
            return Response.empty(.created)
        }
        api.delete("/projects/:id/tags/:tag") { _, context in
            _ = try await service.setProjectTags(try id(context), nil, removing: try id(context, "tag"), caller: try context.requireAuth())
            return Response.empty()
        }
    }

    // MARK: Users

    func registerUsers(_ api: RouterGroup<Context>) {
        registerCollection(api, "users", key: "user", create: service.createUser, index: service.listUsers, show: service.getUser,
                           update: service.updateUser, delete: service.deleteUser)
        api.post("/users/:id/password") { request, context in
            try await service.changePassword(try id(context), try await input(request, "user"), caller: try context.requireAuth())
            return Response.empty()
        }
        api.get("/users/:id/groups") { request, context in
            list(request, "groups", try await service.listUserGroups(try id(context), caller: try context.requireAuth()).map { $0.json(links(request)) })
        }
        api.get("/users/:id/projects") { request, context in
            list(request, "projects", try await service.listUserProjects(try id(context), caller: try context.requireAuth()).map { $0.json(links(request)) })
        }
        api.post("/users/:id/application_credentials") { request, context in
            let (credential, secret) = try await service.createAppCredential(
                userID: try id(context), try await input(request, "application_credential"), caller: try context.requireAuth())
            return Self.ok(["application_credential": credential.json(links(request), secret: secret)], .created)
        }
        api.get("/users/:id/application_credentials") { request, context in
            list(request, "application_credentials", try await service.listAppCredentials(
                userID: try id(context), request.queryDictionary, caller: try context.requireAuth()).map { $0.json(links(request)) })
        }
        api.get("/users/:id/application_credentials/:cred") { request, context in
            Self.ok(["application_credential": try await service.getAppCredential(
                userID: try id(context), id: try id(context, "cred"), caller: try context.requireAuth()).json(links(request))])
        }
        api.delete("/users/:id/application_credentials/:cred") { _, context in
            try await service.deleteAppCredential(userID: try id(context), id: try id(context, "cred"), caller: try context.requireAuth())
            return Response.empty()
        }
        api.get("/users/:id/access_rules") { request, context in
            let userID = try id(context)
            return list(request, "access_rules", try await service.listAccessRules(
                userID: userID, request.queryDictionary, caller: try context.requireAuth()).map { $0.json(links(request), userID: userID) })
        }
        api.get("/users/:id/access_rules/:rule") { request, context in
            let userID = try id(context)
            return Self.ok(["access_rule": try await service.getAccessRule(
                userID: userID, id: try id(context, "rule"), caller: try context.requireAuth()).json(links(request), userID: userID)])
        }
        api.delete("/users/:id/access_rules/:rule") { _, context in
            try await service.deleteAccessRule(userID: try id(context), id: try id(context, "rule"), caller: try context.requireAuth())
            return Response.empty()
        }
    }

    // MARK: Groups

    func registerGroups(_ api: RouterGroup<Context>) {
        registerCollection(api, "groups", key: "group", create: service.createGroup, index: service.listGroups, show: service.getGroup,
                           update: service.updateGroup, delete: service.deleteGroup)
        api.get("/groups/:id/users") { request, context in
            list(request, "users", try await service.listGroupMembers(try id(context), request.queryDictionary, caller: try context.requireAuth()).map { $0.json(links(request)) })
        }
        api.put("/groups/:id/users/:user") { _, context in
            try await service.addGroupMember(group: try id(context), user: try id(context, "user"), caller: try context.requireAuth())
            return Response.empty()
        }
        let check: Handler = { _, context in
            try await service.checkGroupMember(group: try id(context), user: try id(context, "user"), caller: try context.requireAuth())
            return Response.empty()
        }
        api.get("/groups/:id/users/:user", use: check)
        api.head("/groups/:id/users/:user", use: check)
        api.delete("/groups/:id/users/:user") { _, context in
            try await service.removeGroupMember(group: try id(context), user: try id(context, "user"), caller: try context.requireAuth())
            return Response.empty()
        }
    }

    // MARK: Roles

    func inference(_ request: Request, _ prior: Role, _ implied: Role) -> Response {
        Self.ok(["role_inference": ["prior_role": prior.reference(links(request)), "implies": implied.reference(links(request))],
                 "links": ["self": .string("\(links(request).v3)/roles/\(prior.id)/implies/\(implied.id)")]])
    }

    func registerRoles(_ api: RouterGroup<Context>) {
        registerCollection(api, "roles", key: "role", create: service.createRole, index: service.listRoles, show: service.getRole,
                           update: service.updateRole, delete: service.deleteRole)
        api.put("/roles/:id/implies/:implied") { request, context in
            let (prior, implied) = try await service.createImpliedRole(prior: try id(context), implied: try id(context, "implied"), caller: try context.requireAuth())
            var response = inference(request, prior, implied)
            response.status = .created
            return response
        }
        api.get("/roles/:id/implies/:implied") { request, context in
            let (prior, implied) = try await service.getImpliedRole(prior: try id(context), implied: try id(context, "implied"), caller: try context.requireAuth())
            return inference(request, prior, implied)
        }
        api.head("/roles/:id/implies/:implied") { _, context in
            _ = try await service.getImpliedRole(prior: try id(context), implied: try id(context, "implied"), caller: try context.requireAuth())
            return Response.empty()
        }
        api.delete("/roles/:id/implies/:implied") { _, context in
            try await service.deleteImpliedRole(prior: try id(context), implied: try id(context, "implied"), caller: try context.requireAuth())
            return Response.empty()
        }
        api.get("/roles/:id/implies") { request, context in
            let rules = try await service.listImpliedRoles(prior: try id(context), caller: try context.requireAuth())
            let (prior, implied) = rules[0]
            return Self.ok(["role_inference": ["prior_role": prior.reference(links(request)), "implies": .array(implied.map { $0.reference(links(request)) })],
                            "links": ["self": .string("\(links(request).v3)/roles/\(prior.id)/implies")]])
        }
        api.get("/role_inferences") { request, context in
            let rules = try await service.listImpliedRoles(prior: nil, caller: try context.requireAuth())
            return Self.ok(["role_inferences": .array(rules.map { prior, implied in
                ["prior_role": prior.reference(links(request)), "implies": .array(implied.map { $0.reference(links(request)) })]
            }), "links": links(request).collection("role_inferences")])
        }
        api.get("/role_assignments") { request, context in
            let q = request.queryDictionary
            var filter = IdentityService.AssignmentFilter()
            filter.userID = q["user.id"]
            filter.groupID = q["group.id"]
            filter.roleID = q["role.id"]
            filter.projectID = q["scope.project.id"]
            filter.domainID = q["scope.domain.id"]
            filter.system = q["scope.system"] != nil
            filter.inheritedOnly = q["scope.OS-INHERIT:inherited_to"] != nil
            filter.effective = q.flag("effective")
            filter.includeNames = q.flag("include_names")
            filter.includeSubtree = q.flag("include_subtree")
            if filter.effective && filter.groupID != nil {
                throw APIError.badRequest("Combining effective and group filter will always result in an empty list.")
            }
            return list(request, "role_assignments", try await service.listRoleAssignments(filter, caller: try context.requireAuth(), links: links(request)))
        }
    }

    // MARK: Grants

    /// `/{projects|domains}/{target}/{users|groups}/{actor}/roles[/{role}]`, the OS-INHERIT
    /// forms, and `/system/{users|groups}/{actor}/roles[/{role}]`.
    func registerGrants(_ api: RouterGroup<Context>) {
        struct Shape {
            let path: String
            let inherited: Bool
            let target: @Sendable (Context) throws -> AssignmentTarget
            let actor: @Sendable (Context) throws -> AssignmentActor
        }
        var shapes: [Shape] = []
        let actorOf: @Sendable (String, Context) throws -> AssignmentActor = { kind, context in
            let id = try context.parameters.require("actor")
            return kind == "users" ? .user(id) : .group(id)
        }
        for actorKind in ["users", "groups"] {
            for targetKind in ["projects", "domains"] {
                let target: @Sendable (Context) throws -> AssignmentTarget = { context in
                    let id = try context.parameters.require("id")
                    return targetKind == "projects" ? .project(id) : .domain(id)
                }
                let actor: @Sendable (Context) throws -> AssignmentActor = { try actorOf(actorKind, $0) }
                shapes.append(Shape(path: "/\(targetKind)/:id/\(actorKind)/:actor/roles", inherited: false, target: target, actor: actor))
                shapes.append(Shape(path: "/OS-INHERIT/\(targetKind)/:id/\(actorKind)/:actor/roles", inherited: true, target: target, actor: actor))
            }
            shapes.append(Shape(path: "/system/\(actorKind)/:actor/roles", inherited: false, target: { _ in .system },
                                actor: { try actorOf(actorKind, $0) }))
        }
        for shape in shapes {
            let suffix = shape.inherited ? "/inherited_to_projects" : ""
            let grant: @Sendable (Context) throws -> Assignment = { context in
                Assignment(actor: try shape.actor(context), target: try shape.target(context), roleID: try context.parameters.require("role"),
                           inherited: shape.inherited)
            }
            api.put("\(shape.path)/:role\(suffix)") { _, context in
                try await service.createGrant(try grant(context), caller: try context.requireAuth())
                return Response.empty()
            }
            let check: Handler = { _, context in
                try await service.checkGrant(try grant(context), caller: try context.requireAuth())
                return Response.empty()
            }
            api.get("\(shape.path)/:role\(suffix)", use: check)
            api.head("\(shape.path)/:role\(suffix)", use: check)
            api.delete("\(shape.path)/:role\(suffix)") { _, context in
                try await service.deleteGrant(try grant(context), caller: try context.requireAuth())
                return Response.empty()
            }
            api.get("\(shape.path)\(suffix)") { request, context in
                let roles = try await service.listGrants(actor: try shape.actor(context), target: try shape.target(context),
                                                         inherited: shape.inherited, caller: try context.requireAuth())
                return list(request, "roles", roles.map { $0.json(links(request)) })
            }
        }
    }

    // MARK: Catalog

    func registerCatalog(_ api: RouterGroup<Context>) {
        api.post("/regions") { request, context in
            Self.ok(["region": try await service.createRegion(try await input(request, "region"), id: nil, caller: try context.requireAuth()).json(links(request))], .created)
        }
        api.put("/regions/:id") { request, context in
            Self.ok(["region": try await service.createRegion(try await input(request, "region"), id: try id(context), caller: try context.requireAuth()).json(links(request))], .created)
        }
        api.get("/regions") { request, context in
            list(request, "regions", try await service.listRegions(request.queryDictionary, caller: try context.requireAuth()).map { $0.json(links(request)) })
        }
        api.get("/regions/:id") { request, context in
            Self.ok(["region": try await service.getRegion(try id(context), caller: try context.requireAuth()).json(links(request))])
        }
        api.patch("/regions/:id") { request, context in
            Self.ok(["region": try await service.updateRegion(try id(context), try await input(request, "region"), caller: try context.requireAuth()).json(links(request))])
        }
        api.delete("/regions/:id") { _, context in
            try await service.deleteRegion(try id(context), caller: try context.requireAuth())
            return Response.empty()
        }
        registerCollection(api, "services", key: "service", create: service.createService, index: service.listServices, show: service.getService,
                           update: service.updateService, delete: service.deleteService)
        registerCollection(api, "endpoints", key: "endpoint", create: service.createEndpoint, index: service.listEndpoints, show: service.getEndpoint,
                           update: service.updateEndpoint, delete: service.deleteEndpoint)
    }
}

extension IdentityRoutes {
    func registerCredentials(_ api: RouterGroup<Context>) {
        registerCollection(api, "credentials", key: "credential", create: service.createCredential, index: service.listCredentials, show: service.getCredential,
                           update: service.updateCredential, delete: service.deleteCredential)
        registerCollection(api, "OS-EP-FILTER/endpoint_groups", key: "endpoint_group", create: service.createEndpointGroup, index: service.listEndpointGroups, show: service.getEndpointGroup,
                           update: service.updateEndpointGroup, delete: service.deleteEndpointGroup)
        api.head("/OS-EP-FILTER/endpoint_groups/:id") { _, context in
            _ = try await service.getEndpointGroup(try id(context), caller: try context.requireAuth())
            return Response.empty(.ok)
        }
        registerEndpointFilter(api)
        api.post("/users/:id/credentials/OS-EC2") { request, context in
            let body = try await request.jsonBody(limit: maxBodySize)
            let created = try await service.createEC2Credential(userID: try id(context), body, caller: try context.requireAuth())
            return Self.ok(["credential": created.json(links(request))], .created)
        }
        api.get("/users/:id/credentials/OS-EC2") { request, context in
            list(request, "credentials", try await service.listEC2Credentials(userID: try id(context), caller: try context.requireAuth())
                .map { $0.json(links(request)) })
        }
        api.get("/users/:id/credentials/OS-EC2/:access") { request, context in
            Self.ok(["credential": try await service.getEC2Credential(userID: try id(context), access: try id(context, "access"),
                                                                      caller: try context.requireAuth()).json(links(request))])
        }
        api.delete("/users/:id/credentials/OS-EC2/:access") { _, context in
            try await service.deleteEC2Credential(userID: try id(context), access: try id(context, "access"), caller: try context.requireAuth())
            return Response.empty()
        }
        // Keystone answers 200 here, not the 201 of /auth/tokens.
        api.post("/ec2tokens") { request, context in
            let auth = try await service.authenticateEC2(try await request.jsonBody(limit: maxBodySize), caller: try context.requireAuth())
            var response = Self.ok(try await tokenBody(auth, catalog: true))
            response.headers[Self.subjectTokenHeader] = auth.token
            return response
        }
        // Keystone sends no X-Subject-Token here: the gateway reads the token from the body.
        api.post("/s3tokens") { request, context in
            let auth = try await service.authenticateS3(try await request.jsonBody(limit: maxBodySize), caller: try context.requireAuth())
            return Self.ok(try await tokenBody(auth, catalog: true))
        }
        registerCollection(api, "policies", key: "policy", create: service.createPolicyDocument, index: service.listPolicyDocuments, show: service.getPolicyDocument,
                           update: service.updatePolicyDocument, delete: service.deletePolicyDocument)
    }
}

extension IdentityRoutes {
    // MARK: Trusts

    func registerTrusts(_ api: RouterGroup<Context>) {
        api.post("/OS-TRUST/trusts") { request, context in
            let (trust, roles) = try await service.createTrust(try await input(request, "trust"), caller: try context.requireAuth())
            return Self.ok(["trust": trust.json(links(request), roles: roles)], .created)
        }
        api.get("/OS-TRUST/trusts") { request, context in
            list(request, "trusts", try await service.listTrusts(request.queryDictionary, caller: try context.requireAuth()).map { $0.json(links(request), roles: nil) })
        }
        api.get("/OS-TRUST/trusts/:id") { request, context in
            let (trust, roles) = try await service.getTrust(try id(context), caller: try context.requireAuth())
            return Self.ok(["trust": trust.json(links(request), roles: roles)])
        }
        api.delete("/OS-TRUST/trusts/:id") { _, context in
            try await service.deleteTrust(try id(context), caller: try context.requireAuth())
            return Response.empty()
        }
        api.get("/OS-TRUST/trusts/:id/roles") { request, context in
            let roles = try await service.listTrustRoles(try id(context), caller: try context.requireAuth())
            return Self.ok(["roles": .array(roles.map { $0.json(links(request)) }), "links": links(request).collection("OS-TRUST/trusts/\(try id(context))/roles")])
        }
        let role: Handler = { request, context in
            let role = try await service.getTrustRole(try id(context), roleID: try id(context, "role"), caller: try context.requireAuth())
            return request.method == .head ? Response.empty(.ok) : Self.ok(["role": role.json(links(request))])
        }
        api.get("/OS-TRUST/trusts/:id/roles/:role", use: role)
        api.head("/OS-TRUST/trusts/:id/roles/:role", use: role)
    }
}

extension IdentityRoutes {
    // MARK: Unified limits

    func registerLimits(_ api: RouterGroup<Context>) {
        registerBatchCollection(api, "registered_limits", key: "registered_limit", create: service.createRegisteredLimits,
                                index: service.listRegisteredLimits, show: service.getRegisteredLimit,
                                update: service.updateRegisteredLimit, delete: service.deleteRegisteredLimit)
        // The router prefers this constant segment to the `limits/:id` capture.
        api.get("/limits/model") { _, context in
            Self.ok(["model": try service.limitModel(caller: try context.requireAuth())])
        }
        registerBatchCollection(api, "limits", key: "limit", create: service.createLimits, index: service.listLimits, show: service.getLimit,
                                update: service.updateLimit, delete: service.deleteLimit)
    }
}

extension Dictionary where Key == String, Value == String {
    /// A boolean query parameter as Keystone reads one (`?enabled=false`): nil when absent,
    /// false for 0, false, no or off in any case, true for any other value.
    func boolean(_ name: String) -> Bool? {
        self[name].map { !["0", "false", "no", "off"].contains($0.lowercased()) }
    }

    /// A query flag like `?effective` or `?include_names=true`: present and not false.
    func flag(_ name: String) -> Bool { boolean(name) ?? false }
}
