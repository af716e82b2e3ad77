import Foundation

/// Everything a driver needs to know to build or change one guest; nothing here needs the
/// database.
public struct GuestSpec: Sendable, Equatable {
    public var uuid: String
    /// The server's display name (the guest's name for humans and logs).
    public var name: String
    /// The hostname the guest gives itself (metadata `hostname`).
    public var hostname: String
    public var projectID: String
    public var availabilityZone: String?
    public var launchIndex: Int
    public var vcpus: Int
    public var memoryMB: Int
    /// Root disk size from the flavor; 0 means the image's own virtual size.
    public var rootGB: Int
    public var ephemeralGB: Int
    public var swapMB: Int
    public var image: ImageRef
    /// Raw user data (already base64-decoded).
    public var userData: [UInt8]?
    public var keys: [PublicKey]
    public var metadata: [String: String]
    /// Nova's `network_data.json`, built by the control plane from the ports.
    public var networkData: String?
    public var configDrive: Bool
    public var nics: [VIF]
    /// What only the EC2-style metadata tells (`instance-type`, `reservation-id`,
    /// `security-groups`, `public-ipv4`), carried so the config drive says what the metadata
    /// API says.
    public var flavorName: String
    public var reservationID: String
    /// The server's security groups' names.
    public var securityGroups: [String]
    /// Floating addresses NATed to the server's ports, in the order of its NICs.
    public var floatingIPs: [String]

    public init(uuid: String, name: String, hostname: String, projectID: String, availabilityZone: String? = nil, launchIndex: Int = 0,
                vcpus: Int, memoryMB: Int, rootGB: Int, ephemeralGB: Int = 0, swapMB: Int = 0, image: ImageRef,
                userData: [UInt8]? = nil, keys: [PublicKey] = [], metadata: [String: String] = [:], networkData: String? = nil,
                configDrive: Bool = false, nics: [VIF] = [], flavorName: String = "", reservationID: String = "", securityGroups: [String] = [],
                floatingIPs: [String] = []) {
        (self.uuid, self.name, self.hostname, self.projectID, self.availabilityZone, self.launchIndex) =
            (uuid, name, hostname, projectID, availabilityZone, launchIndex)
        (self.vcpus, self.memoryMB, self.rootGB, self.ephemeralGB, self.swapMB, self.image) = (vcpus, memoryMB, rootGB, ephemeralGB, swapMB, image)
        (self.userData, self.keys, self.metadata, self.networkData, self.configDrive, self.nics) =
            (userData, keys, metadata, networkData, configDrive, nics)
        (self.flavorName, self.reservationID, self.securityGroups, self.floatingIPs) = (flavorName, reservationID, securityGroups, floatingIPs)
    }
}

/// The image a guest boots from, as the image service describes it.
public struct ImageRef: Sendable, Equatable {
    public var id: String
    /// `qcow2`, `raw`, … (the driver refuses what it cannot boot).
    public var diskFormat: String
    /// The image's MD5 `checksum` and `os_hash_value` (SHA-512), checked after download.
    public var checksum: String?
    public var sha512: String?
    /// UEC-style kernel and ramdisk images: the guest boots with `-kernel`/`-initrd`.
    public var kernelID: String?
    public var ramdiskID: String?
    /// Image properties the driver reads (`hw_disk_bus`, `os_command_line`, …).
    public var properties: [String: String]

    public init(id: String, diskFormat: String, checksum: String? = nil, sha512: String? = nil, kernelID: String? = nil, ramdiskID: String? = nil,
                properties: [String: String] = [:]) {
        (self.id, self.diskFormat, self.checksum, self.sha512, self.kernelID, self.ramdiskID, self.properties) =
            (id, diskFormat, checksum, sha512, kernelID, ramdiskID, properties)
    }
}

public struct PublicKey: Sendable, Equatable {
    public var name: String
    /// `ssh` or `x509`.
    public var type: String
    public var data: String

    public init(name: String, type: String = "ssh", data: String) { (self.name, self.type, self.data) = (name, type, data) }
}

/// A port as the hypervisor plugs it: the network dataplane makes the tap (`tapName`) and
/// wires it before the guest starts; the driver only opens it.
public struct VIF: Sendable, Equatable {
    public var portID: String
    public var networkID: String
    public var macAddress: String
    public var mtu: Int
    public var fixedIPs: [String]

    public init(portID: String, networkID: String, macAddress: String, mtu: Int = 1500, fixedIPs: [String] = []) {
        (self.portID, self.networkID, self.macAddress, self.mtu, self.fixedIPs) = (portID, networkID, macAddress, mtu, fixedIPs)
    }

    /// Neutron's tap name for a port: `tap` and the first 11 characters of its id (15 in all,
    /// the kernel's limit for interface names).
    public var tapName: String { "tap" + portID.prefix(11) }
}


/// Where a cold migration's source offers a guest's disks for the destination to copy.
public struct DiskExport: Sendable, Equatable {
    /// What the destination's driver reads: one URI per disk, separated by single spaces (the
    /// agents carry it as one string). QEMU's: `nbd://host:port/<disk>` for each of the guest's
    /// disks (`root`, `eph0`, `swap`); the fake driver's: `fake://<uuid>`.
    public var location: String

    public init(location: String) { self.location = location }

    /// One location per disk.
    public init(disks: [String]) { location = disks.joined(separator: " ") }

    /// The per-disk URIs `location` lists.
    public var disks: [String] { location.split(separator: " ").map(String.init) }
}

/// Where a live migration's destination listens for the guest's state, and, for a block
/// migration, for its disks.
public struct MigrationEndpoint: Sendable, Equatable {
    /// The migration stream's URI first (QEMU: `tcp:host:port`), then one URI per disk the
    /// source copies into (QEMU: `nbd://host:port/<disk>`), separated by single spaces (the
    /// agents carry it as one string).
    public var uri: String

    public init(uri: String) { self.uri = uri }

    public init(stream: String, disks: [String]) { uri = ([stream] + disks).joined(separator: " ") }

    /// Where the migration stream goes.
    public var stream: String { uri.split(separator: " ").first.map(String.init) ?? "" }

    /// Where each disk goes in a block migration (empty when the disks are not copied).
    public var disks: [String] { uri.split(separator: " ").dropFirst().map(String.init) }
}
