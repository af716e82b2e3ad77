import Hummingbird

extension NetworkRoutes {
    /// The service plugins' routes: QoS, trunks, port forwardings, metering, conntrack helpers.
    func registerServices(_ api: RouterGroup<Context>) {
        registerQoS(api)
        registerTrunks(api)
        registerPortForwardings(api)
        registerMetering(api)
        registerConntrackHelpers(api)
        registerFlavors(api)
        registerLocalIPs(api)
    }
}
