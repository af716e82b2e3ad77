// swift-tools-version:6.0
// The compute benchmark's load generator (see Sources/ComputeLoad/ComputeLoad.swift). A package
// of its own, not a target of the main Package.swift, so that building Nimbus does not build it.
// Linux only (Glibc sockets), like the benchmark around it.
import PackageDescription

let package = Package(
    name: "ComputeLoad",
    targets: [
        // <sys/epoll.h>, which the Glibc module leaves out.
        .target(name: "CEpoll", path: "Sources/CEpoll"),
        .executableTarget(name: "ComputeLoad", dependencies: ["CEpoll"], path: "Sources/ComputeLoad"),
    ],
    swiftLanguageModes: [.v6]
)
