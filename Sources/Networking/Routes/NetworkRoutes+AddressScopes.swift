import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// Address scopes (`address-scope`).
    func registerAddressScopes(_ api: RouterGroup<Context>) {
        let service = self.service
        registerResource(api, key: "address_scope", collection: "address_scopes", path: "address-scopes",
                         list: service.listAddressScopes, create: service.createAddressScope, show: service.addressScope,
                         update: service.updateAddressScope, delete: service.deleteAddressScope)
    }
}
