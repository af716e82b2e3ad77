import Foundation

/// `nimbus.conf`: an INI file with OpenStack-style sections (`[DEFAULT]`, `[database]`,
/// `[token]`, …). Every option a service reads is declared in `NimbusConfig.options` with its
/// default and a one-line explanation, so the written sample file and `docs/configuration.md`
/// say the same thing as the code. Command-line flags override the file.
public struct NimbusConfig: Sendable {
    /// One documented option.
    public struct Option: Sendable {
        public let section: String
        public let name: String
        public let defaultValue: String
        public let help: String
    }

    /// Every option Nimbus reads. Later services add their sections here.
    public static let options: [Option] = [
        Option(section: "DEFAULT", name: "listen", defaultValue: "127.0.0.1:8800",
               help: "Address and port of the single HTTP listener that serves every API under a path prefix."),
        Option(section: "DEFAULT", name: "public_url", defaultValue: "",
               help: "Base URL advertised in the service catalog; empty means http://<listen>."),
        Option(section: "DEFAULT", name: "log_level", defaultValue: "info",
               help: "One of trace, debug, info, notice, warning, error, critical."),
        Option(section: "DEFAULT", name: "max_request_body_size", defaultValue: "114688",
               help: "Largest JSON request body accepted, in bytes (Keystone's default); larger bodies get 413."),
        Option(section: "database", name: "connection", defaultValue: "",
               help: "sqlite:///path/to/nimbus.db or postgres://user:password@host:port/db; empty means SQLite in the data dir."),
        Option(section: "token", name: "expiration", defaultValue: "3600",
               help: "Lifetime of an issued token, in seconds."),
        Option(section: "token", name: "cache_time", defaultValue: "300",
               help: "Seconds a validated token is kept in the in-process cache (memcached's role in OpenStack). Revocations clear it at once."),
        Option(section: "fernet_tokens", name: "key_repository", defaultValue: "fernet-keys",
               help: "Directory of token encryption keys, relative to the data dir."),
        Option(section: "fernet_tokens", name: "max_active_keys", defaultValue: "3",
               help: "Keys kept by `nimbus manage token rotate`: one staged, one primary, the rest secondary."),
        Option(section: "identity", name: "password_hash_rounds", defaultValue: "12",
               help: "bcrypt cost factor for stored passwords and application credential secrets (Keystone's default is 12)."),
        Option(section: "identity", name: "default_domain_id", defaultValue: "default",
               help: "Domain used when a request names none."),
        Option(section: "glance_store", name: "filesystem_store_datadir", defaultValue: "images",
               help: "Directory of the image stores, relative to the data dir: each store in a subdirectory named by its id, staged imports in `staging`."),
        Option(section: "glance_store", name: "enabled_backends", defaultValue: "local:file",
               help: "Image stores as `id:type` pairs, comma-separated (Glance's multi-store syntax); only the `file` type exists today."),
        Option(section: "glance_store", name: "default_backend", defaultValue: "",
               help: "Store that uploads go to when the client names none; empty means the first enabled one."),
        Option(section: "image_quota", name: "image_count_total", defaultValue: "-1",
               help: "Images one project may own (Glance's unified-limit name); -1 is unlimited."),
        Option(section: "image_quota", name: "image_size_total", defaultValue: "-1",
               help: "MiB of image data one project may store, counted once per store holding a copy; -1 is unlimited. Enforced while the data streams in."),
        Option(section: "image_quota", name: "image_stage_total", defaultValue: "-1",
               help: "MiB of staged (glance-direct) data one project may hold awaiting import; -1 is unlimited."),
        Option(section: "image_quota", name: "image_count_uploading", defaultValue: "-1",
               help: "Uploads, stages and imports one project may have under way at once; -1 is unlimited."),
        Option(section: "placement", name: "allocation_conflict_retry_count", defaultValue: "10",
               help: "Times an allocation write that lost a race with another writer on the same provider is retried before answering 409."),
        Option(section: "DEFAULT", name: "cpu_allocation_ratio", defaultValue: "4.0",
               help: "Virtual CPUs per physical CPU that placement lets compute hosts sell (Nova's initial_cpu_allocation_ratio)."),
        Option(section: "DEFAULT", name: "ram_allocation_ratio", defaultValue: "1.0",
               help: "Virtual RAM per physical RAM that placement lets compute hosts sell."),
        Option(section: "DEFAULT", name: "disk_allocation_ratio", defaultValue: "1.0",
               help: "Virtual disk per physical disk that placement lets compute hosts sell."),
        Option(section: "DEFAULT", name: "reserved_host_memory_mb", defaultValue: "512",
               help: "MiB of a compute host's RAM kept for the host itself: its agent reports it as the `reserved` of its MEMORY_MB inventory in placement, so servers get (total − reserved) × ram_allocation_ratio."),
        Option(section: "DEFAULT", name: "reserved_host_disk_mb", defaultValue: "0",
               help: "MiB of a compute host's instances disk kept for the host itself: reported as the `reserved` of its DISK_GB inventory, rounded up to whole GiB (as Nova does)."),
        Option(section: "DEFAULT", name: "reserved_host_cpus", defaultValue: "0",
               help: "Host CPUs kept for the host itself: reported as the `reserved` of its VCPU inventory."),
        Option(section: "DEFAULT", name: "service_down_time", defaultValue: "60",
               help: "Seconds without a heartbeat after which a compute service is down (and its servers may be evacuated)."),
        Option(section: "DEFAULT", name: "report_interval", defaultValue: "10",
               help: "Seconds between heartbeats: each compute agent's, and the controller's reports of its networking agents."),
        Option(section: "DEFAULT", name: "agent_down_time", defaultValue: "75",
               help: "Seconds without a report after which a networking agent is shown dead (`alive` false, XXX in the CLI)."),
        Option(section: "DEFAULT", name: "my_ip", defaultValue: "127.0.0.1",
               help: "Address other compute hosts reach the host `nimbus up` runs at (`nimbus agent --host-ip` for agents): live and cold migrations' disk and memory streams listen on it."),
        Option(section: "DEFAULT", name: "allow_resize_to_same_host", defaultValue: "true",
               help: "Let a resize land on the server's own host, as DevStack configures Nova (Nova's default is false); a one-host cloud needs it to resize at all."),
        Option(section: "compute", name: "driver", defaultValue: "qemu",
               help: "Driver of the compute host `nimbus up` runs itself: qemu (real guests), fake, or none (`nimbus up --driver` overrides it; --fake-hosts alone means none)."),
        Option(section: "compute", name: "host", defaultValue: "",
               help: "Name of that compute host (its service, hypervisor and placement provider); empty: the machine's host name."),
        Option(section: "compute", name: "instances_path", defaultValue: "",
               help: "Directory of the guests' disks, sockets and logs; empty: DATA_DIR/instances (or a short directory under /var/tmp when that path is too long for QEMU's sockets)."),
        Option(section: "compute", name: "force_config_drive", defaultValue: "auto",
               help: "Give every server a config drive (an ISO 9660 `config-2` volume with its metadata), asked for or not: true, false, or auto: off when `nimbus up`'s own host runs the linux dataplane, whose guests reach the metadata service over their network (Nova's default is off), on otherwise (a `nimbus controller` cannot see its agents' dataplanes: set false when they run linux)."),
        Option(section: "compute", name: "shutdown_timeout", defaultValue: "60",
               help: "Seconds a guest gets to shut down by ACPI (stop, soft reboot) before it is stopped hard."),
        Option(section: "compute", name: "sync_power_state_interval", defaultValue: "10",
               help: "Seconds between a compute host's reports of every guest's power state (Nova's _sync_power_states; Nova's default is 600): an ACTIVE server whose guest shut down becomes SHUTOFF. Guests that stop by themselves are also reported at once when the driver notices (QEMU: its process exits). 0 or less: only the report at the agent's start, which also destroys guests whose server is gone."),
        Option(section: "network", name: "dataplane", defaultValue: "auto",
               help: "The network dataplane of the compute host `nimbus up` runs itself (`nimbus agent --dataplane` for agents): linux (bridges, taps, VXLAN and dnsmasq, as Neutron's Linux bridge and DHCP agents), none (ports exist only in the API), or auto: linux for a host of real guests (the qemu driver) when running as root, none otherwise."),
        Option(section: "network", name: "default_topology", defaultValue: "true",
               help: "When `nimbus up`'s own host runs the linux dataplane, make DevStack's networks on first start: an external flat `public` network on the `br-ex` bridge, which holds its gateway address, and for the admin project a `private` network with `router1` to `public`."),
        Option(section: "network", name: "floating_range", defaultValue: "172.24.4.0/24",
               help: "The default `public` subnet (DevStack's FLOATING_RANGE); its first address is the gateway, held by `br-ex`."),
        Option(section: "network", name: "fixed_range", defaultValue: "10.0.0.0/26",
               help: "The default `private` subnet (DevStack's private subnet)."),
        Option(section: "network", name: "public_namespace", defaultValue: "",
               help: "A network namespace (made when missing) to hold `br-ex` and the public gateway address instead of the host's own: the host's routing is then untouched, and the public side is reached with `ip netns exec <name>`."),
        Option(section: "network", name: "resync_interval", defaultValue: "2",
               help: "Seconds between a host's comparisons of its dataplane with what the controller says it should be; changes a guest's start needs are applied at once."),
        Option(section: "vxlan", name: "local_ip", defaultValue: "",
               help: "The host's tunnel endpoint: VXLAN traffic leaves from and arrives at this address (the Linux bridge agent's option); empty: [DEFAULT] my_ip."),
        Option(section: "linux_bridge", name: "physical_interface_mappings", defaultValue: "",
               help: "physnet:interface pairs, comma separated (the Linux bridge agent's option): a flat network's bridge takes in the interface, a vlan network's hangs a VLAN sub-interface from it."),
        Option(section: "vnc", name: "novncproxy_base_url", defaultValue: "",
               help: "The noVNC page a console URL opens, with the console's token added to its `path` parameter (Nova's option); empty: the page Nimbus serves, <public_url>/novnc/vnc_lite.html."),
        Option(section: "vnc", name: "server_listen", defaultValue: "127.0.0.1",
               help: "Address on the compute host that guests' VNC servers listen on (each takes a free TCP port from 5900 up); the controller's console proxy connects to it, so it must be reachable from the controller."),
        Option(section: "consoleauth", name: "token_ttl", defaultValue: "600",
               help: "Seconds a console URL's token stays valid; it also works only once."),
        Option(section: "DEFAULT", name: "default_availability_zone", defaultValue: "nova",
               help: "Availability zone of compute hosts that are in no aggregate with an availability_zone."),
        Option(section: "DEFAULT", name: "base_mac", defaultValue: "fa:16:3e:00:00:00",
               help: "Ports' MAC addresses: the non-zero octets are kept, the zero ones among the last three randomised."),
        Option(section: "filter_scheduler", name: "enabled_filters", defaultValue: "AvailabilityZoneFilter, ComputeFilter, ComputeCapabilitiesFilter, ImagePropertiesFilter, ServerGroupAntiAffinityFilter, ServerGroupAffinityFilter",
               help: "Filters a host must pass, in order. Also available: AggregateInstanceExtraSpecsFilter, SameHostFilter, DifferentHostFilter."),
        Option(section: "filter_scheduler", name: "ram_weight_multiplier", defaultValue: "1.0",
               help: "Weight of free RAM: positive spreads servers across hosts, negative stacks them."),
        Option(section: "filter_scheduler", name: "cpu_weight_multiplier", defaultValue: "1.0",
               help: "Weight of free vCPUs: positive spreads, negative stacks."),
        Option(section: "filter_scheduler", name: "disk_weight_multiplier", defaultValue: "1.0",
               help: "Weight of free disk: positive spreads, negative stacks."),
        Option(section: "filter_scheduler", name: "host_subset_size", defaultValue: "1",
               help: "Pick at random among this many of the best hosts (1: always the best)."),
        Option(section: "scheduler", name: "max_attempts", defaultValue: "3",
               help: "Hosts tried for one build: the chosen one and alternates used when a build fails."),
        Option(section: "scheduler", name: "max_placement_results", defaultValue: "1000",
               help: "Most candidate hosts asked of placement per server."),
        Option(section: "quota", name: "instances", defaultValue: "10", help: "Servers per project, unless set for the project."),
        Option(section: "quota", name: "cores", defaultValue: "20", help: "vCPUs per project."),
        Option(section: "quota", name: "ram", defaultValue: "51200", help: "MiB of RAM per project."),
        Option(section: "quota", name: "key_pairs", defaultValue: "100", help: "Key pairs per user."),
        Option(section: "quota", name: "server_groups", defaultValue: "10", help: "Server groups per project."),
        Option(section: "quota", name: "server_group_members", defaultValue: "10", help: "Servers per server group."),
        Option(section: "quota", name: "metadata_items", defaultValue: "128", help: "Metadata items per server."),
        Option(section: "fake_hosts", name: "count", defaultValue: "0",
               help: "Compute hosts with the fake driver run inside `nimbus up` (the --fake-hosts flag sets it), named fake-1, fake-2, …"),
        Option(section: "fake_hosts", name: "vcpus", defaultValue: "8", help: "vCPUs each fake host reports."),
        Option(section: "fake_hosts", name: "memory_mb", defaultValue: "16384", help: "MiB of RAM each fake host reports."),
        Option(section: "fake_hosts", name: "disk_gb", defaultValue: "200", help: "GiB of disk each fake host reports."),
        Option(section: "fake_hosts", name: "live_migration_seconds", defaultValue: "0",
               help: "How long a fake host takes to send a guest in a live migration, so that it can be watched, forced to complete or aborted."),
        Option(section: "fake_hosts", name: "snapshot_seconds", defaultValue: "0",
               help: "How long a fake host takes to upload a snapshot, so that a server can be seen in image_uploading (and a second snapshot refused)."),
        Option(section: "ml2", name: "type_drivers", defaultValue: "local,flat,vlan,vxlan,gre", help: "Network types networks may have."),
        Option(section: "ml2", name: "tenant_network_types", defaultValue: "vxlan",
               help: "Network types tenant networks get, in order of preference: the first with a free segmentation id is used."),
        Option(section: "ml2", name: "path_mtu", defaultValue: "1500", help: "MTU of the underlay; a network's MTU is this less its type's encapsulation overhead."),
        Option(section: "ml2_type_flat", name: "flat_networks", defaultValue: "*", help: "Physical networks flat networks may use; * allows any."),
        Option(section: "ml2_type_vlan", name: "network_vlan_ranges", defaultValue: "",
               help: "physnet:min:max entries giving tenant networks VLAN ids, or a bare physnet for provider networks only."),
        Option(section: "ml2_type_vxlan", name: "vni_ranges", defaultValue: "1:1000", help: "min:max ranges of VXLAN ids tenant networks get."),
        Option(section: "ml2_type_gre", name: "tunnel_id_ranges", defaultValue: "1:1000", help: "min:max ranges of GRE ids tenant networks get."),
        Option(section: "quotas", name: "quota_network", defaultValue: "100", help: "Networks per project, unless set for the project; -1 is unlimited."),
        Option(section: "quotas", name: "quota_subnet", defaultValue: "100", help: "Subnets per project."),
        Option(section: "quotas", name: "quota_port", defaultValue: "500", help: "Ports per project."),
        Option(section: "quotas", name: "quota_router", defaultValue: "10", help: "Routers per project."),
        Option(section: "quotas", name: "quota_floatingip", defaultValue: "50", help: "Floating IPs per project."),
        Option(section: "quotas", name: "quota_security_group", defaultValue: "10", help: "Security groups per project, the default group included."),
        Option(section: "quotas", name: "quota_security_group_rule", defaultValue: "100", help: "Security group rules per project."),
        Option(section: "neutron", name: "metadata_proxy_shared_secret", defaultValue: "",
               help: "Secret with which metadata proxies sign the instance ids they forward to the metadata API (Nova's and Neutron's option); the same on the controller and every host. Empty: `nimbus up` generates one on first start and keeps it in DATA/metadata-proxy-shared-secret; a `nimbus agent` must be given it in --config-file."),
        Option(section: "oslo_policy", name: "policy_file", defaultValue: "policy.yaml",
               help: "Operator policy overrides, relative to the data dir; a missing file means the built-in defaults."),
    ]

    /// Values read from the file, `section -> name -> value`; section names keep their case,
    /// option names are lower-cased.
    public private(set) var values: [String: [String: String]] = [:]

    public init() {}

    /// Parses INI text. Unknown options are kept (a later release may read them) but a line that
    /// is not a section, an option or a comment is an error naming the line.
    public init(text: String, source: String = "nimbus.conf") throws {
        var section = "DEFAULT"
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), line.count > 2 else {
                    throw ConfigError("\(source) line \(number + 1): malformed section header '\(line)'")
                }
                section = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                continue
            }
            guard let eq = line.firstIndex(of: "=") else {
                throw ConfigError("\(source) line \(number + 1): expected 'name = value', got '\(line)'")
            }
            let name = line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            values[section, default: [:]][name] = value
        }
    }

    public static func load(path: String) throws -> NimbusConfig {
        guard FileManager.default.fileExists(atPath: path) else { return NimbusConfig() }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError("cannot read \(path)")
        }
        return try NimbusConfig(text: String(decoding: data, as: UTF8.self), source: path)
    }

    public mutating func set(_ section: String, _ name: String, _ value: String) {
        values[section, default: [:]][name.lowercased()] = value
    }

    /// The configured value, else the declared default.
    public func string(_ section: String, _ name: String) -> String {
        if let v = values[section]?[name.lowercased()] { return v }
        return Self.options.first { $0.section == section && $0.name == name }?.defaultValue ?? ""
    }

    public func int(_ section: String, _ name: String) throws -> Int {
        let raw = string(section, name)
        guard let v = Int(raw) else { throw ConfigError("[\(section)] \(name) must be an integer, got '\(raw)'") }
        return v
    }

    /// A number option; a value that is not one is an error naming the option.
    public func double(_ section: String, _ name: String) throws -> Double {
        let value = string(section, name)
        guard let number = Double(value) else { throw ConfigError("[\(section)] \(name) must be a number, not '\(value)'") }
        return number
    }

    /// A comma-separated list option.
    public func list(_ section: String, _ name: String) -> [String] {
        string(section, name).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// A yes/no option: true, 1 or yes (any case) is yes, anything else no.
    public func bool(_ section: String, _ name: String) -> Bool {
        ["true", "1", "yes"].contains(string(section, name).lowercased())
    }

    /// The sample file written on first start: every option, commented out at its default.
    public static func sampleText() -> String {
        var out = "# Nimbus configuration. Every option is shown at its default; uncomment to change.\n"
        var current = ""
        for option in options {
            if option.section != current {
                current = option.section
                out += "\n[\(current)]\n"
            }
            out += "# \(option.help)\n#\(option.name) = \(option.defaultValue)\n"
        }
        return out
    }
}

public struct ConfigError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
