// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "nimbus",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "nimbus", targets: ["nimbus"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
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
        ]),
        // The host side's contract with hypervisors, and the drivers (no HTTP, no database).
        .target(name: "Virt", dependencies: [
            "NimbusCore", "COpenSSL",
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
        ]),
        .target(name: "Placement", dependencies: [
            "NimbusCore", "NimbusStore",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Compute", dependencies: [
            "NimbusCore", "NimbusStore",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Networking", dependencies: [
            "NimbusCore", "NimbusStore",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "NimbusServer", dependencies: [
            "NimbusCore", "NimbusStore", "Identity", "Image", "Placement", "Compute", "Networking",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "nimbus", dependencies: [
            "NimbusServer", "NimbusCore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The QEMU driver against real QEMU (TCG): needs root and qemu-system-x86_64.
        .testTarget(name: "VirtQEMUTests", dependencies: ["Virt", "NimbusCore"]),
        .testTarget(name: "NimbusCoreTests", dependencies: ["NimbusCore", "NimbusStore"]),
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
        .testTarget(name: "ComputeTests", dependencies: [
            "NimbusTestSupport", "NimbusServer", "Compute", "NimbusCore", "NimbusStore",
            .product(name: "HTTPTypes", package: "swift-http-types"),
        ]),
        .testTarget(name: "NetworkingTests", dependencies: [
            "NimbusTestSupport", "NimbusServer", "Networking", "NimbusCore", "NimbusStore",
            .product(name: "HTTPTypes", package: "swift-http-types"),
        ]),
        // Every route fed malformed input (RouteBadInputTests).
        .testTarget(name: "RobustnessTests", dependencies: [
            "NimbusTestSupport", "NimbusServer", "NimbusCore", "Placement",
            .product(name: "HTTPTypes", package: "swift-http-types"),
        ]),
        .testTarget(name: "IdentityTests", dependencies: [
            "NimbusTestSupport", "NimbusServer", "Identity", "NimbusCore", "NimbusStore",
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
    ]
)
