import Hummingbird
import NimbusCore

extension NetworkRoutes {
    /// Networks, segments, subnets, subnet pools, ports, quotas, availability zones, tags.
    func registerCore(_ api: RouterGroup<Context>) {
    }
}
