"""Moving real QEMU guests between hosts with the unmodified `openstack` CLI: one `nimbus
controller` and two `nimbus agent --driver qemu` processes, each with its own instances
directory and its own loopback address (127.0.0.1 and 127.0.0.2), so the hosts share no
storage and every move copies disks over the network. One server goes through a cold
migration, a live migration (of 128 MiB), a resize to more RAM and an evacuation; after each move the
host it left holds nothing of it (no process, overlay, socket or export daemon)."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import Nimbus, nimbus_binary, wait_for

LINE_TIMEOUT = 120.0
MOVE_TIMEOUT = 180.0


def processes_under(root: Path) -> list[int]:
    """Live processes whose command line names a path under `root` (QEMUs, export daemons)."""
    needle = (str(root) + "/").encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if needle in cmdline and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


class Host:
    """One `nimbus agent --driver qemu` process."""

    def __init__(self, cloud: Nimbus, name: str, address: str, instances: Path, password_file: Path) -> None:
        self.cloud, self.name, self.address, self.instances, self.password_file = cloud, name, address, instances, password_file
        self.log = cloud.workdir / f"agent-{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(nimbus_binary()), "agent", "--controller", self.cloud.base_url, "--host", self.name,
             "--password-file", str(self.password_file), "--heartbeat", "1", "--driver", "qemu",
             "--instances-path", str(self.instances), "--host-ip", self.address, "--dataplane", "none"],
            stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def holds(self, uuid: str) -> list[str]:
        """What of the guest this host still has: its directory, processes naming it."""
        left = [str(self.instances / uuid)] if (self.instances / uuid).exists() else []
        return left + [f"pid {pid}" for pid in processes_under(self.instances / uuid)]


# Parametrized by its one backend so that the tests' ids carry it: conftest's xdist_scope then
# hands the module's tests to one pytest-xdist worker together, in file order, sharing one
# cloud and one server (each test moves the server from wherever the last one left it).
@pytest.fixture(scope="module", params=["sqlite"])
def hosts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    cloud = Nimbus(request.param, tmp_path_factory.mktemp("moves"))
    cloud.command = "controller"
    cloud.fake_hosts = None
    cloud.start()
    password_file = cloud.workdir / "admin-password"
    password_file.write_text(cloud.admin_password)
    # Short instances roots: the guests' unix sockets live below them.
    scratch = Path(tempfile.mkdtemp(prefix="nmv-", dir="/tmp"))
    pair = {name: Host(cloud, name, address, scratch / name[-1], password_file)
            for name, address in [("qemu-a", "127.0.0.1"), ("qemu-b", "127.0.0.2")]}
    try:
        for host in pair.values():
            host.start()
        wait_for(lambda: {s["Host"]: s["State"] for s in cloud.osc("compute", "service", "list", "--service", "nova-compute")}
                 == {"qemu-a": "up", "qemu-b": "up"}, 120, "both agents to register")
        # The test image, built from Debian packages (cached across runs), and two flavors.
        cloud.upload_test_image()
        cloud.osc("flavor", "create", "--ram", "128", "--disk", "1", "--vcpus", "1", "small")
        cloud.osc("flavor", "create", "--ram", "192", "--disk", "2", "--vcpus", "1", "bigger")
        yield cloud, pair
    finally:
        for host in pair.values():
            host.kill()
        cloud.stop()
        for pid in processes_under(scratch):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="module")
def server(hosts, tmp_path_factory: pytest.TempPathFactory):
    """One server that counts on its console, moved by every test in turn."""
    cloud, _ = hosts
    counter = tmp_path_factory.mktemp("userdata") / "counter.sh"
    counter.write_text("#!/bin/sh\ni=0\nwhile true; do i=$((i+1)); echo \"COUNTER $i\"; sleep 1; done\n")
    created = cloud.osc("server", "create", "--flavor", "small", "--image", "nimbus-test", "--user-data", str(counter),
                        "--wait", "mover-" + secrets.token_hex(3))
    assert created["status"] == "ACTIVE", created
    booted = guest_line(cloud, created["id"])
    assert booted.group(1) == created["id"], booted.group(0)
    yield Mover(created["id"], int(booted.group(2)))
    cloud.osc("server", "delete", "--wait", created["id"])


class Mover:
    """The server the tests move, and the memory its guest saw at its first boot (MiB)."""

    def __init__(self, uuid: str, boot_memory: int) -> None:
        self.id, self.boot_memory = uuid, boot_memory


def show(cloud: Nimbus, uuid: str) -> dict:
    return cloud.osc("server", "show", uuid)


def wait_status(cloud: Nimbus, uuid: str, status: str) -> dict:
    last: list[dict] = []

    def reached():
        shown = show(cloud, uuid)
        assert shown["status"] != "ERROR", shown.get("fault")
        last[:] = [shown]
        return shown if shown["status"] == status and not shown.get("OS-EXT-STS:task_state") else None
    try:
        return wait_for(reached, MOVE_TIMEOUT, f"{uuid} to become {status}")
    except AssertionError as error:
        shown = last[0] if last else {}
        raise AssertionError(f"{error}; last seen {shown.get('status')}/{shown.get('OS-EXT-STS:task_state')} "
                             f"on {shown.get('OS-EXT-SRV-ATTR:host')}") from None


def console(cloud: Nimbus, uuid: str) -> str:
    return cloud.osc("console", "log", "show", uuid, fmt=None)


def guest_line(cloud: Nimbus, uuid: str) -> re.Match:
    """The last NIMBUS-GUEST line of the console (the latest boot's)."""
    def found():
        lines = list(re.finditer(r"NIMBUS-GUEST uuid=(\S+) hostname=\S+ ip=\S+ mem=(\d+)", console(cloud, uuid)))
        return lines[-1] if lines else None
    return wait_for(found, LINE_TIMEOUT, f"{uuid}'s console line")


def counters(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"COUNTER (\d+)", text)]


def host_of(cloud: Nimbus, pair: dict[str, Host], uuid: str) -> tuple[Host, Host]:
    """The server's host and the other one."""
    name = show(cloud, uuid)["OS-EXT-SRV-ATTR:host"]
    return pair[name], next(h for h in pair.values() if h.name != name)


def test_cold_migration_moves_the_guest_and_its_disk(hosts, server) -> None:
    cloud, pair = hosts
    source, destination = host_of(cloud, pair, server.id)
    cloud.osc("server", "migrate", server.id)
    wait_status(cloud, server.id, "VERIFY_RESIZE")
    assert show(cloud, server.id)["OS-EXT-SRV-ATTR:host"] == destination.name
    # Until the confirm the source keeps the stopped guest (a revert would start it again).
    assert (source.instances / server.id / "disk").exists()
    cloud.osc("server", "migration", "confirm", server.id, fmt=None)
    wait_status(cloud, server.id, "ACTIVE")
    assert guest_line(cloud, server.id).group(1) == server.id, "the guest boots from its moved disk on the new host"
    assert (destination.instances / server.id / "disk").exists()
    wait_for(lambda: source.holds(server.id) == [], 30, f"{source.name} to keep nothing of the guest")
    migrations = cloud.osc("--os-compute-api-version", "2.59", "server", "migration", "list", "--server", server.id, fmt="json")
    assert any(m["Type"] == "migration" and m["Status"] == "confirmed" for m in migrations), migrations


def test_live_migration_keeps_the_guest_running(hosts, server) -> None:
    cloud, pair = hosts
    source, destination = host_of(cloud, pair, server.id)
    wait_for(lambda: len(counters(console(cloud, server.id))) >= 3, LINE_TIMEOUT, "the counter to run")
    reached = max(counters(console(cloud, server.id)))
    cloud.osc("server", "migrate", "--live-migration", "--wait", server.id, fmt=None)
    moved = wait_status(cloud, server.id, "ACTIVE")
    assert moved["OS-EXT-SRV-ATTR:host"] == destination.name
    # The destination's console starts with the migration: the counter goes on from where it
    # was, and the guest never booted there.
    wait_for(lambda: counters(console(cloud, server.id)), LINE_TIMEOUT, "the counter on the new host")
    after = console(cloud, server.id)
    assert min(counters(after)) >= reached, (reached, counters(after)[:5])
    assert "init started" not in after and "NIMBUS-GUEST uuid=" not in after, after[:500]
    wait_for(lambda: max(counters(console(cloud, server.id))) > max(counters(after)), 30, "the counter to keep counting")
    assert source.holds(server.id) == [], "nothing of the guest is left on the source"
    events = cloud.osc("server", "event", "list", server.id)
    assert "live-migration" in [e["Action"] for e in events], events
    migrations = cloud.osc("--os-compute-api-version", "2.59", "server", "migration", "list", "--server", server.id, fmt="json")
    assert any(m["Type"] == "live-migration" and m["Status"] == "completed" for m in migrations), migrations
    # The source's driver logs QEMU's figures (query-migrate); shown with `pytest -s`.
    figures = [line for line in source.log.read_text().splitlines() if f"live migration of {server.id}:" in line]
    assert figures, "the source logs the migration's figures"
    print("\n" + figures[-1].split("[Virt] ", 1)[-1])


def test_resize_to_more_ram_shows_in_the_guest(hosts, server) -> None:
    cloud, pair = hosts
    # Its console since the live migration has no boot line: compare with the first boot's.
    before = server.boot_memory
    source, _ = host_of(cloud, pair, server.id)
    cloud.osc("server", "resize", "--flavor", "bigger", server.id)
    resized = wait_status(cloud, server.id, "VERIFY_RESIZE")
    assert resized["flavor"]["original_name"] == "bigger"
    cloud.osc("server", "resize", "confirm", server.id, fmt=None)
    wait_status(cloud, server.id, "ACTIVE")
    after = wait_for(lambda: int(guest_line(cloud, server.id).group(2)) > before and int(guest_line(cloud, server.id).group(2)),
                     LINE_TIMEOUT, "the guest to report more memory")
    assert after - before >= 50, (before, after)  # 192 MiB against 128 MiB, less what each kernel keeps
    if resized["OS-EXT-SRV-ATTR:host"] != source.name:
        wait_for(lambda: source.holds(server.id) == [], 30, f"{source.name} to keep nothing of the guest")


def test_evacuate_rebuilds_the_guest_on_the_other_host(hosts, server) -> None:
    cloud, pair = hosts
    failed, survivor = host_of(cloud, pair, server.id)
    failed.kill()
    cloud.osc("--os-compute-api-version", "2.11", "compute", "service", "set", "--down", failed.name, "nova-compute", fmt=None)
    cloud.osc("server", "evacuate", server.id)
    # From microversion 2.95 (the client asks for the newest) an evacuated server arrives
    # stopped, as in Nova; starting it boots the guest rebuilt from its image.
    evacuated = wait_status(cloud, server.id, "SHUTOFF")
    assert evacuated["OS-EXT-SRV-ATTR:host"] == survivor.name
    cloud.osc("server", "start", server.id, fmt=None)
    wait_status(cloud, server.id, "ACTIVE")
    assert guest_line(cloud, server.id).group(1) == server.id, "the guest booted again on the surviving host"
    assert (survivor.instances / server.id / "disk").exists()
    # The failed host comes back: its agent removes the guest that was evacuated from it.
    failed.start()
    cloud.osc("--os-compute-api-version", "2.11", "compute", "service", "set", "--up", failed.name, "nova-compute", fmt=None)
    wait_for(lambda: failed.holds(server.id) == [], 60, f"{failed.name} to clean up the evacuated guest")
    assert show(cloud, server.id)["OS-EXT-SRV-ATTR:host"] == survivor.name
    events = [e["Action"] for e in cloud.osc("server", "event", "list", server.id)]
    assert "evacuate" in events, events
