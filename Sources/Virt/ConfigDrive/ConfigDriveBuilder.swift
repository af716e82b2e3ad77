import Foundation
import NimbusCore

/// What goes on an instance's config drive: the facts Nova's metadata service would serve.
public struct ConfigDriveInput: Sendable {
    public struct PublicKey: Sendable, Equatable {
        public var name: String
        public var data: String
        /// "ssh" or "x509", as keypairs carry it.
        public var type: String
        public init(name: String, data: String, type: String = "ssh") {
            self.name = name
            self.data = data
            self.type = type
        }
    }

    public var uuid: String
    public var name: String
    public var hostname: String
    public var availabilityZone: String = "nova"
    public var launchIndex: Int = 0
    public var projectID: String = ""
    public var publicKeys: [PublicKey] = []
    /// The server's metadata (key → value), `meta` in meta_data.json.
    public var metadata: [String: String] = [:]
    /// Raw user data (already base64-decoded), nil when the server has none.
    public var userData: Data?
    /// network_data.json: links, networks, services.
    public var networkData: JSON = .object([:])
    public var vendorData: JSON = .object([:])
    public var vendorData2: JSON = .object([:])
    /// Tagged devices (`devices` in meta_data.json).
    public var devices: [JSON] = []
    /// Put 512 random bytes (base64) in meta_data.json as `random_seed`, as Nova does.
    public var includeRandomSeed = true

    public init(uuid: String, name: String, hostname: String) {
        self.uuid = uuid
        self.name = name
        self.hostname = hostname
    }
}

/// Writes a config drive: an ISO 9660 volume labelled `config-2` (Joliet and Rock Ridge, the
/// mkisofs options Nova uses) with openstack/<version>/meta_data.json, user_data,
/// network_data.json, vendor_data.json and vendor_data2.json, and ec2/latest/meta-data.json.
/// Made with `xorriso -as mkisofs` (package xorriso).
public enum ConfigDriveBuilder {
    public static let label = "config-2"
    public static let hostTools = [HostTool("xorriso", package: "xorriso")]

    /// The dated versions written besides `latest`, and from which version on each optional
    /// part exists (the versions of Nova's metadata API).
    static let versions = ["2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30", "2016-10-06",
                           "2017-02-22", "2018-08-27"]
    static let randomSeedSince = "2013-04-04", vendorDataSince = "2013-10-17", networkDataSince = "2015-10-15"
    static let projectIDSince = "2015-10-15", devicesSince = "2016-06-30", vendorData2Since = "2016-10-06"

    /// Writes the drive to `path` (replacing it). Missing xorriso is installed when allowed.
    public static func build(_ input: ConfigDriveInput, to path: String, installMissingTools: Bool = true,
                             log: @Sendable (String) -> Void = { print($0) }) throws
    {
        try HostTools.ensure(hostTools, install: installMissingTools, log: log)
        let fm = FileManager.default
        let staging = "\(path).staging-\(UUID().uuidString.prefix(8))"
        try fm.createDirectory(atPath: staging, withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: staging) }
        for (relative, data) in files(for: input) {
            let full = "\(staging)/\(relative)"
            try fm.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try data.write(to: URL(fileURLWithPath: full))
        }
        try? fm.removeItem(atPath: path)
        try HostCommand.run([
            "xorriso", "-as", "mkisofs", "-o", path,
            "-ldots", "-allow-lowercase", "-allow-multidot", "-l",
            "-publisher", "Nimbus", "-quiet", "-J", "-r", "-V", label, staging,
        ])
    }

    /// The drive's files: relative path → contents.
    public static func files(for input: ConfigDriveInput) -> [(path: String, data: Data)] {
        var result: [(String, Data)] = []
        let seed: String? = input.includeRandomSeed ? randomSeed() : nil
        for version in versions + ["latest"] {
            func since(_ first: String) -> Bool { version == "latest" || version >= first }
            let dir = "openstack/\(version)"
            result.append(("\(dir)/meta_data.json", Data(metaData(input, randomSeed: since(randomSeedSince) ? seed : nil,
                                                                  projectID: since(projectIDSince),
                                                                  devices: since(devicesSince)).serialized().utf8)))
            if let userData = input.userData { result.append(("\(dir)/user_data", userData)) }
            if since(vendorDataSince) { result.append(("\(dir)/vendor_data.json", Data(input.vendorData.serialized().utf8))) }
            if since(networkDataSince) { result.append(("\(dir)/network_data.json", Data(input.networkData.serialized().utf8))) }
            if since(vendorData2Since) { result.append(("\(dir)/vendor_data2.json", Data(input.vendorData2.serialized().utf8))) }
        }
        result.append(("ec2/latest/meta-data.json", Data(ec2MetaData(input).serialized().utf8)))
        if let userData = input.userData { result.append(("ec2/latest/user-data", userData)) }
        return result
    }

    /// meta_data.json with the fields Nova writes: uuid, name, hostname, launch_index,
    /// availability_zone, project_id, meta (when there is metadata), public_keys and keys (when
    /// there are keys), devices, random_seed.
    public static func metaData(_ input: ConfigDriveInput, randomSeed: String?, projectID: Bool = true,
                                devices: Bool = true) -> JSON
    {
        var doc: [String: JSON] = [
            "uuid": .string(input.uuid),
            "name": .string(input.name),
            "hostname": .string(input.hostname),
            "launch_index": .int(Int64(input.launchIndex)),
            "availability_zone": .string(input.availabilityZone),
        ]
        if projectID { doc["project_id"] = .string(input.projectID) }
        if !input.metadata.isEmpty { doc["meta"] = .object(input.metadata.mapValues { .string($0) }) }
        if !input.publicKeys.isEmpty {
            doc["public_keys"] = .object(Dictionary(input.publicKeys.map { ($0.name, JSON.string($0.data)) }) { first, _ in first })
            doc["keys"] = .array(input.publicKeys.map { ["name": .string($0.name), "type": .string($0.type), "data": .string($0.data)] })
        }
        if devices { doc["devices"] = .array(input.devices) }
        if let randomSeed { doc["random_seed"] = .string(randomSeed) }
        return .object(doc)
    }

    /// The EC2-style metadata Nova also puts on the drive, for what is known here.
    static func ec2MetaData(_ input: ConfigDriveInput) -> JSON {
        var doc: [String: JSON] = [
            "ami-launch-index": .int(Int64(input.launchIndex)),
            "hostname": .string(input.hostname),
            "local-hostname": .string(input.hostname),
            "public-hostname": .string(input.hostname),
            "instance-action": "none",
            "placement": ["availability-zone": .string(input.availabilityZone)],
        ]
        if let key = input.publicKeys.first { doc["public-keys"] = ["0": ["openssh-key": .string(key.data)]] }
        return .object(doc)
    }

    static func randomSeed() -> String {
        var generator = SystemRandomNumberGenerator()
        return Data((0..<512).map { _ in UInt8.random(in: 0...255, using: &generator) }).base64EncodedString()
    }
}
