import Foundation
import NimbusCore

/// The files Nova's metadata service serves and a config drive holds, rendered from an
/// `InstanceMetadata`: the OpenStack tree (`openstack/<version>/meta_data.json`, `user_data`,
/// `network_data.json`, `vendor_data.json`, `vendor_data2.json`) and the EC2-style tree
/// (`<version>/meta-data/…`, `<version>/user-data`), each version with what Nova gives it.
/// The metadata API answers paths with `lookup`; the config drive writes `configDriveFiles`.
public enum MetadataTree {
    /// The EC2 API versions Nova serves; `latest` is the last.
    public static let ec2Versions = ["1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15", "2008-02-01",
                                     "2008-09-01", "2009-04-04"]
    /// The OpenStack metadata versions Nova serves; `latest` is the last.
    public static let openStackVersions = ["2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30", "2016-10-06",
                                           "2017-02-22", "2018-08-27", "2020-10-14", "2025-04-04"]
    static let grizzly = "2013-04-04", havana = "2013-10-17", liberty = "2015-10-15", newtonOne = "2016-06-30"
    static let newtonTwo = "2016-10-06", victoria = "2020-10-14"
    /// The EC2 versions a config drive holds (Nova's `config_drive_skip_versions` leaves out
    /// the older ones).
    static let configDriveEC2Versions = ["2009-04-04", "latest"]

    public static let textPlain = "text/plain; charset=UTF-8"
    public static let applicationJSON = "application/json"

    /// What a path answers: the body and its content type (webob's, as Nova sets it).
    public struct Document: Sendable, Equatable {
        public var body: [UInt8]
        public var contentType: String

        public init(body: [UInt8], contentType: String) { (self.body, self.contentType) = (body, contentType) }
        init(text: String) { self.init(body: Array(text.utf8), contentType: MetadataTree.textPlain) }
        init(json: JSON) { self.init(body: json.serializedBytes(), contentType: MetadataTree.applicationJSON) }
    }

    /// `/`: the EC2 versions, one a line, which Nova answers before it looks for an instance.
    public static var rootListing: Document { Document(text: (ec2Versions + ["latest"]).joined(separator: "\n")) }

    /// Whether `path` is the service's root (`/`, `//`, `/.`), which `rootListing` answers.
    public static func isRoot(_ path: String) -> Bool { normalized(path).isEmpty }

    /// The document at `path` (relative to the service's root; query strings are not part
    /// of it), or nil when there is none (Nova's 404). `requester` is the guest's address, the
    /// EC2 `local-ipv4` of a server with no fixed IPv4 address; `today` hides versions dated
    /// later from the OpenStack version list, as Nova does.
    public static func lookup(_ path: String, in instance: InstanceMetadata, requester: String?, today: Date = Date()) -> Document? {
        var tokens = normalized(path)
        // Anything not under /openstack or /ec2 is EC2's.
        if tokens.first != "openstack" && tokens.first != "ec2" { tokens.insert("ec2", at: 0) }
        if tokens.count == 1 {
            if tokens[0] == "ec2" { return rootListing }
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.dateFormat = "yyyy-MM-dd"
            let date = formatter.string(from: today)
            return Document(text: (openStackVersions.filter { $0 <= date } + ["latest"]).joined(separator: "\n"))
        }
        return tokens[0] == "openstack" ? openStack(Array(tokens.dropFirst()), instance)
            : ec2(Array(tokens.dropFirst()), instance, requester: requester)
    }

    /// POSIX `normpath` of the path, as Nova applies it, as its components: empty components
    /// and `.` dropped, `..` taking one off (never above the root).
    static func normalized(_ path: String) -> [String] {
        var out: [String] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".": continue
            case "..": _ = out.popLast()
            default: out.append(String(component))
            }
        }
        return out
    }

    // MARK: OpenStack

    /// A version Nova accepts (`latest` is the newest); nil otherwise.
    static func openStackVersion(_ token: String) -> String? {
        token == "latest" ? openStackVersions.last : (openStackVersions.contains(token) ? token : nil)
    }

    static func since(_ first: String, _ version: String) -> Bool { version >= first }

    static func openStack(_ tokens: [String], _ instance: InstanceMetadata) -> Document? {
        guard let version = openStackVersion(tokens[0]) else { return nil }
        switch tokens.dropFirst().joined(separator: "/") {
        case "", "version":
            return Document(text: openStackFiles(instance, version: version).joined(separator: "\n"))
        case "meta_data.json":
            return Document(json: metaData(instance, version: version, randomSeed: since(grizzly, version) ? randomSeed() : nil))
        case "user_data":
            return instance.userData.map { Document(body: $0, contentType: textPlain) }
        case "network_data.json":
            // Nova serves it at every version (and as text/plain), though only versions from
            // 2015-10-15 list it.
            return Document(body: instance.networkData.serializedBytes(), contentType: textPlain)
        case "vendor_data.json":
            return since(havana, version) ? Document(json: instance.vendorData) : nil
        case "vendor_data2.json":
            return since(newtonTwo, version) ? Document(json: vendorData2(instance)) : nil
        default:
            // `password` (the guest's encrypted admin password) is the metadata API's own
            // (`MetadataService`): it changes when the guest posts it, and is on no config drive.
            return nil
        }
    }

    /// The files a version lists, in Nova's order (without `password`, which the API answers itself).
    static func openStackFiles(_ instance: InstanceMetadata, version: String) -> [String] {
        var files = ["meta_data.json"]
        if instance.userData != nil { files.append("user_data") }
        if since(havana, version) { files.append("vendor_data.json") }
        if since(liberty, version) { files.append("network_data.json") }
        if since(newtonTwo, version) { files.append("vendor_data2.json") }
        return files
    }

    /// meta_data.json at `version`: uuid, meta (when there is metadata), public_keys and keys
    /// (when there is a key), hostname, name, launch_index, availability_zone; random_seed
    /// from 2013-04-04, project_id from 2015-10-15, devices from 2016-06-30, dedicated_cpus
    /// (none: Nimbus pins no CPUs) from 2020-10-14.
    public static func metaData(_ instance: InstanceMetadata, version: String, randomSeed: String?) -> JSON {
        var doc: [String: JSON] = [
            "uuid": .string(instance.uuid), "hostname": .string(instance.hostname), "name": .string(instance.name),
            "launch_index": .int(Int64(instance.launchIndex)), "availability_zone": .optional(instance.availabilityZone),
        ]
        if !instance.metadata.isEmpty { doc["meta"] = .object(instance.metadata.mapValues { .string($0) }) }
        if let key = instance.publicKeys.first {
            doc["public_keys"] = [key.name: .string(key.data)]
            doc["keys"] = [["name": .string(key.name), "type": .string(key.type), "data": .string(key.data)]]
        }
        if let randomSeed { doc["random_seed"] = .string(randomSeed) }
        if since(liberty, version) { doc["project_id"] = .string(instance.projectID) }
        if since(newtonOne, version) { doc["devices"] = .array(instance.devices) }
        if since(victoria, version) { doc["dedicated_cpus"] = [] }
        return .object(doc)
    }

    /// vendor_data2.json: each enabled provider's data by its name; `static` for the static file.
    static func vendorData2(_ instance: InstanceMetadata) -> JSON { ["static": instance.vendorData] }

    /// 512 random bytes, base64, new for every meta_data.json (Nova's `random_seed`).
    static func randomSeed() -> String {
        var generator = SystemRandomNumberGenerator()
        return Data((0..<64).flatMap { _ in withUnsafeBytes(of: generator.next() as UInt64) { Array($0) } }).base64EncodedString()
    }

    // MARK: EC2

    static func ec2Version(_ token: String) -> String? {
        token == "latest" ? ec2Versions.last : (ec2Versions.contains(token) ? token : nil)
    }

    static func ec2(_ tokens: [String], _ instance: InstanceMetadata, requester: String?) -> Document? {
        guard let version = ec2Version(tokens[0]) else { return nil }
        let meta = ec2MetaData(instance, version: version, requester: requester)
        switch tokens.count {
        case 1:
            return Document(text: instance.userData == nil ? "meta-data/" : "meta-data/\nuser-data")
        default:
            if tokens[1] == "user-data" {
                guard tokens.count == 2, let userData = instance.userData else { return nil }
                return Document(body: userData, contentType: textPlain)
            }
            guard tokens[1] == "meta-data" else { return nil }
            var node = meta
            for token in tokens.dropFirst(2) {
                // Only directories have entries; `_name` is how a directory is listed, not one of them.
                guard token != "_name", let child = node[token] else { return nil }
                node = child
            }
            return Document(text: ec2Text(node))
        }
    }

    /// The EC2 `meta-data` tree at `version`, as Nova builds it: a directory whose entry
    /// `_name` is how its parent lists it (`public-keys/` lists `0=<key name>`).
    /// `version` is one of `ec2Versions` (another is taken as the newest).
    public static func ec2MetaData(_ instance: InstanceMetadata, version: String, requester: String?) -> JSON {
        let index = ec2Versions.firstIndex(of: version) ?? ec2Versions.count - 1
        func since(_ first: String) -> Bool { index >= ec2Versions.firstIndex(of: first) ?? 0 }
        let hostname = JSON.string(instance.hostname)
        var doc: [String: JSON] = [
            "ami-id": .string(ec2ID("ami", instance.imageID)),
            "ami-launch-index": .int(Int64(instance.launchIndex)),
            "ami-manifest-path": "FIXME",
            "instance-id": .string(ec2ID("i", instance.uuid)),
            "hostname": hostname,
            "local-ipv4": .optional(instance.fixedIPv4.first ?? requester),
            "reservation-id": .string(instance.reservationID),
            "security-groups": .array(instance.securityGroups.map { .string($0) }),
        ]
        if let key = instance.publicKeys.first {
            doc["public-keys"] = ["0": ["_name": .string("0=" + key.name), "openssh-key": .string(key.data)]]
        }
        if since("2007-01-19") {
            (doc["local-hostname"], doc["public-hostname"]) = (hostname, hostname)
            doc["public-ipv4"] = .string(instance.floatingIPv4.first ?? "")
        }
        if since("2007-08-29") { doc["instance-type"] = .string(instance.flavorName) }
        if since("2007-12-15") {
            doc["block-device-mapping"] = blockDeviceMapping(instance)
            if let kernel = instance.kernelID { doc["kernel-id"] = .string(ec2ID("aki", kernel)) }
            if let ramdisk = instance.ramdiskID { doc["ramdisk-id"] = .string(ec2ID("ari", ramdisk)) }
        }
        if since("2008-02-01") { doc["placement"] = ["availability-zone": .optional(instance.availabilityZone)] }
        if since("2008-09-01") { doc["instance-action"] = "none" }
        return .object(doc)
    }

    /// Nova's EC2 id of a resource: its prefix and eight hex digits. Nova numbers resources
    /// in a table for it; Nimbus takes the first eight hex digits of the uuid, as the server's
    /// `OS-EXT-SRV-ATTR:instance_name` does (`instance-<8 digits>` and `i-<8 digits>` agree).
    public static func ec2ID(_ prefix: String, _ uuid: String) -> String {
        prefix + "-" + String(uuid.lowercased().filter(\.isHexDigit).prefix(8))
    }

    /// The guest's disks as EC2 names them: the root disk `/dev/vda` (`ami` without `/dev/`),
    /// then the ephemeral disk and the swap disk on the next virtio names, as the drivers
    /// attach them.
    static func blockDeviceMapping(_ instance: InstanceMetadata) -> JSON {
        var mapping: [String: JSON] = ["ami": "vda", "root": "/dev/vda"]
        var next: UInt8 = UInt8(ascii: "b")
        if instance.hasEphemeralDisk {
            mapping["ephemeral0"] = .string("/dev/vd" + String(UnicodeScalar(next)))
            next += 1
        }
        if instance.hasSwap { mapping["swap"] = .string("/dev/vd" + String(UnicodeScalar(next))) }
        return .object(mapping)
    }

    /// A tree node as Nova prints it: a directory's entries sorted, one a line, each
    /// subdirectory with a slash (or as its `_name` says); a list one item a line; a leaf as
    /// Python's `str` writes it.
    static func ec2Text(_ node: JSON) -> String {
        switch node {
        case .object(let entries):
            return entries.keys.filter { $0 != "_name" }.sorted().map { key in
                guard case .object(let child) = entries[key] else { return key }
                return child["_name"]?.stringValue ?? key + "/"
            }.joined(separator: "\n")
        case .array(let items): return items.map(ec2Text).joined(separator: "\n")
        case .string(let text): return text
        case .int(let number): return String(number)
        case .double(let number): return String(number)
        case .bool(let flag): return flag ? "True" : "False"
        case .null: return "None"
        }
    }

    // MARK: Config drive

    /// A config drive's files (relative path → contents), as Nova writes them: per EC2
    /// version `ec2/<v>/meta-data.json` (without the `_name` entries) and `user-data`; per
    /// OpenStack version what that version lists; each meta_data.json with its own random seed.
    public static func configDriveFiles(_ instance: InstanceMetadata) -> [(path: String, data: [UInt8])] {
        var files: [(String, [UInt8])] = []
        for version in configDriveEC2Versions {
            let resolved = ec2Version(version)!
            if let userData = instance.userData { files.append(("ec2/\(version)/user-data", userData)) }
            files.append(("ec2/\(version)/meta-data.json", withoutNames(ec2MetaData(instance, version: resolved, requester: nil)).serializedBytes()))
        }
        for version in openStackVersions + ["latest"] {
            let resolved = openStackVersion(version)!
            for file in openStackFiles(instance, version: resolved) {
                guard let document = openStack([version, file], instance) else { continue }
                files.append(("openstack/\(version)/\(file)", document.body))
            }
        }
        return files
    }

    static func withoutNames(_ node: JSON) -> JSON {
        guard case .object(let entries) = node else { return node }
        return .object(entries.filter { $0.key != "_name" }.mapValues(withoutNames))
    }
}
