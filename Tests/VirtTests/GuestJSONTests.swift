import Foundation
import XCTest

@testable import Virt

/// The guest reads metadata with /etc/nimbus/json.awk under busybox awk. These run that script
/// with the very busybox the image holds (unpacked in the build cache), on the host.
final class GuestJSONTests: XCTestCase {
    func flatten(_ json: String) throws -> [String] {
        _ = try SharedTestImage.get()
        let unpacked = "\(SharedTestImage.cacheDirectory)/unpacked"
        let dir = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: unpacked)
            .first { $0.hasPrefix("busybox-static_") })
        let busybox = "\(unpacked)/\(dir)/bin/busybox"
        let scratch = try makeScratchDirectory(self)
        try Data(GuestFiles.jsonAWK.utf8).write(to: URL(fileURLWithPath: "\(scratch)/json.awk"))
        try Data(json.utf8).write(to: URL(fileURLWithPath: "\(scratch)/doc.json"))
        let out = try HostCommand.run([busybox, "awk", "-f", "\(scratch)/json.awk", "\(scratch)/doc.json"]).stdoutText
        return out.split(separator: "\n").map(String.init)
    }

    func testNovaStyleDocumentInAnyOrderAndLayout() throws {
        let compact = #"{"random_seed": "q83v", "uuid": "u-1", "public_keys": {"k1": "ssh-ed25519 AAAA a@b"}, "keys": [{"name": "k1", "type": "ssh", "data": "ssh-ed25519 AAAA a@b"}], "hostname": "vm-1", "meta": {}, "devices": [], "launch_index": 0, "project_id": null}"#
        let spread = """
            {
              "hostname" :"vm-1",
            \t"public_keys":{ "k1" : "ssh-ed25519 AAAA a@b" },
              "uuid":"u-1" ,
              "launch_index": 0
            }
            """
        for doc in [compact, spread] {
            let lines = try flatten(doc)
            XCTAssertTrue(lines.contains("uuid\tu-1"), "\(lines)")
            XCTAssertTrue(lines.contains("hostname\tvm-1"), "\(lines)")
            XCTAssertTrue(lines.contains("public_keys/k1\tssh-ed25519 AAAA a@b"), "\(lines)")
            XCTAssertTrue(lines.contains("launch_index\t0"), "\(lines)")
        }
        let lines = try flatten(compact)
        XCTAssertTrue(lines.contains("keys/0/type\tssh"), "\(lines)")
        XCTAssertTrue(lines.contains("project_id\tnull"), "\(lines)")
    }

    func testEscapesStayOnOneLine() throws {
        let lines = try flatten(#"{"name": "say \"hi\" \\ back\/slash", "key": "ssh-rsa AAAA x@y\n", "u": "caf\u00e9"}"#)
        XCTAssertTrue(lines.contains("name\t" + #"say "hi" \ back/slash"#), "\(lines)")
        XCTAssertTrue(lines.contains("key\tssh-rsa AAAA x@y "), "\(lines)")
        XCTAssertTrue(lines.contains("u\t" + #"caf\u00e9"#), "\(lines)")
        XCTAssertEqual(lines.count, 3)
    }
}
