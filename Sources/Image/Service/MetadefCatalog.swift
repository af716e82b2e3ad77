import Foundation
import NimbusCore

/// The standard namespaces a new cloud starts with, under the names and resource-type
/// associations Glance's catalog uses, so that Horizon and the CLI offer the keys Nova and
/// Cinder understand. Property names and types are the ones those services read; titles and
/// descriptions are Nimbus's own. Loaded once per `version` by `MetadefService.loadCatalog`.
enum MetadefCatalog {
    /// Raise when namespaces are added, so existing clouds get the new ones (and only those).
    static let version: Int64 = 1

    /// The resource types Glance knows from the start (protected: they cannot be removed).
    static let resourceTypes = ["OS::Glance::Image", "OS::Cinder::Volume", "OS::Nova::Flavor", "OS::Nova::Aggregate", "OS::Nova::Server"]

    struct Association {
        var type: String
        var prefix: String? = nil
        var target: String? = nil
    }

    struct Property {
        var name: String
        var title: String
        var type: String
        var description: String
        var extra: [String: JSON] = [:]

        var definition: JSON {
            var out = extra
            out["title"] = .string(title)
            out["type"] = .string(type)
            out["description"] = .string(description)
            return .object(out)
        }
    }

    struct Object {
        var name: String
        var description: String
        var properties: [Property]
    }

    struct Namespace {
        var name: String
        var displayName: String
        var description: String
        var associations: [Association]
        var properties: [Property] = []
        var objects: [Object] = []
    }

    static func choice(_ values: [String]) -> [String: JSON] { ["enum": .array(values.map { .string($0) })] }
    static let atLeastZero: [String: JSON] = ["minimum": 0]

    /// Image/volume `hw_` keys and flavor `hw:` extra specs for the same setting.
    static let hardware = [Association(type: "OS::Glance::Image", prefix: "hw_"),
                           Association(type: "OS::Cinder::Volume", prefix: "hw_", target: "image"),
                           Association(type: "OS::Nova::Flavor", prefix: "hw:")]

    static let namespaces: [Namespace] = [
        Namespace(name: "OS::Compute::Quota", displayName: "Flavor Quota",
                  description: "Limits the hypervisor applies to a flavor's guests: CPU share, disk and network rates.",
                  associations: [Association(type: "OS::Nova::Flavor")],
                  objects: [
                    Object(name: "CPU Limits", description: "How much host CPU time a guest may use.", properties: [
                        Property(name: "quota:cpu_shares", title: "CPU Shares", type: "integer",
                                 description: "Relative weight of the guest's vCPUs against other guests on the host."),
                        Property(name: "quota:cpu_period", title: "CPU Period", type: "integer",
                                 description: "Enforcement interval in microseconds for the CPU quota.", extra: ["minimum": 1000, "maximum": 1_000_000]),
                        Property(name: "quota:cpu_quota", title: "CPU Quota", type: "integer",
                                 description: "Longest time in microseconds a vCPU may run in each period; negative means no limit."),
                    ]),
                    Object(name: "Disk QoS Limits", description: "Caps on a guest's disk throughput.", properties: [
                        Property(name: "quota:disk_read_bytes_sec", title: "Disk read bytes/s", type: "integer", description: "Read rate cap in bytes per second."),
                        Property(name: "quota:disk_read_iops_sec", title: "Disk read IOPS", type: "integer", description: "Read operations per second cap."),
                        Property(name: "quota:disk_write_bytes_sec", title: "Disk write bytes/s", type: "integer", description: "Write rate cap in bytes per second."),
                        Property(name: "quota:disk_write_iops_sec", title: "Disk write IOPS", type: "integer", description: "Write operations per second cap."),
                        Property(name: "quota:disk_total_bytes_sec", title: "Disk total bytes/s", type: "integer", description: "Combined read and write rate cap in bytes per second."),
                        Property(name: "quota:disk_total_iops_sec", title: "Disk total IOPS", type: "integer", description: "Combined operations per second cap."),
                    ]),
                    Object(name: "Virtual Interface QoS Limits", description: "Caps on a guest's network traffic, per interface.", properties: [
                        Property(name: "quota:vif_inbound_average", title: "Inbound average", type: "integer", description: "Sustained receive rate in KiB/s."),
                        Property(name: "quota:vif_inbound_burst", title: "Inbound burst", type: "integer", description: "KiB that may be received at peak rate."),
                        Property(name: "quota:vif_inbound_peak", title: "Inbound peak", type: "integer", description: "Highest receive rate in KiB/s."),
                        Property(name: "quota:vif_outbound_average", title: "Outbound average", type: "integer", description: "Sustained send rate in KiB/s."),
                        Property(name: "quota:vif_outbound_burst", title: "Outbound burst", type: "integer", description: "KiB that may be sent at peak rate."),
                        Property(name: "quota:vif_outbound_peak", title: "Outbound peak", type: "integer", description: "Highest send rate in KiB/s."),
                    ]),
                  ]),
        Namespace(name: "OS::Compute::Libvirt", displayName: "libvirt Driver Options",
                  description: "Guest settings the libvirt compute driver reads from images and flavors.",
                  associations: [Association(type: "OS::Glance::Image", prefix: "hw_"), Association(type: "OS::Nova::Flavor", prefix: "hw:")],
                  properties: [
                    Property(name: "serial_port_count", title: "Serial Port Count", type: "integer",
                             description: "How many serial ports the guest gets.", extra: atLeastZero),
                    Property(name: "boot_menu", title: "Boot Menu", type: "string",
                             description: "Whether the firmware shows its boot menu at start.", extra: choice(["true", "false"])),
                  ]),
        Namespace(name: "OS::Compute::LibvirtImage", displayName: "libvirt Driver Options for Images",
                  description: "Device models and boot options the libvirt driver takes from an image.",
                  associations: [Association(type: "OS::Glance::Image")],
                  properties: [
                    Property(name: "hw_disk_bus", title: "Disk Bus", type: "string", description: "Bus the guest's disks attach to.",
                             extra: choice(["scsi", "virtio", "uml", "xen", "ide", "usb", "fdc", "sata"])),
                    Property(name: "hw_rng_model", title: "Random Number Generator Device", type: "string",
                             description: "Model of the entropy device given to the guest.", extra: ["default": "virtio"]),
                    Property(name: "hw_machine_type", title: "Machine Type", type: "string",
                             description: "Emulated machine, for example q35 or pc."),
                    Property(name: "hw_scsi_model", title: "SCSI Model", type: "string", description: "SCSI controller for SCSI disks.",
                             extra: choice(["virtio-scsi"])),
                    Property(name: "hw_video_model", title: "Video Model", type: "string", description: "Emulated graphics card.",
                             extra: choice(["vga", "cirrus", "vmvga", "xen", "qxl", "virtio", "gop", "none", "bochs"])),
                    Property(name: "hw_video_ram", title: "Max Video RAM", type: "integer",
                             description: "Video memory in MiB, bounded by the flavor's hw_video:ram_max_mb.", extra: atLeastZero),
                    Property(name: "hw_qemu_guest_agent", title: "QEMU Guest Agent", type: "string",
                             description: "Whether the image runs the QEMU guest agent, so the host can talk to it.", extra: choice(["yes", "no"])),
                    Property(name: "os_command_line", title: "Kernel Command Line", type: "string",
                             description: "Arguments passed to a kernel booted directly by the hypervisor."),
                    Property(name: "hw_vif_model", title: "Virtual Network Interface", type: "string", description: "Model of the guest's network cards.",
                             extra: choice(["e1000", "ne2k_pci", "pcnet", "rtl8139", "virtio", "e1000e", "vmxnet3", "igb"])),
                    Property(name: "hw_vif_multiqueue_enabled", title: "Multiqueue Networking", type: "string",
                             description: "Gives virtio network cards one queue per vCPU.", extra: choice(["true", "false"])),
                    Property(name: "hw_pointer_model", title: "Pointer Model", type: "string",
                             description: "Input device for absolute pointer positions.", extra: choice(["usbtablet"])),
                  ]),
        Namespace(name: "OS::Compute::Hypervisor", displayName: "Hypervisor Selection",
                  description: "Which hypervisor and virtualization mode an image needs, for the scheduler to match.",
                  associations: [Association(type: "OS::Glance::Image")],
                  properties: [
                    Property(name: "hypervisor_type", title: "Hypervisor Type", type: "string", description: "Hypervisor the image must run on.",
                             extra: choice(["baremetal", "hyperv", "kvm", "lxc", "qemu", "uml", "vmware", "vz", "xen"])),
                    Property(name: "vm_mode", title: "VM Mode", type: "string", description: "Kind of virtualization the guest expects.",
                             extra: choice(["hvm", "xen", "uml", "exe"])),
                  ]),
        Namespace(name: "OS::Compute::Watchdog", displayName: "Watchdog Behavior",
                  description: "A virtual watchdog device, and what the host does when the guest stops feeding it.",
                  associations: hardware,
                  properties: [
                    Property(name: "watchdog_action", title: "Watchdog Action", type: "string",
                             description: "Action taken when the guest hangs; 'disabled' adds no device.",
                             extra: choice(["disabled", "reset", "poweroff", "pause", "none"])),
                  ]),
        Namespace(name: "OS::Compute::RandomNumberGenerator", displayName: "Random Number Generator",
                  description: "Whether a flavor's guests may have an entropy device fed by the host, and at what rate.",
                  associations: [Association(type: "OS::Nova::Flavor", prefix: "hw_rng:")],
                  properties: [
                    Property(name: "allowed", title: "Allowed", type: "boolean", description: "Lets images of this flavor ask for an entropy device."),
                    Property(name: "rate_bytes", title: "Rate Bytes", type: "integer", description: "Bytes of entropy the guest may read each period.",
                             extra: atLeastZero),
                    Property(name: "rate_period", title: "Rate Period", type: "integer", description: "Length of that period in milliseconds.",
                             extra: atLeastZero),
                  ]),
        Namespace(name: "OS::Compute::InstanceData", displayName: "Instance Config Data",
                  description: "How a server built from the image receives its configuration data.",
                  associations: [Association(type: "OS::Glance::Image"), Association(type: "OS::Cinder::Volume", target: "image")],
                  properties: [
                    Property(name: "img_config_drive", title: "Config Drive", type: "string",
                             description: "Whether servers from this image must get a config drive.", extra: choice(["optional", "mandatory"])),
                    Property(name: "os_require_quiesce", title: "Require Quiescent File Systems", type: "boolean",
                             description: "Snapshots must freeze the guest's file systems first, through the guest agent."),
                  ]),
        Namespace(name: "OS::Compute::VirtCPUTopology", displayName: "Virtual CPU Topology",
                  description: "How a guest's vCPUs are presented as sockets, cores and threads, and the limits on that.",
                  associations: hardware,
                  properties: ["cpu_sockets", "cpu_cores", "cpu_threads", "cpu_max_sockets", "cpu_max_cores", "cpu_max_threads"].map { name in
                      let part = name.replacingOccurrences(of: "cpu_", with: "").replacingOccurrences(of: "max_", with: "")
                      let limit = name.contains("max_")
                      return Property(name: name, title: (limit ? "Max " : "") + part.capitalized, type: "integer",
                                      description: limit ? "Upper bound on the number of \(part) the topology may use."
                                          : "Preferred number of \(part) in the guest's topology.",
                                      extra: ["minimum": 1])
                  }),
        Namespace(name: "OS::Compute::GuestShutdownBehavior", displayName: "Shutdown Behavior",
                  description: "How long a clean shutdown may take before the guest is powered off.",
                  associations: [Association(type: "OS::Glance::Image")],
                  properties: [
                    Property(name: "os_shutdown_timeout", title: "Shutdown timeout", type: "integer",
                             description: "Seconds to wait for the guest to stop after an ACPI shutdown request.", extra: atLeastZero),
                  ]),
        Namespace(name: "OS::Compute::GuestMemoryBacking", displayName: "Guest Memory Backing",
                  description: "Page sizes backing a guest's memory.",
                  associations: hardware,
                  properties: [
                    Property(name: "mem_page_size", title: "Memory Page Size", type: "string",
                             description: "small, large, any, or a size such as 2MB or 1GB."),
                  ]),
        Namespace(name: "OS::Compute::CPUPinning", displayName: "CPU Pinning",
                  description: "Whether vCPUs get host CPUs of their own, and how hyperthreads are used.",
                  associations: hardware,
                  properties: [
                    Property(name: "cpu_policy", title: "CPU Policy", type: "string",
                             description: "'dedicated' pins every vCPU to its own host CPU; 'shared' lets them float.",
                             extra: choice(["shared", "dedicated", "mixed"])),
                    Property(name: "cpu_thread_policy", title: "CPU Thread Policy", type: "string",
                             description: "How pinned vCPUs are placed on hosts with hyperthreads.", extra: choice(["isolate", "prefer", "require"])),
                  ]),
        Namespace(name: "OS::Compute::TPM", displayName: "TPM Options",
                  description: "An emulated Trusted Platform Module for the guest.",
                  associations: [Association(type: "OS::Glance::Image", prefix: "hw_"), Association(type: "OS::Nova::Flavor", prefix: "hw:")],
                  properties: [
                    Property(name: "tpm_version", title: "TPM Version", type: "string", description: "Version of the TPM to emulate.",
                             extra: choice(["1.2", "2.0"])),
                    Property(name: "tpm_model", title: "TPM Model", type: "string", description: "Device model of the emulated TPM.",
                             extra: choice(["tpm-tis", "tpm-crb"])),
                  ]),
        Namespace(name: "OS::Compute::AggregateDiskFilter", displayName: "Disk Allocation per Host",
                  description: "Disk overcommit for the hosts of an aggregate.",
                  associations: [Association(type: "OS::Nova::Aggregate")],
                  properties: [
                    Property(name: "disk_allocation_ratio", title: "Disk Subscription Ratio", type: "number",
                             description: "Virtual disk space that may be allocated per unit of real disk.", extra: atLeastZero),
                  ]),
        Namespace(name: "OS::Compute::AggregateIoOpsFilter", displayName: "IO Ops per Host",
                  description: "Limit on concurrent disk-heavy operations on an aggregate's hosts.",
                  associations: [Association(type: "OS::Nova::Aggregate")],
                  properties: [
                    Property(name: "max_io_ops_per_host", title: "Maximum IO Operations per Host", type: "integer",
                             description: "Hosts already running this many builds, resizes or snapshots get no more.", extra: ["minimum": 1]),
                  ]),
        Namespace(name: "OS::Compute::AggregateNumInstancesFilter", displayName: "Instances per Host",
                  description: "Limit on servers per host in an aggregate.",
                  associations: [Association(type: "OS::Nova::Aggregate")],
                  properties: [
                    Property(name: "max_instances_per_host", title: "Max Instances Per Host", type: "integer",
                             description: "Hosts with this many servers are not chosen for more.", extra: ["minimum": 1]),
                  ]),
        Namespace(name: "OS::Compute::Trust", displayName: "Trusted Compute Pools",
                  description: "Restricts a flavor to hosts whose boot chain was attested.",
                  associations: [Association(type: "OS::Nova::Flavor")],
                  properties: [
                    Property(name: "trust:trusted_host", title: "Intel TXT attestation", type: "string",
                             description: "Trust level the host must have.", extra: choice(["trusted", "untrusted", "unknown"])),
                  ]),
        Namespace(name: "OS::OperatingSystem", displayName: "Common Operating System Properties",
                  description: "What is installed in an image, so that users and services can tell images apart.",
                  associations: [Association(type: "OS::Glance::Image"), Association(type: "OS::Cinder::Volume", target: "image")],
                  properties: [
                    Property(name: "os_distro", title: "OS Distro", type: "string",
                             description: "Lower-case distribution name, such as ubuntu, debian, fedora or windows."),
                    Property(name: "os_version", title: "OS Version", type: "string", description: "Release of that distribution, such as 24.04."),
                    Property(name: "os_admin_user", title: "Admin User", type: "string",
                             description: "Account that receives the generated admin password."),
                  ]),
        Namespace(name: "OS::Glance::CommonImageProperties", displayName: "Common Image Properties",
                  description: "Image properties that several services read.",
                  associations: [],
                  properties: [
                    Property(name: "kernel_id", title: "Kernel ID", type: "string", description: "Image holding the kernel of an AMI-style image."),
                    Property(name: "ramdisk_id", title: "Ramdisk ID", type: "string", description: "Image holding the ramdisk of an AMI-style image."),
                    Property(name: "instance_uuid", title: "Instance ID", type: "string", description: "Server this image is a snapshot of."),
                    Property(name: "architecture", title: "CPU Architecture", type: "string",
                             description: "CPU architecture the image needs, such as x86_64 or aarch64."),
                    Property(name: "os_distro", title: "OS Distro", type: "string", description: "Lower-case distribution name."),
                    Property(name: "os_version", title: "OS Version", type: "string", description: "Release of that distribution."),
                  ]),
    ]
}

extension MetadefService {
    /// Loads the built-in catalog unless this version of it was loaded before: the protected
    /// resource types, and each standard namespace that does not exist yet (public,
    /// protected, owned by no project), with its associations, properties and objects.
    /// Safe to call at every start.
    public func loadCatalog() async throws {
        guard try await !store.seeded(version: MetadefCatalog.version, db) else { return }
        let now = Date()
        try await db.transaction { x in
            for type in MetadefCatalog.resourceTypes { try await self.store.ensureResourceType(type, protected: true, now: now, x) }
            for seed in MetadefCatalog.namespaces where try await self.store.namespace(named: seed.name, x) == nil {
                let namespace = MetadefNamespace(id: Identifiers.uuid(), namespace: seed.name, displayName: seed.displayName,
                                                 description: seed.description, visibility: "public", protected: true, owner: nil,
                                                 createdAt: now, updatedAt: now)
                try await self.store.insert(namespace, x)
                for a in seed.associations {
                    try await self.store.insert(MetadefAssociation(resourceType: a.type, prefix: a.prefix, propertiesTarget: a.target,
                                                                   createdAt: now, updatedAt: now), namespaceID: namespace.id, x)
                }
                for p in seed.properties {
                    try await self.store.insert(try MetadefValidation.property(p.definition, name: p.name), namespaceID: namespace.id, now: now, x)
                }
                for o in seed.objects {
                    let properties = try MetadefValidation.propertyMap(.object(Dictionary(uniqueKeysWithValues: o.properties.map { ($0.name, $0.definition) })))
                    try await self.store.insert(MetadefObject(name: o.name, description: o.description, required: [], properties: properties,
                                                              createdAt: now, updatedAt: now), namespaceID: namespace.id, x)
                }
            }
            try await self.store.markSeeded(version: MetadefCatalog.version, now: now, x)
        }
        logger.info("Loaded the standard metadata definition namespaces (catalog version \(MetadefCatalog.version))")
    }
}
