import Foundation
import NimbusFuzzTargets
import XCTest

/// Replays every input under Tests/Fuzz through its fuzz target, so `swift test` alone catches
/// the return of a crash libFuzzer once found (Tests/Fuzz/Regressions) and any seed that stops
/// working (Tests/Fuzz/Corpus), without the libFuzzer build. A crashing input crashes the test
/// process; the path printed just before it is the culprit (replay it with
/// `swift run nimbus-fuzz replay TARGET FILE`).
final class FuzzRegressionTests: XCTestCase {
    static let fuzzDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz")

    func testRegressionsReplayWithoutCrashing() throws {
        try replayAll(in: "Regressions")
    }

    func testCorpusReplaysWithoutCrashing() throws {
        let replayed = try replayAll(in: "Corpus")
        for target in FuzzTargets.all {
            XCTAssertGreaterThan(replayed[target.name] ?? 0, 0, "Tests/Fuzz/Corpus/\(target.name) has no seed inputs")
        }
    }

    /// A directory whose name matches no target would be skipped by scripts/fuzz and by the
    /// replays above; a renamed target must take its inputs with it.
    func testEveryDirectoryNamesATarget() throws {
        for kind in ["Corpus", "Regressions"] {
            for name in try directories(in: kind) {
                XCTAssertNotNil(FuzzTargets.named(name), "Tests/Fuzz/\(kind)/\(name) names no fuzz target")
            }
        }
    }

    func testTargetNamesAreUnique() {
        XCTAssertEqual(Set(FuzzTargets.all.map(\.name)).count, FuzzTargets.all.count)
    }

    // MARK: Helpers

    func directories(in kind: String) throws -> [String] {
        let root = Self.fuzzDirectory.appendingPathComponent(kind)
        guard FileManager.default.fileExists(atPath: root.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: root.path).filter { name in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: root.appendingPathComponent(name).path, isDirectory: &isDirectory)
                && isDirectory.boolValue
        }.sorted()
    }

    /// Replays each file of Tests/Fuzz/<kind>/<target>/; returns the count per target.
    @discardableResult
    func replayAll(in kind: String) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for name in try directories(in: kind) {
            guard let target = FuzzTargets.named(name) else { continue }
            let directory = Self.fuzzDirectory.appendingPathComponent(kind).appendingPathComponent(name)
            let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
                .filter { !$0.hasPrefix(".") }.sorted()
            for file in files {
                let url = directory.appendingPathComponent(file)
                // Printed first so that, if the input crashes the process, the log names it.
                print("replay \(name) Tests/Fuzz/\(kind)/\(name)/\(file)")
                target.run([UInt8](try Data(contentsOf: url)))
            }
            counts[name] = files.count
        }
        return counts
    }
}
