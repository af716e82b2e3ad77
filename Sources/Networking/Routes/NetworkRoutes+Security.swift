import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// Security groups and rules, agents.
    func registerSecurity(_ api: RouterGroup<Context>) {
    }
}
