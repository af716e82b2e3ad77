// swift-tools-version:6.0
import PackageDescription

// scripts/fuzz builds nimbus-fuzz (with libFuzzer, into its own scratch path) with
// NIMBUS_FUZZ_BUILD=1: the modules whose parsers are fuzzed are then optimised, while
// dependencies stay at -Onone. At -Onone the disk-format inspector's byte copies make a 4 MiB
// image take ~2 s; optimised, libFuzzer gets thousands of runs a second. `-assert-config Debug`
// keeps the checks -O alone drops (assert, and the bounds of unsafe-buffer slices, which the
// inspector uses), so the fuzzer traps wherever a debug build would.
let fuzzBuild: [SwiftSetting] = Context.environment["NIMBUS_FUZZ_BUILD"] == "1"
    ? [.unsafeFlags(["-O", "-assert-config", "Debug"])] : []

let package = Package(
    name: "nimbus",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "nimbus", targets: ["nimbus"]),
        .executable(name: "nimbus-fuzz", targets: ["nimbus-fuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        // The websocket upgrade of the listener, for the noVNC console proxy.
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    ],
    targets: [
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CCrypt", path: "Sources/CCrypt", providers: [.apt(["libcrypt-dev"])]),
        // OpenSSL's libcrypto, for SHA-512 over image data only (see Image/Service/SystemSHA512.swift).
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", providers: [.apt(["libssl-dev"])]),
        // sync_file_range, which Swift's Glibc module leaves out (see Image/Store/ImageDataStore.swift).
        .target(name: "CFileIO", path: "Sources/CFileIO"),
        .target(name: "NimbusCore", dependencies: [
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: fuzzBuild),
        // What the controller and a host's agent say to each other: the guest spec, host
        // resources and capabilities, agent messages and reports, the metadata documents and
        // the metadata proxy's signed requests.
        .target(name: "HostAPI", dependencies: [
            "NimbusCore",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // The host side's contract with hypervisors, and the drivers (no HTTP, no database).
        .target(name: "Virt", dependencies: [
            "HostAPI", "NimbusCore", "COpenSSL",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The host side's Linux network dataplane (Neutron's Linux bridge, DHCP, L3 and metadata
        // agents' work): bridges, taps, VXLAN, namespaces, dnsmasq, nftables (no HTTP, no database).
        .target(name: "Dataplane", dependencies: [
            "HostAPI", "NimbusCore", "CFileIO",
            .product(name: "Logging", package: "swift-log"),
            // The metadata proxy's HTTP/1.1 server.
            .product(name: "Hummingbird", package: "hummingbird"),
        ]),
        // A host's agent: registers, heartbeats, and carries out the controller's messages
        // with its driver.
        .target(name: "HostAgent", dependencies: [
            "HostAPI", "Virt", "Dataplane", "NimbusCore",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "NimbusStore", dependencies: [
            "CSQLite", "NimbusCore",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Identity", dependencies: [
            "NimbusCore", "NimbusStore", "CCrypt",
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Image", dependencies: [
            "NimbusCore", "NimbusStore", "COpenSSL", "CFileIO",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: fuzzBuild),
        .target(name: "Placement", dependencies: [
            "NimbusCore", "NimbusStore",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: fuzzBuild),
        .target(name: "Compute", dependencies: [
            "NimbusCore", "NimbusStore", "HostAPI",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Crypto", package: "swift-crypto"),
            // RSA, for the keypairs Nova generates (Compute/Service/KeyPairGenerator.swift).
            .product(name: "_CryptoExtras", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Networking", dependencies: [
            "NimbusCore", "NimbusStore", "HostAPI",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: fuzzBuild),
        .target(name: "NimbusServer", dependencies: [
            "NimbusCore", "NimbusStore", "Identity", "Image", "Placement", "Compute", "Networking", "HostAPI", "Virt", "Dataplane", "HostAgent",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "nimbus", dependencies: [
            "NimbusServer", "NimbusCore", "Dataplane",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The QEMU driver against real QEMU (TCG): needs root and qemu-system-x86_64.
        .testTarget(name: "VirtQEMUTests", dependencies: ["Virt", "NimbusCore"]),
        .testTarget(name: "DataplaneTests", dependencies: ["Dataplane", "HostAPI", "NimbusCore"]),
        .testTarget(name: "NimbusCoreTests", dependencies: ["NimbusCore", "NimbusStore"]),
        // Fuzz targets: the parsers that see raw request input first, each a function of bytes
        // (see docs/fuzzing.md). `nimbus-fuzz` runs them under libFuzzer when built by
        // scripts/fuzz, and replays files through them otherwise; FuzzRegressionTests replays
        // Tests/Fuzz's corpus and past crashes on every `swift test`.
        .target(name: "NimbusFuzzTargets", dependencies: [
            "NimbusCore", "Image", "Placement", "Networking", "Compute",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
        ], swiftSettings: fuzzBuild),
        // libFuzzer's LLVMFuzzerRunDriver, declared for nimbus-fuzz's libFuzzer build only.
        .systemLibrary(name: "CLibFuzzer", path: "Sources/CLibFuzzer"),
        .executableTarget(name: "nimbus-fuzz", dependencies: ["NimbusFuzzTargets", "CLibFuzzer"]),
        .testTarget(name: "FuzzRegressionTests", dependencies: ["NimbusFuzzTargets"]),
        // The in-process cloud every API test drives (real router, real database).
        .target(name: "NimbusTestSupport", dependencies: [
            "NimbusServer", "NimbusCore", "NimbusStore",
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
        .testTarget(name: "ImageTests", dependencies: [
            "NimbusTestSupport", "NimbusServer", "Image", "NimbusCore",
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .testTarget(name: "PlacementTests", dependencies: [
            "NimbusTestSupport", "NimbusServer", "Placement", "NimbusCore", "NimbusStore",
            .product(name: "HTTPTypes", package: "swift-http-types"),
        ]),
        // ConsoleProxyTests there boots a real QEMU guest (TCG) behind the console proxy.
        .testTarget(name: "ComputeTests", dependencies: [
            "NimbusTestSupport", "NimbusServer", "Compute", "NimbusCore", "NimbusStore", "HostAPI", "HostAgent", "Virt", "Dataplane",
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
        ]),
        .testTarget(name: "NetworkingTests", dependencies: [
            "NimbusTestSupport", "NimbusServer", "Networking", "NimbusCore", "NimbusStore", "HostAPI",
            .product(name: "HTTPTypes", package: "swift-http-types"),
        ]),
        // Every route fed malformed input (RouteBadInputTests).
        .testTarget(name: "RobustnessTests", dependencies: [
            "NimbusTestSupport", "NimbusServer", "NimbusCore", "Placement",
            .product(name: "HTTPTypes", package: "swift-http-types"),
        ]),
        // Builds the test image and boots it under QEMU (TCG); needs qemu-system-x86 and the
        // image tools scripts/test installs.
        .testTarget(name: "VirtTests", dependencies: ["Virt", "NimbusCore"]),
        .testTarget(name: "IdentityTests", dependencies: [
            "NimbusTestSupport", "NimbusServer", "Identity", "NimbusCore", "NimbusStore",
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
    ]
)
