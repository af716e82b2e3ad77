import NimbusStore

/// The networking tables. Each resource family owns its migrations (in its own file, named
/// `network_<nnn>_<family>` so they apply in order); this list joins them.
public enum NetworkMigrations {
    public static var all: [Migration] { core + security + routing + dataplane + rbac + addressScopes + addressGroups + defaultSecurityGroupRules + services + defaultStatefulness + routerGateways + segments }
}
