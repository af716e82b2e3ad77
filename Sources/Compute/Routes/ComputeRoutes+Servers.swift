import Foundation
import HTTPTypes
import Hummingbird
import NimbusCore

extension ComputeRoutes {
    /// How to show `servers`; `host_status` (admins, 2.16+) is read for their hosts only.
    func view(_ request: Request, _ context: Context, for servers: [Instance] = []) async throws -> ServerView {
        let caller = try context.requireAuth()
        let needsStatus = caller.isAdmin && context.microversion >= Microversion(2, 16)
        return ServerView(version: context.microversion, base: Self.base(request), isAdmin: caller.isAdmin,
                          hostStatus: needsStatus ? try await service.hostStatuses(Set(servers.compactMap(\.host))) : [:])
    }

    func registerServers(_ api: RouterGroup<Context>) {
        api.post("/servers") { request, context in
            let created = try await service.createServer(try await body(request), version: context.microversion, caller: try context.requireAuth(),
                                                         requestID: context.requestID)
            if created.returnReservationID { return JSONResponse(status: .accepted, ["reservation_id": .string(created.reservationID)]).response() }
            let view = try await view(request, context)
            var server = view.summary(created.instance).objectValue ?? [:]
            server["name"] = nil
            server["OS-DCF:diskConfig"] = created.instance.extra["diskConfig"] ?? "MANUAL"
            server["security_groups"] = [["name": "default"]]
            server["adminPass"] = .string(created.adminPass)
            var response = JSONResponse(status: .accepted, ["server": .object(server)]).response()
            response.headers[.location] = "\(Self.base(request))/v2.1/servers/\(created.instance.uuid)"
            return response
        }
        for detail in [false, true] {
            api.get(detail ? "/servers/detail" : "/servers") { request, context in
                let servers = try await service.servers(request.queryDictionary, statuses: request.queryValues("status"),
                                                        sortKeys: request.queryValues("sort_key"), sortDirs: request.queryValues("sort_dir"),
                                                        version: context.microversion, caller: try context.requireAuth())
                let view = try await view(request, context, for: detail ? servers : [])
                return try Self.page("servers", servers.map { detail ? view.detail($0) : view.summary($0) }, request, lastID: servers.last?.uuid,
                                 path: detail ? "servers/detail" : "servers")
            }
        }
        api.get("/servers/:id") { request, context in
            let (instance, groups) = try await service.server(try context.parameters.require("id"), caller: try context.requireAuth())
            return JSONResponse(["server": try await view(request, context, for: [instance]).detail(instance, groups: groups)]).response()
        }
        api.get("/servers/:id/os-security-groups") { _, context in
            let groups = try await service.serverSecurityGroups(try context.parameters.require("id"), caller: try context.requireAuth())
            return JSONResponse(["security_groups": .array(groups.map(\.json))]).response()
        }
        api.put("/servers/:id") { request, context in
            let id = try context.parameters.require("id")
            _ = try await service.updateServer(id, try await body(request), version: context.microversion, caller: try context.requireAuth())
            let (instance, groups) = try await service.server(id, caller: try context.requireAuth())
            return JSONResponse(["server": try await view(request, context, for: [instance]).updated(instance, groups: groups, rebuild: false)]).response()
        }
        api.delete("/servers/:id") { _, context in
            try await service.deleteServer(try context.parameters.require("id"), caller: try context.requireAuth(), requestID: context.requestID)
            return Response(status: .noContent)
        }
        api.post("/servers/:id/action") { request, context in
            let result = try await service.action(try context.parameters.require("id"), try await body(request), version: context.microversion,
                                                  caller: try context.requireAuth(), requestID: context.requestID)
            if let server = result.server {
                let groups = try await service.server(server.uuid, caller: try context.requireAuth()).1
                var shown = try await view(request, context, for: [server]).updated(server, groups: groups, rebuild: true).objectValue ?? [:]
                shown["adminPass"] = result.body?["adminPass"]
                var response = JSONResponse(status: .accepted, ["server": .object(shown)]).response()
                response.headers[.location] = "\(Self.base(request))/v2.1/servers/\(server.uuid)"
                return response
            }
            if let image = result.imageID {
                return Response(status: HTTPResponse.Status(code: result.status), headers: [.location: "\(Self.base(request))/v2.1/images/\(image)"])
            }
            guard let body = result.body else { return Response(status: HTTPResponse.Status(code: result.status)) }
            return JSONResponse(status: HTTPResponse.Status(code: result.status), body).response()
        }
        api.get("/servers/:id/ips") { _, context in
            JSONResponse(try await service.addresses(try context.parameters.require("id"), network: nil, caller: try context.requireAuth())).response()
        }

        // Metadata
        api.get("/servers/:id/metadata") { _, context in
            let metadata = try await service.metadata(try context.parameters.require("id"), caller: try context.requireAuth())
            return JSONResponse(["metadata": .object(metadata.mapValues { .string($0) })]).response()
        }
        for (method, replace) in [(HTTPRequest.Method.post, false), (.put, true)] {
            api.on("/servers/:id/metadata", method: method) { request, context in
                let input = try JSONInput(body: try await body(request), key: "metadata")
                let items = try ComputeService.metadata(.object(input.fields), field: "metadata")
                let metadata = try await service.setMetadata(try context.parameters.require("id"), items, replace: replace, caller: try context.requireAuth())
                return JSONResponse(["metadata": .object(metadata.mapValues { .string($0) })]).response()
            }
        }
        api.get("/servers/:id/metadata/:key") { _, context in
            let key = try context.parameters.require("key")
            guard let value = try await service.metadata(try context.parameters.require("id"), caller: try context.requireAuth())[key] else {
                throw APIError.notFound("Metadata item was not found")
            }
            return JSONResponse(["meta": [key: .string(value)]]).response()
        }
        api.put("/servers/:id/metadata/:key") { request, context in
            let key = try context.parameters.require("key")
            let meta = try JSONInput(body: try await body(request), key: "meta")
            guard meta.fields.count == 1, meta.fields[key] != nil else { throw APIError.badRequest("Request body and URI mismatch") }
            let items = try ComputeService.metadata(.object(meta.fields), field: "meta")
            _ = try await service.setMetadata(try context.parameters.require("id"), items, replace: false, caller: try context.requireAuth())
            return JSONResponse(["meta": .object(items.mapValues { .string($0) })]).response()
        }
        api.delete("/servers/:id/metadata/:key") { _, context in
            try await service.deleteMetadata(try context.parameters.require("id"), key: try context.parameters.require("key"), caller: try context.requireAuth())
            return Response(status: .noContent)
        }

        // Tags (2.26+)
        api.get("/servers/:id/tags") { _, context in
            try Self.require(context, 2, 26)
            return JSONResponse(["tags": .array(try await service.tags(try context.parameters.require("id"), caller: try context.requireAuth()).map { .string($0) })]).response()
        }
        api.put("/servers/:id/tags") { request, context in
            try Self.require(context, 2, 26)
            let tags = try ComputeService.tags(try await body(request)["tags"] ?? .null)
            let id = try context.parameters.require("id")
            try await service.changeTags(id, set: tags, caller: try context.requireAuth())
            return JSONResponse(["tags": .array(try await service.tags(id, caller: try context.requireAuth()).map { .string($0) })]).response()
        }
        api.delete("/servers/:id/tags") { _, context in
            try Self.require(context, 2, 26)
            try await service.changeTags(try context.parameters.require("id"), set: [], caller: try context.requireAuth())
            return Response(status: .noContent)
        }
        api.get("/servers/:id/tags/:tag") { _, context in
            try Self.require(context, 2, 26)
            let id = try context.parameters.require("id"), tag = try context.parameters.require("tag")
            guard try await service.tags(id, caller: try context.requireAuth()).contains(tag) else { throw APIError.notFound("Server \(id) has no tag '\(tag)'") }
            return Response(status: .noContent)
        }
        api.put("/servers/:id/tags/:tag") { request, context in
            try Self.require(context, 2, 26)
            let id = try context.parameters.require("id"), tag = try context.parameters.require("tag")
            guard try await service.changeTags(id, add: tag, caller: try context.requireAuth()) else { return Response(status: .noContent) }
            return Response(status: .created, headers: [.location: "\(Self.base(request))/v2.1/servers/\(id)/tags/\(tag)"])
        }
        api.delete("/servers/:id/tags/:tag") { _, context in
            try Self.require(context, 2, 26)
            try await service.changeTags(try context.parameters.require("id"), remove: try context.parameters.require("tag"), caller: try context.requireAuth())
            return Response(status: .noContent)
        }

        // Instance actions
        api.get("/servers/:id/os-instance-actions") { _, context in
            let v = context.microversion
            let actions = try await service.instanceActions(try context.parameters.require("id"), caller: try context.requireAuth())
            return JSONResponse(["instanceActions": .array(actions.map { $0.json(v, showDetails: false) })]).response()
        }
        api.get("/servers/:id/os-instance-actions/:request") { _, context in
            let v = context.microversion
            let caller = try context.requireAuth()
            let action = try await service.instanceAction(try context.parameters.require("id"), requestID: try context.parameters.require("request"), caller: caller)
            var out = action.json(v, showDetails: true).objectValue ?? [:]
            if caller.isAdmin || v >= Microversion(2, 51) {
                out["events"] = .array(action.events.map { event in
                    var shown = event.json(v, admin: caller.isAdmin).objectValue ?? [:]
                    if v >= Microversion(2, 62) { shown["hostId"] = .string(event.host.map { ComputeIdentity.hostID(host: $0, project: action.projectID) } ?? "") }
                    return .object(shown)
                })
            }
            return JSONResponse(["instanceAction": .object(out)]).response()
        }
    }

    static func require(_ context: Context, _ major: Int, _ minor: Int) throws {
        guard context.microversion >= Microversion(major, minor) else { throw APIError.notFound("The resource could not be found.") }
    }

    // MARK: Hosts, zones, aggregates, groups

    func registerHosts(_ api: RouterGroup<Context>) {
        api.get("/os-services") { request, context in
            JSONResponse(try await service.services(request.queryDictionary, version: context.microversion, caller: try context.requireAuth())).response()
        }
        api.put("/os-services/:id") { request, context in
            let id = try context.parameters.require("id")
            if context.microversion < Microversion(2, 53) {
                return JSONResponse(try await service.updateServiceLegacy(id, try await body(request), caller: try context.requireAuth())).response()
            }
            return JSONResponse(try await service.updateService(id, try await body(request), version: context.microversion,
                                                                caller: try context.requireAuth())).response()
        }
        api.delete("/os-services/:id") { _, context in
            try await service.deleteService(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response(status: .noContent)
        }
        for detail in [false, true] {
            api.get(detail ? "/os-hypervisors/detail" : "/os-hypervisors") { request, context in
                JSONResponse(try await service.hypervisors(request.queryDictionary, detail: detail, version: context.microversion,
                                                           caller: try context.requireAuth())).response()
            }
        }
        api.get("/servers/:id/diagnostics") { _, context in
            JSONResponse(try await service.diagnostics(try context.parameters.require("id"), version: context.microversion,
                                                       caller: try context.requireAuth())).response()
        }
        api.get("/os-migrations") { request, context in
            JSONResponse(try await service.migrations(request.queryDictionary, version: context.microversion, base: Self.base(request),
                                                      caller: try context.requireAuth())).response()
        }
        api.get("/servers/:id/migrations") { _, context in
            try Self.atLeast(context, 2, 23)
            return JSONResponse(try await service.serverMigrations(try context.parameters.require("id"), version: context.microversion,
                                                                   caller: try context.requireAuth())).response()
        }
        api.get("/servers/:id/migrations/:migration") { _, context in
            try Self.atLeast(context, 2, 23)
            return JSONResponse(try await service.serverMigration(try context.parameters.require("id"), id: try context.parameters.require("migration"),
                                                                  version: context.microversion, caller: try context.requireAuth())).response()
        }
        api.post("/os-server-external-events") { request, context in
            let (status, body) = try await service.externalEvents(try await request.jsonBody(limit: self.maxBodySize), caller: try context.requireAuth())
            return JSONResponse(status: HTTPResponse.Status(code: status), body).response()
        }
        api.get("/os-instance_usage_audit_log") { _, context in
            JSONResponse(["instance_usage_audit_logs": try await service.usageAuditLog(before: nil, caller: try context.requireAuth())]).response()
        }
        api.get("/os-instance_usage_audit_log/:before") { _, context in
            JSONResponse(["instance_usage_audit_log": try await service.usageAuditLog(before: try context.parameters.require("before"),
                                                                                     caller: try context.requireAuth())]).response()
        }
        api.get("/os-simple-tenant-usage") { request, context in
            // `/os-simple-tenant-usage/` is a show with an empty project id, not the list.
            if request.uri.path.hasSuffix("/") { throw APIError.notFound("The resource could not be found.") }
            return JSONResponse(try await service.usages(request.queryDictionary, version: context.microversion, caller: try context.requireAuth())).response()
        }
        api.get("/os-simple-tenant-usage/:id") { request, context in
            JSONResponse(try await service.usage(project: try context.parameters.require("id"), request.queryDictionary,
                                                 version: context.microversion, caller: try context.requireAuth())).response()
        }
        api.get("/os-hypervisors/statistics") { _, context in
            JSONResponse(try await service.hypervisorStatistics(version: context.microversion, caller: try context.requireAuth())).response()
        }
        api.get("/os-hypervisors/:id/uptime") { _, context in
            JSONResponse(try await service.hypervisorUptime(try context.parameters.require("id"), version: context.microversion,
                                                            caller: try context.requireAuth())).response()
        }
        for servers in [false, true] {
            api.get(servers ? "/os-hypervisors/:id/servers" : "/os-hypervisors/:id/search") { _, context in
                JSONResponse(try await service.hypervisorSearch(try context.parameters.require("id"), withServers: servers,
                                                                version: context.microversion, caller: try context.requireAuth())).response()
            }
        }
        api.get("/os-hypervisors/:id") { request, context in
            JSONResponse(try await service.hypervisor(try context.parameters.require("id"), query: request.queryDictionary,
                                                      version: context.microversion, caller: try context.requireAuth())).response()
        }
        api.get("/os-availability-zone") { _, context in
            JSONResponse(try await service.availabilityZones(detail: false, caller: try context.requireAuth())).response()
        }
        api.get("/os-availability-zone/detail") { _, context in
            JSONResponse(try await service.availabilityZones(detail: true, caller: try context.requireAuth())).response()
        }
        api.get("/os-aggregates") { _, context in
            JSONResponse(["aggregates": .array(try await service.aggregates(caller: try context.requireAuth()).map { $0.json(context.microversion) })]).response()
        }
        api.post("/os-aggregates") { request, context in
            var shown = try await service.createAggregate(try await body(request), caller: try context.requireAuth()).json(context.microversion).objectValue ?? [:]
            shown["hosts"] = nil
            shown["metadata"] = nil
            return JSONResponse(["aggregate": .object(shown)]).response()
        }
        api.get("/os-aggregates/:id") { _, context in
            JSONResponse(["aggregate": try await service.showAggregate(try context.parameters.require("id"), caller: try context.requireAuth()).json(context.microversion)]).response()
        }
        api.put("/os-aggregates/:id") { request, context in
            JSONResponse(["aggregate": try await service.updateAggregate(try context.parameters.require("id"), try await body(request),
                                                                         caller: try context.requireAuth()).json(context.microversion)]).response()
        }
        api.delete("/os-aggregates/:id") { _, context in
            try await service.deleteAggregate(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response(status: .ok)
        }
        api.post("/os-aggregates/:id/action") { request, context in
            JSONResponse(["aggregate": try await service.aggregateAction(try context.parameters.require("id"), try await body(request),
                                                                         caller: try context.requireAuth()).json(context.microversion)]).response()
        }
        api.get("/os-hosts") { request, context in
            try Self.below(context, 2, 43)
            return JSONResponse(try await service.osHosts(zone: request.queryDictionary["zone"].flatMap { $0.isEmpty ? nil : $0 }, caller: try context.requireAuth())).response()
        }
        api.get("/os-hosts/:id") { _, context in
            try Self.below(context, 2, 43)
            return JSONResponse(try await service.osHost(try context.parameters.require("id"), caller: try context.requireAuth())).response()
        }
        api.put("/os-hosts/:id") { request, context in
            try Self.below(context, 2, 43)
            return JSONResponse(try await service.updateOSHost(try context.parameters.require("id"), try await body(request),
                                                               caller: try context.requireAuth())).response()
        }
        for (path, action) in [("reboot", "reboot"), ("shutdown", "shutdown"), ("startup", "start")] {
            api.get("/os-hosts/:id/\(path)") { _, context in
                try Self.below(context, 2, 43)
                return JSONResponse(try await service.osHostPowerAction(try context.parameters.require("id"), action,
                                                                        caller: try context.requireAuth())).response()
            }
        }
        api.get("/os-server-groups") { request, context in
            let v = context.microversion
            let groups = try await service.serverGroups(request.queryDictionary, caller: try context.requireAuth())
            return JSONResponse(["server_groups": .array(groups.map { $0.json(v) })]).response()
        }
        api.post("/os-server-groups") { request, context in
            let v = context.microversion
            return JSONResponse(["server_group": try await service.createServerGroup(try await body(request), version: v,
                                                                                     caller: try context.requireAuth()).json(v)]).response()
        }
        api.get("/os-server-groups/:id") { _, context in
            JSONResponse(["server_group": try await service.serverGroup(try context.parameters.require("id"), caller: try context.requireAuth())
                .json(context.microversion)]).response()
        }
        api.delete("/os-server-groups/:id") { _, context in
            try await service.deleteServerGroup(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response(status: .noContent)
        }
    }

    /// A route removed at `major.minor`: 404 from that microversion on.
    static func below(_ context: Context, _ major: Int, _ minor: Int) throws {
        guard context.microversion < Microversion(major, minor) else { throw APIError.notFound("The resource could not be found.") }
    }

    /// A route added at `major.minor`: 404 before it.
    static func atLeast(_ context: Context, _ major: Int, _ minor: Int) throws {
        guard context.microversion >= Microversion(major, minor) else { throw APIError.notFound("The resource could not be found.") }
    }

    // MARK: Quotas and limits

    func registerQuotas(_ api: RouterGroup<Context>) {
        api.get("/os-quota-sets/:project") { _, context in
            JSONResponse(try await service.quotaSet(project: try context.parameters.require("project"), detail: false, version: context.microversion,
                                                    caller: try context.requireAuth())).response()
        }
        api.get("/os-quota-sets/:project/detail") { _, context in
            JSONResponse(try await service.quotaSet(project: try context.parameters.require("project"), detail: true, version: context.microversion,
                                                    caller: try context.requireAuth())).response()
        }
        api.get("/os-quota-sets/:project/defaults") { _, context in
            JSONResponse(try await service.quotaDefaults(project: try context.parameters.require("project"), version: context.microversion,
                                                         caller: try context.requireAuth())).response()
        }
        api.put("/os-quota-sets/:project") { request, context in
            JSONResponse(try await service.updateQuotaSet(project: try context.parameters.require("project"), try await body(request),
                                                          version: context.microversion, caller: try context.requireAuth())).response()
        }
        api.delete("/os-quota-sets/:project") { _, context in
            try await service.resetQuotaSet(project: try context.parameters.require("project"), caller: try context.requireAuth())
            return Response(status: .accepted)
        }
        api.get("/os-quota-class-sets/:project") { _, context in
            JSONResponse(try await service.quotaClassSet(try context.parameters.require("project"), version: context.microversion,
                                                         caller: try context.requireAuth())).response()
        }
        api.put("/os-quota-class-sets/:project") { request, context in
            JSONResponse(try await service.updateQuotaClassSet(try context.parameters.require("project"), try await body(request),
                                                               version: context.microversion, caller: try context.requireAuth())).response()
        }
        api.get("/limits") { request, context in
            JSONResponse(try await service.limits(caller: try context.requireAuth(), projectID: request.queryDictionary["tenant_id"],
                                                  version: context.microversion)).response()
        }
    }
}
