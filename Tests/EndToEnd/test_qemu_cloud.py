"""`nimbus up` as the README's first command leaves it: a cloud whose host runs real QEMU
guests (TCG here), with DevStack's flavors and the test image, driven by the unmodified
`openstack` CLI. One cloud for the module; each test cleans up its servers, and the module
checks that no QEMU process, overlay, socket or log is left behind."""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from conftest import Nimbus, wait_for

FIRST_START_TIMEOUT = 600.0  # the first start downloads the test image's Debian packages
LINE_TIMEOUT = 120.0


def qemu_pids(uuid: str) -> list[int]:
    """Running QEMU processes of one guest (their command line names the uuid)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if cmdline and cmdline[0].endswith(b"qemu-system-x86_64") and f"guest={uuid}".encode() in b" ".join(cmdline) \
                and stat.rsplit(")", 1)[1].split()[0] != "Z":
            pids.append(int(entry.name))
    return pids


@pytest.fixture(scope="module")
def qemu_cloud(tmp_path_factory: pytest.TempPathFactory):
    cloud = Nimbus("sqlite", tmp_path_factory.mktemp("qemu"))
    cloud.fake_hosts = None
    # Guests' sockets need a short path (a unix socket path holds 107 bytes).
    instances = Path(tempfile.mkdtemp(prefix="nimbus-e2e-", dir="/tmp"))
    cloud.instances = instances
    cloud.extra_conf = f"[compute]\ninstances_path = {instances}\n"
    cloud.ready_timeout = FIRST_START_TIMEOUT
    cloud.start()
    # Ready means serving; the first start's flavors and image come just before the ready line.
    wait_for(lambda: "Nimbus is ready" in cloud.output(), FIRST_START_TIMEOUT, "the first start to finish")
    try:
        yield cloud
    finally:
        leftovers = [p.name for p in instances.iterdir() if p.name != "_base"] if instances.is_dir() else []
        cloud.stop()
        # Whatever a failed test left running is stopped, so it cannot disturb the next run.
        for guest in leftovers:
            for pid in qemu_pids(guest):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(instances, ignore_errors=True)
        assert leftovers == [], f"guest directories left behind: {leftovers}"


class Server:
    """A server made through the CLI, and what the tests look at."""

    def __init__(self, cloud: Nimbus, name: str, *create_args: str) -> None:
        self.cloud = cloud
        self.name = name
        created = cloud.osc("server", "create", "--flavor", "m1.nano", "--wait", *create_args, name)
        assert created["status"] == "ACTIVE", created
        self.id = created["id"]

    @property
    def directory(self) -> Path:
        return self.cloud.instances / self.id

    def show(self) -> dict:
        return self.cloud.osc("server", "show", self.id)

    def status(self) -> str:
        return self.show()["status"]

    def console(self) -> str:
        return self.cloud.osc("console", "log", "show", self.id, fmt=None)

    def wait_console(self, pattern: str, timeout: float = LINE_TIMEOUT, after: int = 0) -> re.Match:
        """The first match of `pattern` in the console log past offset `after`."""
        return wait_for(lambda: re.compile(pattern).search(self.console(), after), timeout, f"{pattern!r} on {self.name}'s console")

    def act(self, *action: str, status: str) -> None:
        self.cloud.osc("server", *action, self.id)
        wait_for(lambda: self.status() == status, 120, f"{self.name} to become {status}")

    def delete(self) -> None:
        self.cloud.osc("server", "delete", "--wait", self.id)
        assert qemu_pids(self.id) == [], "the guest's QEMU process is gone"
        assert not self.directory.exists(), f"{self.directory} is gone (overlay, sockets, console log)"


def test_the_first_command_gives_a_cloud_that_boots_the_test_image(qemu_cloud: Nimbus) -> None:
    flavors = {f["Name"]: f for f in qemu_cloud.osc("flavor", "list")}
    assert {"m1.nano", "m1.micro", "m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"} <= set(flavors)
    assert flavors["m1.nano"]["ID"] == "42"
    hypervisors = qemu_cloud.osc("hypervisor", "list")
    assert [h["Hypervisor Type"] for h in hypervisors] == ["QEMU"]

    server = Server(qemu_cloud, "demo", "--image", "nimbus-test")
    assert qemu_pids(server.id), "a QEMU process runs the guest"
    line = server.wait_console(r"NIMBUS-GUEST uuid=(\S+) hostname=(\S+) ip=")
    assert line.group(1) == server.id and line.group(2) == "demo", line.group(0)
    assert "config drive found" in server.console()
    server.delete()


def test_lifecycle_actions_on_a_real_guest(qemu_cloud: Nimbus, tmp_path: Path) -> None:
    counter = tmp_path / "counter.sh"
    counter.write_text("#!/bin/sh\ni=0\nwhile true; do i=$((i+1)); echo \"COUNTER $i\"; sleep 1; done\n")
    server = Server(qemu_cloud, "life", "--image", "nimbus-test", "--user-data", str(counter))
    server.wait_console(r"COUNTER 2\b")

    # Stop: the guest sees ACPI and its process exits; start boots it again.
    server.act("stop", status="SHUTOFF")
    assert qemu_pids(server.id) == []
    boots = server.console().count("init started")
    server.act("start", status="ACTIVE")
    wait_for(lambda: server.console().count("init started") > boots, LINE_TIMEOUT, "the guest to boot again")

    # Suspend: the process is gone and the guest continues where it was.
    wait_for(lambda: server.console().count("COUNTER") > 3, LINE_TIMEOUT, "the counter to run after the start")
    server.act("suspend", status="SUSPENDED")
    assert qemu_pids(server.id) == []
    before = max(int(n) for n in re.findall(r"COUNTER (\d+)", server.console()))
    boots = server.console().count("init started")
    server.act("resume", status="ACTIVE")
    wait_for(lambda: max(int(n) for n in re.findall(r"COUNTER (\d+)", server.console())) > before, LINE_TIMEOUT, "the counter to go on")
    assert server.console().count("init started") == boots, "resume continued the guest, it did not boot it again"

    # Pause and unpause.
    server.act("pause", status="PAUSED")
    server.act("unpause", status="ACTIVE")

    # Soft and hard reboot.
    boots = server.console().count("init started")
    server.act("reboot", status="ACTIVE")
    wait_for(lambda: server.console().count("init started") > boots, LINE_TIMEOUT, "the guest to reboot")
    boots = server.console().count("init started")
    server.act("reboot", "--hard", status="ACTIVE")
    wait_for(lambda: server.console().count("init started") > boots, LINE_TIMEOUT, "the guest to reboot hard")

    # A snapshot into the image service boots a new server to its line.
    qemu_cloud.osc("server", "image", "create", "--name", "life-snap", "--wait", server.id)
    copy = Server(qemu_cloud, "from-snap", "--image", "life-snap")
    line = copy.wait_console(r"NIMBUS-GUEST uuid=(\S+) hostname=(\S+) ip=")
    assert line.group(1) == copy.id and line.group(2) == "from-snap", line.group(0)
    copy.delete()
    qemu_cloud.osc("image", "delete", "life-snap", fmt=None)

    # Rescue boots the rescue image with the server's disk beside it; unrescue boots its own.
    server.act("rescue", status="RESCUE")
    server.act("unrescue", status="ACTIVE")

    # Shelve: snapshot, guest and overlay gone; unshelve boots it from that snapshot.
    server.act("shelve", status="SHELVED_OFFLOADED")
    assert qemu_pids(server.id) == [] and not server.directory.exists()
    server.act("unshelve", status="ACTIVE")
    wait_for(lambda: qemu_pids(server.id), 60, "the unshelved guest to run")
    server.wait_console(r"NIMBUS-GUEST uuid=")

    # Rebuild: a new overlay from the image, the same server.
    server.act("rebuild", "--image", "nimbus-test", status="ACTIVE")
    wait_for(lambda: server.console().count("init started") >= 1 and qemu_pids(server.id), LINE_TIMEOUT, "the rebuilt guest to boot")
    server.delete()

    # A one-host cloud resizes in place (allow_resize_to_same_host): the guest stops, boots
    # again with the bigger flavor's RAM and reports it on its console line.
    grown = Server(qemu_cloud, "grown", "--image", "nimbus-test")
    line = r"NIMBUS-GUEST uuid=\S+ hostname=\S+ ip=\S+ mem=(\d+)"
    before = int(grown.wait_console(line).group(1))
    qemu_cloud.osc("server", "resize", "--flavor", "m1.micro", grown.id)
    wait_for(lambda: grown.status() == "VERIFY_RESIZE", 120, "the resize")
    qemu_cloud.osc("server", "resize", "confirm", grown.id, fmt=None)
    wait_for(lambda: grown.status() == "ACTIVE", 120, "the confirm")
    after = wait_for(lambda: [int(m) for m in re.findall(line, grown.console()) if int(m) > before], LINE_TIMEOUT, "more memory")
    assert after[-1] - before >= 50, (before, after)  # m1.micro has 192 MiB, m1.nano 128
    grown.delete()


def test_guests_outlive_a_killed_cloud_and_are_found_again(qemu_cloud: Nimbus) -> None:
    server = Server(qemu_cloud, "survivor", "--image", "nimbus-test")
    server.wait_console(r"NIMBUS-GUEST uuid=")
    pids = qemu_pids(server.id)
    assert pids

    assert qemu_cloud.process is not None
    os.killpg(qemu_cloud.process.pid, signal.SIGKILL)
    qemu_cloud.process.wait(timeout=10)
    assert qemu_pids(server.id) == pids, "the guest kept running while its host's agent was dead"

    qemu_cloud.start()
    wait_for(lambda: qemu_cloud.output().count("Nimbus is ready") >= 1, FIRST_START_TIMEOUT, "the restart")
    assert server.status() == "ACTIVE"
    assert qemu_pids(server.id) == pids, "the restarted agent re-attached instead of starting another"
    server.act("stop", status="SHUTOFF")
    server.delete()
