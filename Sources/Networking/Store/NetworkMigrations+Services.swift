import NimbusStore

extension NetworkMigrations {
    /// The service plugins' tables (versions 501–599), each family's in its own file.
    static var services: [Migration] { qos + trunks + portForwardings + metering + conntrackHelpers + flavors + localIPs }
}
