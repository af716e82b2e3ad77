import Hummingbird
import NimbusCore

extension ComputeRoutes {
    /// `os-interface`: the server's ports as Nova lists them (`openstack port list --server`
    /// works from Neutron; Tempest and Ansible ask Nova); `os-server-password`: the password
    /// the guest posted to the metadata service.
    func registerServerExtras(_ api: RouterGroup<Context>) {
        api.get("/servers/:id/os-interface") { _, context in
            JSONResponse(["interfaceAttachments": .array(try await service.interfaces(try context.parameters.require("id"), version: context.microversion,
                                                                                       caller: try context.requireAuth()))]).response()
        }
        api.get("/servers/:id/os-server-password") { _, context in
            JSONResponse(["password": .string(try await service.serverPassword(try context.parameters.require("id"), caller: try context.requireAuth()))]).response()
        }
        api.delete("/servers/:id/os-server-password") { _, context in
            try await service.clearServerPassword(try context.parameters.require("id"), caller: try context.requireAuth())
            return Response(status: .noContent)
        }
        api.get("/servers/:id/os-interface/:port") { _, context in
            JSONResponse(["interfaceAttachment": try await service.interface(try context.parameters.require("id"), port: try context.parameters.require("port"), version: context.microversion,
                                                                             caller: try context.requireAuth())]).response()
        }
        // Attach answers once the host plugged the port in (Nova's RPC call); detach is queued.
        api.post("/servers/:id/os-interface") { request, context in
            let attached = try await service.attachInterface(try context.parameters.require("id"), try await body(request), version: context.microversion,
                                                             caller: try context.requireAuth(), requestID: context.requestID)
            return JSONResponse(["interfaceAttachment": attached]).response()
        }
        api.delete("/servers/:id/os-interface/:port") { _, context in
            try await service.detachInterface(try context.parameters.require("id"), port: try context.parameters.require("port"),
                                              caller: try context.requireAuth(), requestID: context.requestID)
            return Response(status: .accepted)
        }
    }
}
