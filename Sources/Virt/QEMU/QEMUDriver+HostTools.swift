extension QEMUDriver {
    /// The host programs the driver runs, and the Debian packages that carry them.
    public static let hostTools = [HostTool("qemu-system-x86_64", package: "qemu-system-x86"), HostTool("qemu-img", package: "qemu-utils"),
                                   HostTool("qemu-storage-daemon", package: "qemu-system-common")]
}
