import Foundation
import NimbusCore

/// What Nova's metadata service and a config drive tell a guest about its server. The
/// controller's metadata API and a host's config drive both make it from the server's
/// `GuestSpec`, and `MetadataTree` renders both from it, so the two say the same.
public struct InstanceMetadata: Sendable, Equatable {
    public var uuid: String
    public var name: String
    public var hostname: String
    /// Null in meta_data.json when the server has none (Nova's `instance.availability_zone`).
    public var availabilityZone: String?
    public var launchIndex: Int
    public var projectID: String
    public var publicKeys: [PublicKey]
    /// The server's metadata (key → value), `meta` in meta_data.json.
    public var metadata: [String: String]
    /// Raw user data (already base64-decoded), nil when the server has none.
    public var userData: [UInt8]?
    /// network_data.json: links, networks, services; `{}` when the control plane gave none.
    public var networkData: JSON
    /// The static vendor data (Nova's `StaticJSON` provider, its only default one):
    /// vendor_data.json, and `static` in vendor_data2.json.
    public var vendorData: JSON
    /// Tagged devices (`devices` in meta_data.json).
    public var devices: [JSON]

    // What only the EC2-style tree tells.
    public var imageID: String
    public var kernelID: String?
    public var ramdiskID: String?
    /// The flavor's name (`instance-type`).
    public var flavorName: String
    public var reservationID: String
    public var securityGroups: [String]
    /// The server's fixed and floating IPv4 addresses, in the order of its NICs.
    public var fixedIPv4: [String]
    public var floatingIPv4: [String]
    /// Whether the guest has an ephemeral disk and a swap disk (they follow the root disk in
    /// `block-device-mapping`).
    public var hasEphemeralDisk: Bool
    public var hasSwap: Bool

    public init(uuid: String, name: String, hostname: String) {
        (self.uuid, self.name, self.hostname) = (uuid, name, hostname)
        (availabilityZone, launchIndex, projectID, publicKeys, metadata, userData) = (nil, 0, "", [], [:], nil)
        (networkData, vendorData, devices) = (.object([:]), .object([:]), [])
        (imageID, kernelID, ramdiskID, flavorName, reservationID, securityGroups) = ("", nil, nil, "", "", [])
        (fixedIPv4, floatingIPv4, hasEphemeralDisk, hasSwap) = ([], [], false, false)
    }

    /// What a guest's spec says. A `network_data` that is not JSON is left out (`{}`).
    public init(guest: GuestSpec) {
        self.init(uuid: guest.uuid, name: guest.name, hostname: guest.hostname)
        availabilityZone = guest.availabilityZone
        launchIndex = guest.launchIndex
        projectID = guest.projectID
        publicKeys = guest.keys
        metadata = guest.metadata
        userData = guest.userData
        if let text = guest.networkData, let parsed = try? JSON.parse(text) { networkData = parsed }
        imageID = guest.image.id
        kernelID = guest.image.kernelID
        ramdiskID = guest.image.ramdiskID
        flavorName = guest.flavorName
        reservationID = guest.reservationID
        securityGroups = guest.securityGroups
        fixedIPv4 = guest.nics.flatMap(\.fixedIPs).filter { !$0.contains(":") }
        floatingIPv4 = guest.floatingIPs.filter { !$0.contains(":") }
        hasEphemeralDisk = guest.ephemeralGB > 0
        hasSwap = guest.swapMB > 0
    }
}
