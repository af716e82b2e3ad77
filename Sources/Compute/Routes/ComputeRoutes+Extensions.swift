import Hummingbird
import NimbusCore

extension ComputeRoutes {
    /// Nova's v2.1 extension list, frozen when microversions replaced extensions: clients of
    /// that era read names and aliases from it. Nova lists the whole frozen set whatever the
    /// deployment runs, and so does this (the API behind most of them is the microversioned one).
    static let legacyExtensions: [(name: String, alias: String)] = [
        ("AdminActions", "os-admin-actions"), ("AdminPassword", "os-admin-password"), ("Agents", "os-agents"),
        ("Aggregates", "os-aggregates"), ("AssistedVolumeSnapshots", "os-assisted-volume-snapshots"),
        ("AttachInterfaces", "os-attach-interfaces"), ("AvailabilityZone", "os-availability-zone"),
        ("BareMetalNodes", "os-baremetal-nodes"), ("BlockDeviceMapping", "os-block-device-mapping"), ("Cells", "os-cells"),
        ("Certificates", "os-certificates"), ("Cloudpipe", "os-cloudpipe"), ("ConfigDrive", "os-config-drive"),
        ("ConsoleAuthTokens", "os-console-auth-tokens"), ("ConsoleOutput", "os-console-output"), ("Consoles", "os-consoles"),
        ("CreateBackup", "os-create-backup"), ("Createserverext", "os-create-server-ext"), ("DeferredDelete", "os-deferred-delete"),
        ("DiskConfig", "os-disk-config"), ("Evacuate", "os-evacuate"), ("ExtendedAvailabilityZone", "os-extended-availability-zone"),
        ("ExtendedServerAttributes", "os-extended-server-attributes"), ("ExtendedStatus", "os-extended-status"),
        ("ExtendedVolumes", "os-extended-volumes"), ("FixedIPs", "os-fixed-ips"), ("FlavorAccess", "os-flavor-access"),
        ("FlavorExtraData", "os-flavor-extra-data"), ("FlavorExtraSpecs", "os-flavor-extra-specs"), ("FlavorManage", "os-flavor-manage"),
        ("FlavorRxtx", "os-flavor-rxtx"), ("Flavors", "flavors"), ("FloatingIpDns", "os-floating-ip-dns"),
        ("FloatingIpPools", "os-floating-ip-pools"), ("FloatingIps", "os-floating-ips"), ("FloatingIpsBulk", "os-floating-ips-bulk"),
        ("Fping", "os-fping"), ("HideServerAddresses", "os-hide-server-addresses"), ("Hosts", "os-hosts"),
        ("Hypervisors", "os-hypervisors"), ("ImageMetadata", "image-metadata"), ("ImageSize", "image-size"), ("Images", "images"),
        ("InstanceActions", "os-instance-actions"), ("Keypairs", "os-keypairs"), ("Limits", "limits"), ("LockServer", "os-lock-server"),
        ("MigrateServer", "os-migrate-server"), ("Migrations", "os-migrations"), ("Multinic", "os-multinic"),
        ("MultipleCreate", "os-multiple-create"), ("Networks", "os-networks"), ("NetworksAssociate", "os-networks-associate"),
        ("PauseServer", "os-pause-server"), ("PreserveEphemeralOnRebuild", "os-preserve-ephemeral-rebuild"), ("QuotaClasses", "os-quota-class-sets"),
        ("Quotas", "os-quota-sets"), ("Rescue", "os-rescue"), ("SchedulerHints", "os-scheduler-hints"),
        ("SecurityGroupDefaultRules", "os-security-group-default-rules"), ("SecurityGroups", "os-security-groups"),
        ("ServerDiagnostics", "os-server-diagnostics"), ("ServerExternalEvents", "os-server-external-events"),
        ("ServerGroupQuotas", "os-server-group-quotas"), ("ServerGroups", "os-server-groups"), ("ServerListMultiStatus", "os-server-list-multi-status"),
        ("ServerMetadata", "server-metadata"), ("ServerPassword", "os-server-password"), ("ServerSortKeys", "os-server-sort-keys"),
        ("ServerStartStop", "os-server-start-stop"), ("ServerUsage", "os-server-usage"), ("Servers", "servers"), ("Services", "os-services"),
        ("Shelve", "os-shelve"), ("SimpleTenantUsage", "os-simple-tenant-usage"), ("SuspendServer", "os-suspend-server"),
        ("TenantNetworks", "os-tenant-networks"), ("UsedLimits", "os-used-limits"), ("UserData", "os-user-data"), ("Versions", "versions"),
        ("VirtualInterfaces", "os-virtual-interfaces"), ("Volumes", "os-volumes"),
    ]

    static func extensionJSON(_ entry: (name: String, alias: String)) -> JSON {
        ["name": .string(entry.name), "alias": .string(entry.alias), "description": .string("\(entry.name) support."),
         "namespace": "http://docs.openstack.org/compute/ext/fake_xml", "updated": "2014-12-03T00:00:00Z", "links": []]
    }

    func registerExtensions(_ api: RouterGroup<Context>) {
        api.get("/extensions") { _, context in
            _ = try context.requireAuth()
            return JSONResponse(["extensions": .array(Self.legacyExtensions.map(Self.extensionJSON))]).response()
        }
        api.get("/extensions/:alias") { _, context in
            _ = try context.requireAuth()
            let alias = try context.parameters.require("alias")
            guard let found = Self.legacyExtensions.first(where: { $0.alias == alias }) else {
                throw APIError.notFound("Extension \(alias) could not be found.")
            }
            return JSONResponse(["extension": Self.extensionJSON(found)]).response()
        }
    }
}
