import Foundation
@testable import Virt
import XCTest

/// The command line is a pure function of the spec: checked without QEMU.
final class QEMUCommandLineTests: XCTestCase {
    let paths = GuestPaths(instancesRoot: "/var/lib/nimbus/instances", uuid: "6b7c3c2e-0000-4000-8000-000000000001")

    func guest(properties: [String: String] = [:], kernel: Bool = false, nics: [VIF] = [], configDrive: Bool = false) -> GuestSpec {
        GuestSpec(uuid: paths.uuid, name: "vm", hostname: "vm", projectID: "p", vcpus: 2, memoryMB: 256, rootGB: 1, ephemeralGB: 1, swapMB: 64,
                  image: ImageRef(id: "img", diskFormat: "qcow2", kernelID: kernel ? "k" : nil, ramdiskID: kernel ? "r" : nil, properties: properties),
                  configDrive: configDrive, nics: nics)
    }

    /// The value following `option` (first occurrence).
    func value(_ args: [String], _ option: String) -> String? {
        args.firstIndex(of: option).flatMap { $0 + 1 < args.count ? args[$0 + 1] : nil }
    }

    func values(_ args: [String], _ option: String) -> [String] {
        args.indices.filter { args[$0] == option && $0 + 1 < args.count }.map { args[$0 + 1] }
    }

    func testDefaultGuestUnderTCG() throws {
        let args = try QEMUCommandLine.arguments(QEMULaunch(guest: guest(), paths: paths, acceleration: .tcg))
        XCTAssertEqual(value(args, "-name"), "guest=\(paths.uuid),debug-threads=on")
        XCTAssertEqual(value(args, "-uuid"), paths.uuid)
        XCTAssertEqual(value(args, "-machine"), "q35,usb=off")
        XCTAssertEqual(value(args, "-accel"), "tcg,tb-size=32")
        XCTAssertEqual(value(args, "-m"), "256")
        XCTAssertEqual(value(args, "-smp"), "2")
        XCTAssertTrue(args.contains("-nodefaults") && args.contains("-no-user-config") && args.contains("-daemonize"))
        XCTAssertEqual(value(args, "-pidfile"), paths.pidFile)
        XCTAssertEqual(value(args, "-qmp"), "unix:\(paths.qmpSocket),server=on,wait=off")
        XCTAssertEqual(value(args, "-vnc"), "127.0.0.1:0,to=59635", "VNC on the listen address, the first free port from 5900 to 65535")
        XCTAssertEqual(value(args, "-display"), "none")
        XCTAssertEqual(value(args, "-chardev"),
                       "socket,id=serial0,path=\(paths.consoleSocket),server=on,wait=off,logfile=\(paths.consoleLog),logappend=on")
        XCTAssertEqual(values(args, "-drive"), [
            "file=\(paths.rootDisk),format=qcow2,if=none,id=root,discard=unmap",
            "file=\(paths.ephemeralDisk),format=qcow2,if=none,id=eph0,discard=unmap",
            "file=\(paths.swapDisk),format=qcow2,if=none,id=swap,discard=unmap",
        ])
        let devices = values(args, "-device")
        XCTAssertTrue(devices.contains("virtio-blk-pci,drive=root,id=root-dev,bootindex=1"), "\(devices)")
        XCTAssertTrue(devices.contains("virtio-blk-pci,drive=eph0,id=eph0-dev"))
        XCTAssertTrue(devices.contains("isa-serial,chardev=serial0"))
        XCTAssertNil(value(args, "-kernel"))
        XCTAssertNil(value(args, "-incoming"))
        XCTAssertNil(value(args, "-netdev"))
    }

    func testVNCListensOnTheConfiguredAddress() throws {
        let v4 = try QEMUCommandLine.arguments(QEMULaunch(guest: guest(), paths: paths, acceleration: .tcg, vncListen: "192.0.2.10"))
        XCTAssertEqual(value(v4, "-vnc"), "192.0.2.10:0,to=59635")
        let v6 = try QEMUCommandLine.arguments(QEMULaunch(guest: guest(), paths: paths, acceleration: .tcg, vncListen: "::1"))
        XCTAssertEqual(value(v6, "-vnc"), "[::1]:0,to=59635")
    }

    func testKVMUsesTheHostCPU() throws {
        let args = try QEMUCommandLine.arguments(QEMULaunch(guest: guest(), paths: paths, acceleration: .kvm))
        XCTAssertEqual(value(args, "-accel"), "kvm")
        XCTAssertEqual(value(args, "-cpu"), "host")
    }

    func testNICsKernelConfigDriveAndIncoming() throws {
        let vif = VIF(portID: "0123456789abcdef", networkID: "n", macAddress: "fa:16:3e:00:00:01", mtu: 1450)
        let launch = QEMULaunch(guest: guest(kernel: true, nics: [vif], configDrive: true), paths: paths, acceleration: .tcg,
                                kernel: "/base/k", ramdisk: "/base/r", incomingState: paths.savedState)
        let args = try QEMUCommandLine.arguments(launch)
        XCTAssertEqual(value(args, "-netdev"), "tap,id=net-tap0123456789a,ifname=tap0123456789a,script=no,downscript=no")
        // On q35 each NIC sits on its own PCIe root port, at a fixed address, so it can be unplugged.
        XCTAssertTrue(values(args, "-device").contains("pcie-root-port,id=nicport0,bus=pcie.0,addr=0x10,chassis=1"))
        XCTAssertTrue(values(args, "-device").contains(
            "virtio-net-pci,netdev=net-tap0123456789a,id=nic-tap0123456789a,mac=fa:16:3e:00:00:01,host_mtu=1450,bus=nicport0"))
        XCTAssertEqual(value(args, "-kernel"), "/base/k")
        XCTAssertEqual(value(args, "-initrd"), "/base/r")
        XCTAssertEqual(value(args, "-append"), "root=/dev/vda console=tty0 console=ttyS0")
        // Booting the kernel directly: the disk is not the boot device.
        XCTAssertTrue(values(args, "-device").contains("virtio-blk-pci,drive=root,id=root-dev"))
        XCTAssertTrue(values(args, "-drive").contains("file=\(paths.configDrive),format=raw,if=none,id=config,readonly=on"))
        XCTAssertTrue(values(args, "-device").contains("ide-cd,bus=ide.0,drive=config,id=config-dev"))
        XCTAssertEqual(value(args, "-incoming"), "exec:cat '\(paths.savedState)'")
        // A live migration's destination waits for QMP to say where to listen.
        let waiting = try QEMUCommandLine.arguments(QEMULaunch(guest: guest(), paths: paths, acceleration: .tcg, deferredIncoming: true))
        XCTAssertEqual(values(waiting, "-incoming"), ["defer"])
    }

    /// Moves' locations travel between agents as one string each.
    func testExportAndEndpointLocations() {
        let export = DiskExport(disks: ["nbd://127.0.0.2:4000/root", "nbd://127.0.0.2:4000/eph0"])
        XCTAssertEqual(export.location, "nbd://127.0.0.2:4000/root nbd://127.0.0.2:4000/eph0")
        XCTAssertEqual(DiskExport(location: export.location).disks, ["nbd://127.0.0.2:4000/root", "nbd://127.0.0.2:4000/eph0"])
        let endpoint = MigrationEndpoint(stream: "tcp:127.0.0.2:4001", disks: ["nbd://127.0.0.2:4002/root"])
        XCTAssertEqual(MigrationEndpoint(uri: endpoint.uri).stream, "tcp:127.0.0.2:4001")
        XCTAssertEqual(MigrationEndpoint(uri: endpoint.uri).disks, ["nbd://127.0.0.2:4002/root"])
        XCTAssertEqual(MigrationEndpoint(uri: "tcp:127.0.0.2:4001").disks, [])
        XCTAssertEqual(NBDExportURI("nbd://127.0.0.2:4000/root"), NBDExportURI(host: "127.0.0.2", port: 4000, name: "root"))
        XCTAssertEqual(NBDExportURI("nbd://[::1]:4000/swap")?.host, "::1")
        XCTAssertEqual(NBDExportURI(host: "::1", port: 4000, name: "swap").uri, "nbd://[::1]:4000/swap")
        for bad in ["nbd://127.0.0.2/root", "nbd://127.0.0.2:0/root", "nbd://:4000/root", "nbd://127.0.0.2:4000/", "tcp:127.0.0.2:4000", ""] {
            XCTAssertNil(NBDExportURI(bad), bad)
        }
    }

    func testImagePropertiesPickBusAndMachine() throws {
        let sata = try QEMUCommandLine.arguments(QEMULaunch(guest: guest(properties: ["hw_disk_bus": "sata"], configDrive: true), paths: paths, acceleration: .tcg))
        XCTAssertEqual(values(sata, "-device").filter { $0.hasPrefix("ide-") }, [
            "ide-hd,bus=ide.0,drive=root,id=root-dev,bootindex=1", "ide-hd,bus=ide.1,drive=eph0,id=eph0-dev",
            "ide-hd,bus=ide.2,drive=swap,id=swap-dev", "ide-cd,bus=ide.3,drive=config,id=config-dev",
        ])
        let pc = try QEMUCommandLine.arguments(QEMULaunch(guest: guest(properties: ["hw_machine_type": "pc", "hw_disk_bus": "ide"]), paths: paths, acceleration: .tcg))
        XCTAssertEqual(value(pc, "-machine"), "pc,usb=off")
        XCTAssertTrue(values(pc, "-device").contains("ide-hd,bus=ide.1,unit=0,drive=swap,id=swap-dev"))
        let scsi = try QEMUCommandLine.arguments(QEMULaunch(guest: guest(properties: ["hw_disk_bus": "scsi"]), paths: paths, acceleration: .tcg))
        XCTAssertEqual(values(scsi, "-device").filter { $0.hasPrefix("virtio-scsi") }.count, 1)
        XCTAssertTrue(values(scsi, "-device").contains("scsi-hd,bus=scsi0.0,drive=root,id=root-dev,bootindex=1"))
        XCTAssertThrowsError(try QEMUCommandLine.arguments(QEMULaunch(guest: guest(properties: ["hw_disk_bus": "floppy"]), paths: paths, acceleration: .tcg)))
    }

    func testRescueBootsTheRescueDiskWithTheRootDiskSecond() throws {
        let args = try QEMUCommandLine.arguments(QEMULaunch(guest: guest(), paths: paths, acceleration: .tcg, rescueDisk: paths.rescueDisk))
        XCTAssertEqual(values(args, "-drive"), [
            "file=\(paths.rescueDisk),format=qcow2,if=none,id=root,discard=unmap",
            "file=\(paths.rootDisk),format=qcow2,if=none,id=rescued,discard=unmap",
        ])
        XCTAssertTrue(values(args, "-device").contains("virtio-blk-pci,drive=root,id=root-dev,bootindex=1"))
    }

    func testCommasInPathsAreEscaped() throws {
        let odd = GuestPaths(instancesRoot: "/srv/a,b", uuid: paths.uuid)
        var spec = guest()
        spec.ephemeralGB = 0
        spec.swapMB = 0
        let args = try QEMUCommandLine.arguments(QEMULaunch(guest: spec, paths: odd, acceleration: .tcg))
        XCTAssertEqual(values(args, "-drive"), ["file=/srv/a,,b/\(paths.uuid)/disk,format=qcow2,if=none,id=root,discard=unmap"])
    }

    func testVersionParsing() {
        XCTAssertEqual(HostInfo.parseVersion("QEMU emulator version 7.2.0 (Debian 1:7.2+dfsg-7)"), 7_002_000)
        XCTAssertEqual(HostInfo.parseVersion("QEMU emulator version 7.2.22 (Debian)"), 7_002_022)
        XCTAssertEqual(HostInfo.parseVersion("QEMU emulator version 8.1"), 8_001_000)
        XCTAssertNil(HostInfo.parseVersion("nothing"))
    }

    func testGuestRecordRoundTrips() throws {
        var spec = guest(properties: ["hw_disk_bus": "scsi"], kernel: true,
                         nics: [VIF(portID: "p1", networkID: "n1", macAddress: "fa:16:3e:00:00:02", mtu: 1400, fixedIPs: ["10.0.0.5"])],
                         configDrive: true)
        spec.userData = Array("#!/bin/sh\necho hi\n".utf8)
        spec.keys = [PublicKey(name: "k", data: "ssh-ed25519 AAAA")]
        spec.metadata = ["role": "web"]
        spec.networkData = "{\"links\": []}"
        spec.availabilityZone = "az1"
        (spec.flavorName, spec.reservationID, spec.securityGroups, spec.floatingIPs) = ("m1.small", "r-0a1b2c3d", ["default", "web"], ["172.24.4.9"])
        XCTAssertEqual(GuestRecord.decode(GuestRecord.encode(spec)), spec)
        XCTAssertEqual(GuestSpec(json: spec.json), spec, "the agent messages' JSON carries the same")
    }

    func testReverterUndoesNewestFirstUnlessKept() async throws {
        var log: [String] = []
        do {
            try await Reverter.run { reverter in
                reverter.add { log.append("undo 1") }
                reverter.add { log.append("undo 2") }
                throw VirtError.failed("step 3")
            }
        } catch {}
        XCTAssertEqual(log, ["undo 2", "undo 1"])
        log = []
        try await Reverter.run { reverter in reverter.add { log.append("undo") } }
        XCTAssertEqual(log, [])
    }
}
