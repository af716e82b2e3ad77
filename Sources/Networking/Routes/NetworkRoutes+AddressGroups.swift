import HTTPTypes
import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// Address groups (`address-group`).
    func registerAddressGroups(_ api: RouterGroup<Context>) {
        let service = self.service
        registerResource(api, key: "address_group", collection: "address_groups", path: "address-groups",
                         list: service.listAddressGroups, create: service.createAddressGroup, show: service.addressGroup,
                         update: service.updateAddressGroup, delete: service.deleteAddressGroup)
        for (action, adding) in [("add_addresses", true), ("remove_addresses", false)] {
            api.put("/address-groups/:id/\(action)") { request, context in
                let group = try await service.changeAddressGroupAddresses(try context.parameters.require("id"), adding: adding,
                                                                          try await self.input(request, "address_group"), caller: try context.requireAuth())
                return JSONResponse(["address_group": .object(group)]).response()
            }
        }
    }
}
