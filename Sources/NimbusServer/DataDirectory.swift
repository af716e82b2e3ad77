import Foundation
import NimbusCore

/// The data directory: database (SQLite), token keys, config, generated credentials.
enum DataDirectory {
    static func prepare(_ dir: String) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: dir, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw StartupError("data dir \(dir) exists and is not a directory") }
        } else {
            do {
                try fm.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw StartupError("cannot create data dir \(dir): \(error.localizedDescription)")
            }
        }
        guard fm.isReadableFile(atPath: dir), fm.isWritableFile(atPath: dir), fm.isExecutableFile(atPath: dir) else {
            throw StartupError("data dir \(dir) is not readable and writable by this user")
        }
        // Root bypasses permission bits; prove writability for real.
        let probe = "\(dir)/.write-probe"
        guard fm.createFile(atPath: probe, contents: Data()) else { throw StartupError("data dir \(dir) is not writable") }
        try? fm.removeItem(atPath: probe)
    }

    /// The admin password: the one given, else the stored one, else a new random one.
    /// Returns whether it was generated now (and so must be shown once).
    static func adminPassword(_ dir: String, explicit: String?) throws -> (String, Bool) {
        let path = "\(dir)/admin-password"
        if let explicit {
            try write(explicit, to: path)
            return (explicit, false)
        }
        if let stored = try? String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !stored.isEmpty {
            return (stored, false)
        }
        let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        let generated = String((0..<20).map { _ in alphabet.randomElement()! })
        try write(generated, to: path)
        return (generated, true)
    }

    /// The metadata proxies' shared secret when nimbus.conf sets none: the stored one, else a
    /// new random one (32 bytes, hex) kept in `metadata-proxy-shared-secret`, so restarts and
    /// this process's own hosts sign with the same. Returns whether it was generated now.
    static func metadataProxySecret(_ dir: String) throws -> (String, Bool) {
        let path = "\(dir)/metadata-proxy-shared-secret"
        if let stored = try? String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !stored.isEmpty {
            return (stored, false)
        }
        var generator = SystemRandomNumberGenerator()
        let secret = Hex.encode((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
        try write(secret, to: path)
        return (secret, true)
    }

    static func write(_ text: String, to path: String, mode: Int = 0o600) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data((text + "\n").utf8), attributes: [.posixPermissions: mode]) else {
            throw StartupError("cannot write \(path)")
        }
    }
}

/// clouds.yaml and openrc for the admin user, as DevStack writes them.
enum CloudFiles {
    static func write(dataDir: String, authURL: String, password: String) throws {
        func quoted(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "''") + "'" }
        let clouds = """
            # Written by `nimbus up`. Use with: export OS_CLIENT_CONFIG_FILE=\(dataDir)/clouds.yaml OS_CLOUD=nimbus
            clouds:
              nimbus:
                auth:
                  auth_url: \(authURL)
                  username: admin
                  password: \(quoted(password))
                  project_name: admin
                  user_domain_name: Default
                  project_domain_name: Default
                region_name: RegionOne
                interface: public
                identity_api_version: 3
              nimbus-system:
                auth:
                  auth_url: \(authURL)
                  username: admin
                  password: \(quoted(password))
                  user_domain_name: Default
                  system_scope: all
                region_name: RegionOne
                interface: public
                identity_api_version: 3

            """
        try DataDirectory.write(clouds, to: "\(dataDir)/clouds.yaml")
        func shell(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let openrc = """
            # Written by `nimbus up`. Use with: source \(dataDir)/openrc
            export OS_AUTH_URL=\(authURL)
            export OS_USERNAME=admin
            export OS_PASSWORD=\(shell(password))
            export OS_PROJECT_NAME=admin
            export OS_USER_DOMAIN_NAME=Default
            export OS_PROJECT_DOMAIN_NAME=Default
            export OS_REGION_NAME=RegionOne
            export OS_INTERFACE=public
            export OS_IDENTITY_API_VERSION=3

            """
        try DataDirectory.write(openrc, to: "\(dataDir)/openrc")
    }
}

/// Binds and releases the listen address to report an occupied port in one clear line.
enum PortProbe {
    static func checkFree(host: String, port: Int) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        // As the server's own bind does: a port held only by TIME_WAIT connections of a
        // previous run is free.
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &address.sin_addr) == 1 else { return }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if result != 0 {
            let reason = errno == EADDRINUSE ? "address already in use" : String(cString: strerror(errno))
            throw StartupError("cannot listen on \(host):\(port): \(reason)")
        }
    }
}
