import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// RBAC policies (`rbac-policies`).
    func registerRBAC(_ api: RouterGroup<Context>) {
        let service = self.service
        registerResource(api, key: "rbac_policy", collection: "rbac_policies", path: "rbac-policies",
                         list: service.listRBACPolicies, create: service.createRBACPolicy, show: service.rbacPolicy,
                         update: service.updateRBACPolicy, delete: service.deleteRBACPolicy)
    }
}
