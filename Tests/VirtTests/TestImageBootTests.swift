import Foundation
import NimbusCore
import XCTest

@testable import Virt

/// Builds the test image and boots it under QEMU/TCG, as the QEMU driver will.
final class TestImageBootTests: XCTestCase {
    let uuid = "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633c"
    let hostname = "nimbus-vm-1"

    /// The config drive both boots use; its user data prints a counter every second.
    func makeConfigDrive(in dir: String) throws -> String {
        var input = InstanceMetadata(uuid: uuid, name: "vm one", hostname: hostname)
        input.projectID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
        input.publicKeys = [PublicKey(name: "k1", data: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx2dGVzdGtleWZvcm5pbWJ1c3Rlc3RzMDAwMDAw test@nimbus")]
        input.metadata = ["purpose": "test"]
        input.userData = Array("#!/bin/sh\nn=0\nwhile true; do n=$((n + 1)); echo \"COUNTER $n\"; sleep 1; done\n".utf8)
        let path = "\(dir)/disk.config"
        try ConfigDriveBuilder.build(input, to: path)
        return path
    }

    /// A Nova-style instance disk: a qcow2 overlay on the image.
    func makeOverlay(in dir: String, base: String) throws -> String {
        let path = "\(dir)/disk.qcow2"
        try HostCommand.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", path, "1G"])
        return path
    }

    func testImageIsSmallAndComplete() throws {
        let image = try SharedTestImage.get()
        XCTAssertLessThan(image.imageBytes, 20 * 1_048_576, "the qcow2 should stay under 20 MiB")
        let info = try HostCommand.run(["qemu-img", "info", "--output=json", image.image]).stdoutText
        XCTAssertTrue(info.contains("\"format\": \"qcow2\""), info)
        for path in [image.kernel, image.initrd] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: try XCTUnwrap(path)))
        }
        XCTAssertTrue(image.packages.contains { $0.hasPrefix("dropbear-bin ") }, "\(image.packages)")
    }

    /// Boots from the disk (SeaBIOS → syslinux) with the config drive as an IDE cdrom, the way
    /// Nova's libvirt driver attaches it on an x86 `pc` machine, and waits for the console line
    /// and for the user data's counter.
    func testBootsAndReadsConfigDrive() throws {
        let image = try SharedTestImage.get()
        let dir = try makeScratchDirectory(self)
        let disk = try makeOverlay(in: dir, base: image.image)
        let drive = try makeConfigDrive(in: dir)
        let guest = try QemuGuest(test: self, arguments: [
            "-drive", "file=\(disk),if=virtio,format=qcow2",
            "-drive", "file=\(drive),if=ide,media=cdrom,format=raw,readonly=on",
        ], serialLog: "\(dir)/console.log")

        let line = "NIMBUS-GUEST uuid=\(uuid) hostname=\(hostname) ip=none"
        let seconds = guest.waitForConsole([line], timeout: 60)
        XCTAssertNotNil(seconds, "no console line within 60 s; console:\n\(guest.console)\nqemu:\n\(guest.qemuStderr)")
        if let seconds { print(String(format: "console line after %.1f s (TCG)", seconds)) }
        XCTAssertNotNil(guest.waitForConsole(["COUNTER 3"], timeout: 20), "user data did not run; console:\n\(guest.console)")
        XCTAssertTrue(guest.console.contains("NIMBUS-GUEST: config drive found on /dev/sr0"), guest.console)
        XCTAssertNotNil(guest.waitForConsole(["NIMBUS-GUEST: dropbear listening on port 22"], timeout: 20),
                        "dropbear did not start; console:\n\(guest.console)")
        XCTAssertTrue(guest.console.contains("installed 1 public key(s)"), guest.console)
    }

    /// ACPI power-off over QMP: the guest's acpid runs poweroff -f and QEMU exits. This boot
    /// attaches the config drive as a read-only virtio-blk disk, the other way a driver may.
    func testSystemPowerdownOverQMPStopsTheGuest() throws {
        let image = try SharedTestImage.get()
        let dir = try makeScratchDirectory(self)
        let disk = try makeOverlay(in: dir, base: image.image)
        let drive = try makeConfigDrive(in: dir)
        let qmpPath = "\(dir)/qmp.sock"
        let guest = try QemuGuest(test: self, arguments: [
            "-drive", "file=\(disk),if=virtio,format=qcow2",
            "-drive", "file=\(drive),if=virtio,format=raw,readonly=on",
            "-qmp", "unix:\(qmpPath),server=on,wait=off",
        ], serialLog: "\(dir)/console.log")

        XCTAssertNotNil(guest.waitForConsole(["NIMBUS-GUEST uuid=\(uuid) hostname=\(hostname) ip=none", "NIMBUS-GUEST: acpid started"], timeout: 60),
                        "guest did not come up; console:\n\(guest.console)\nqemu:\n\(guest.qemuStderr)")
        XCTAssertTrue(guest.console.contains("config drive found on /dev/vd"), guest.console)
        let qmp = try QMPClient(path: qmpPath, timeout: 10)
        let pressed = Date()
        // Pressed again every 5 s, as a person would: on a loaded machine a guest has been seen
        // to miss a press that came just as it finished booting.
        var exited = false
        for _ in 0..<6 where !exited {
            let reply = try qmp.execute("system_powerdown")
            XCTAssertNotNil(reply["return"], "\(reply)")
            exited = guest.waitForExit(timeout: 5)
        }
        guard exited else {
            // Reading a running Process's termination status would crash the whole test run.
            guest.process.terminate()
            guest.process.waitUntilExit()
            return XCTFail("QEMU still running 30 s after the first system_powerdown; console:\n\(guest.console)")
        }
        print(String(format: "QEMU exited %.2f s after the first system_powerdown", Date().timeIntervalSince(pressed)))
        XCTAssertEqual(guest.process.terminationStatus, 0)
    }
}
