import Foundation
import Hummingbird
import NimbusCore

/// OS-EP-FILTER's project associations. Path parameters under `endpoint_groups/` are named
/// `:id`, as the endpoint group routes name them (the router requires one name per position).
extension IdentityRoutes {
    func registerEndpointFilter(_ api: RouterGroup<Context>) {
        let direct = "/OS-EP-FILTER/projects/:project/endpoints/:endpoint"
        api.put(RouterPath(stringLiteral: direct)) { _, context in
            try await service.addEndpointToProject(try id(context, "endpoint"), project: try id(context, "project"), caller: try context.requireAuth())
            return Response.empty()
        }
        let check: Handler = { _, context in
            try await service.checkEndpointInProject(try id(context, "endpoint"), project: try id(context, "project"), caller: try context.requireAuth())
            return Response.empty()
        }
        api.get(RouterPath(stringLiteral: direct), use: check)
        api.head(RouterPath(stringLiteral: direct), use: check)
        api.delete(RouterPath(stringLiteral: direct)) { _, context in
            try await service.removeEndpointFromProject(try id(context, "endpoint"), project: try id(context, "project"), caller: try context.requireAuth())
            return Response.empty()
        }
        api.get("/OS-EP-FILTER/projects/:project/endpoints") { request, context in
            let endpoints = try await service.listEndpointsForProject(try id(context, "project"), caller: try context.requireAuth())
            return list(request, "endpoints", endpoints.map { $0.json(links(request)) })
        }
        api.get("/OS-EP-FILTER/projects/:project/endpoint_groups") { request, context in
            let groups = try await service.listEndpointGroupsForProject(try id(context, "project"), caller: try context.requireAuth())
            return list(request, "endpoint_groups", groups.map { $0.json(links(request)) })
        }
        api.get("/OS-EP-FILTER/endpoints/:endpoint/projects") { request, context in
            let projects = try await service.listProjectsForEndpoint(try id(context, "endpoint"), caller: try context.requireAuth())
            return list(request, "projects", projects.map { $0.json(links(request)) })
        }

        let grouped = "/OS-EP-FILTER/endpoint_groups/:id/projects/:project"
        api.put(RouterPath(stringLiteral: grouped)) { _, context in
            try await service.addEndpointGroupToProject(try id(context), project: try id(context, "project"), caller: try context.requireAuth())
            return Response.empty()
        }
        api.get(RouterPath(stringLiteral: grouped)) { request, context in
            let (group, project) = (try id(context), try id(context, "project"))
            try await service.checkEndpointGroupInProject(group, project: project, caller: try context.requireAuth())
            return Self.ok(["project_endpoint_group": ["endpoint_group_id": .string(group), "project_id": .string(project),
                                                       "links": ["self": .string("\(links(request).v3)/OS-EP-FILTER/endpoint_groups/\(group)/projects/\(project)")]]])
        }
        api.head(RouterPath(stringLiteral: grouped)) { _, context in
            try await service.checkEndpointGroupInProject(try id(context), project: try id(context, "project"), caller: try context.requireAuth())
            return Response.empty(.ok)
        }
        api.delete(RouterPath(stringLiteral: grouped)) { _, context in
            try await service.removeEndpointGroupFromProject(try id(context), project: try id(context, "project"), caller: try context.requireAuth())
            return Response.empty()
        }
        api.get("/OS-EP-FILTER/endpoint_groups/:id/projects") { request, context in
            let projects = try await service.listProjectsForEndpointGroup(try id(context), caller: try context.requireAuth())
            return list(request, "projects", projects.map { $0.json(links(request)) })
        }
        api.get("/OS-EP-FILTER/endpoint_groups/:id/endpoints") { request, context in
            let endpoints = try await service.listEndpointsForEndpointGroup(try id(context), caller: try context.requireAuth())
            return list(request, "endpoints", endpoints.map { $0.json(links(request)) })
        }
    }
}
