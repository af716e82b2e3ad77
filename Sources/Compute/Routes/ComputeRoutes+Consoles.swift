import Hummingbird
import NimbusCore

extension ComputeRoutes {
    /// Remote consoles (2.6+) and console auth tokens; the pre-2.6 console actions are server
    /// actions (`POST /servers/{id}/action`).
    func registerConsoles(_ api: RouterGroup<Context>) {
        api.post("/servers/:id/remote-consoles") { request, context in
            JSONResponse(try await service.createRemoteConsole(try context.parameters.require("id"), try await body(request),
                                                               version: context.microversion, caller: try context.requireAuth())).response()
        }
        api.get("/os-console-auth-tokens/:token") { _, context in
            JSONResponse(try await service.consoleAuthToken(try context.parameters.require("token"), version: context.microversion,
                                                            caller: try context.requireAuth())).response()
        }
    }
}
