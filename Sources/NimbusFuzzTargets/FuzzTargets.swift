// Fuzz targets for the parsers that see raw request input first (issue #12).
//
// Nimbus serves every API from one process, so a Swift trap (an out-of-range index, an
// overflow, a force unwrap) that request input can reach stops the whole cloud. Each target
// here is one such entry point as a function of bytes: it must return for every input.
// Errors the parsers throw (400s and the like) are the expected outcome for bad input and are
// ignored; only a trap, or a broken invariant the target checks with `fatalError`, is a
// finding. See docs/fuzzing.md.

/// One fuzz target: a name for the command line and the corpus directories
/// (Tests/Fuzz/Corpus/<name>, Tests/Fuzz/Regressions/<name>), and the function to run.
public struct FuzzTarget: Sendable {
    public let name: String
    public let summary: String
    public let run: @Sendable ([UInt8]) -> Void

    public init(name: String, summary: String, run: @escaping @Sendable ([UInt8]) -> Void) {
        self.name = name
        self.summary = summary
        self.run = run
    }
}

public enum FuzzTargets {
    /// Every target, in the order scripts/fuzz runs them.
    public static let all: [FuzzTarget] = [
        FuzzTarget(name: "json", summary: "JSON.parse on request bodies, then JSONInput's typed accessors and a serialise/parse round trip",
                   run: JSONTargets.json),
        FuzzTarget(name: "microversion", summary: "OpenStack-API-Version negotiation (compute with its legacy header, placement)",
                   run: MicroversionTargets.microversion),
        FuzzTarget(name: "placement-query", summary: "placement's query grammar: resources=, required=, member_of=, in_tree= and the allocation-candidates groups",
                   run: QueryTargets.placement),
        FuzzTarget(name: "glance-list-query", summary: "GET /v2/images query: limit, filters, sort=key:dir / sort_key+sort_dir",
                   run: QueryTargets.glance),
        FuzzTarget(name: "neutron-list-query", summary: "Neutron collection GET: filters, tags, sort, limit/marker/page_reverse, fields",
                   run: QueryTargets.neutron),
        FuzzTarget(name: "policy-rule", summary: "oslo.policy rule parser, then enforcement of the parsed rule",
                   run: PolicyTargets.rule),
        FuzzTarget(name: "disk-format", summary: "DiskFormatInspector fed the input in chunks of varying size; must agree with one whole feed",
                   run: DiskFormatTargets.stream),
        FuzzTarget(name: "disk-format-sparse", summary: "DiskFormatInspector on a sparse image built from (offset, bytes) records, reaching VHDX tables and VMDK descriptors far into the file",
                   run: DiskFormatTargets.sparse),
    ]

    public static func named(_ name: String) -> FuzzTarget? {
        all.first { $0.name == name }
    }
}
