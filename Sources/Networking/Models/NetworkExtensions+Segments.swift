extension NetworkExtensions {
    /// Segments and network segment ranges.
    static let segments: [NetworkExtension] = [
        NetworkExtension(alias: "segment", name: "Segment", description: "Network segments under /v2.0/segments: created, renamed and deleted by admins."),
        NetworkExtension(alias: "multi-provider", name: "Multi Provider Network",
                         description: "Networks of several segments, created and shown as a segments list of provider attributes."),
        NetworkExtension(alias: "network-segment-range", name: "Network Segment Range",
                         description: "Ranges of segmentation ids tenant networks take theirs from, shared or private to a project."),
    ]
}
