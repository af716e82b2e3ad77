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
