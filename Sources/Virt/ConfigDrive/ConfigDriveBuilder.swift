import Foundation
import HostAPI
import NimbusCore

/// Writes a config drive: an ISO 9660 volume labelled `config-2` (Joliet and Rock Ridge, the
/// mkisofs options Nova uses) holding the files `MetadataTree.configDriveFiles` renders —
/// the same documents the metadata API serves. Made with `xorriso -as mkisofs` (package xorriso).
public enum ConfigDriveBuilder {
    public static let label = "config-2"
    public static let hostTools = [HostTool("xorriso", package: "xorriso")]

    /// Writes the drive to `path` (replacing it). Missing xorriso is installed when allowed.
    public static func build(_ instance: InstanceMetadata, to path: String, installMissingTools: Bool = true,
                             log: @Sendable (String) -> Void = { print($0) }) throws
    {
        try HostTools.ensure(hostTools, install: installMissingTools, log: log)
        let fm = FileManager.default
        let staging = "\(path).staging-\(Identifiers.hexID().prefix(8))"
        try fm.createDirectory(atPath: staging, withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: staging) }
        for (relative, data) in MetadataTree.configDriveFiles(instance) {
            let full = "\(staging)/\(relative)"
            try fm.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(data).write(to: URL(fileURLWithPath: full))
        }
        try? fm.removeItem(atPath: path)
        try HostCommand.run([
            "xorriso", "-as", "mkisofs", "-o", path,
            "-ldots", "-allow-lowercase", "-allow-multidot", "-l",
            "-publisher", "Nimbus", "-quiet", "-J", "-r", "-V", label, staging,
        ])
    }
}
