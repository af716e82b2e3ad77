import Foundation
import NimbusCore
import XCTest

@testable import Virt

final class ConfigDriveTests: XCTestCase {
    func sampleInput() -> InstanceMetadata {
        var input = InstanceMetadata(uuid: "83679162-1378-4288-a2d4-70e13ec132aa", name: "web 1", hostname: "web-1")
        input.availabilityZone = "az1"
        input.launchIndex = 2
        input.projectID = "6f70656e737461636b20342065766572"
        input.publicKeys = [PublicKey(name: "mykey", data: "ssh-ed25519 AAAAkey1 me@host")]
        input.metadata = ["role": "web"]
        input.userData = Array("#!/bin/sh\necho hi\n".utf8)
        input.networkData = ["links": [], "networks": [], "services": []]
        return input
    }

    func testMetaDataHasNovasFields() throws {
        let doc = MetadataTree.metaData(sampleInput(), version: "2018-08-27", randomSeed: "c2VlZA==")
        XCTAssertEqual(doc["uuid"]?.stringValue, "83679162-1378-4288-a2d4-70e13ec132aa")
        XCTAssertEqual(doc["name"]?.stringValue, "web 1")
        XCTAssertEqual(doc["hostname"]?.stringValue, "web-1")
        XCTAssertEqual(doc["launch_index"]?.intValue, 2)
        XCTAssertEqual(doc["availability_zone"]?.stringValue, "az1")
        XCTAssertEqual(doc["project_id"]?.stringValue, "6f70656e737461636b20342065766572")
        XCTAssertEqual(doc["public_keys"]?["mykey"]?.stringValue, "ssh-ed25519 AAAAkey1 me@host")
        XCTAssertEqual(doc["keys"]?.arrayValue?.first?["type"]?.stringValue, "ssh")
        XCTAssertEqual(doc["keys"]?.arrayValue?.first?["name"]?.stringValue, "mykey")
        XCTAssertEqual(doc["meta"]?["role"]?.stringValue, "web")
        XCTAssertEqual(doc["devices"]?.arrayValue, [])
        XCTAssertEqual(doc["random_seed"]?.stringValue, "c2VlZA==")
        // No keys, no metadata: Nova leaves public_keys, keys and meta out.
        let bare = MetadataTree.metaData(InstanceMetadata(uuid: "u", name: "n", hostname: "h"), version: "2018-08-27", randomSeed: nil)
        XCTAssertNil(bare["public_keys"])
        XCTAssertNil(bare["keys"])
        XCTAssertNil(bare["meta"])
        XCTAssertNil(bare["random_seed"])
    }

    func testFileLayoutByVersion() {
        let files = Dictionary(MetadataTree.configDriveFiles(sampleInput()).map { ($0.path, Data($0.data)) }) { a, _ in a }
        for name in ["meta_data.json", "user_data", "network_data.json", "vendor_data.json", "vendor_data2.json"] {
            XCTAssertNotNil(files["openstack/latest/\(name)"], name)
        }
        XCTAssertNotNil(files["openstack/2012-08-10/meta_data.json"])
        XCTAssertNotNil(files["openstack/2012-08-10/user_data"])
        XCTAssertNil(files["openstack/2012-08-10/network_data.json"], "network_data.json came with 2015-10-15")
        XCTAssertNil(files["openstack/2015-10-15/vendor_data2.json"], "vendor_data2.json came with 2016-10-06")
        XCTAssertNotNil(files["openstack/2016-10-06/vendor_data2.json"])
        XCTAssertNotNil(files["ec2/latest/meta-data.json"])
        XCTAssertNotNil(files["ec2/2009-04-04/meta-data.json"])
        XCTAssertEqual(files["ec2/latest/user-data"], Data("#!/bin/sh\necho hi\n".utf8))
        let ec2 = try? JSON.parse(files["ec2/latest/meta-data.json"] ?? Data())
        XCTAssertEqual(ec2?["public-keys"], ["0": ["openssh-key": "ssh-ed25519 AAAAkey1 me@host"]], "no _name on the drive")
        XCTAssertEqual(try? JSON.parse(files["openstack/latest/vendor_data2.json"] ?? Data()), ["static": [:]])
        XCTAssertEqual(files["openstack/latest/user_data"], Data("#!/bin/sh\necho hi\n".utf8))
        let old = try? JSON.parse(files["openstack/2012-08-10/meta_data.json"] ?? Data())
        XCTAssertNil(old?["project_id"])
        XCTAssertNil(old?["random_seed"])
    }

    /// The ISO: label config-2 where guests look for it, and the files readable back.
    func testISOHasLabelAndFiles() throws {
        let dir = try makeScratchDirectory(self)
        let iso = "\(dir)/disk.config"
        try ConfigDriveBuilder.build(sampleInput(), to: iso)
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: iso))
        defer { try? handle.close() }
        // Primary volume descriptor: sector 16 (2048-byte sectors), volume identifier at byte 40.
        try handle.seek(toOffset: 16 * 2048 + 40)
        let label = String(decoding: try XCTUnwrap(handle.read(upToCount: 32)), as: UTF8.self)
        XCTAssertEqual(label.trimmingCharacters(in: .whitespaces), "config-2")
        try HostCommand.run(["xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/openstack/latest", "\(dir)/out"])
        let meta = try JSON.parse(try XCTUnwrap(FileManager.default.contents(atPath: "\(dir)/out/meta_data.json")))
        XCTAssertEqual(meta["uuid"]?.stringValue, "83679162-1378-4288-a2d4-70e13ec132aa")
        XCTAssertEqual(FileManager.default.contents(atPath: "\(dir)/out/user_data"), Data("#!/bin/sh\necho hi\n".utf8))
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/out/vendor_data2.json"))
    }
}
