import Foundation
import NimbusCore

/// `guest.json`: the `GuestSpec` a guest was built from, kept in its directory so that any
/// agent (a restarted one included) can start the guest again from its disks without asking
/// the controller.
enum GuestRecord {
    static func write(_ guest: GuestSpec, to path: String) throws {
        try Data(encode(guest).serialized().utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    static func read(_ path: String) throws -> GuestSpec {
        guard let data = FileManager.default.contents(atPath: path) else { throw VirtError.failed("cannot read \(path)") }
        guard let guest = decode(try JSON.parse(Array(data))) else { throw VirtError.failed("\(path) does not describe a guest") }
        return guest
    }

    /// The rescue image of a rescued guest (`rescue.json`).
    static func writeImage(_ image: ImageRef, to path: String) throws {
        try Data(encode(image).serialized().utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    static func readImage(_ path: String) throws -> ImageRef {
        guard let data = FileManager.default.contents(atPath: path) else { throw VirtError.failed("cannot read \(path)") }
        guard let image = decodeImage(try JSON.parse(Array(data))) else { throw VirtError.failed("\(path) does not describe an image") }
        return image
    }

    static func encode(_ image: ImageRef) -> JSON {
        [
            "id": .string(image.id), "disk_format": .string(image.diskFormat), "checksum": .optional(image.checksum),
            "sha512": .optional(image.sha512), "kernel_id": .optional(image.kernelID), "ramdisk_id": .optional(image.ramdiskID),
            "properties": .object(image.properties.mapValues { .string($0) }),
        ]
    }

    static func decodeImage(_ image: JSON) -> ImageRef? {
        guard let id = image["id"]?.stringValue, let diskFormat = image["disk_format"]?.stringValue else { return nil }
        return ImageRef(id: id, diskFormat: diskFormat, checksum: image["checksum"]?.stringValue, sha512: image["sha512"]?.stringValue,
                        kernelID: image["kernel_id"]?.stringValue, ramdiskID: image["ramdisk_id"]?.stringValue,
                        properties: (image["properties"]?.objectValue ?? [:]).compactMapValues { $0.stringValue })
    }

    static func encode(_ guest: GuestSpec) -> JSON {
        [
            "uuid": .string(guest.uuid), "name": .string(guest.name), "hostname": .string(guest.hostname),
            "project_id": .string(guest.projectID), "availability_zone": .optional(guest.availabilityZone),
            "launch_index": .int(Int64(guest.launchIndex)), "vcpus": .int(Int64(guest.vcpus)), "memory_mb": .int(Int64(guest.memoryMB)),
            "root_gb": .int(Int64(guest.rootGB)), "ephemeral_gb": .int(Int64(guest.ephemeralGB)), "swap_mb": .int(Int64(guest.swapMB)),
            "image": encode(guest.image),
            "user_data": .optional(guest.userData.map { Data($0).base64EncodedString() }),
            "keys": .array(guest.keys.map { ["name": .string($0.name), "type": .string($0.type), "data": .string($0.data)] }),
            "metadata": .object(guest.metadata.mapValues { .string($0) }),
            "network_data": .optional(guest.networkData),
            "config_drive": .bool(guest.configDrive),
            "nics": .array(guest.nics.map {
                ["port_id": .string($0.portID), "network_id": .string($0.networkID), "mac_address": .string($0.macAddress),
                 "mtu": .int(Int64($0.mtu)), "fixed_ips": .array($0.fixedIPs.map { .string($0) })]
            }),
            "flavor_name": .string(guest.flavorName), "reservation_id": .string(guest.reservationID),
            "security_groups": .array(guest.securityGroups.map { .string($0) }), "floating_ips": .array(guest.floatingIPs.map { .string($0) }),
        ]
    }

    static func decode(_ json: JSON) -> GuestSpec? {
        func int(_ value: JSON?) -> Int? { value?.intValue.map { Int($0) } }
        func strings(_ value: JSON?) -> [String: String] { (value?.objectValue ?? [:]).compactMapValues { $0.stringValue } }
        guard let uuid = json["uuid"]?.stringValue, let imageRef = json["image"].flatMap(decodeImage), let vcpus = int(json["vcpus"]),
              let memoryMB = int(json["memory_mb"]), let rootGB = int(json["root_gb"]) else { return nil }
        let keys = (json["keys"]?.arrayValue ?? []).compactMap { key -> PublicKey? in
            guard let name = key["name"]?.stringValue, let data = key["data"]?.stringValue else { return nil }
            return PublicKey(name: name, type: key["type"]?.stringValue ?? "ssh", data: data)
        }
        let nics = (json["nics"]?.arrayValue ?? []).compactMap { nic -> VIF? in
            guard let port = nic["port_id"]?.stringValue, let network = nic["network_id"]?.stringValue,
                  let mac = nic["mac_address"]?.stringValue else { return nil }
            return VIF(portID: port, networkID: network, macAddress: mac, mtu: int(nic["mtu"]) ?? 1500,
                       fixedIPs: (nic["fixed_ips"]?.arrayValue ?? []).compactMap { $0.stringValue })
        }
        return GuestSpec(uuid: uuid, name: json["name"]?.stringValue ?? uuid, hostname: json["hostname"]?.stringValue ?? uuid,
                         projectID: json["project_id"]?.stringValue ?? "", availabilityZone: json["availability_zone"]?.stringValue,
                         launchIndex: int(json["launch_index"]) ?? 0, vcpus: vcpus, memoryMB: memoryMB, rootGB: rootGB,
                         ephemeralGB: int(json["ephemeral_gb"]) ?? 0, swapMB: int(json["swap_mb"]) ?? 0, image: imageRef,
                         userData: json["user_data"]?.stringValue.flatMap { Data(base64Encoded: $0) }.map { Array($0) },
                         keys: keys, metadata: strings(json["metadata"]), networkData: json["network_data"]?.stringValue,
                         configDrive: json["config_drive"]?.boolValue ?? false, nics: nics,
                         flavorName: json["flavor_name"]?.stringValue ?? "", reservationID: json["reservation_id"]?.stringValue ?? "",
                         securityGroups: (json["security_groups"]?.arrayValue ?? []).compactMap { $0.stringValue },
                         floatingIPs: (json["floating_ips"]?.arrayValue ?? []).compactMap { $0.stringValue })
    }
}
